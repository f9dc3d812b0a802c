"""A stand-in OTLP/HTTP collector for the benchmarks: accepts and discards export requests.

Runs as its own process, as a collector does, so its work does not count against the
process being measured. Prints its port on the first line; when its stdin closes it
prints how many export requests it received and exits.

Usage: python bench/otlp_receiver.py
"""

from __future__ import annotations

import http.server
import sys
import threading


class _Receiver(http.server.BaseHTTPRequestHandler):
    posts = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).posts += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_port, flush=True)
    sys.stdin.read()
    server.shutdown()
    print(_Receiver.posts, flush=True)


if __name__ == "__main__":
    main()
