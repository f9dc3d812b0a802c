"""1,000 offline scenario runs of the support router, recording on.

The router example's scenario file, repeated until 1,000 scenarios have run,
the scripted model at zero latency, every run recorded to a fresh SQLite store
(and waited for). Prints the wall time and runs per second for --jobs 1 and 8.

Usage: python bench/bench_scenarios.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playground.scenarios import Runner, load_scenarios  # noqa: E402
from playground.store import Store  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    suite = load_scenarios(ROOT / "agents" / "support_router.scenarios.yaml")
    # Faults with backoff sleep on purpose; the speed figure is for the engine, so drop them.
    suite.scenarios = [s for s in suite.scenarios if not s.faults]
    repeat = -(-args.runs // len(suite.scenarios))
    suites = [suite] * repeat
    print(
        f"{args.runs} scenario runs of {suite.path} ({len(suite.scenarios)} scenarios without faults, "
        "scripted model at zero latency, recording on)"
    )
    for jobs in (1, 8):
        with tempfile.TemporaryDirectory() as tmp:
            async with Store(Path(tmp) / "bench.db") as store:
                runner = Runner(store=store)
                await runner.run_all([suite], jobs)  # warm up: versions recorded, caches filled
                t0 = time.perf_counter()
                results = (await runner.run_all(suites, jobs))[: args.runs]
                await store.flush()
                elapsed = time.perf_counter() - t0
        failed = sum(not r.passed for r in results)
        print(f"  --jobs {jobs}: {elapsed:.2f} s, {len(results) / elapsed:,.0f} runs/s, {failed} failed")


if __name__ == "__main__":
    asyncio.run(main())
