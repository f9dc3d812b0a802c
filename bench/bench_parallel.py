"""Parallel work: N concurrent delegations (or sync tools) against the slowest branch.

A supervisor whose model asks for N workers in one response, each worker's model
taking ``--latency`` ms; then one agent calling N synchronous tools in one response,
each sleeping ``--latency`` ms in its thread. Prints, as medians over ``--runs``:
the run's wall time, the slowest branch alone, and their ratio (1.0 is perfectly
parallel; N would be one at a time).

Usage: python bench/bench_parallel.py [--latency 200] [--runs 5] [--widths 2,4,8,16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.engine import Runtime
from playground.spec import System, load_system_text


def supervisor(n: int, latency_ms: float) -> str:
    workers = [f"w{i}" for i in range(n)]
    calls = ", ".join(
        f'{{tool: {w}, args: {{task: "part {i} of {{input}}"}}}}' for i, w in enumerate(workers)
    )
    lines = [
        f"name: fan-out-{n}",
        "pattern: supervisor",
        "entry: boss",
        f"limits: {{max_hops: {n + 1}}}",
        "agents:",
        "  boss:",
        f"    delegates: [{', '.join(workers)}]",
        f"    script: [{{calls: [{calls}]}}, {{reply: done}}]",
    ]
    for w in workers:
        lines += [
            f"  {w}:",
            f"    latency_ms: {latency_ms}",
            "    input: {task: str}",
            '    script: [{reply: "did {task}"}]',
        ]
    return "\n".join(lines) + "\n"


def sync_tools(n: int, latency_ms: float) -> str:
    calls = ", ".join(f'{{tool: nap, args: {{x: "{i}"}}}}' for i in range(n))
    return (
        f"name: sync-fan-out-{n}\npattern: router\nentry: a\n"
        f"tools: {{nap: tools.py:nap}}\n"
        "agents:\n"
        "  a:\n"
        "    tools: [nap]\n"
        "    handoffs: [{to: b}]\n"
        f"    script: [{{calls: [{calls}]}}, {{reply: done}}]\n"
        "  b: {script: [{reply: done}]}\n"
    )


async def wall_ms(system: System, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await Runtime(system).run("the report")
        assert result.status == "completed", result.error
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=200.0, help="ms each branch takes")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--widths", default="2,4,8,16")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "tools.py").write_text(
            f"import time\n\ndef nap(x: str) -> str:\n    time.sleep({args.latency / 1000})\n    return x\n"
        )
        print(f"parallel branches, each {args.latency:.0f} ms, median of {args.runs} runs")
        print(f"{'':34}{'wall ms':>9}{'slowest ms':>12}{'ratio':>7}")
        slowest = await wall_ms(load_system_text(supervisor(1, args.latency), "1", base), args.runs)
        for n in widths:
            wall = await wall_ms(load_system_text(supervisor(n, args.latency), f"{n}", base), args.runs)
            print(f"{f'{n} delegations in one response':34}{wall:9.1f}{slowest:12.1f}{wall / slowest:7.2f}")
        alone = await wall_ms(load_system_text(sync_tools(1, args.latency), "s1", base), args.runs)
        for n in widths:
            wall = await wall_ms(load_system_text(sync_tools(n, args.latency), f"s{n}", base), args.runs)
            print(f"{f'{n} sync tools in one response':34}{wall:9.1f}{alone:12.1f}{wall / alone:7.2f}")


if __name__ == "__main__":
    asyncio.run(main())
