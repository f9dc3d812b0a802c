"""``fork``, ``replay``, ``compare`` and ``comparisons``: re-running recorded sessions and variants."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from playground.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    db_arg,
    exit_code,
    load_system,
    open_store,
    positive_int,
    request_text,
    tracing,
    tracing_args,
)

if TYPE_CHECKING:
    from playground.engine.events import Event


def _json_line(data: Any) -> str:
    """``--json`` output: one line, secrets scrubbed."""
    from playground.cli.output import scrubbed_json

    return scrubbed_json(data)


def register(commands: Any) -> None:
    _register_fork_replay(commands)
    _register_compare(commands)


def _register_fork_replay(commands: Any) -> None:
    fork = commands.add_parser(
        "fork",
        help="re-run a session from one of its steps, live from there",
        description="Fork session ID at step STEP: every model and tool call before STEP is taken "
        "from the recording (no model call, no tool side effect); from STEP on it runs live, "
        "optionally with one agent on another version or model, or with the handoff context, "
        "stage output or tool arguments at STEP edited. A pipeline's stage transition is a step of "
        "its own (the next stage's 'started' line carries it): forked there, the stages before it "
        "are answered from the recording and their output is delivered live. "
        "'playground sessions show ID' lists the steps. Prints what "
        "'run' prints, plus parent_session_id.",
    )
    fork.add_argument("session_id", metavar="ID")
    fork.add_argument("--at", type=int, required=True, metavar="STEP", help="the first step to run live")
    fork.add_argument(
        "--edit",
        metavar="JSON",
        help="new handoff context, stage output (a JSON object) or tool arguments for STEP",
    )
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
        help="with --current: replay even when the active versions differ from the recording "
        "(those agents run live)",
    )
    _variant_args(replay)
    fork.set_defaults(handler=cmd_fork)
    replay.set_defaults(handler=cmd_replay)


def _variant_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", metavar="NAME", help="the agent to change")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", metavar="VERSION", help="run --agent on this version (an id prefix)")
    which.add_argument("--model", metavar="MODEL", help="run --agent on this model (any litellm string)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", "-q", action="store_true", help="no live step lines")
    tracing_args(parser)
    db_arg(parser)


def _variant(args: argparse.Namespace) -> Any:
    from playground.replay import Variant

    if (args.version or args.model) and not args.agent:
        print("error: --version and --model need --agent NAME", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    if args.agent and not (args.version or args.model):
        print("error: --agent needs --version VERSION or --model MODEL", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    return Variant(args.agent, args.version, args.model) if args.agent else None


def cmd_fork(args: argparse.Namespace) -> int:
    from playground.bounds import LimitExceeded, loads_bounded

    edit = None
    if args.edit is not None:
        try:
            edit = loads_bounded(args.edit, "--edit")
        except LimitExceeded as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except ValueError as exc:
            print(f"error: --edit is not valid JSON: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not isinstance(edit, dict):
            print("error: --edit must be a JSON object", file=sys.stderr)
            return EXIT_USAGE
    variant = _variant(args)

    async def go(store: Any, live: list[Callable[[Event], None]]) -> Any:
        from playground.replay import fork_session

        return await fork_session(
            store, args.session_id, args.at, variant=variant, edit=edit, live=live, tracer=tracer
        )

    with tracing(args) as tracer:
        return asyncio.run(_replayed(args, go))


def cmd_replay(args: argparse.Namespace) -> int:
    if args.force and not args.current:
        raise UsageError(
            "--force goes with --current (replay onto the active versions even where they differ "
            "from the recording); without --current the recorded versions are replayed"
        )
    variant = _variant(args)

    async def go(store: Any, live: list[Callable[[Event], None]]) -> Any:
        from playground.replay import replay_session

        return await replay_session(
            store,
            args.session_id,
            variant=variant,
            current=args.current,
            force=args.force,
            live=live,
            tracer=tracer,
        )

    with tracing(args) as tracer:
        return asyncio.run(_replayed(args, go))


async def _replayed(args: argparse.Namespace, go: Any) -> int:
    from playground.cli.output import StepPrinter, print_summary
    from playground.cli.output import console as make_console

    live: list[Callable[[Event], None]] = [] if (args.json or args.quiet) else [StepPrinter()]
    async with open_store(args) as store:
        outcome = await go(store, live)
    data = outcome.as_json()
    if args.json:
        print(_json_line(data))
    else:
        print_summary(outcome.result)
        console = make_console()
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
            step = divergence.get("step")
            at = f"step {step}, " if step is not None else ""
            console.print(f"first divergence: {at}{divergence['agent']}: {divergence['reason']}")
        elif "first_divergence" in data and not data["forked_from_step"]:
            console.print("no divergence: every call matched the recording")
    return exit_code(outcome.result.status)


def _register_compare(commands: Any) -> None:
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
    compare.add_argument("--jobs", "-j", type=positive_int, default=4, metavar="N")
    compare.add_argument("--realtime", action="store_true", help="keep the scripted model's latency")
    tracing_args(compare)
    db_arg(compare)
    compare.set_defaults(handler=cmd_compare)
    listing = commands.add_parser(
        "comparisons",
        help="list stored comparisons, or show one",
        description="List stored comparisons, newest first; 'comparisons show ID' prints one again.",
    )
    listing.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    listing.add_argument("comparison_id", nargs="?", metavar="ID")
    listing.add_argument("--system", metavar="NAME")
    listing.add_argument("--json", action="store_true")
    db_arg(listing)
    listing.set_defaults(handler=cmd_comparisons)


def cmd_compare(args: argparse.Namespace) -> int:
    if args.side_a == args.side_b:
        raise UsageError(f"--a and --b are both {args.side_a!r}: compare two different versions or models")
    if args.input is not None:
        args.input = request_text(args.input)
    system = load_system(args.system)

    async def go() -> dict[str, Any]:
        from playground.compare import compare

        async with open_store(args) as store:
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
                tracer=tracer,
            )

    with tracing(args) as tracer:
        report = asyncio.run(go())
    if args.json:
        print(_json_line(report))
    else:
        _print_comparison(report)
    return EXIT_OK


def cmd_comparisons(args: argparse.Namespace) -> int:
    async def go() -> Any:
        async with open_store(args) as store:
            if args.action == "show":
                if not args.comparison_id:
                    raise SystemExit("error: comparisons show needs an id")
                return await store.comparison(args.comparison_id)
            return await store.comparisons(args.system)

    data = asyncio.run(go())
    if args.json:
        print(_json_line(data))
    elif args.action == "show":
        _print_comparison(data)
    else:
        import datetime as dt

        from rich.markup import escape
        from rich.table import Table

        from playground.cli.output import console as make_console
        from playground.cli.output import print_table

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
        print_table(make_console(), table) if data else make_console().print("no comparisons yet")
    return EXIT_OK


def _print_comparison(report: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from playground.cli.output import console as make_console
    from playground.cli.output import print_table

    console = make_console()
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
        print_table(console, table)
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
