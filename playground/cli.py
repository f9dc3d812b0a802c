"""The command line: ``playground [COMMAND] ...``.

Imports stay inside the commands: ``playground --help`` must not pay for
litellm, Textual, Rich or the OpenTelemetry SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ABORTED = 3


def _db_arg(parser: argparse.ArgumentParser, top: bool = False) -> None:
    # SUPPRESS on commands, so `playground --db X run ...` is not reset by the command's default.
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=None if top else argparse.SUPPRESS,
        help="the session store (default: $PLAYGROUND_DB or sessions/playground.db here)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playground",
        description="Build and debug multi-agent LLM systems. With no command, opens the TUI "
        "on the systems in ./agents.",
    )
    _db_arg(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run one request through a system, headless",
        description="Run one request through a system and print its path, per-agent costs and "
        "output. Exit 0 when the run completed, 1 when it failed, 3 when aborted, "
        "2 for a bad system file or usage.",
    )
    run.add_argument("system", metavar="SYSTEM.yaml")
    run.add_argument("--input", "-i", required=True, metavar="TEXT", help="the request")
    run.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: session_id, status, path, output, cost_usd, tokens, "
        "latency_ms, per_agent, error",
    )
    run.add_argument(
        "--otlp",
        metavar="ENDPOINT",
        help="export spans over OTLP/HTTP (default: $OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    run.add_argument("--trace-console", action="store_true", help="print spans to stderr")
    run.add_argument(
        "--capture-content", action="store_true", help="put prompts and replies in spans (off by default)"
    )
    run.add_argument("--quiet", "-q", action="store_true", help="no live step lines, just the summary")
    _db_arg(run)

    sessions = commands.add_parser(
        "sessions",
        help="list recorded sessions, or show one",
        description="List recorded sessions, newest first; 'sessions show ID' prints one with its events.",
    )
    sessions.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    sessions.add_argument("session_id", nargs="?", metavar="ID", help="with show: a session id or prefix")
    sessions.add_argument("--system", metavar="NAME", help="only this system's sessions")
    sessions.add_argument("--status", choices=["running", "completed", "failed", "aborted", "interrupted"])
    sessions.add_argument("--limit", type=int, default=30)
    sessions.add_argument("--json", action="store_true", help="print JSON")
    _db_arg(sessions)

    check = commands.add_parser(
        "check",
        help="check system files without running them",
        description="Load each system file and report the first problem "
        "of each, with file, line and field. Exit 2 if any is broken.",
    )
    check.add_argument("systems", nargs="+", metavar="SYSTEM.yaml")
    _db_arg(check)

    tui = commands.add_parser(
        "tui",
        help="open the TUI on one system",
        description="Open the run screen on one system: type a request, watch each agent's pane, "
        "step through gates, edit handoffs, swap models.",
    )
    tui.add_argument("system", metavar="SYSTEM.yaml")
    _db_arg(tui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = {
        None: _cmd_home,
        "run": _cmd_run,
        "sessions": _cmd_sessions,
        "check": _cmd_check,
        "tui": _cmd_tui,
    }[args.command]
    from playground.errors import PlaygroundError, SpecError

    try:
        return handler(args)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _db_path(args: argparse.Namespace) -> Path:
    from playground.store import default_db_path

    return Path(args.db) if getattr(args, "db", None) else default_db_path()


def _cmd_check(args: argparse.Namespace) -> int:
    from playground.errors import SpecError
    from playground.spec import load_system

    broken = 0
    for path in args.systems:
        try:
            system = load_system(path)
        except SpecError as exc:
            broken += 1
            print(f"error: {exc}", file=sys.stderr)
        else:
            spec = system.spec
            print(f"ok: {path}: {spec.name} ({spec.pattern}, {len(spec.agents)} agents)")
    return EXIT_USAGE if broken else EXIT_OK


def _cmd_home(args: argparse.Namespace) -> int:
    return _open_tui(args, None)


def _cmd_tui(args: argparse.Namespace) -> int:
    from playground.spec import load_system

    return _open_tui(args, load_system(args.system))


def _open_tui(args: argparse.Namespace, system: Any) -> int:
    from playground.tui.app import PlaygroundApp

    app = PlaygroundApp(system, db_path=_db_path(args), agents_dir=Path("agents"))
    code = app.run()
    return app.return_code or (code or EXIT_OK)


def _cmd_run(args: argparse.Namespace) -> int:
    from playground.spec import load_system

    system = load_system(args.system)
    return asyncio.run(_run(args, system))


async def _run(args: argparse.Namespace, system: Any) -> int:
    from playground.service import run_session
    from playground.store import Store
    from playground.tracing import configure_tracing

    tracer = configure_tracing(
        otlp_endpoint=args.otlp, console=args.trace_console, capture_content=args.capture_content
    )
    live: list[Callable[[Any], None]] = [] if (args.json or args.quiet) else [_StepPrinter()]
    async with Store(_db_path(args)) as store:
        result = await run_session(system, args.input, store=store, tracer=tracer, live=live)
    if tracer is not None:
        tracer.shutdown()
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        _print_summary(result)
    return {"completed": EXIT_OK, "aborted": EXIT_ABORTED}.get(result.status, EXIT_FAILED)


class _StepPrinter:
    """Prints one line per step as the run goes (the CLI's view of the event stream)."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)

    def __call__(self, event: Any) -> None:
        line = _describe(event)
        if line:
            self.console.print(line)


def _describe(event: Any) -> str | None:
    from rich.markup import escape

    kind = event.kind
    who = f"[bold]{escape(event.agent or '')}[/]"
    if kind == "agent_started":
        return f"{who} [dim]started ({event.reason})[/]"
    if kind == "model_responded":
        what = ", ".join(c["name"] for c in event.tool_calls) or "reply"
        return (
            f"  {who} {escape(event.model)} -> {escape(what)} "
            f"[dim]{event.latency_ms:.0f} ms, {event.input_tokens}+{event.output_tokens} tok, "
            f"${event.cost_usd:.6f}[/]"
        )
    if kind == "model_failed":
        return f"  {who} [red]{escape(event.error_type)}[/]: {escape(event.message)}"
    if kind == "retry_scheduled":
        return f"  {who} [yellow]retry {event.attempt} in {event.delay_s:.2f} s[/]"
    if kind == "fallback_used":
        return f"  {who} [yellow]fallback {escape(event.from_model)} -> {escape(event.to_model)}[/]"
    if kind == "tool_returned":
        result = escape((event.error or event.result)[:80])
        colour = "red" if event.error else "dim"
        return f"  {who} tool {escape(event.tool)} [{colour}]-> {result}[/]"
    if kind == "handoff_delivered":
        return (
            f"  {who} [cyan]handoff -> {escape(event.target)}[/] "
            f"{escape(json.dumps(event.payload, ensure_ascii=False)[:100])} "
            f"[dim]{event.payload_tokens} tok[/]"
        )
    if kind == "permission_denied":
        allowed = escape(", ".join(event.allowed))
        return f"  {who} [red]permission denied[/]: {escape(event.tool)} (allowed: {allowed})"
    if kind == "validation_failed":
        return f"  {who} [red]invalid {escape(event.what)}[/]: {escape(event.errors)}"
    if kind == "loop_detected":
        return f"  [red]loop detected[/]: {escape(event.reason)} -> {escape(event.policy)}"
    if kind == "checkpoint_reviewed":
        return f"  {who} reviewed {escape(event.worker)}: {event.verdict} {escape(event.feedback)}"
    return None


def _print_summary(result: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    colour = {"completed": "green", "failed": "red"}.get(result.status, "yellow")
    console.print(
        f"\n[bold]{escape(result.system)}[/] session [bold]{result.session_id}[/] "
        f"[{colour}]{result.status}[/]  path: {' → '.join(result.path) or '-'}"
    )
    table = Table(show_edge=False, header_style="bold")
    for column in ("agent", "calls", "tokens in", "tokens out", "cost (USD)", "latency (ms)"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    for name, totals in result.per_agent.items():
        table.add_row(
            name,
            str(totals.calls),
            str(totals.input_tokens),
            str(totals.output_tokens),
            f"{totals.cost_usd:.6f}",
            f"{totals.latency_ms:.0f}",
        )
    tokens = result.tokens
    table.add_row(
        "[bold]total[/]",
        str(sum(t.calls for t in result.per_agent.values())),
        str(tokens["input"]),
        str(tokens["output"]),
        f"{result.cost_usd:.6f}",
        f"{result.latency_ms:.0f}",
    )
    console.print(table)
    if result.output:
        console.print(f"\n[bold]output[/]\n{escape(result.output)}")
    if result.error:
        error = result.error
        console.print(f"\n[red bold]{escape(error['type'])}[/]: {escape(error['message'])}")
        console.print(
            f"  origin: [bold]{escape(str(error.get('origin') or '-'))}[/]   "
            f"manifested: [bold]{escape(str(error.get('manifested') or '-'))}[/]"
        )


def _cmd_sessions(args: argparse.Namespace) -> int:
    return asyncio.run(_sessions(args))


async def _sessions(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from playground.store import Store

    console = Console(highlight=False)
    async with Store(_db_path(args)) as store:
        if args.action == "show":
            if not args.session_id:
                print("error: sessions show needs a session id", file=sys.stderr)
                return EXIT_USAGE
            row = await store.session(args.session_id)
            events = await store.events(row.session_id)
            if args.json:
                print(
                    json.dumps(
                        {**row.as_json(), "events": [e.model_dump(mode="json") for e in events]},
                        ensure_ascii=False,
                    )
                )
                return EXIT_OK
            console.print(
                f"[bold]{row.session_id}[/] {escape(row.system)} {row.status} "
                f"path: {' → '.join(row.path)}  ${row.cost_usd:.6f}  {row.latency_ms:.0f} ms"
            )
            console.print(f"input: {escape(row.input)}")
            for event in events:
                line = _describe(event)
                console.print(
                    f"[dim]{event.seq:>4}[/] {line or escape(event.kind + ' ' + (event.agent or ''))}"
                )
            if row.output:
                console.print(f"output: {escape(row.output)}")
            if row.error:
                console.print(
                    f"[red]{escape(row.error['type'])}[/]: {escape(row.error['message'])} "
                    f"(origin {row.error.get('origin')}, manifested {row.error.get('manifested')})"
                )
            return EXIT_OK
        rows = await store.sessions(system=args.system, status=args.status, limit=args.limit)
    if args.json:
        print(json.dumps([r.as_json() for r in rows], ensure_ascii=False))
        return EXIT_OK
    if not rows:
        console.print('no sessions yet: try playground run agents/support_router.yaml --input "..."')
        return EXIT_OK
    import datetime as dt

    table = Table(show_edge=False, header_style="bold")
    for column in ("session", "when", "system", "status", "path", "cost (USD)", "input"):
        table.add_column(column)
    for r in rows:
        when = dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            r.session_id,
            when,
            escape(r.system),
            r.status,
            " → ".join(r.path),
            f"{r.cost_usd:.6f}",
            escape(r.input[:40]),
        )
    console.print(table)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
