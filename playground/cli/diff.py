"""``diff``: two recorded sessions side by side, without running anything again."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from playground.cli.common import EXIT_OK, db_arg, guarded, open_store

if TYPE_CHECKING:
    from playground.diff import SessionDiff


def register(commands: Any) -> None:
    diff = commands.add_parser(
        "diff",
        help="compare two recorded sessions",
        description="Compare sessions A and B (ids or unique prefixes) as recorded, of any kind (run, "
        "fork, replay, observed): their paths, each agent's output, calls, tokens, cost and latency "
        "side by side, the totals with B's difference from A, and the first step where they part "
        "ways. Nothing is run again. --json prints one object: a, b, same_path, identical, "
        "first_difference, delta, summary. Exit 0 when both sessions were compared.",
    )
    diff.add_argument("a", metavar="A", help="a session id or prefix")
    diff.add_argument("b", metavar="B", help="another session id or prefix")
    diff.add_argument("--json", action="store_true", help="print JSON")
    db_arg(diff)
    diff.set_defaults(handler=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    return guarded(_diff(args))


async def _diff(args: argparse.Namespace) -> int:
    from playground.diff import diff_sessions

    async with open_store(args) as store:
        a = await store.session(args.a)
        b = await store.session(args.b)
        result = diff_sessions(a, await store.events(a.session_id), b, await store.events(b.session_id))
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        print_diff(result)
    return EXIT_OK


def print_diff(result: SessionDiff) -> None:
    from rich.console import Console
    from rich.markup import escape

    from playground.diff import numbers_table

    console = Console(highlight=False)
    for label, side in (("A", result.a), ("B", result.b)):
        row = side.session
        kind = f"observed: {side.observed}" if side.observed else "run"
        colour = {"completed": "green", "failed": "red"}.get(row.status, "yellow")
        console.print(
            f"[bold]{label}[/] {row.session_id}  {escape(row.system)} ({escape(kind)})  "
            f"[{colour}]{row.status}[/]"
        )
        console.print(f"  path: {escape(' → '.join(row.path) or '-')}")
    same = "[green]same path[/]" if result.same_path else "[yellow]different paths[/]"
    console.print(same)
    table = numbers_table(result)
    console.print(table)
    delta = result.as_json()["delta"]
    console.print(
        f"B - A: cost {delta['cost_usd']:+.6f} USD, tokens {delta['input_tokens']:+d} in / "
        f"{delta['output_tokens']:+d} out, latency {delta['latency_ms']:+.0f} ms"
    )
    outputs = [n for n in result.agents if (result.a.agents.get(n) or result.b.agents.get(n))]
    if outputs:
        console.print("[bold]outputs[/]")
        for name in outputs:
            for label, side in (("A", result.a), ("B", result.b)):
                agent = side.agents.get(name)
                text = " ".join((agent.output if agent else "").split())
                if text:
                    console.print(f"  {escape(name)} {label}: {escape(text[:160])}")
    colour = "green" if result.identical else "yellow"
    console.print(f"[{colour}]{escape(result.summary())}[/]")
