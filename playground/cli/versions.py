"""``versions``, ``rollback``, ``snapshot`` and ``snapshots``: agent versions and moving between them."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from playground.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    count,
    db_arg,
    guarded,
    known_agent,
    load_system,
    open_store,
    record_versions,
    refuse_misfits,
    when,
)

if TYPE_CHECKING:
    from playground.spec import System

_VERSIONS_ACTIONS = ("list", "diff", "show", "log")


def register(commands: Any) -> None:
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
    db_arg(versions)
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
    db_arg(listing)
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
    db_arg(diff)
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
    db_arg(show)
    log = actions.add_parser(
        "log",
        prog=f"{versions.prog} log",
        help="the history of active-version moves (new versions, rollbacks, restores)",
        description="Every move of each agent's active pointer, newest first.",
    )
    log.add_argument("system", metavar="SYSTEM.yaml")
    log.add_argument("--agent", metavar="NAME", help="only this agent's moves")
    log.add_argument("--json", action="store_true", help="print a JSON list")
    db_arg(log)
    versions.set_defaults(handler=cmd_versions)

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
    db_arg(rollback)
    rollback.set_defaults(handler=cmd_rollback)

    snapshot = commands.add_parser(
        "snapshot",
        help="name the active version of every agent of a system",
        description="Record the active version of each agent under NAME; "
        "'playground rollback SYSTEM.yaml --snapshot NAME' restores them all.",
    )
    snapshot.add_argument("system", metavar="SYSTEM.yaml")
    snapshot.add_argument("--name", required=True, metavar="NAME", help="the snapshot's name")
    snapshot.add_argument("--replace", action="store_true", help="overwrite a snapshot of that name")
    db_arg(snapshot)
    snapshot.set_defaults(handler=cmd_snapshot)

    snapshots = commands.add_parser(
        "snapshots",
        help="list a system's snapshots",
        description="List a system's snapshots, newest first, with the version of each agent.",
    )
    snapshots.add_argument("system", metavar="SYSTEM.yaml")
    snapshots.add_argument(
        "--json", action="store_true", help="print a JSON list: name, versions, created_at"
    )
    db_arg(snapshots)
    snapshots.set_defaults(handler=cmd_snapshots)


def versions_shorthand(argv: list[str]) -> list[str]:
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


def cmd_versions(args: argparse.Namespace) -> int:
    system = load_system(args.system)  # a broken file exits 2 before the store opens
    return guarded(_versions(args, system))


async def _versions(args: argparse.Namespace, system: System) -> int:
    from rich.markup import escape
    from rich.table import Table

    from playground.cli.output import console as make_console
    from playground.cli.output import print_table
    from playground.spec.models import AgentSpec
    from playground.versions import NO_DIFFERENCES, diff_specs, spec_to_yaml

    console = make_console()
    action = args.versions_action
    async with open_store(args) as store:
        await record_versions(store, system)
        if action in ("diff", "show"):
            known_agent(system, args.agent)
        if action == "show":
            vid = await store.resolve_version(system.name, args.agent, args.version)
            spec = AgentSpec.model_validate_json(await store.version_spec(system.name, args.agent, vid))
            row = next(r for r in await store.versions(system.name, args.agent) if r.version_id == vid)
            print(
                f"# {args.agent} version {vid} ({row.source}, {when(row.created_at)}"
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
                known_agent(system, args.agent)
            if args.json:
                print(json.dumps([e.as_json() for e in entries], ensure_ascii=False))
                return EXIT_OK
            table = Table(show_edge=False, header_style="bold", title=f"{system.name}: version log")
            for column in ("when", "agent", "action", "from", "to"):
                table.add_column(column, no_wrap=True)
            table.add_column("note")
            for e in entries:
                table.add_row(
                    when(e.created_at),
                    escape(e.agent),
                    e.action,
                    e.from_version or "-",
                    e.to_version,
                    escape(e.note),
                )
            print_table(console, table)
            return EXIT_OK
        rows = await store.versions(system.name, args.agent)
        if args.agent is not None and not rows:
            known_agent(system, args.agent)
    if args.json:
        print(json.dumps([r.as_json() for r in rows], ensure_ascii=False))
        return EXIT_OK
    agents = {r.agent for r in rows}
    table = Table(
        show_edge=False,
        header_style="bold",
        title=f"{system.name}: {count(len(rows), 'version')} of {count(len(agents), 'agent')} (● active)",
    )
    for column in ("", "version", "agent", "created", "source"):
        table.add_column(column, no_wrap=True)
    table.add_column("note")
    for r in rows:
        table.add_row(
            "[green]●[/]" if r.active else "",
            f"[bold]{r.version_id}[/]" if r.active else r.version_id,
            escape(r.agent),
            when(r.created_at),
            r.source,
            escape(r.note),
        )
    print_table(console, table)
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    if args.snapshot is not None and (args.agent is not None or args.to is not None):
        print("error: give either --snapshot NAME or --agent NAME --to VERSION", file=sys.stderr)
        return EXIT_USAGE
    if args.snapshot is None and (args.agent is None or args.to is None):
        print("error: rollback needs --agent NAME --to VERSION, or --snapshot NAME", file=sys.stderr)
        return EXIT_USAGE
    system = load_system(args.system)
    return guarded(_rollback(args, system))


async def _rollback(args: argparse.Namespace, system: System) -> int:
    from rich.markup import escape

    from playground.cli.output import console as make_console

    console = make_console()
    async with open_store(args) as store:
        await record_versions(store, system)
        if args.snapshot is not None:
            for snapshot in await store.snapshots(system.name):
                if snapshot.name == args.snapshot:
                    await refuse_misfits(store, system, snapshot.versions)
            changes = await store.restore_snapshot(system.name, args.snapshot)
            if not changes:
                console.print(f"every agent is already on snapshot {escape(args.snapshot)!r}")
                return EXIT_OK
            console.print(f"restored snapshot [bold]{escape(args.snapshot)}[/] of {escape(system.name)}:")
            for agent, (was, now) in changes.items():
                console.print(f"  {escape(agent)}: {was or '-'} -> [bold]{now}[/]")
            return EXIT_OK
        known_agent(system, args.agent)
        target = await store.resolve_version(system.name, args.agent, args.to)
        await refuse_misfits(store, system, {args.agent: target})
        was, now = await store.rollback(system.name, args.agent, target, note=args.note)
    if was == now:
        console.print(f"{escape(args.agent)} is already on {now}")
    else:
        console.print(f"{escape(args.agent)}: {was or '-'} -> [bold]{now}[/] (active; the next run uses it)")
    return EXIT_OK


def cmd_snapshot(args: argparse.Namespace) -> int:
    system = load_system(args.system)
    return guarded(_snapshot(args, system))


async def _snapshot(args: argparse.Namespace, system: System) -> int:
    from rich.markup import escape

    from playground.cli.output import console as make_console

    console = make_console()
    async with open_store(args) as store:
        await record_versions(store, system)
        versions = await store.snapshot(system.name, args.name, replace=args.replace)
    console.print(f"snapshot [bold]{escape(args.name)}[/] of {escape(system.name)}:")
    for agent, vid in versions.items():
        console.print(f"  {escape(agent)}: {vid}")
    return EXIT_OK


def cmd_snapshots(args: argparse.Namespace) -> int:
    system = load_system(args.system)
    return guarded(_snapshots(args, system))


async def _snapshots(args: argparse.Namespace, system: System) -> int:
    from rich.markup import escape
    from rich.table import Table

    from playground.cli.output import console as make_console
    from playground.cli.output import print_table

    console = make_console()
    async with open_store(args) as store:
        await record_versions(store, system)
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
            when(r.created_at),
            escape(", ".join(f"{a} {v}" for a, v in r.versions.items())),
        )
    print_table(console, table)
    return EXIT_OK
