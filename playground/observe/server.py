"""An OTLP/HTTP trace receiver on asyncio streams (the standard library, no web framework).

It answers ``POST /v1/traces`` (protobuf or JSON, optionally gzip) with an
``ExportTraceServiceResponse`` in the request's encoding, and hands the spans to an
:class:`~playground.observe.observer.Observer`. It binds loopback unless told otherwise.

A broken, hostile or huge request gets an HTTP error and one log line, never a crash:
the header block is bounded (431), a body over the limit is refused before it is read
(413), an unsupported type or encoding gets 415, an undecodable body 400, and a
connection that stalls is closed. At most :data:`DECODING` bodies are held and decoded
at once (in worker threads: the event loop keeps serving, and the TUI keeps drawing).
Connections are kept alive (HTTP/1.1), as the OTLP exporters expect.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from playground.observe.observer import IngestResult, Observer
from playground.observe.otlp import BODY_BYTES, JSON_TYPES, BodyError, decode_request

log = logging.getLogger("playground.observe")

DEFAULT_PORT = 4318
"""The OTLP/HTTP port."""
TRACES_PATH = "/v1/traces"
HEADER_BYTES = 64 << 10
"""The request line and headers of one request."""
MAX_HEADERS = 100
IDLE_S = 120.0
"""A keep-alive connection that sends nothing for this long is closed."""
READ_S = 60.0
"""A request whose body does not arrive within this long is dropped."""
DECODING = 4
"""Request bodies held and decoded at once (memory: at most this many bodies)."""
INLINE_BYTES = 32 << 10
"""Bodies up to this size are decoded on the event loop (a thread hand-off costs more)."""

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


@dataclass
class ReceiverStats:
    """What the receiver has seen since it started."""

    requests: int = 0
    spans: int = 0
    rejected_spans: int = 0
    errors: int = 0
    """Requests answered with an error status."""


class _Refused(Exception):
    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.close = close


class OtlpReceiver:
    """Serves OTLP/HTTP traces into an observer. ``async with OtlpReceiver(observer) as r:``.

    Args:
        observer: Receives the decoded spans (started by the caller).
        host: The address to bind; loopback by default.
        port: The port; 0 picks a free one (see :attr:`port` once started).
    """

    def __init__(self, observer: Observer, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        self.observer = observer
        self.host = host
        self.port = port
        self.stats = ReceiverStats()
        self._server: asyncio.Server | None = None
        self._decoding = asyncio.Semaphore(DECODING)
        self._connections: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> OtlpReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """Where to point an application's OTLP trace exporter."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{TRACES_PATH}"

    async def start(self) -> None:
        """Bind and serve.

        Raises:
            OSError: The address is taken or cannot be bound.
        """
        self._server = await asyncio.start_server(self._connection, self.host, self.port, limit=HEADER_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    # -- one connection -------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        peer = writer.get_extra_info("peername")
        try:
            while await self._request(reader, writer, peer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except Exception:
            log.exception("OTLP connection from %s failed", peer)
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def _request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> bool:
        """Serve one request; False when the connection is to close."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_S)
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                log.warning("OTLP request from %s ended inside its headers", peer)
            return False
        except asyncio.LimitOverrunError:
            await self._answer(
                writer, 431, f"the request headers are over {HEADER_BYTES} bytes", peer, False, True
            )
            return False
        json_reply = keep = False
        try:
            method, path, version, headers = _parse_head(head)
            json_reply = headers.get("content-type", "").split(";", 1)[0].strip().lower() in JSON_TYPES
            keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            body = await self._body(reader, headers)
            if path.split("?", 1)[0] != TRACES_PATH:
                raise _Refused(404, f"no such endpoint {path[:100]!r}: send traces to {TRACES_PATH}")
            if method != "POST":
                raise _Refused(405, f"{TRACES_PATH} takes POST, not {method[:20]}")
            ingested = await self._ingest(body, headers)
        except _Refused as refused:
            close = refused.close or not keep
            await self._answer(writer, refused.status, str(refused), peer, json_reply, close)
            return not close
        except BodyError as exc:
            await self._answer(writer, exc.status, str(exc), peer, json_reply, not keep)
            return keep
        await self._reply(writer, ingested, json_reply)
        return keep

    async def _body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        limit = BODY_BYTES.value
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await asyncio.wait_for(_read_chunked(reader, limit), READ_S)
        raw = headers.get("content-length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise _Refused(400, f"Content-Length {raw[:40]!r} is not a number", close=True) from None
        if length < 0:
            raise _Refused(400, "Content-Length is negative", close=True)
        if length > limit:  # refused unread: the connection closes instead
            raise _Refused(413, BODY_BYTES.message("the request body", length), close=True)
        return await asyncio.wait_for(reader.readexactly(length), READ_S)

    async def _ingest(self, body: bytes, headers: dict[str, str]) -> IngestResult:
        content_type = headers.get("content-type", "")
        encoding = headers.get("content-encoding", "")
        async with self._decoding:
            if len(body) <= INLINE_BYTES:
                spans = decode_request(body, content_type, encoding)
            else:
                spans = await asyncio.to_thread(decode_request, body, content_type, encoding)
        del body
        result = self.observer.ingest(spans)
        self.stats.requests += 1
        self.stats.spans += result.accepted
        self.stats.rejected_spans += result.rejected
        if result.rejected:
            log.warning("%d spans refused: %s", result.rejected, "; ".join(result.reasons))
        return result

    async def _reply(self, writer: asyncio.StreamWriter, result: IngestResult, json_reply: bool) -> None:
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(
                    rejected_spans=result.rejected, error_message="; ".join(result.reasons)
                )
            )
        if json_reply:
            body = json_format.MessageToJson(response, indent=None).encode()
            await _write(writer, 200, body, "application/json")
        else:
            await _write(writer, 200, response.SerializeToString(), "application/x-protobuf")

    async def _answer(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        message: str,
        peer: object,
        json_reply: bool,
        close: bool,
    ) -> None:
        """An error status with its message (one log line), as JSON to a JSON client."""
        self.stats.errors += 1
        log.warning("OTLP request from %s refused (%d): %s", peer, status, message)
        if json_reply:
            body = json.dumps({"code": status, "message": message}).encode()
            await _write(writer, status, body, "application/json", close=close)
        else:
            await _write(writer, status, message.encode(), "text/plain; charset=utf-8", close=close)


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # latin-1 decodes any bytes; kept for clarity
        raise _Refused(400, "the request head is not text", close=True) from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _Refused(400, f"not an HTTP/1.x request line: {lines[0][:80]!r}", close=True)
    headers: dict[str, str] = {}
    fields = [line for line in lines[1:] if line]
    if len(fields) > MAX_HEADERS:
        raise _Refused(431, f"more than {MAX_HEADERS} request headers", close=True)
    for line in fields:
        name, colon, value = line.partition(":")
        if not colon:
            raise _Refused(400, f"a malformed header line: {line[:80]!r}", close=True)
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _Refused(400, "a malformed chunk size", close=True) from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body)
        if len(body) + size > limit:
            raise _Refused(413, BODY_BYTES.message("the request body", len(body) + size), close=True)
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise _Refused(400, "a chunk does not end with CRLF", close=True)


async def _write(
    writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str, *, close: bool = False
) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
