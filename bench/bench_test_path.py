"""Per-hop cost of the ``playground test`` path, next to bench_engine's recording figure.

``playground test`` runs many scenarios of a system in one process, each a recorded
session. This bench writes a 10- and a 40-agent handoff chain (bench_engine.py's
systems) and a scenario file for each (--runs scenarios that run the whole chain and
check its status, path, last handoff, output, hops and events) into a temp dir, then
measures in one process, one sitting, the marginal cost of one more hop,
(T(long) - T(short)) / extra hops, so per-session and per-file costs are not counted
as hops:

- bench_engine's "engine, recording to SQLite": ``run_session`` on a loaded system,
  results dropped as they come (the reference: ``x engine`` divides by it);
- ``playground test``'s runs: the command's own coroutine (``cli.run._test``: open the
  store, ``Runner.run_all`` with --jobs 4, the JSON report) on the loaded files;
- the whole command in-process, ``playground test FILE --json --db DB`` (the above
  plus reading and checking the files), and reading the files alone (the scenario
  files list each run's path, so they grow with the chain);
- ``Runner(store=...).run_all(...)`` as an API caller gets it, each result keeping its
  run's events;
- the pytest plugin's scenario items (``ScenarioItem.runtest``: a fresh temp store and
  event loop per scenario), --runs / 4 items a round.

Each figure is a mean per run over a round of back-to-back runs (the store's writes
waited for), best of --rounds rounds after a warm-up round; a round runs every
configuration in turn, so load from elsewhere on the shared machine hits them alike.
Wall time; the process's CPU time (every thread of it, so the store's writer too),
which other processes on a loaded machine disturb less; and the time spent in the
garbage collector (``gc.callbacks``; the mean over the rounds, as collections come in
bursts). Figures only, no asserts on
timing: read the ratios, and repeat.

Usage: python bench/bench_test_path.py [--short 10] [--long 40] [--runs 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_engine import chain_yaml

from playground import cli
from playground.cli.run import _test as test_command
from playground.pytest_plugin import ScenarioItem
from playground.scenarios import Runner, Suite, load_scenarios
from playground.service import run_session
from playground.store import Store


def scenarios_yaml(n: int, runs: int) -> str:
    """``runs`` scenarios of the n-agent chain, each checking what a user would check."""
    path = ", ".join(f"a{i}" for i in range(n))
    lines = [f"system: chain-{n}.yaml", "scenarios:"]
    for i in range(runs):
        lines += [
            f"  - name: run {i}",
            f'    input: "hello {i}"',
            "    expect:",
            "      status: completed",
            f"      path: [{path}]",
            f'      handoff: {{a{n - 1}: {{question: "hello {i}"}}}}',
            f'      output_contains: ["done: hello {i}"]',
            f"      max_hops: {n}",
            "      no_events: [validation_failed, loop_detected, retry_scheduled]",
        ]
    return "\n".join(lines) + "\n"


def write_files(tmp: Path, sizes: tuple[int, ...], runs: int) -> dict[int, Path]:
    files = {}
    for n in sizes:
        (tmp / f"chain-{n}.yaml").write_text(chain_yaml(n), encoding="utf-8")
        files[n] = tmp / f"chain-{n}.scenarios.yaml"
        files[n].write_text(scenarios_yaml(n, runs), encoding="utf-8")
    return files


_gc = {"total": 0.0, "start": 0.0}


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc["start"] = time.perf_counter()
    else:
        _gc["total"] += time.perf_counter() - _gc["start"]


def gc_time() -> float:
    """Seconds spent in the garbage collector so far (since the bench started)."""
    return _gc["total"]


def main() -> None:
    gc.callbacks.append(_on_gc)
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--long", type=int, default=40)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    short, long, runs = args.short, args.long, args.runs
    items = max(1, runs // 4)
    tmp = Path(tempfile.mkdtemp())
    files = write_files(tmp, (short, long), runs)
    suites: dict[int, Suite] = {n: load_scenarios(files[n]) for n in (short, long)}

    async def engine(n: int) -> None:
        system = suites[n].system
        async with Store(tmp / f"engine-{n}.db") as store:
            for _ in range(runs):
                result = await run_session(system, "hello", store=store)
                assert result.status == "completed"
            await store.flush()

    def command_runs(n: int) -> None:
        namespace = argparse.Namespace(db=str(tmp / f"test-{n}.db"), json=True, jobs=4, realtime=False)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = asyncio.run(test_command(namespace, [suites[n]], {}, None))
        assert code == 0, out.getvalue()[-500:]

    def whole_command(n: int) -> None:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["test", str(files[n]), "--json", "--db", str(tmp / f"cli-{n}.db")])
        assert code == 0, out.getvalue()[-500:]

    async def runner_api(n: int) -> None:
        async with Store(tmp / f"runner-{n}.db") as store:
            results = await Runner(store=store).run_all([suites[n]], 4)
        assert all(r.passed for r in results), next(r.failures for r in results if not r.passed)

    def plugin_items(n: int) -> None:
        suite = suites[n]
        for scenario in suite.scenarios[:items]:
            ScenarioItem.runtest(types.SimpleNamespace(suite=suite, scenario=scenario))  # type: ignore[arg-type]

    # (label, one round for a chain of n agents, runs in a round)
    configs: list[tuple[str, Callable[[int], object], int]] = [
        ("bench_engine: engine, recording to SQLite", lambda n: asyncio.run(engine(n)), runs),
        ("playground test: its runs (-j 4)", command_runs, runs),
        ("playground test: whole command, in-process", whole_command, runs),
        ("  of which reading the files (load_scenarios)", lambda n: load_scenarios(files[n]), runs),
        ("Runner.run_all, results keep their events", lambda n: asyncio.run(runner_api(n)), runs),
        (f"pytest plugin: scenario items ({items} a round)", plugin_items, items),
    ]
    # Rounds interleave the configurations, so a burst of load on the shared machine hits
    # them alike; the first round warms up (versions recorded, caches filled). Wall time, and
    # the process's CPU time (all its threads): steadier while other processes load the machine.
    clocks = (time.perf_counter, time.process_time, gc_time)
    best: dict[tuple[int, int, int], float] = {}
    for round_ in range(args.rounds + 1):
        for i, (_, one_round, count) in enumerate(configs):
            for n in (short, long):
                t0 = [clock() for clock in clocks]
                one_round(n)
                for c, clock in enumerate(clocks):
                    mean = (clock() - t0[c]) / count * 1e6
                    if not round_:
                        continue
                    if clock is gc_time:  # collections come in bursts: the mean over the rounds
                        best[i, c, n] = best.get((i, c, n), 0.0) + mean / args.rounds
                    else:
                        best[i, c, n] = min(best.get((i, c, n), mean), mean)
    print(
        f"the playground test path, per agent hop ({short}- vs {long}-agent chains, {runs} scenario runs a"
        f" round, recording on, scripted model at zero latency, best of {args.rounds} interleaved rounds)"
    )
    print(f"{'':46} {'wall time':^28} {'CPU time':^28} {'in gc':>7}")
    print(f"{'':46} {'µs/hop µs/session x engine':>28} {'µs/hop µs/session x engine':>28} {'µs/hop':>7}")
    for i, (label, _, _) in enumerate(configs):
        cells = []
        for c in range(len(clocks)):
            hop = (best[i, c, long] - best[i, c, short]) / (long - short)
            reference = (best[0, c, long] - best[0, c, short]) / (long - short)
            fixed = best[i, c, short] - hop * (short - 1)
            cells.append(f"{hop:8.1f} {fixed:10.1f} {hop / reference:8.2f}" if c < 2 else f"{hop:7.1f}")
        print(f"{label:46} {cells[0]} {cells[1]} {cells[2]}")


if __name__ == "__main__":
    main()
