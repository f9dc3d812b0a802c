"""Engine overhead per agent hop.

An N-agent handoff chain (a0 -> a1 -> ... -> aN-1), the scripted model at
zero latency, in one process. Prints, as median microseconds:

- per hop: the marginal cost of one more hop, (T(long) - T(short)) / extra hops,
  so the fixed cost of opening and closing a session is not spread over hops;
- per session: that fixed cost;

for a bare asyncio loop, a bare asyncio loop writing one SQLite row per hop
through aiosqlite (batched, WAL), the engine with nothing attached, the engine
recording to SQLite, and the engine recording and exporting spans over
OTLP/HTTP to a receiver on 127.0.0.1 (bench/otlp_receiver.py, in its own process):
once on the fast paths (spans built as finished records, protobuf written directly,
each behind its feature test) and once on the SDK's public API they fall back to
(``Tracer.start_span``, the stock OTLP exporter and batch processor), as
``PLAYGROUND_TRACING_PUBLIC_API=1`` forces.

Measured 2026-12-06 on the shared 2-core project machine, ``--runs 100``, three runs:
OTLP export on the fast paths 77-83 us per hop (median 81), on the SDK's public API
312-345 us per hop (median 331); recording alone 28-31 us.

Usage: python bench/bench_engine.py [--short 10] [--long 40] [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosqlite

from playground.engine import Runtime
from playground.service import run_session
from playground.spec import load_system_text
from playground.store import Store


def chain_yaml(n: int) -> str:
    lines = [f"name: chain-{n}", "pattern: router", "entry: a0", f"limits: {{max_hops: {n + 1}}}", "agents:"]
    for i in range(n):
        lines.append(f"  a{i}:")
        if i < n - 1:
            lines += [
                f"    handoffs: [{{to: a{i + 1}, context: {{question: str}}}}]",
                f'    script: [{{handoff: a{i + 1}, context: {{question: "{{question}}"}}}}]',
            ]
        else:
            lines.append('    script: [{reply: "done: {question}"}]')
        if i == 0:
            lines[-1] = lines[-1].replace('"{question}"', '"{input}"')
    return "\n".join(lines) + "\n"


async def timed(
    fn: Callable[[], Awaitable[object]], runs: int, settle: Callable[[], Awaitable[object]] | None = None
) -> float:
    """Mean µs per run over ``runs`` back-to-back runs, best of five rounds.

    Throughput, not single-run latency: the store writes behind the run, so the
    honest cost includes waiting for the writes at the end (``settle``)."""
    for _ in range(max(3, runs // 10)):  # warm up
        await fn()
    if settle is not None:
        await settle()
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(runs):
            await fn()
        if settle is not None:
            await settle()
        rounds.append((time.perf_counter() - t0) / runs)
    return min(rounds) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--long", type=int, default=40)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    short, long, runs = args.short, args.long, args.runs
    systems = {n: load_system_text(chain_yaml(n), f"<chain {n}>", Path.cwd()) for n in (short, long)}
    tmp = Path(tempfile.mkdtemp())

    async def bare(n: int) -> None:
        async def hop(i: int) -> int:
            return i + 1

        for i in range(n):
            await hop(i)

    db = await aiosqlite.connect(tmp / "bare.db")
    await db.execute("PRAGMA journal_mode = WAL")
    await db.execute("PRAGMA synchronous = NORMAL")
    await db.execute("CREATE TABLE IF NOT EXISTS hops (run INTEGER, hop INTEGER, data TEXT)")
    counter = [0]

    async def bare_sqlite(n: int) -> None:
        counter[0] += 1
        rows = []
        for i in range(n):
            rows.append((counter[0], i, '{"kind": "hop"}'))
        await db.executemany("INSERT INTO hops VALUES (?, ?, ?)", rows)
        await db.commit()

    async def engine(n: int) -> None:
        result = await Runtime(systems[n]).run("hello")
        assert result.status == "completed"

    store = Store(tmp / "engine.db")
    await store.open()

    async def recorded(n: int) -> None:
        result = await run_session(systems[n], "hello", store=store)
        assert result.status == "completed"

    receiver = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("otlp_receiver.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None and receiver.stdin is not None
    port = int(receiver.stdout.readline())
    from playground.tracing import configure_tracing

    tracer = configure_tracing(otlp_endpoint=f"http://127.0.0.1:{port}")
    assert tracer is not None and tracer.fast_spans
    os.environ["PLAYGROUND_TRACING_PUBLIC_API"] = "1"
    public = configure_tracing(otlp_endpoint=f"http://127.0.0.1:{port}")
    del os.environ["PLAYGROUND_TRACING_PUBLIC_API"]
    assert public is not None and not public.fast_spans

    async def exported(n: int) -> None:
        result = await run_session(systems[n], "hello", store=store, tracer=tracer)
        assert result.status == "completed"

    async def exported_public(n: int) -> None:
        result = await run_session(systems[n], "hello", store=store, tracer=public)
        assert result.status == "completed"

    rows = []

    async def settle_tracer() -> None:
        await store.flush()
        tracer.flush()

    async def settle_public() -> None:
        await store.flush()
        public.flush()

    configs: list[tuple[str, Callable[[int], Awaitable[None]], Callable[[], Awaitable[None]] | None]] = [
        ("bare asyncio loop", bare, None),
        ("bare asyncio + aiosqlite row per hop", bare_sqlite, None),
        ("engine, nothing attached", engine, None),
        ("engine, recording to SQLite", recorded, store.flush),
        ("engine, recording + OTLP/HTTP export", exported, settle_tracer),
        ("  the same on the SDK's public API", exported_public, settle_public),
    ]
    for label, fn, settle in configs:
        t_short = await timed(functools.partial(fn, short), runs, settle)
        t_long = await timed(functools.partial(fn, long), runs, settle)
        hops_short, hops_long = short - 1, long - 1
        per_hop = (t_long - t_short) / (hops_long - hops_short)
        fixed = t_short - per_hop * hops_short
        rows.append((label, per_hop, fixed))
    await store.close()
    await db.close()
    tracer.shutdown()
    public.shutdown()
    posts, _ = receiver.communicate()
    print(
        f"engine overhead per agent hop ({short}- vs {long}-agent chains, scripted model at zero latency,"
        f" mean of {runs} runs, best of 5)"
    )
    print(f"{'':40} {'µs/hop':>9} {'µs/session':>11}")
    for label, per_hop, fixed in rows:
        print(f"{label:40} {per_hop:9.1f} {fixed:11.1f}")
    print(f"(the OTLP receiver, another process, got {posts.strip()} export requests)")


if __name__ == "__main__":
    asyncio.run(main())
