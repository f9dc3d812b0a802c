"""What the issue-16 safeguards cost: the integrity check when a store opens, scrubbing
secrets (per stored chunk and per span), and a bounded, validated import.

    python bench/bench_reliability.py [--sessions N]

Prints figures; asserts nothing (tests never time anything).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground import redact
from playground.service import run_session
from playground.spec import load_system
from playground.store import Store
from playground.store.schema import quick_check
from tests.helpers import example_copy


async def fill(db: Path, system_path: Path, sessions: int) -> None:
    system = load_system(system_path)
    async with Store(db) as store:
        for i in range(sessions):
            await run_session(system, f"I was charged twice ({i})", store=store)


async def time_open(db: Path, repeats: int = 5) -> tuple[float, float]:
    opens, checks = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        async with Store(db) as store:
            opens.append(time.perf_counter() - started)
            started = time.perf_counter()
            await quick_check(store.db)
            checks.append(time.perf_counter() - started)
    return statistics.median(opens), statistics.median(checks)


async def time_import(db: Path, target: Path) -> tuple[int, float]:
    async with Store(db) as store:
        session_id = (await store.sessions(limit=1))[0].session_id
        lines = await store.export_session(session_id)
    started = time.perf_counter()
    async with Store(target) as store:
        await store.import_session(lines)
    return len(lines), time.perf_counter() - started


def time_scrub(n: int = 200_000) -> float:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.agent.name": "billing",
        "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"' + "x" * 400 + '"}]}]',
        "playground.step": 3,
        "playground.event.seq": 12,
    }
    started = time.perf_counter()
    for _ in range(n):
        redact.scrub_attributes(attributes)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        system_path = example_copy(tmp)
        db = tmp / "s.db"
        asyncio.run(fill(db, system_path, args.sessions))
        size = db.stat().st_size + sum(p.stat().st_size for p in tmp.glob("s.db-*"))
        opened, checked = asyncio.run(time_open(db))
        print(
            f"store of {args.sessions} sessions ({size / 1e6:.1f} MB): open {opened * 1e3:.1f} ms,"
            f" of which quick_check {checked * 1e3:.1f} ms ({checked / (size / 1e6) * 1e3:.2f} ms per MB)"
        )
        lines, took = asyncio.run(time_import(db, tmp / "t.db"))
        print(f"import of one session ({lines} records), validated: {took * 1e3:.1f} ms")
    for name in list(os.environ):
        if redact.is_secret_env(name):
            os.environ.pop(name)
    redact.refresh()
    print(f"scrubbing a span's attributes, no secrets in the environment: {time_scrub():.2f} µs")
    for i in range(3):
        os.environ[f"BENCH_{i}_API_KEY"] = f"sk-bench-secret-{i}-0123456789"
    redact.refresh()
    print(f"scrubbing a span's attributes, 3 secrets in the environment: {time_scrub():.2f} µs")


if __name__ == "__main__":
    main()
