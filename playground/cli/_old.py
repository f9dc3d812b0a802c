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
from typing import TYPE_CHECKING, Any, assert_never

if TYPE_CHECKING:
    from playground.engine.events import Event

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
    sessions.add_argument(
        "--since",
        type=_parse_since,
        metavar="DATE",
        help="only sessions started at or after DATE (YYYY-MM-DD or an ISO datetime, local time)",
    )
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
    _add_version_commands(commands)
    _add_fork_replay(commands)
    _add_test(commands)
    _add_compare(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_versions_shorthand(list(sys.argv[1:] if argv is None else argv)))
    handler = {
        None: _cmd_home,
        "run": _cmd_run,
        "sessions": _cmd_sessions,
        "check": _cmd_check,
        "tui": _cmd_tui,
        "versions": _cmd_versions,
        "rollback": _cmd_rollback,
        "snapshot": _cmd_snapshot,
        "snapshots": _cmd_snapshots,
        "export": _cmd_export,
        "import": _cmd_import,
        "fork": _cmd_fork,
        "replay": _cmd_replay,
        "test": _cmd_test,
        "compare": _cmd_compare,
        "comparisons": _cmd_comparisons,
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
    live: list[Callable[[Event], None]] = [] if (args.json or args.quiet) else [_StepPrinter()]
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

    def __call__(self, event: Event) -> None:
        line = _describe(event)
        if line:
            self.console.print(line)


def _describe(event: Event) -> str | None:
    """One line for a step worth printing; None for the events that are not one."""
    from rich.markup import escape

    from playground.engine import events as ev

    who = f"[bold]{escape(event.agent or '')}[/]"
    match event:
        case ev.AgentStarted():
            return f"{who} [dim]started ({event.reason})[/]"
        case ev.ModelResponded():
            what = ", ".join(c["name"] for c in event.tool_calls) or "reply"
            return (
                f"  {who} {escape(event.model)} -> {escape(what)} "
                f"[dim]{event.latency_ms:.0f} ms, {event.input_tokens}+{event.output_tokens} tok, "
                f"${event.cost_usd:.6f}[/]"
            )
        case ev.ModelFailed():
            return f"  {who} [red]{escape(event.error_type)}[/]: {escape(event.message)}"
        case ev.RetryScheduled():
            return f"  {who} [yellow]retry {event.attempt} in {event.delay_s:.2f} s[/]"
        case ev.FallbackUsed():
            return f"  {who} [yellow]fallback {escape(event.from_model)} -> {escape(event.to_model)}[/]"
        case ev.ToolReturned():
            result = escape((event.error or event.result)[:80])
            colour = "red" if event.error else "dim"
            return f"  {who} tool {escape(event.tool)} [{colour}]-> {result}[/]"
        case ev.HandoffDelivered():
            return (
                f"  {who} [cyan]handoff -> {escape(event.target)}[/] "
                f"{escape(json.dumps(event.payload, ensure_ascii=False)[:100])} "
                f"[dim]{event.payload_tokens} tok[/]"
            )
        case ev.PermissionDenied():
            allowed = escape(", ".join(event.allowed))
            return f"  {who} [red]permission denied[/]: {escape(event.tool)} (allowed: {allowed})"
        case ev.ValidationFailed():
            return f"  {who} [red]invalid {escape(event.what)}[/]: {escape(event.errors)}"
        case ev.LoopDetected():
            return f"  [red]loop detected[/]: {escape(event.reason)} -> {escape(event.policy)}"
        case ev.CheckpointReviewed():
            return f"  {who} reviewed {escape(event.worker)}: {event.verdict} {escape(event.feedback)}"
        case (
            ev.RunStarted()
            | ev.ModelRequested()
            | ev.TokenDelta()
            | ev.ToolCalled()
            | ev.Escalated()
            | ev.AgentFinished()
            | ev.OperatorActed()
            | ev.RunFinished()
            | ev.RunFailed()
        ):
            return None  # the summary after the run says how it ended
        case _:
            assert_never(event)


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
            console.print("[dim] seq step[/]")
            for event in events:
                line = _describe(event)
                step = f"{event.step:>4}" if event.step is not None else "    "
                console.print(
                    f"[dim]{event.seq:>4}[/] [bold]{step}[/] "
                    f"{line or escape(event.kind + ' ' + (event.agent or ''))}"
                )
            if row.output:
                console.print(f"output: {escape(row.output)}")
            if row.error:
                console.print(
                    f"[red]{escape(row.error['type'])}[/]: {escape(row.error['message'])} "
                    f"(origin {row.error.get('origin')}, manifested {row.error.get('manifested')})"
                )
            return EXIT_OK
        rows = await store.sessions(
            system=args.system, status=args.status, since=args.since, limit=args.limit
        )
    if args.json:
        print(json.dumps([r.as_json() for r in rows], ensure_ascii=False))
        return EXIT_OK
    if not rows and (args.system or args.status or args.since):
        console.print("no sessions match")
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


# -- fork and replay ------------------------------------------------------------------------


def _add_fork_replay(commands: Any) -> None:
    fork = commands.add_parser(
        "fork",
        help="re-run a session from one of its steps, live from there",
        description="Fork session ID at step STEP: every model and tool call before STEP is taken "
        "from the recording (no model call, no tool side effect); from STEP on it runs live, "
        "optionally with one agent on another version or model, or with the handoff context or "
        "tool arguments at STEP edited. 'playground sessions show ID' lists the steps. Prints what "
        "'run' prints, plus parent_session_id.",
    )
    fork.add_argument("session_id", metavar="ID")
    fork.add_argument("--at", type=int, required=True, metavar="STEP", help="the first step to run live")
    fork.add_argument("--edit", metavar="JSON", help="new handoff context or tool arguments for STEP")
    _variant_args(fork)
    replay = commands.add_parser(
        "replay",
        help="re-run a session, calling models only where it diverges",
        description="Replay session ID: each model call is answered from the recording while its "
        "request still matches (same agent, version, model and messages); from the first "
        "divergence on, calls are live. With --agent and --version/--model, only that agent and "
        "what follows it cost model calls. Prints what 'run' prints, plus parent_session_id and "
        "first_divergence.",
    )
    replay.add_argument("session_id", metavar="ID")
    replay.add_argument(
        "--current", action="store_true", help="replay onto the active versions, not the recorded ones"
    )
    replay.add_argument(
        "--force",
        action="store_true",
        help="replay even when the versions differ from the recording (they run live)",
    )
    _variant_args(replay)


def _variant_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", metavar="NAME", help="the agent to change")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", metavar="VERSION", help="run --agent on this version (an id prefix)")
    which.add_argument("--model", metavar="MODEL", help="run --agent on this model (any litellm string)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", "-q", action="store_true", help="no live step lines")
    _db_arg(parser)


def _variant(args: argparse.Namespace) -> Any:
    from playground.replay import Variant

    if (args.version or args.model) and not args.agent:
        print("error: --version and --model need --agent NAME", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    if args.agent and not (args.version or args.model):
        print("error: --agent needs --version VERSION or --model MODEL", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    return Variant(args.agent, args.version, args.model) if args.agent else None


def _cmd_fork(args: argparse.Namespace) -> int:
    edit = None
    if args.edit is not None:
        try:
            edit = json.loads(args.edit)
        except ValueError as exc:
            print(f"error: --edit is not valid JSON: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not isinstance(edit, dict):
            print("error: --edit must be a JSON object", file=sys.stderr)
            return EXIT_USAGE
    variant = _variant(args)

    async def go(store: Any, live: list[Callable[[Event], None]]) -> Any:
        from playground.replay import fork_session

        return await fork_session(store, args.session_id, args.at, variant=variant, edit=edit, live=live)

    return asyncio.run(_replayed(args, go))


def _cmd_replay(args: argparse.Namespace) -> int:
    variant = _variant(args)

    async def go(store: Any, live: list[Callable[[Event], None]]) -> Any:
        from playground.replay import replay_session

        return await replay_session(
            store, args.session_id, variant=variant, current=args.current, force=args.force, live=live
        )

    return asyncio.run(_replayed(args, go))


async def _replayed(args: argparse.Namespace, go: Any) -> int:
    from rich.console import Console

    from playground.store import Store

    live: list[Callable[[Event], None]] = [] if (args.json or args.quiet) else [_StepPrinter()]
    async with Store(_db_path(args)) as store:
        outcome = await go(store, live)
    data = outcome.as_json()
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        _print_summary(outcome.result)
        console = Console(highlight=False)
        replayed = data["replayed"]
        console.print(
            f"\nfrom session [bold]{data['parent_session_id']}[/]"
            + (f" at step {data['forked_from_step']}" if data["forked_from_step"] else "")
            + f": {replayed['model_calls']} model calls and {replayed['tool_calls']} tool calls "
            f"taken from the recording; {data['live']['model_calls']} live model calls cost "
            f"${data['live']['cost_usd']:.6f}"
        )
        divergence = data["first_divergence"]
        if divergence:
            console.print(
                f"first divergence: step {divergence.get('step')}, {divergence['agent']}: "
                f"{divergence['reason']}"
            )
        elif "first_divergence" in data and not data["forked_from_step"]:
            console.print("no divergence: every call matched the recording")
    return {"completed": EXIT_OK, "aborted": EXIT_ABORTED}.get(outcome.result.status, EXIT_FAILED)


# -- scenario tests -------------------------------------------------------------------------


def _add_test(commands: Any) -> None:
    test = commands.add_parser(
        "test",
        help="run scenario files and report pass/fail",
        description="Run the scenarios of each scenario file (see the README's 'Scenario files') "
        "against its system, each as a recorded session, and print a pass/fail table with the "
        "reason for each failure. Exit 0 when all pass, 1 when any fails, 2 for a broken file. "
        "The scripted model runs instantly unless --realtime.",
    )
    test.add_argument("files", nargs="+", metavar="FILE.scenarios.yaml")
    test.add_argument("--json", action="store_true", help="print {passed, failed, results: [...]}")
    test.add_argument("--jobs", "-j", type=int, default=4, metavar="N", help="scenarios run at once")
    test.add_argument(
        "--model", action="append", default=[], metavar="AGENT=MODEL", help="run AGENT on MODEL (repeatable)"
    )
    test.add_argument("--realtime", action="store_true", help="keep the scripted model's declared latency")
    _db_arg(test)


def _cmd_test(args: argparse.Namespace) -> int:
    models = {}
    for item in args.model:
        agent, sep, model = item.partition("=")
        if not sep or not agent or not model:
            print(f"error: --model takes AGENT=MODEL, not {item!r}", file=sys.stderr)
            return EXIT_USAGE
        models[agent] = model
    from playground.scenarios import load_scenarios

    suites = [load_scenarios(path) for path in args.files]
    return asyncio.run(_test(args, suites, models))


async def _test(args: argparse.Namespace, suites: list[Any], models: dict[str, str]) -> int:
    import time

    from playground.scenarios import Runner, summary_json
    from playground.store import Store

    started = time.perf_counter()
    async with Store(_db_path(args)) as store:
        results = await Runner(store=store, models=models, realtime=args.realtime).run_all(suites, args.jobs)
    summary = summary_json(results, started)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        console = Console(highlight=False)
        table = Table(show_edge=False, header_style="bold")
        for column in ("", "scenario", "path", "cost (USD)", "session"):
            table.add_column(column)
        for r in results:
            mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
            table.add_row(
                mark,
                escape(r.name),
                " → ".join(r.result.path),
                f"{r.result.cost_usd:.6f}",
                r.result.session_id,
            )
        console.print(table)
        for r in results:
            if not r.passed:
                console.print(
                    f"\n[red bold]FAIL[/] [bold]{escape(r.name)}[/] "
                    f"[dim]({escape(r.file)}, session {r.result.session_id})[/]"
                )
                for failure in r.failures:
                    console.print(f"  - {escape(failure)}")
        colour = "green" if not summary["failed"] else "red"
        console.print(
            f"[{colour}]{summary['passed']} passed, {summary['failed']} failed[/] "
            f"in {summary['elapsed_s']:.2f} s"
        )
    return EXIT_OK if not summary["failed"] else EXIT_FAILED


# -- versions, rollback, snapshots, export and import ---------------------------------------

_VERSIONS_ACTIONS = ("list", "diff", "show", "log")


class _UsageError(Exception):
    """A command was called wrongly: one line on stderr, exit 2."""


def _add_version_commands(commands: Any) -> None:
    versions = commands.add_parser(
        "versions",
        help="list agent versions; diff, show (as YAML) or log them",
        usage="%(prog)s SYSTEM.yaml [--agent NAME] [--json]\n"
        "       %(prog)s diff SYSTEM.yaml --agent NAME A [B]\n"
        "       %(prog)s show SYSTEM.yaml --agent NAME VERSION\n"
        "       %(prog)s log SYSTEM.yaml [--agent NAME] [--json]",
        description="Every agent spec is stored as an immutable version, named by the hash of its "
        "content. Loading SYSTEM.yaml first records a version for each agent whose content is new "
        "(and makes it active). A version may be named by a unique prefix of its id (4 characters "
        "or more), as git does, or as 'active'. 'playground versions SYSTEM.yaml' is short for "
        "'playground versions list SYSTEM.yaml'.",
    )
    _db_arg(versions)
    actions = versions.add_subparsers(dest="versions_action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        prog=f"{versions.prog} list",
        help="each version's id, agent, created time, source, note, and whether it is active",
        description="List the versions of a system's agents, newest first.",
    )
    listing.add_argument("system", metavar="SYSTEM.yaml")
    listing.add_argument("--agent", metavar="NAME", help="only this agent's versions")
    listing.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list: version_id, agent, created_at, source, note, active",
    )
    _db_arg(listing)
    diff = actions.add_parser(
        "diff",
        prog=f"{versions.prog} diff",
        help="what changed between two versions of one agent",
        description="Show what changed from version A to version B of one agent: its instructions "
        "as a text diff, then model, fallbacks, tools, handoffs, delegates, schemas, model settings, "
        "price and script. B defaults to the active version.",
    )
    diff.add_argument("system", metavar="SYSTEM.yaml")
    diff.add_argument("--agent", required=True, metavar="NAME", help="the agent")
    diff.add_argument("a", metavar="A", help="a version id or unique prefix")
    diff.add_argument("b", metavar="B", nargs="?", default="active", help="another (default: active)")
    _db_arg(diff)
    show = actions.add_parser(
        "show",
        prog=f"{versions.prog} show",
        help="print one version as YAML, to paste under agents:",
        description="Print one version of an agent as its block of a system file (defaults left "
        "out); pasted under 'agents:' it loads back to the same version.",
    )
    show.add_argument("system", metavar="SYSTEM.yaml")
    show.add_argument("--agent", required=True, metavar="NAME", help="the agent")
    show.add_argument("version", metavar="VERSION", help="a version id, a unique prefix, or 'active'")
    _db_arg(show)
    log = actions.add_parser(
        "log",
        prog=f"{versions.prog} log",
        help="the history of active-version moves (new versions, rollbacks, restores)",
        description="Every move of each agent's active pointer, newest first.",
    )
    log.add_argument("system", metavar="SYSTEM.yaml")
    log.add_argument("--agent", metavar="NAME", help="only this agent's moves")
    log.add_argument("--json", action="store_true", help="print a JSON list")
    _db_arg(log)

    rollback = commands.add_parser(
        "rollback",
        help="point one agent, or every agent of a snapshot, at an earlier version",
        usage="%(prog)s SYSTEM.yaml --agent NAME --to VERSION [--note TEXT]\n"
        "       %(prog)s SYSTEM.yaml --snapshot NAME",
        description="Move an agent's active pointer to another stored version, or restore a "
        "snapshot (every agent in one step). Runs use the active versions; nothing is deleted, and "
        "loading the unchanged file again does not undo it. See 'playground versions log'.",
    )
    rollback.add_argument("system", metavar="SYSTEM.yaml")
    rollback.add_argument("--agent", metavar="NAME", help="the agent to roll back")
    rollback.add_argument("--to", metavar="VERSION", help="a version id or unique prefix")
    rollback.add_argument("--snapshot", metavar="NAME", help="restore this snapshot instead")
    rollback.add_argument("--note", default="", metavar="TEXT", help="why (kept in the version log)")
    _db_arg(rollback)

    snapshot = commands.add_parser(
        "snapshot",
        help="name the active version of every agent of a system",
        description="Record the active version of each agent under NAME; "
        "'playground rollback SYSTEM.yaml --snapshot NAME' restores them all.",
    )
    snapshot.add_argument("system", metavar="SYSTEM.yaml")
    snapshot.add_argument("--name", required=True, metavar="NAME", help="the snapshot's name")
    snapshot.add_argument("--replace", action="store_true", help="overwrite a snapshot of that name")
    _db_arg(snapshot)

    snapshots = commands.add_parser(
        "snapshots",
        help="list a system's snapshots",
        description="List a system's snapshots, newest first, with the version of each agent.",
    )
    snapshots.add_argument("system", metavar="SYSTEM.yaml")
    snapshots.add_argument(
        "--json", action="store_true", help="print a JSON list: name, versions, created_at"
    )
    _db_arg(snapshots)

    export = commands.add_parser(
        "export",
        help="write a session to JSON Lines",
        description="Write session ID (or a unique prefix) as JSON Lines: a header line with the "
        "format version, the session, the agent versions it ran with, and its events. Secrets "
        "are never written. 'playground import' reads it into another store.",
    )
    export.add_argument("session_id", metavar="ID")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    _db_arg(export)

    import_ = commands.add_parser(
        "import",
        help="read a session written by 'playground export'",
        description="Add an exported session, its agent versions and its events to the store. "
        "A session already in the store, or a file from a newer format version, is refused.",
    )
    import_.add_argument("file", metavar="FILE", help="the export ('-' for stdin)")
    _db_arg(import_)


def _versions_shorthand(argv: list[str]) -> list[str]:
    """``playground versions SYSTEM.yaml ...`` means ``playground versions list SYSTEM.yaml ...``."""
    with_value = {"--db", "--agent"}

    def first_word(start: int) -> int | None:
        i = start
        while i < len(argv):
            if argv[i] in with_value:
                i += 2
            elif argv[i].startswith("-"):
                i += 1
            else:
                return i
        return None

    i = first_word(0)
    if i is None or argv[i] != "versions":
        return argv
    j = first_word(i + 1)
    if j is None or argv[j] in _VERSIONS_ACTIONS:
        return argv
    return [*argv[: i + 1], "list", *argv[i + 1 :]]


def _parse_since(text: str) -> float:
    """``YYYY-MM-DD`` (local midnight) or an ISO datetime (local time unless it names a zone)."""
    import datetime as dt

    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime(day.year, day.month, day.day).timestamp()
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: use YYYY-MM-DD or an ISO datetime such as 2025-01-31T14:00"
        ) from None


def _guarded(run: Any) -> int:
    try:
        return int(asyncio.run(run))
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _when(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


async def _record(store: Any, system: Any) -> None:
    """Record the loaded file's agent versions, as a run would (new ones become active)."""
    from playground.spec.identity import canonical_spec

    specs = {name: canonical_spec(agent) for name, agent in system.spec.agents.items()}
    await store.record_versions(system.name, specs)


def _known_agent(system: Any, agent: str | None) -> None:
    if agent is not None and agent not in system.spec.agents:
        raise _UsageError(
            f"{agent!r} is not an agent of {system.name!r}; its agents: {', '.join(system.spec.agents)}"
        )


def _cmd_versions(args: argparse.Namespace) -> int:
    from playground.spec import load_system

    system = load_system(args.system)  # a broken file exits 2 before the store opens
    return _guarded(_versions(args, system))


async def _versions(args: argparse.Namespace, system: Any) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from playground.spec.models import AgentSpec
    from playground.store import Store
    from playground.versions import NO_DIFFERENCES, diff_specs, spec_to_yaml

    console = Console(highlight=False)
    action = args.versions_action
    async with Store(_db_path(args)) as store:
        await _record(store, system)
        if action in ("diff", "show"):
            _known_agent(system, args.agent)
        if action == "show":
            vid = await store.resolve_version(system.name, args.agent, args.version)
            spec = AgentSpec.model_validate_json(await store.version_spec(system.name, args.agent, vid))
            row = next(r for r in await store.versions(system.name, args.agent) if r.version_id == vid)
            print(
                f"# {args.agent} version {vid} ({row.source}, {_when(row.created_at)}"
                f"{', active' if row.active else ''})"
            )
            print(spec_to_yaml(spec), end="")
            return EXIT_OK
        if action == "diff":
            a = await store.resolve_version(system.name, args.agent, args.a)
            b = await store.resolve_version(system.name, args.agent, args.b)
            spec_a = AgentSpec.model_validate_json(await store.version_spec(system.name, args.agent, a))
            spec_b = AgentSpec.model_validate_json(await store.version_spec(system.name, args.agent, b))
            text = diff_specs(spec_a, spec_b, a_label=f"{args.agent} {a}", b_label=f"{args.agent} {b}")
            console.print(f"[bold]{escape(args.agent)}[/] {a} -> {b}")
            for line in text.splitlines():
                colour = (
                    "bold"
                    if line.startswith(("---", "+++")) or line == NO_DIFFERENCES
                    else "green"
                    if line.startswith("+")
                    else "red"
                    if line.startswith("-")
                    else "cyan"
                    if line.startswith("@@")
                    else ""
                )
                console.print(f"[{colour}]{escape(line)}[/]" if colour else escape(line), soft_wrap=True)
            return EXIT_OK
        if action == "log":
            entries = await store.version_log(system.name, args.agent)
            if args.agent is not None and not entries:
                _known_agent(system, args.agent)
            if args.json:
                print(json.dumps([e.as_json() for e in entries], ensure_ascii=False))
                return EXIT_OK
            table = Table(show_edge=False, header_style="bold", title=f"{system.name}: version log")
            for column in ("when", "agent", "action", "from", "to"):
                table.add_column(column, no_wrap=True)
            table.add_column("note")
            for e in entries:
                table.add_row(
                    _when(e.created_at),
                    escape(e.agent),
                    e.action,
                    e.from_version or "-",
                    e.to_version,
                    escape(e.note),
                )
            console.print(table)
            return EXIT_OK
        rows = await store.versions(system.name, args.agent)
        if args.agent is not None and not rows:
            _known_agent(system, args.agent)
    if args.json:
        print(json.dumps([r.as_json() for r in rows], ensure_ascii=False))
        return EXIT_OK
    agents = {r.agent for r in rows}
    table = Table(
        show_edge=False,
        header_style="bold",
        title=f"{system.name}: {_count(len(rows), 'version')} of {_count(len(agents), 'agent')} (● active)",
    )
    for column in ("", "version", "agent", "created", "source"):
        table.add_column(column, no_wrap=True)
    table.add_column("note")
    for r in rows:
        table.add_row(
            "[green]●[/]" if r.active else "",
            f"[bold]{r.version_id}[/]" if r.active else r.version_id,
            escape(r.agent),
            _when(r.created_at),
            r.source,
            escape(r.note),
        )
    console.print(table)
    return EXIT_OK


def _cmd_rollback(args: argparse.Namespace) -> int:
    from playground.spec import load_system

    if args.snapshot is not None and (args.agent is not None or args.to is not None):
        print("error: give either --snapshot NAME or --agent NAME --to VERSION", file=sys.stderr)
        return EXIT_USAGE
    if args.snapshot is None and (args.agent is None or args.to is None):
        print("error: rollback needs --agent NAME --to VERSION, or --snapshot NAME", file=sys.stderr)
        return EXIT_USAGE
    system = load_system(args.system)
    return _guarded(_rollback(args, system))


async def _rollback(args: argparse.Namespace, system: Any) -> int:
    from rich.console import Console
    from rich.markup import escape

    from playground.store import Store

    console = Console(highlight=False)
    async with Store(_db_path(args)) as store:
        await _record(store, system)
        if args.snapshot is not None:
            changes = await store.restore_snapshot(system.name, args.snapshot)
            if not changes:
                console.print(f"every agent is already on snapshot {escape(args.snapshot)!r}")
                return EXIT_OK
            console.print(f"restored snapshot [bold]{escape(args.snapshot)}[/] of {escape(system.name)}:")
            for agent, (was, now) in changes.items():
                console.print(f"  {escape(agent)}: {was or '-'} -> [bold]{now}[/]")
            return EXIT_OK
        _known_agent(system, args.agent)
        was, now = await store.rollback(system.name, args.agent, args.to, note=args.note)
    if was == now:
        console.print(f"{escape(args.agent)} is already on {now}")
    else:
        console.print(f"{escape(args.agent)}: {was or '-'} -> [bold]{now}[/] (active; the next run uses it)")
    return EXIT_OK


def _cmd_snapshot(args: argparse.Namespace) -> int:
    from playground.spec import load_system

    system = load_system(args.system)
    return _guarded(_snapshot(args, system))


async def _snapshot(args: argparse.Namespace, system: Any) -> int:
    from rich.console import Console
    from rich.markup import escape

    from playground.store import Store

    console = Console(highlight=False)
    async with Store(_db_path(args)) as store:
        await _record(store, system)
        versions = await store.snapshot(system.name, args.name, replace=args.replace)
    console.print(f"snapshot [bold]{escape(args.name)}[/] of {escape(system.name)}:")
    for agent, vid in versions.items():
        console.print(f"  {escape(agent)}: {vid}")
    return EXIT_OK


def _cmd_snapshots(args: argparse.Namespace) -> int:
    from playground.spec import load_system

    system = load_system(args.system)
    return _guarded(_snapshots(args, system))


async def _snapshots(args: argparse.Namespace, system: Any) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from playground.store import Store

    console = Console(highlight=False)
    async with Store(_db_path(args)) as store:
        await _record(store, system)
        rows = await store.snapshots(system.name)
        active = await store.active_versions(system.name)
    if args.json:
        print(json.dumps([r.as_json() for r in rows], ensure_ascii=False))
        return EXIT_OK
    if not rows:
        console.print(f"{escape(system.name)} has no snapshots: take one with playground snapshot")
        return EXIT_OK
    table = Table(show_edge=False, header_style="bold", title=f"{system.name}: snapshots (● is active now)")
    for column in ("", "name", "created"):
        table.add_column(column, no_wrap=True)
    table.add_column("versions")
    for r in rows:
        current = all(active.get(a) == v for a, v in r.versions.items())
        table.add_row(
            "[green]●[/]" if current else "",
            escape(r.name),
            _when(r.created_at),
            escape(", ".join(f"{a} {v}" for a, v in r.versions.items())),
        )
    console.print(table)
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    return _guarded(_export(args))


async def _export(args: argparse.Namespace) -> int:
    from playground.errors import PlaygroundError
    from playground.store import Store

    async with Store(_db_path(args)) as store:
        lines = await store.export_session(args.session_id)
    text = "".join(line + "\n" for line in lines)
    if not args.output:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PlaygroundError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
    header = json.loads(lines[0])
    print(
        f"exported session {header['session_id']} ({header['events']} events, "
        f"{header['agent_versions']} agent versions) to {args.output}",
        file=sys.stderr,
    )
    return EXIT_OK


def _cmd_import(args: argparse.Namespace) -> int:
    return _guarded(_import(args))


async def _import(args: argparse.Namespace) -> int:
    from playground.errors import PlaygroundError, StoreError
    from playground.store import Store

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaygroundError(f"cannot read {args.file!r}: {getattr(exc, 'strerror', None) or exc}") from None
    async with Store(_db_path(args)) as store:
        try:
            row = await store.import_session(text.splitlines())
        except StoreError as exc:
            raise StoreError(f"{args.file}: {exc}") from None
        events = await store.events(row.session_id)
    print(f"imported session {row.session_id} ({row.system}, {row.status}, {len(events)} events)")
    return EXIT_OK


# -- compare --------------------------------------------------------------------------------


def _add_compare(commands: Any) -> None:
    compare = commands.add_parser(
        "compare",
        help="run two versions or models of one agent side by side on the same inputs",
        description="Run the same inputs through two variants of one agent, concurrently, and "
        "report per input both handling paths, whether they differ, both outputs with a word "
        "diff, tokens, cost and latency per agent with the deltas, and new validation failures, "
        "loops or fallbacks; over a scenario file also pass rates and totals. --a and --b each "
        "name a version of the agent (an id prefix) or a model string. With --session, the "
        "unchanged agents are replayed from that recording. The report is stored: see "
        "'playground comparisons'.",
    )
    compare.add_argument("system", metavar="SYSTEM.yaml")
    compare.add_argument("--agent", required=True, metavar="NAME")
    compare.add_argument("--a", required=True, metavar="VERSION|MODEL", dest="side_a")
    compare.add_argument("--b", required=True, metavar="VERSION|MODEL", dest="side_b")
    source = compare.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", "-i", metavar="TEXT")
    source.add_argument("--scenarios", metavar="FILE")
    source.add_argument("--session", metavar="ID")
    compare.add_argument("--json", action="store_true", help="print the report as JSON")
    compare.add_argument("--jobs", "-j", type=int, default=4, metavar="N")
    compare.add_argument("--realtime", action="store_true", help="keep the scripted model's latency")
    _db_arg(compare)
    listing = commands.add_parser(
        "comparisons",
        help="list stored comparisons, or show one",
        description="List stored comparisons, newest first; 'comparisons show ID' prints one again.",
    )
    listing.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    listing.add_argument("comparison_id", nargs="?", metavar="ID")
    listing.add_argument("--system", metavar="NAME")
    listing.add_argument("--json", action="store_true")
    _db_arg(listing)


def _cmd_compare(args: argparse.Namespace) -> int:
    from playground.spec import load_system

    system = load_system(args.system)

    async def go() -> dict[str, Any]:
        from playground.compare import compare
        from playground.store import Store

        async with Store(_db_path(args)) as store:
            return await compare(
                store,
                system,
                args.agent,
                args.side_a,
                args.side_b,
                request=args.input,
                scenarios=args.scenarios,
                session_id=args.session,
                jobs=args.jobs,
                realtime=args.realtime,
            )

    report = asyncio.run(go())
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_comparison(report)
    return EXIT_OK


def _cmd_comparisons(args: argparse.Namespace) -> int:
    async def go() -> Any:
        from playground.store import Store

        async with Store(_db_path(args)) as store:
            if args.action == "show":
                if not args.comparison_id:
                    raise SystemExit("error: comparisons show needs an id")
                return await store.comparison(args.comparison_id)
            return await store.comparisons(args.system)

    data = asyncio.run(go())
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    elif args.action == "show":
        _print_comparison(data)
    else:
        import datetime as dt

        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(show_edge=False, header_style="bold")
        for column in ("comparison", "when", "system", "agent", "a", "b", "inputs", "path changed"):
            table.add_column(column)
        for row in data:
            when = dt.datetime.fromtimestamp(row["created_at"]).strftime("%Y-%m-%d %H:%M")
            summary = row["summary"]
            table.add_row(
                row["comparison_id"],
                when,
                escape(row["system"]),
                escape(row["agent"]),
                escape(row["a"]),
                escape(row["b"]),
                str(summary["inputs"]),
                str(len(summary["path_changed"])),
            )
        Console(highlight=False).print(table if data else "no comparisons yet")
    return EXIT_OK


def _print_comparison(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    a, b = report["a"], report["b"]
    console.print(
        f"[bold]{escape(report['system'])}[/]: [bold]{escape(report['agent'])}[/] "
        f"A = {escape(a['label'])}{' (version)' if a['version'] else ' (model)'}  vs  "
        f"B = {escape(b['label'])}{' (version)' if b['version'] else ' (model)'}   "
        f"[dim]comparison {report.get('comparison_id', '')}[/]"
    )
    for item in report["inputs"]:
        ia, ib = item["a"], item["b"]
        changed = "[yellow]path changed[/]" if item["path_changed"] else "[dim]same path[/]"
        console.print(f"\n[bold]{escape(item['name'])}[/]  {changed}")
        for side, data in (("A", ia), ("B", ib)):
            verdict = ""
            if "passed" in data:
                verdict = " [green]pass[/]" if data["passed"] else " [red]fail[/]"
            console.print(
                f"  {side}: {' → '.join(data['path'])} [dim]{data['status']}, ${data['cost_usd']:.6f}, "
                f"{data['tokens']['input'] + data['tokens']['output']} tok, {data['latency_ms']:.0f} ms, "
                f"session {data['session_id']}[/]{verdict}"
            )
        if item["output_changed"]:
            pieces = []
            for piece in item["output_diff"]:
                text = escape(piece["text"])
                pieces.append(
                    {"equal": text, "delete": f"[red strike]{text}[/]", "insert": f"[green]{text}[/]"}[
                        piece["op"]
                    ]
                )
            console.print("  output: " + " ".join(pieces))
        else:
            console.print(f"  output (same): {escape(ia['output'][:200])}")
        table = Table(show_edge=False, header_style="bold", box=None, padding=(0, 1))
        for column in ("  agent", "cost A", "cost B", "Δ cost", "Δ tokens", "Δ latency ms"):
            table.add_column(column, justify="left" if column == "  agent" else "right")
        for name, delta in item["deltas"].items():
            cost_a = ia["per_agent"].get(name, {}).get("cost_usd", 0)
            cost_b = ib["per_agent"].get(name, {}).get("cost_usd", 0)
            table.add_row(
                f"  {escape(name)}",
                f"{cost_a:.6f}",
                f"{cost_b:.6f}",
                f"{delta['cost_usd']:+.6f}",
                f"{delta['tokens']:+d}",
                f"{delta['latency_ms']:+.0f}",
            )
        console.print(table)
        if item["new_in_b"]:
            listed = ", ".join(f"{k} x{v}" for k, v in item["new_in_b"].items())
            console.print(f"  [red]new in B:[/] {escape(listed)}")
    summary = report["summary"]
    console.print(
        f"\n[bold]summary[/]: {summary['inputs']} inputs, {len(summary['path_changed'])} changed path, "
        f"{summary['output_changed']} changed output"
    )
    for side in ("a", "b"):
        s = summary[side]
        rate = f", {s['passed']}/{summary['inputs']} passed" if "passed" in s else ""
        console.print(f"  {side.upper()}: ${s['cost_usd']:.6f}, {s['latency_ms']:.0f} ms{rate}")
    if summary["path_changed"]:
        console.print("  path changed for: " + ", ".join(escape(n) for n in summary["path_changed"]))


if __name__ == "__main__":
    raise SystemExit(main())
