"""``serve``: the TUI in a browser, through textual-serve (the ``serve`` extra)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from playground.cli.common import EXIT_OK, EXIT_USAGE, db_arg, db_path, load_system

DEFAULT_PORT = 8000


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the TUI to a web browser",
        description="Serve the TUI over HTTP with textual-serve, for a team member without a "
        "terminal: open the printed URL in a browser. Each browser tab gets its own app (a "
        "process running 'playground tui SYSTEM.yaml', or the home screen without a system); "
        "all of them share one store (--db) and trace as 'run' does (OTEL_* variables). Runs "
        "until interrupted (Ctrl-C); exits 0 then, 2 when textual-serve is not installed "
        "(pip install 'agent-playground[serve]') or for a broken system file. Listens on "
        "127.0.0.1 unless --host says otherwise: the TUI runs agents and tools with your "
        "credentials, so expose it only behind something that authenticates.",
    )
    serve.add_argument("system", metavar="SYSTEM.yaml", nargs="?", help="open this system's run screen")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default: {DEFAULT_PORT})"
    )
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="the URL browsers reach the server at, when it is behind a proxy (default: http://HOST:PORT)",
    )
    db_arg(serve)
    serve.set_defaults(handler=cmd_serve)


def app_command(args: argparse.Namespace) -> str:
    """The command each connection runs: this Python, this store, this system."""
    parts = [sys.executable, "-m", "playground.cli", "--db", str(db_path(args).resolve())]
    if args.system:
        parts += ["tui", str(Path(args.system).resolve())]
    return shlex.join(parts)


def cmd_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        print(f"error: --port {args.port} is not a port (1-65535)", file=sys.stderr)
        return EXIT_USAGE
    if args.system:
        load_system(args.system)  # a broken file: one line and exit 2 now, not in each tab
    try:
        from textual_serve.server import Server
    except ImportError:
        print(
            "error: playground serve needs textual-serve: pip install 'agent-playground[serve]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    server = Server(
        app_command(args),
        host=args.host,
        port=args.port,
        title="Agent Playground",
        public_url=args.public_url,
    )
    print(f"serving the playground at {server.public_url} (Ctrl-C stops)", file=sys.stderr)
    server.serve()
    return EXIT_OK
