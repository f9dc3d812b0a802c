"""Instructions per agent hop, for comparing engine changes on a noisy machine.

Wall-clock figures on a shared 2-core machine move by 15% or more between runs;
instruction counts do not. Run this under callgrind for a short and a long chain,
from the checkout to measure, and divide the difference by the extra hops:

    for n in 10 40; do
      valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \\
        python bench/bench_instructions.py $n 40 2>&1 | grep Collected
    done
    # instructions per hop = (I(40) - I(10)) / (30 * 40)

It runs ``sessions`` sessions of an ``n``-agent handoff chain (bench_engine's), the
scripted model at zero latency, nothing attached (no store, no tracer). With ``traced``,
the tracer is attached, its spans handed to a processor that drops them: the tracer's own
cost per hop, without an exporter's.

Usage: python bench/bench_instructions.py N SESSIONS [traced]
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import chain_yaml

from playground.engine import Runtime
from playground.engine.events import Event
from playground.spec import load_system_text


async def main(agents: int, sessions: int, traced: bool = False) -> None:
    system = load_system_text(chain_yaml(agents), "chain", Path("."))
    sinks: list[Callable[[Event], None]] = []
    if traced:
        from opentelemetry.sdk.trace import SpanProcessor

        from playground.tracing.tracer import EventTracer

        sinks.append(EventTracer([SpanProcessor()]))  # the base processor drops every span
    for _ in range(sessions):
        result = await Runtime(system, sinks=sinks).run("go")
        assert result.status == "completed", result.error


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:] == ["traced"]))
