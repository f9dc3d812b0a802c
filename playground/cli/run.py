"""``run``, ``check`` and ``test``: run a system headless, check files, run scenario files."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from playground.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
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
    from playground.spec import System
    from playground.tracing.tracer import EventTracer


def register(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run one request through a system, headless",
        description="Run one request through a system and print its path, per-agent costs and "
        "output. Exit 0 when the run completed, 1 when it failed (or the store refused it: "
        "damaged or read-only), 3 when aborted, 2 for a bad system file or usage. Keys in the "
        "environment are scrubbed from everything printed, stored and traced.",
    )
    run.add_argument("system", metavar="SYSTEM.yaml")
    run.add_argument(
        "--input",
        "-i",
        required=True,
        metavar="TEXT",
        help="the request; '-' reads it from standard input, @FILE from a file (@@ for a leading @)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: session_id, status, path, output, cost_usd, tokens, "
        "latency_ms, per_agent, error",
    )
    tracing_args(run)
    run.add_argument("--quiet", "-q", action="store_true", help="no live step lines, just the summary")
    db_arg(run)
    run.set_defaults(handler=cmd_run)

    check = commands.add_parser(
        "check",
        help="check system files without running them",
        description="Load each system file and report the first problem "
        "of each, with file, line and field, and what it noticed in files that load (a "
        "tools file outside the system's folder). A scenario file (*.scenarios.yaml) is checked "
        "as one, with its system. Exit 0 when every file loads, 2 if any "
        "is broken (nothing else: a tools module that raises, exits or hangs at import is "
        "a broken file).",
    )
    check.add_argument("systems", nargs="+", metavar="SYSTEM.yaml")
    db_arg(check)
    check.set_defaults(handler=cmd_check)

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
    test.add_argument("--jobs", "-j", type=positive_int, default=4, metavar="N", help="scenarios run at once")
    test.add_argument(
        "--model", action="append", default=[], metavar="AGENT=MODEL", help="run AGENT on MODEL (repeatable)"
    )
    test.add_argument("--realtime", action="store_true", help="keep the scripted model's declared latency")
    tracing_args(test)
    db_arg(test)
    test.set_defaults(handler=cmd_test)


# -- run ------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    args.input = request_text(args.input)
    problem = not_text(args.input)
    if problem:
        print(f"error: --input {problem}", file=sys.stderr)
        return EXIT_USAGE
    system = load_system(args.system)
    with tracing(args) as tracer:
        return asyncio.run(_run(args, system, tracer))


def not_text(value: str) -> str | None:
    """Why a command-line argument is not text the store can keep (bytes that are not
    UTF-8 arrive as lone surrogates), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not UTF-8 text (an undecodable byte at character {exc.start + 1})"
    return None


async def _run(args: argparse.Namespace, system: System, tracer: EventTracer | None) -> int:
    from playground.cli.output import StepPrinter, print_summary, scrubbed_json
    from playground.debug import DebugSession

    live: list[Callable[[Event], None]] = [] if (args.json or args.quiet) else [StepPrinter()]
    async with open_store(args) as store:
        # The run the TUI debugs, with no one at its gates: a call that needs approval ends it.
        session = DebugSession(system, store, attended=False, live=live, tracer=tracer)
        result = await session.run(args.input)
    if args.json:
        print(scrubbed_json(result.as_json()))
    else:
        print_summary(result)
    return exit_code(result.status)


# -- check ----------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from playground.errors import SpecError

    broken = 0
    for path in args.systems:
        if is_scenario_file(path):  # `check agents/*.yaml` globs them too: check them as such
            from playground.scenarios import load_scenarios

            try:
                suite = load_scenarios(path)
            except SpecError as exc:
                broken += 1
                print(f"error: {exc}", file=sys.stderr)
            else:
                print(f"ok: {path}: {len(suite.scenarios)} scenarios of {suite.system.name}")
            continue
        try:
            system = load_system(path)
        except SpecError as exc:
            broken += 1
            print(f"error: {exc}", file=sys.stderr)
        else:
            spec = system.spec
            print(f"ok: {path}: {spec.name} ({spec.pattern}, {len(spec.agents)} agents)")
            for note in system.notes:
                print(f"note: {note}")
    return EXIT_USAGE if broken else EXIT_OK


def is_scenario_file(path: str) -> bool:
    """A scenario file: named ``*.scenarios.yaml`` (or ``.yml``), as ``playground test`` and the
    pytest plugin expect."""
    return path.endswith((".scenarios.yaml", ".scenarios.yml"))


# -- test -----------------------------------------------------------------------------------


def cmd_test(args: argparse.Namespace) -> int:
    models = {}
    for item in args.model:
        agent, sep, model = item.partition("=")
        if not sep or not agent or not model:
            print(f"error: --model takes AGENT=MODEL, not {item!r}", file=sys.stderr)
            return EXIT_USAGE
        models[agent] = model
    from playground.scenarios import load_scenarios

    suites = [load_scenarios(path) for path in args.files]
    with tracing(args) as tracer:
        return asyncio.run(_test(args, suites, models, tracer))


async def _test(
    args: argparse.Namespace, suites: list[Any], models: dict[str, str], tracer: EventTracer | None
) -> int:
    import time

    from playground.scenarios import Runner, summary_json

    started = time.perf_counter()
    async with open_store(args) as store:
        # The report needs each run's outcome, not its events (the store has them).
        runner = Runner(store=store, models=models, realtime=args.realtime, keep_events=False, tracer=tracer)
        results = await runner.run_all(suites, args.jobs)
    summary = summary_json(results, started)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        from rich.markup import escape
        from rich.table import Table

        from playground.cli.output import console as make_console
        from playground.cli.output import print_table

        console = make_console()
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
        print_table(console, table)
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
