"""``sessions``, ``export`` and ``import``: recorded sessions, and moving them between stores."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from playground.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, db_arg, guarded, open_store


def register(commands: Any) -> None:
    sessions = commands.add_parser(
        "sessions",
        help="list recorded sessions, or show one",
        description="List recorded sessions, newest first; 'sessions show ID' prints one with its events.",
    )
    sessions.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    sessions.add_argument("session_id", nargs="?", metavar="ID", help="with show: a session id or prefix")
    sessions.add_argument("--system", metavar="NAME", help="only this system's sessions")
    sessions.add_argument(
        "--status", choices=["running", "completed", "failed", "aborted", "interrupted", "waiting_approval"]
    )
    sessions.add_argument("--limit", type=int, default=30)
    sessions.add_argument(
        "--since",
        type=parse_since,
        metavar="DATE",
        help="only sessions started at or after DATE (YYYY-MM-DD or an ISO datetime, local time)",
    )
    sessions.add_argument("--json", action="store_true", help="print JSON")
    db_arg(sessions)
    sessions.set_defaults(handler=cmd_sessions)

    export = commands.add_parser(
        "export",
        help="write a session to JSON Lines",
        description="Write session ID (or a unique prefix) as JSON Lines: a header line with the "
        "format version, the session, the agent versions it ran with, and its events. Secrets "
        "are never written. 'playground import' reads it into another store.",
    )
    export.add_argument("session_id", metavar="ID")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    db_arg(export)
    export.set_defaults(handler=cmd_export)

    import_ = commands.add_parser(
        "import",
        help="read a session written by 'playground export'",
        description="Add an exported session, its agent versions and its events to the store. "
        "A session already in the store, a file from a newer format version, and a file with "
        "any record that does not validate or is over a limit are refused, with the line; "
        "nothing is written unless all of it is. Exit 0 when imported, 1 when refused, 2 for "
        "usage.",
    )
    import_.add_argument("file", metavar="FILE", help="the export ('-' for stdin)")
    db_arg(import_)
    import_.set_defaults(handler=cmd_import)


def cmd_sessions(args: argparse.Namespace) -> int:
    return asyncio.run(_sessions(args))


async def _sessions(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from playground.cli.output import console as make_console
    from playground.cli.output import describe, print_table
    from playground.engine import events as ev

    console = make_console()
    async with open_store(args) as store:
        if args.action == "show":
            if not args.session_id:
                print("error: sessions show needs a session id", file=sys.stderr)
                return EXIT_USAGE
            row = await store.session(args.session_id)
            events, problems = await store.readable_events(row.session_id)
            for problem in problems:
                print(f"warning: session {row.session_id}: {problem}", file=sys.stderr)
            if args.json:
                print(
                    json.dumps(
                        {**row.as_json(), "events": [e.model_dump(mode="json") for e in events]},
                        ensure_ascii=False,
                    )
                )
                return EXIT_OK
            observed = f" [cyan](observed: {escape(row.observed)})[/]" if row.observed else ""
            console.print(
                f"[bold]{row.session_id}[/] {escape(row.system)}{observed} {row.status} "
                f"path: {' → '.join(row.path)}  ${row.cost_usd:.6f}  {row.latency_ms:.0f} ms"
            )
            console.print(f"input: {escape(row.input)}")
            console.print("[dim] seq step[/]")
            for event in events:
                line = describe(event)
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
            failed = next((e for e in events if isinstance(e, ev.RunFailed)), None)
            if failed is not None and failed.lineage:
                print_lineage(console, failed.lineage)
            return EXIT_FAILED if problems else EXIT_OK
        rows = await store.sessions(
            system=args.system, status=args.status, since=args.since, limit=args.limit
        )
    for unreadable in (r for r in rows if r.problem is not None):
        print(
            f"warning: session {unreadable.session_id} cannot be read: {unreadable.problem}", file=sys.stderr
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
    table.add_column("session", no_wrap=True)  # whole: it is what the other commands take
    # Scenario runs (playground test, the pytest plugin, compare over a scenario file) name
    # their scenario, and its file under it; the column is there when a listed session is one.
    scenarios = any(r.scenario is not None for r in rows)
    for column in ("when", "system", "status", *(("scenario",) if scenarios else ()), "path"):
        table.add_column(column)
    for column in ("cost (USD)", "input"):
        table.add_column(column)
    for r in rows:
        when = dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M:%S")
        scenario = escape(r.scenario or "")
        if r.scenario_file:
            scenario += f"\n[dim]{escape(r.scenario_file)}[/]"
        table.add_row(
            # An observed session says so under its id (never cut) and its framework under the system.
            r.session_id + ("\n[cyan]observed[/]" if r.observed else ""),
            when,
            escape(r.system) + (f"\n[cyan]{escape(r.observed)}[/]" if r.observed else ""),
            r.status,
            *((scenario,) if scenarios else ()),
            " → ".join(r.path),
            f"{r.cost_usd:.6f}",
            escape(r.input[:40]),
        )
    print_table(console, table)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    return guarded(_export(args))


async def _export(args: argparse.Namespace) -> int:
    from playground.errors import PlaygroundError

    async with open_store(args) as store:
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


def cmd_import(args: argparse.Namespace) -> int:
    return guarded(_import(args))


async def _import(args: argparse.Namespace) -> int:
    from playground.errors import StoreError
    from playground.store import read_export_file

    try:
        lines = read_export_file(args.file)
    except StoreError as exc:
        raise StoreError(f"{args.file}: {exc}") from None
    async with open_store(args) as store:
        try:
            row = await store.import_session(lines)
        except StoreError as exc:
            raise StoreError(f"{args.file}: {exc}") from None
        events = await store.events(row.session_id)
    print(f"imported session {row.session_id} ({row.system}, {row.status}, {len(events)} events)")
    return EXIT_OK


def parse_since(text: str) -> float:
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


def print_lineage(console: Any, lineage: dict[str, Any]) -> None:
    """The chain a failing field went through, from the request to where the run failed."""
    from rich.markup import escape

    field = escape(str(lineage.get("field")))
    console.print(f"lineage of [bold]{field}[/]: {escape(str(lineage.get('reason', '')))}")
    origin = lineage.get("origin")
    for hop in lineage.get("hops", []):
        here = (
            hop.get("agent") == origin and hop.get("kind") in ("output", "handoff") and not hop.get("present")
        )
        mark = "[red]✘[/]" if not hop.get("present") else "[green]✔[/]"
        value = f" = {escape(repr(hop.get('value')))}" if hop.get("present") else " (absent)"
        step = f" step {hop['step']}" if hop.get("step") is not None else ""
        blame = "  [red]← origin[/]" if here else ""
        who = escape(str(hop.get("agent")))
        console.print(f"  {mark} seq {hop.get('seq')}{step} {who} {hop.get('kind')}{value}{blame}")
