"""TUI responsiveness: key press latency under load, opening a big session, memory over a long run.

Benchmarks, not timed tests. Three figures, printed:

(a) Key press to screen. An 8-agent router system's run screen, every agent streaming
    200 tokens/s (synthetic ``token_delta`` events through the bridge, 1,600 tokens/s in
    all). ``b`` (toggle a breakpoint on the focused pane: its subtitle changes) is
    posted as a key event; the time runs until the pane shows it and the screen has
    refreshed after it. Median and p95 over N presses.
(b) A stored session of 10,000 events (a real router run, its billing model and tool
    calls repeated) is read from the store, folded by the reducer and drawn in the run
    screen.
(c) Memory while 100,000 token deltas (and a reply line every 20) stream through the
    bridge into the run screen: tracemalloc's current size at checkpoints stays flat
    because panes keep bounded history.

Usage: python bench/bench_tui.py [--presses 50] [--events 10000] [--deltas 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playground.engine import events as ev  # noqa: E402
from playground.service import run_session  # noqa: E402
from playground.spec import System, load_system  # noqa: E402
from playground.store import Store  # noqa: E402
from playground.tui.app import PlaygroundApp  # noqa: E402
from playground.tui.bridge import Bridge  # noqa: E402
from playground.tui.screens.run import RunScreen  # noqa: E402
from playground.tui.state import RunView  # noqa: E402
from playground.tui.widgets.agent_pane import AgentPane  # noqa: E402

SIZE = (160, 45)
AGENTS = 8
TOKENS_PER_S = 200


def eight_agents(folder: Path) -> System:
    """A router and seven specialists, scripted, instant."""
    names = [f"agent{i}" for i in range(1, AGENTS)]
    lines = [
        "name: eight",
        "description: A router and seven specialists.",
        "pattern: router",
        "entry: router",
        "scripted: {latency_ms: 0, tokens_per_s: 0}",
        "agents:",
        "  router:",
        "    handoffs:",
        *(f"      - to: {n}\n        context: {{question: str}}" for n in names),
        "    script:",
        f"      - handoff: {names[0]}\n        context: {{question: '{{input}}'}}",
    ]
    for name in names:
        lines += [
            f"  {name}:",
            "    input: {question: str}",
            "    script:",
            "      - reply: 'A long answer about {question}.'",
        ]
    path = folder / "eight.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_system(path)


async def _refreshed(app: PlaygroundApp) -> None:
    """Wait until the screen has been refreshed once more."""
    done = asyncio.get_running_loop().create_future()
    app.call_after_refresh(done.set_result, None)
    await done


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def key_latency(folder: Path, presses: int) -> None:
    system = eight_agents(folder)
    app = PlaygroundApp(system, db_path=folder / "a.db")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        bridge = Bridge(screen)
        screen._bridge = bridge  # the screen takes this bridge's batches as its run's
        screen.view.status = "running"
        pane = screen.query_one("#pane-agent1", AgentPane)
        pane.focus()
        names = list(system.spec.agents)
        stop = asyncio.Event()
        sent = [0]

        async def stream() -> None:
            interval = 1 / TOKENS_PER_S
            start = time.perf_counter()
            while not stop.is_set():
                for step, name in enumerate(names):
                    bridge(
                        ev.TokenDelta.trusted(
                            {
                                "session_id": "s",
                                "seq": 0,
                                "ts": time.time(),
                                "agent": name,
                                "step": step,
                                "text": "tok ",
                            }
                        )
                    )
                sent[0] += 1
                # Keep the rate: sleep until the next token is due.
                due = start + sent[0] * interval
                await asyncio.sleep(max(0.0, due - time.perf_counter()))

        feeder = asyncio.create_task(stream())
        await asyncio.sleep(0.5)  # let the stream reach its steady state
        timings: list[float] = []
        from textual import events

        for _ in range(presses):
            before = "break" in str(pane.border_subtitle)
            started = time.perf_counter()
            app.post_message(events.Key("b", "b"))
            while ("break" in str(pane.border_subtitle)) == before:
                await asyncio.sleep(0)
            await _refreshed(app)
            timings.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter()
        stop.set()
        await feeder
        bridge.close()
    rate = sent[0] * len(names)
    print(
        f"(a) key press -> screen, {AGENTS} agents x {TOKENS_PER_S} tokens/s ({rate} deltas sent): "
        f"median {statistics.median(timings):.1f} ms, p95 {_percentile(timings, 0.95):.1f} ms, "
        f"max {max(timings):.1f} ms over {presses} presses"
    )
    del elapsed


async def base_events(folder: Path) -> tuple[System, list[Any]]:
    text = (ROOT / "agents" / "support_router.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "scripted: {latency_ms: 150, tokens_per_s: 60}", "scripted: {latency_ms: 0, tokens_per_s: 0}"
    )
    (folder / "tools.py").write_text((ROOT / "agents" / "tools.py").read_text(encoding="utf-8"))
    (folder / "support_router.yaml").write_text(text, encoding="utf-8")
    system = load_system(folder / "support_router.yaml")
    result = await run_session(system, "I was charged twice on my last invoice")
    return system, result.events


def big_session(events: list[Any], count: int, session_id: str) -> list[Any]:
    """``events`` with billing's model and tool calls repeated until there are ``count``."""
    kinds = ("model_requested", "model_responded", "tool_called", "tool_returned")
    block = [e for e in events if e.agent == "billing" and e.kind in kinds]
    first = events.index(block[0])
    head, tail = events[:first], [e for e in events[first:] if e not in block]
    out = list(head)
    step = 1000
    while len(out) + len(tail) + len(block) <= count:
        step += 10
        for event in block:
            out.append(event.model_copy(update={"step": step + (event.step or 0)}))
    out += tail
    base = out[0].ts
    return [
        e.model_copy(update={"seq": i, "session_id": session_id, "ts": base + i * 0.001})
        for i, e in enumerate(out, 1)
    ]


async def open_big_session(folder: Path, count: int) -> None:
    system, events = await base_events(folder)
    db = folder / "b.db"
    session_id = "big-session"
    async with Store(db) as store:
        for event in big_session(events, count, session_id):
            store.sink(event)
        await store.flush()
    app = PlaygroundApp(system, db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        started = time.perf_counter()
        stored = await app.store.events(session_id)
        read = time.perf_counter()
        view = RunView(system)
        view.apply_all(stored)
        folded = time.perf_counter()
        screen.view = view
        screen._redraw()
        await _refreshed(app)
        drawn = time.perf_counter()
    print(
        f"(b) stored session of {len(stored)} events ({len(view.steps)} timeline steps) opened in "
        f"{(drawn - started) * 1000:.0f} ms: read {(read - started) * 1000:.0f} ms, "
        f"fold {(folded - read) * 1000:.0f} ms, draw {(drawn - folded) * 1000:.0f} ms"
    )


async def memory(folder: Path, deltas: int) -> None:
    system, events = await base_events(folder)
    reply = next(e for e in events if e.kind == "model_responded" and e.text)
    app = PlaygroundApp(system, db_path=folder / "c.db")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        bridge = Bridge(screen)
        screen._bridge = bridge
        screen.view.status = "running"
        names = list(system.spec.agents)
        tracemalloc.start()
        checkpoints: list[tuple[int, float]] = []
        batch = 2000
        for sent in range(0, deltas, batch):
            for i in range(sent, sent + batch):
                name = names[i % len(names)]
                bridge(
                    ev.TokenDelta.trusted(
                        {
                            "session_id": "s",
                            "seq": 0,
                            "ts": time.time(),
                            "agent": name,
                            "step": i // 100,
                            "text": f"token{i} ",
                        }
                    )
                )
                if i % 20 == 19:
                    bridge(reply.model_copy(update={"agent": name, "step": i // 100, "seq": i}))
            await asyncio.sleep(bridge.interval * 1.5)  # let the bridge flush and the screen draw
            await _refreshed(app)
            if (sent + batch) % (deltas // 5) == 0:
                gc.collect()
                checkpoints.append((sent + batch, tracemalloc.get_traced_memory()[0] / 1e6))
        tracemalloc.stop()
        bridge.close()
    figures = ", ".join(f"{n // 1000}k: {mb:.1f} MB" for n, mb in checkpoints)
    print(f"(c) traced memory while streaming {deltas} token deltas: {figures}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=50)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--deltas", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        await key_latency(folder, args.presses)
        await open_big_session(folder, args.events)
        await memory(folder, args.deltas)


if __name__ == "__main__":
    asyncio.run(main())
