"""``observe``: receive OpenTelemetry traces over OTLP/HTTP and record them as sessions."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import TYPE_CHECKING, Any

from playground.cli.common import EXIT_FAILED, EXIT_OK, count, db_arg, db_path, guarded, open_store

if TYPE_CHECKING:
    from playground.observe.mapping import ObservedSession
    from playground.observe.server import OtlpReceiver

DEFAULT_PORT = 4318
"""The OTLP/HTTP port (:data:`playground.observe.server.DEFAULT_PORT`, not imported: ``--help``
stays light)."""


def register(commands: Any) -> None:
    observe = commands.add_parser(
        "observe",
        help="record another framework's OpenTelemetry traces as sessions",
        description="Serve OTLP/HTTP (POST /v1/traces: protobuf or JSON, gzip or not) and record each "
        "trace as a session, as its spans arrive: agents, model calls, tool calls, handoffs, tokens, "
        "cost and errors, whichever framework sent them (GenAI semantic conventions, OpenInference, "
        "LangGraph, the playground's own --otlp). Prints where to point an application, then one line "
        "per session as it completes (session, framework, system, status, path, cost), or one JSON "
        "object per line with --json. Runs until interrupted (Ctrl-C); exits 0 then, 1 if the port "
        "cannot be bound.",
    )
    observe.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    observe.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default: {DEFAULT_PORT}; 0 picks one)",
    )
    observe.add_argument("--json", action="store_true", help="print each completed session as one JSON line")
    db_arg(observe)
    observe.set_defaults(handler=cmd_observe)


def cmd_observe(args: argparse.Namespace) -> int:
    return guarded(observe(args))


async def observe(args: argparse.Namespace, stop: asyncio.Event | None = None) -> int:
    """Receive until ``stop`` is set or the process is interrupted."""
    from playground.llm.litellm_model import preload
    from playground.observe.observer import Observer, describe
    from playground.observe.server import OtlpReceiver

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or not POSIX
            pass

    def printed(session: ObservedSession) -> None:
        found = describe(session)
        if args.json:
            print(json.dumps(found, ensure_ascii=False), flush=True)
            return
        path = " → ".join(found["path"]) or "-"
        error = found["error"]
        where = (
            f"  {error['type']} (origin {error['origin']}, manifested {error['manifested']})" if error else ""
        )
        print(
            f"{found['session_id']}  {found['framework']}  {found['system']}  {found['status']}  "
            f"{path}  ${found['cost_usd']:.6f}  {found['tokens']['input']}+{found['tokens']['output']} tok"
            f"{where}",
            flush=True,
        )

    async with open_store(args) as store, Observer(store) as observer:
        # Prices come from litellm's cost map; import it now, in a thread, not on the first span.
        warm = asyncio.create_task(preload())
        observer.subscribe(on_finished=printed)
        receiver = OtlpReceiver(observer, host=args.host, port=args.port)
        try:
            await receiver.start()
        except OSError as exc:
            warm.cancel()
            print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            if args.port == DEFAULT_PORT:
                print("  another collector may be running: pick another port with --port", file=sys.stderr)
            return EXIT_FAILED
        _announce(receiver, str(db_path(args)))
        try:
            await stop.wait()
        finally:
            await receiver.close()
            await observer.settle()
            await _quietly(warm)
        running = sum(1 for s in observer.sessions.values() if s.status == "running")
        finished = len(observer.sessions) - running
        tail = f"; {running} still running (their root spans never came)" if running else ""
        spans = count(receiver.stats.spans, "span")
        print(f"observed {count(finished, 'session')} from {spans}{tail}", file=sys.stderr)
    return EXIT_OK


def _announce(receiver: OtlpReceiver, store: str) -> None:
    base = receiver.url.removesuffix("/v1/traces")
    lines = [
        f"observing OTLP/HTTP traces on {receiver.url}",
        f"  point an application at it: OTEL_EXPORTER_OTLP_ENDPOINT={base}"
        " (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + receiver.url + ")",
        f"  sessions go to {store}; Ctrl-C stops",
    ]
    if receiver.host not in ("127.0.0.1", "localhost", "::1"):
        lines.append(f"  warning: listening on {receiver.host}: anything that reaches it can write sessions")
    print("\n".join(lines), file=sys.stderr, flush=True)


async def _quietly(task: asyncio.Task[None]) -> None:
    if not task.done():
        task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
