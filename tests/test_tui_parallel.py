"""The TUI on work that runs at the same time: concurrent panes, the path, the timeline's
nesting and overlapping bars, wall against agent time, and one step number from the
timeline to the inspector to a fork.

Like tests/test_tui.py: the scripted model at zero latency, tests wait on events, workers
and the controller, never on the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message
from textual.pilot import Pilot

from playground.engine import Runtime, runtime
from playground.engine import events as ev
from playground.engine.clock import Clock
from playground.llm.base import LLM
from playground.replay import fork_session
from playground.spec import System, load_system
from playground.spec.models import AgentSpec
from playground.store import Store
from playground.tui.bridge import Bridge
from playground.tui.screens.fork import BranchScreen, ForkPoint, fork_point
from playground.tui.screens.run import RunScreen
from playground.tui.state import RunView, Step
from playground.tui.widgets.agent_pane import AgentPane
from playground.tui.widgets.inspector import Inspector
from playground.tui.widgets.timeline import Timeline
from tests.helpers import fixed_clock, of_kind, write_system
from tests.test_parallel import PIPELINE
from tests.test_tui import SIZE, finish, make_app, run_screen, screen_text, type_request

# A supervisor whose model asks both workers at once; each worker calls a tool, then replies.
# Its tools are async (a sync tool runs in a thread, whose timing would move the snapshot).
PARALLEL = """\
name: parallel-desk
description: A lead asks two workers at once, then writes the answer.
pattern: supervisor
entry: lead
scripted: {latency_ms: 0, tokens_per_s: 0}
tools:
  price_lookup: tools.py:price_lookup
  review_search: tools.py:review_search
agents:
  lead:
    model: scripted
    description: Splits the request and combines the answers.
    delegates: [prices, reviews]
    price: {input: 0.15, output: 0.60}
    script:
      - calls:
          - {tool: prices, args: {task: "{input}"}}
          - {tool: reviews, args: {task: "{input}"}}
      - reply: "Summary: {tool_result}"
  prices:
    model: scripted
    description: Finds prices.
    input: {task: str}
    tools: [price_lookup]
    price: {input: 0.15, output: 0.60}
    script:
      - tool: price_lookup
        args: {product: "{task}"}
      - reply: "Prices: {tool_result}"
  reviews:
    model: scripted
    description: Sums up reviews.
    input: {task: str}
    tools: [review_search]
    price: {input: 0.15, output: 0.60}
    script:
      - tool: review_search
        args: {product: "{task}"}
      - reply: "Buyers say: {tool_result}"
"""

TOOLS = """\
import asyncio


async def price_lookup(product: str) -> dict[str, float]:
    await asyncio.sleep(0)  # let the other worker run: the two overlap, in the same order every time
    return {"low": 24.0, "high": 59.0}


async def review_search(product: str) -> list[str]:
    await asyncio.sleep(0)
    return [f"{product}: fast and quiet", f"{product}: the lid feels flimsy"]
"""

WORKERS = {"prices", "reviews"}


def parallel_system(tmp_path: Path) -> System:
    (tmp_path / "tools.py").write_text(TOOLS, encoding="utf-8")
    return load_system(write_system(tmp_path, PARALLEL, "parallel.yaml"))


class Slow:
    """A model call that takes ``ticks`` steps of a :func:`~tests.helpers.fixed_clock`
    (10 ms each in the snapshots), giving the loop a turn after each: calls made at once
    are in flight at once, and interleave the same way every run (no timer decides)."""

    def __init__(self, inner: LLM, clock: Clock, ticks: int) -> None:
        self.inner, self.clock, self.ticks = inner, clock, ticks

    async def complete(self, request: Any, on_delta: Any = None) -> Any:
        for _ in range(self.ticks):
            self.clock.wall()
            await asyncio.sleep(0)
        return await self.inner.complete(request, on_delta)


def slow_workers(clock: Clock, ticks: int = 30) -> Callable[[AgentSpec, str], LLM]:
    """An LLM factory: the workers' calls take ``ticks`` of ``clock``, the lead's none."""

    def factory(agent: AgentSpec, model: str) -> LLM:
        inner = runtime.default_llm_factory(agent, model)
        return Slow(inner, clock, ticks) if agent.name in WORKERS else inner

    return factory


def parent_row(rows: list[Step], index: int) -> Step | None:
    """The row ``rows[index]`` shows under: the nearest row above it that is less indented."""
    depth = rows[index].depth
    return next((rows[i] for i in range(index - 1, -1, -1) if rows[i].depth < depth), None)


# -- the view, without a terminal ------------------------------------------------------------


async def test_the_view_of_concurrent_workers(tmp_path: Path) -> None:
    system = parallel_system(tmp_path)
    result = await Runtime(system).run("kettle")
    assert result.status == "completed", result.error
    started = {e.agent: e.seq for e in of_kind(result.events, ev.AgentStarted)}

    view = RunView(system)
    second = max(started["prices"], started["reviews"])
    view.apply_all(e for e in result.events if e.seq <= second)
    # Both workers handle the request now; lead only waits for them.
    assert view.active_agents == ["prices", "reviews"]
    assert view.agents["lead"].state == "waiting"
    assert {view.agents[name].state for name in WORKERS} <= {"waiting", "thinking", "calling a tool"}
    assert [hop.agents for hop in view.hops] == [["lead"], ["prices", "reviews"]]

    view.apply_all(e for e in result.events if e.seq > second)
    assert view.active_agents == []
    rows = view.steps
    for index, row in enumerate(rows):
        above = parent_row(rows, index)
        if row.kind == "activation" and row.agent in WORKERS:
            # A worker shows under the call that delegated to it...
            assert above is not None and above.kind == "tool_call" and above.label == f"tool {row.agent}"
        elif row.owner is not None and row.kind != "activation":
            # ...and each row under its own activation, never under the sibling's.
            assert above is not None and above.kind == "activation" and above.seq == row.owner
    # The workers' bars overlap on the run's time axis.
    acts = {r.agent: r for r in rows if r.kind == "activation"}
    prices, reviews = acts["prices"], acts["reviews"]
    assert prices.end is not None and reviews.end is not None
    assert prices.start < reviews.end and reviews.start < prices.end
    # Every step has one row with its engine number; rows that are no step have none.
    numbered = sorted(r.step for r in rows if r.step is not None)
    starts = (ev.ModelRequested, ev.ToolCalled, ev.HandoffDelivered)
    assert numbered == sorted(e.step for e in result.events if isinstance(e, starts) and e.step is not None)
    assert all(r.step is None for r in rows if r.kind in ("activation", "run", "operator"))


async def test_a_parallel_pipeline_group_is_one_stop_of_the_path(tmp_path: Path) -> None:
    # The group's stages take 20 ms each, so they are at work at the same time.
    system = load_system(write_system(tmp_path, PIPELINE.replace("REVIEWS", "str").replace("600", "20")))
    result = await Runtime(system).run("kettle")
    assert result.status == "completed", result.error
    view = RunView(system)
    view.apply_all(result.events)
    assert [hop.agents for hop in view.hops] == [["extract"], ["prices", "reviews"], ["report"]]
    assert view.path == result.path
    # A stage's rows stay under it though the group's two stages ran at once.
    rows = view.steps
    for index, row in enumerate(rows):
        if row.kind == "model_call":
            above = parent_row(rows, index)
            assert above is not None and above.seq == row.owner and above.agent == row.agent


async def test_fork_point_of_an_activation_is_its_own_first_step(tmp_path: Path) -> None:
    # In a parallel session the event after a worker's agent_started may be its sibling's.
    system = parallel_system(tmp_path)
    result = await Runtime(system).run("kettle")
    started = {e.agent: e.seq for e in of_kind(result.events, ev.AgentStarted)}
    firsts = {
        e.agent: e.step for e in reversed(of_kind(result.events, ev.ModelRequested)) if e.step is not None
    }
    for worker in WORKERS:
        assert fork_point(result.events, started[worker]) == ForkPoint(firsts[worker], "model call", worker)


# -- the screen ------------------------------------------------------------------------------


async def test_concurrent_workers_panes_are_active_at_the_same_time(tmp_path: Path) -> None:
    system = parallel_system(tmp_path)
    release = asyncio.Event()
    entered: set[str] = set()
    both_calling = asyncio.Event()
    requested: set[str] = set()
    both_shown = asyncio.Event()

    class HeldWorker:
        """The workers' model calls wait for ``release``: both are in flight at once."""

        def __init__(self, agent: str, inner: LLM) -> None:
            self.agent, self.inner = agent, inner

        async def complete(self, request: Any, on_delta: Any = None) -> Any:
            entered.add(self.agent)
            if entered >= WORKERS:
                both_calling.set()
            await release.wait()
            return await self.inner.complete(request, on_delta)

    def factory(agent: AgentSpec, model: str) -> LLM:
        inner = runtime.default_llm_factory(agent, model)
        return HeldWorker(agent.name, inner) if agent.name in WORKERS else inner

    def hook(message: Message) -> None:
        # The screen's handler for this batch runs right after the hook.
        if isinstance(message, Bridge.Batch):
            requested.update(
                i.agent for i in message.items if isinstance(i, ev.ModelRequested) and i.agent in WORKERS
            )
            if requested >= WORKERS:
                both_shown.set()

    app = make_app(system, tmp_path, llm_factory=factory)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "kettle")
        await pilot.press("enter")
        await both_calling.wait()
        await both_shown.wait()
        await pilot.pause()

        view = screen.view
        assert view.active_agents == ["prices", "reviews"]
        for name in WORKERS:
            pane = screen.query_one(f"#pane-{name}", AgentPane)
            assert pane.has_class("-active"), name
            assert view.agents[name].state == "thinking"
        lead = screen.query_one("#pane-lead", AgentPane)
        assert not lead.has_class("-active") and view.agents["lead"].state == "waiting"
        text = screen_text(app)
        assert "▶ prices" in text and "▶ reviews" in text and "▶ lead" not in text
        assert "path lead ⇢ [prices ∥ reviews]" in text

        release.set()
        await finish(pilot)
        assert view.status == "completed"
        assert not any(p.has_class("-active") for p in screen.query(AgentPane))
        assert {view.agents[name].state for name in ("lead", *WORKERS)} == {"done"}


async def test_the_inspector_shows_the_engine_step_and_a_fork_starts_there(tmp_path: Path) -> None:
    app = make_app(parallel_system(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "kettle")
        await pilot.press("enter")
        await finish(pilot)
        result = screen.last_result
        assert result is not None and result.status == "completed", result and result.error
        wanted = next(e for e in of_kind(result.events, ev.ModelRequested) if e.agent == "reviews")
        assert wanted.step is not None

        timeline = screen.query_one(Timeline)
        timeline.focus()
        await pilot.press("home")
        while screen.view.steps[timeline.cursor].seq != wanted.seq:
            await pilot.press("down")
        await pilot.pause()
        title = str(screen.query_one(Inspector).border_title)
        assert title == f"step {wanted.step} · model call"
        assert f"step {wanted.step} · model call" in screen_text(app)

        await pilot.press("f")
        await app.workers.wait_for_complete()
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, BranchScreen)
        assert dialog.at == ForkPoint(wanted.step, "model call", "reviews")
        assert f"from step {wanted.step}, reviews' model call" in screen_text(app)

        await pilot.press("enter")
        await pilot.pause()
        fork = app.screen
        assert isinstance(fork, RunScreen) and fork is not screen
        await finish(pilot)
        assert fork.last_result is not None and fork.last_result.status == "completed"
        first = fork.last_result.events[0]
        assert isinstance(first, ev.RunStarted)
        assert (first.parent_session_id, first.forked_from_step) == (result.session_id, wanted.step)

    # The number the TUI showed is the one the CLI's fork takes.
    async with Store(tmp_path / "store.db") as store:
        again = await fork_session(store, result.session_id, wanted.step)
    assert again.result.status == "completed"


async def test_rows_that_are_no_step_show_no_step_number(tmp_path: Path) -> None:
    app = make_app(parallel_system(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "kettle")
        await pilot.press("enter")
        await finish(pilot)
        timeline = screen.query_one(Timeline)
        timeline.focus()
        await pilot.press("home")
        while screen.view.steps[timeline.cursor].label != "reviews (delegation) reply":
            await pilot.press("down")
        await pilot.pause()
        assert str(screen.query_one(Inspector).border_title) == "activation"
        # f on an activation forks at that worker's first step, not at its sibling's.
        await pilot.press("f")
        await app.workers.wait_for_complete()
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, BranchScreen) and dialog.at is not None
        assert dialog.at.agent == "reviews" and dialog.at.kind == "model call"
        await pilot.press("escape")


# -- snapshots (plain def: snap_compare runs its own loop) -----------------------------------


@pytest.fixture
def clock() -> Clock:
    """Same session id, and a clock where each engine event takes exactly 10 ms."""
    return fixed_clock(tick_s=0.01)


def test_snapshot_finished_parallel_run(snap_compare: Any, tmp_path: Path, clock: Clock) -> None:
    """Both workers' bars overlap in the timeline; the totals show wall and agent time."""
    app = make_app(parallel_system(tmp_path), tmp_path, clock=clock, llm_factory=slow_workers(clock))

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "kettle")
        await pilot.press("enter")
        await finish(pilot)
        assert screen.view.status == "completed"
        text = screen_text(app)
        assert "agent time" in text and "[prices ∥ reviews]" in text

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_parallel_run_at_80_columns(snap_compare: Any, tmp_path: Path, clock: Clock) -> None:
    """The smallest screen: reviews' second model call selected, its step number in its row
    and in the inspector's title."""
    app = make_app(parallel_system(tmp_path), tmp_path, clock=clock, llm_factory=slow_workers(clock))

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "kettle")
        await pilot.press("enter")
        await finish(pilot)
        timeline = screen.query_one(Timeline)
        timeline.focus()
        await pilot.press("home")
        rows = screen.view.steps
        last = max(i for i, row in enumerate(rows) if row.agent == "reviews" and row.kind == "model_call")
        while timeline.cursor != last:
            await pilot.press("down")
        await pilot.pause()
        step = rows[timeline.cursor]
        assert step.kind == "model_call" and step.step is not None
        assert f"step {step.step} · model call" in screen_text(app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
