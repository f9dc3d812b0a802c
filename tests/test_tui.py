"""The TUI: Pilot tests of every operator action, on the engine's state and on the screen.

The support router runs with the scripted model at zero latency, so runs take
milliseconds; tests wait on the run worker or on ``controller.wait_paused()``,
never on the wall clock.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static, TextArea

from playground.engine import runtime
from playground.engine.clock import Clock
from playground.engine.controller import Gate
from playground.spec import System, load_system
from playground.store import Store
from playground.tui.app import PlaygroundApp
from playground.tui.bridge import Bridge
from playground.tui.screens.edit_payload import EditPayloadScreen
from playground.tui.screens.home import HomeScreen
from playground.tui.screens.model_swap import ModelSwapScreen
from playground.tui.screens.run import RunScreen
from playground.tui.state import RunView, TextChunk
from playground.tui.widgets.agent_pane import AgentPane
from playground.tui.widgets.timeline import Timeline
from tests.helpers import example_copy, fixed_clock

ROOT = Path(__file__).resolve().parent.parent
AGENTS = ROOT / "agents"
SIZE = (120, 40)
REQUEST = "I was charged twice on my last invoice"


def router_copy(tmp_path: Path, *, latency_ms: int = 0, extra: str = "") -> Path:
    """agents/support_router.yaml with the scripted model at ``latency_ms`` (instant by default)."""
    return example_copy(tmp_path, latency_ms=latency_ms, extra=extra)


FAILING = """
name: failing-router
description: Billing's provider is down.
pattern: router
entry: router
limits: {retries: 0, backoff_s: 0}
agents:
  router:
    handoffs:
      - to: billing
        context: {question: str}
    script:
      - handoff: billing
        context: {question: "{input}"}
  billing:
    description: Its provider fails every call.
    input: {question: str}
    script:
      - fail: provider_error
"""


def failing_system(tmp_path: Path) -> System:
    path = tmp_path / "failing.yaml"
    path.write_text(FAILING, encoding="utf-8")
    return load_system(path)


# The snapshots run their own systems, so edits to the bundled examples do not move them.
SNAPSHOT_ROUTER = """
name: snapshot-router
description: Routes each request to billing or general.
pattern: router
entry: router
agents:
  router:
    description: Picks one specialist.
    handoffs:
      - to: billing
        context: {customer_id: str, question: str}
      - to: general
        context: {question: str}
    script:
      - match: "(?i)invoice|charge"
        handoff: billing
        context: {customer_id: "C-1", question: "{input}"}
      - handoff: general
        context: {question: "{input}"}
  billing:
    description: Answers billing questions.
    input: {customer_id: str, question: str}
    price: {input: 0.15, output: 0.60}
    script:
      - reply: "Customer {customer_id}: a refund is on its way."
  general:
    description: Answers everything else.
    input: {question: str}
    script:
      - reply: "Here is what I know about: {question}"
"""


def snapshot_workspace(tmp_path: Path) -> Path:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "router.yaml").write_text(SNAPSHOT_ROUTER, encoding="utf-8")
    (agents / "failing.yaml").write_text(FAILING, encoding="utf-8")
    (agents / "router.scenarios.yaml").write_text("not a system: skipped\n", encoding="utf-8")
    return agents


@pytest.fixture
def system(tmp_path: Path) -> System:
    return load_system(router_copy(tmp_path))


def make_app(system: System | None, tmp_path: Path, **kw: Any) -> PlaygroundApp:
    return PlaygroundApp(system, db_path=tmp_path / "store.db", agents_dir=kw.pop("agents_dir", AGENTS), **kw)


def screen_text(app: PlaygroundApp) -> str:
    """What the terminal shows now, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def pane_text(screen: RunScreen, agent: str) -> str:
    """Everything in an agent's pane (its lines scroll; the screen shows the last few)."""
    pane = screen.query_one(f"#pane-{agent}", AgentPane)
    return "\n".join(
        str(s.content)
        for s in pane.query(".pane-header, .pane-lines, .pane-stream, .pane-pending").results(Static)
    )


async def run_screen(pilot: Pilot[Any]) -> RunScreen:
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, RunScreen)
    return screen


async def type_request(pilot: Pilot[Any], screen: RunScreen, text: str = REQUEST) -> None:
    screen.query_one("#request", Input).value = text
    await pilot.pause()


async def start_stepping(pilot: Pilot[Any], screen: RunScreen) -> Gate:
    """Type the request, leave the input, press s: the run holds at its first gate."""
    await type_request(pilot, screen)
    await pilot.press("escape", "s")
    assert screen.controller is not None
    gate = await screen.controller.wait_paused()
    await pilot.pause()
    return gate


async def step_until(pilot: Pilot[Any], screen: RunScreen, kind: str, agent: str) -> Gate:
    """Press s until the run holds at a ``kind`` gate of ``agent``."""
    assert screen.controller is not None
    gate = await screen.controller.wait_paused()
    while not (gate.kind == kind and gate.agent == agent):
        await pilot.press("s")
        gate = await screen.controller.wait_paused()
    await pilot.pause()
    return gate


async def edit_routers_handoff(pilot: Pilot[Any], screen: RunScreen) -> EditPayloadScreen:
    """Run the request step by step to the router's handoff and press e: the dialog that
    edits its context opens."""
    await start_stepping(pilot, screen)
    await pilot.press("s")
    await step_until(pilot, screen, "handoff", "router")
    await pilot.press("e")
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, EditPayloadScreen)
    return dialog


async def finish(pilot: Pilot[Any]) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def stored_events(app: PlaygroundApp, session_id: str) -> list[Any]:
    return list(await app.store.events(session_id))


# -- running ---------------------------------------------------------------------------------


async def test_enter_runs_the_request_and_panes_fill(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen)
        await pilot.press("enter")
        await finish(pilot)
        view = screen.view
        assert view.status == "completed"
        assert view.path == ["router", "billing"]
        assert screen.last_result is not None and screen.last_result.status == "completed"
        billing = pane_text(screen, "billing")
        assert "from router: customer_id=C-1" in billing
        assert "→ lookup_invoice(customer_id=C-1)" in billing
        assert "I checked your account" in billing
        text = screen_text(app)
        assert "router ⇢ billing" in text
        assert "COMPLETED" in text
        assert f"session {view.session_id}" in text
        assert "handoff router → billing · delivered" in text
        assert "tool lookup_invoice" in text
        row = await app.store.session(view.session_id)
        assert row.status == "completed"


async def test_step_mode_stops_at_every_gate_and_shows_what_is_next(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        gate = await start_stepping(pilot, screen)
        assert (gate.kind, gate.agent) == ("model_call", "router")
        text = screen_text(app)
        assert "PAUSED" in text and "before step 1, router's model call" in text
        assert "last [user] I was charged twice" in text

        await pilot.press("s")
        gate = await step_until(pilot, screen, "handoff", "router")
        assert gate.payload["target"] == "billing"
        text = screen_text(app)
        assert "before step 2, router's handoff: hand off to billing" in text
        assert "step 2 · handoff router → billing · held" in text
        assert "customer_id  str" in text
        assert "schema {customer_id: str, question: str}" in text
        assert screen.query_one("#pane-router", AgentPane).has_class("-active", "-held")

        await pilot.press("s")
        gate = await step_until(pilot, screen, "model_call", "billing")
        assert screen.view.active == "billing"
        assert screen.query_one("#pane-billing", AgentPane).has_class("-active")
        assert "from router: customer_id=C-1" in pane_text(screen, "billing")
        assert "payload" in screen_text(app) and "delivered" in screen_text(app)

        await pilot.press("c")
        await finish(pilot)
        assert screen.view.status == "completed"
        assert screen.last_result is not None
        actions = [e.action for e in screen.last_result.events if e.kind == "operator_acted"]
        assert actions == ["step", "step", "continue"]


async def test_edit_the_held_handoff_payload(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        modal = await edit_routers_handoff(pilot, screen)
        area = modal.query_one(TextArea)
        assert json.loads(area.text)["customer_id"] == "C-1"

        area.text = json.dumps({"question": "missing the customer"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is modal, "an invalid edit keeps the dialog open"
        assert "customer_id" in str(modal.query_one("#edit-error", Static).content)

        area.text = json.dumps({"customer_id": "C-9", "question": "Refund the second charge"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across the await
        await pilot.press("c")
        await finish(pilot)

        result = screen.last_result
        assert result is not None and result.status == "completed"
        delivered = [e for e in result.events if e.kind == "handoff_delivered"]
        assert delivered[0].payload == {"customer_id": "C-9", "question": "Refund the second charge"}
        assert delivered[0].edited
        stored = [e for e in await stored_events(app, result.session_id) if e.kind == "handoff_delivered"]
        assert stored[0].payload["customer_id"] == "C-9" and stored[0].edited
        assert "from router: customer_id=C-9  question=Refund the second charge" in pane_text(
            screen, "billing"
        )
        text = screen_text(app)
        assert "router ⇢✎ billing" in text
        assert "step 2 · handoff router → billing · edited" in text
        assert "delivered as the operator edited it" in text


async def test_retry_the_held_step(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        gate = await start_stepping(pilot, screen)
        await pilot.press("r")  # the first model call has nothing to retry yet
        await pilot.pause()
        assert screen.controller is not None and screen.controller.pending is gate
        await pilot.press("s")
        gate = await step_until(pilot, screen, "tool_call", "billing")
        assert gate.can_retry
        await pilot.press("r")
        await pilot.pause()
        await step_until(pilot, screen, "model_call", "billing")
        await pilot.press("c")
        await finish(pilot)

        result = screen.last_result
        assert result is not None and result.status == "completed"
        responses = [e for e in result.events if e.kind == "model_responded" and e.agent == "billing"]
        retried = [e for e in responses if e.retry_of is not None]
        assert len(retried) == 1 and retried[0].retry_of == responses[0].seq
        assert "retried" in pane_text(screen, "billing")
        assert "(retry)" in screen_text(app)


async def test_pause_then_continue(system: System, tmp_path: Path) -> None:
    # Model calls wait for `answer`, so p lands while router's call is in flight.
    answer = asyncio.Event()

    class HeldModel:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def complete(self, request: Any, on_delta: Any = None) -> Any:
            await answer.wait()
            return await self.inner.complete(request, on_delta)

    def factory(agent: Any, model: str) -> Any:
        return HeldModel(runtime.default_llm_factory(agent, model))

    app = make_app(system, tmp_path, llm_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await start_stepping(pilot, screen)
        await pilot.press("c")
        assert screen.view.status == "running"
        await pilot.press("p")
        answer.set()
        assert screen.controller is not None
        gate = await screen.controller.wait_paused()
        await pilot.pause()
        assert (gate.kind, gate.agent) == ("handoff", "router")
        assert screen.view.status == "paused"  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across the await
        assert "PAUSED" in screen_text(app)
        await pilot.press("c")
        await finish(pilot)
        assert screen.view.status == "completed"
        assert "COMPLETED" in screen_text(app)


async def test_breakpoint_on_the_focused_agent(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        billing = screen.query_one("#pane-billing", AgentPane)
        billing.focus()
        await pilot.press("b")
        assert screen.breakpoints == {"agent:billing"}
        assert billing.has_class("-break")
        assert "● break" in screen_text(app)

        await type_request(pilot, screen)
        screen.query_one("#request", Input).focus()
        await pilot.press("enter")
        assert screen.controller is not None
        gate = await screen.controller.wait_paused()
        await pilot.pause()
        assert (gate.kind, gate.agent) == ("model_call", "billing")
        assert "before step 3, billing's model call" in screen_text(app)

        billing.focus()
        await pilot.press("b")
        assert screen.breakpoints == set()
        await pilot.press("c")
        await finish(pilot)
        assert screen.view.status == "completed"


async def test_swap_the_focused_agents_model(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await app.workers.wait_for_complete()
        before = await app.store.active_versions(system.name)
        screen.query_one("#pane-billing", AgentPane).focus()
        await pilot.press("m")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ModelSwapScreen)
        assert "scripted" in [str(o.id) for o in modal.query_one(OptionList).options]
        modal.query_one(Input).value = "scripted/fast"
        modal.query_one(Input).focus()
        await pilot.press("enter")
        await finish(pilot)

        after = await app.store.active_versions(system.name)
        assert after["billing"] != before["billing"] and after["router"] == before["router"]
        spec = json.loads(await app.store.version_spec(system.name, "billing", after["billing"]))
        assert spec["model"] == "scripted/fast"
        async with app.store.db.execute(
            "SELECT source FROM agent_versions WHERE system = ? AND version_id = ?",
            (system.name, after["billing"]),
        ) as cursor:
            row = await cursor.fetchone()
            assert row is not None and row[0] == "operator"
        assert "scripted/fast" in pane_text(screen, "billing")
        assert after["billing"][:8] in screen_text(app)

        await type_request(pilot, screen)
        screen.query_one("#request", Input).focus()
        await pilot.press("enter")
        await finish(pilot)
        result = screen.last_result
        assert result is not None and result.status == "completed"
        started = [e for e in result.events if e.kind == "agent_started" and e.agent == "billing"]
        assert started[0].model == "scripted/fast" and started[0].version == after["billing"]


async def test_abort_the_held_run(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await start_stepping(pilot, screen)
        await pilot.press("a")
        await finish(pilot)
        assert screen.view.status == "aborted"
        assert screen.last_result is not None and screen.last_result.status == "aborted"
        assert (await app.store.session(screen.view.session_id)).status == "aborted"
        text = screen_text(app)
        assert "ABORTED" in text and "the operator aborted the run" in text


async def test_failure_shows_origin_and_where_it_manifested(tmp_path: Path) -> None:
    app = make_app(failing_system(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "help")
        await pilot.press("enter")
        await finish(pilot)
        assert screen.view.status == "failed"
        assert screen.query_one("#pane-billing", AgentPane).has_class("-failed")
        text = screen_text(app)
        assert "FAILED" in text and "origin billing  manifested billing" in text
        assert "the run failed here" in pane_text(screen, "billing")


async def test_unavailable_actions_say_so(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        screen.query_one("#pane-router", AgentPane).focus()
        await pilot.press("f", "e", "r")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("Nothing to fork yet" in m for m in messages)
        assert any("Nothing is held" in m for m in messages)
        assert any("Retry works on a held step" in m for m in messages)


async def test_actions_are_in_the_command_palette(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        titles = [c.title for c in app.get_system_commands(screen)]
        for title in (
            "Step (s or ctrl+s)",
            "Continue (c)",
            "Edit (e)",
            "Model (m)",
            "Break (b)",
            "Breakpoint on: any handoff",
        ):
            assert title in titles


async def test_the_timeline_shows_the_newest_step_when_the_run_ends(tmp_path: Path) -> None:
    # Regression: the run's last redraw came before the scrollbar existed, so the timeline
    # stayed at the top with the newest rows hidden, and a sideways scrollbar took a row.
    app = make_app(load_system(supervisor_copy(tmp_path)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "typed handoffs")
        await pilot.press("enter")
        await finish(pilot)
        timeline = screen.query_one(Timeline)
        assert len(screen.view.steps) > timeline.size.height
        assert timeline.scroll_y == timeline.max_scroll_y > 0
        assert not timeline.show_horizontal_scrollbar
        assert "■ run completed" in screen_text(app)


async def test_a_new_run_clears_the_selected_step(system: System, tmp_path: Path) -> None:
    # Regression: the timeline kept the old run's cursor; enter on it raised IndexError.
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen)
        await pilot.press("enter")
        await finish(pilot)
        timeline = screen.query_one(Timeline)
        timeline.focus()
        await pilot.press("end", "up")
        assert timeline.cursor == len(screen.view.steps) - 1
        await start_stepping(pilot, screen)
        assert timeline.cursor == -1 and len(screen.view.steps) < 3
        timeline.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.is_running
        # The row of router's activation: no step of its own, so no step number.
        assert str(screen.query_one("#inspector").border_title) == "activation"
        await pilot.press("a")
        await finish(pilot)


async def test_a_failed_model_swap_says_so(
    system: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: the swap's worker does not exit on error, so a store error vanished.
    from playground.errors import StoreError

    async def broken(*args: Any, **kw: Any) -> dict[str, str]:
        raise StoreError("the store is read-only")

    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await app.workers.wait_for_complete()
        monkeypatch.setattr(app.store, "record_versions", broken)
        screen.swap_model("billing", "scripted/fast")
        await finish(pilot)
        assert any(
            n.title == "cannot swap billing's model" and "read-only" in n.message for n in app._notifications
        )


# -- home ------------------------------------------------------------------------------------


async def test_home_lists_systems_and_sessions_and_opens_one(system: System, tmp_path: Path) -> None:
    async with Store(tmp_path / "store.db") as store:
        from playground.service import run_session

        await run_session(system, REQUEST, store=store)
    app = make_app(None, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        home = app.screen
        assert isinstance(home, HomeScreen)
        names = [f.system.name for f in home.systems if f.system]
        assert names == [
            "content-pipeline",
            "invoice-pipeline",
            "market-brief",
            "research-supervisor",
            "review-cycle",
            "support-router",
        ]
        text = screen_text(app)
        assert "supervisor" in text and "Routes each support request" in text
        assert "completed" in text and "router → billing" in text
        await pilot.press(*["down"] * names.index("support-router"), "enter")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)
        assert app.screen.system.name == "support-router"


# -- the bridge and the view, without a terminal ---------------------------------------------


async def test_bridge_coalesces_token_deltas_and_flushes_on_a_timer() -> None:
    from playground.engine import events as ev

    posted: list[Any] = []

    class Target:
        def post_message(self, message: Any) -> bool:
            posted.append(message)
            return True

    bridge = Bridge(Target(), interval=0.01)  # type: ignore[arg-type]
    base = {"session_id": "s", "seq": 0, "ts": 0.0, "agent": "a", "activation": 2, "step": 1}
    for token in ("Hel", "lo ", "world"):
        bridge(ev.TokenDelta.trusted({**base, "text": token}))
    assert posted == []
    while not posted:
        await asyncio.sleep(0.005)  # the bridge's own timer is what is under test
    assert len(posted) == 1
    assert posted[0].items == [TextChunk("a", 2, 1, "Hello world")]


async def test_a_stored_session_rebuilds_the_same_view(system: System, tmp_path: Path) -> None:
    from playground.service import run_session

    async with Store(tmp_path / "store.db") as store:
        result = await run_session(system, REQUEST, store=store)
        events = await store.events(result.session_id)
    live, stored = RunView(system), RunView(system)
    live.apply_all(result.events)
    stored.apply_all(events)
    assert stored.path == live.path == ["router", "billing"]
    assert [s.label for s in stored.steps] == [s.label for s in live.steps]
    assert stored.agents["billing"].lines == live.agents["billing"].lines


def test_panes_keep_bounded_history(system: System) -> None:
    from playground.tui.state import PANE_HISTORY

    view = RunView(system)
    for index in range(PANE_HISTORY * 3):
        view.agents["billing"].add("text", f"line {index}")
    assert len(view.agents["billing"].lines) == PANE_HISTORY


# -- snapshots (plain def: snap_compare runs its own loop) -----------------------------------


@pytest.fixture
def clock() -> Clock:
    """Same session id, and a clock where each engine event takes exactly 10 ms."""
    return fixed_clock(tick_s=0.01)


def test_snapshot_home(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    snapshot_workspace(tmp_path)
    app = PlaygroundApp(None, db_path="store.db", agents_dir="agents")
    assert snap_compare(app, terminal_size=SIZE)


def test_snapshot_paused_at_handoff(snap_compare: Any, tmp_path: Path, clock: Clock) -> None:
    app = make_app(load_system(snapshot_workspace(tmp_path) / "router.yaml"), tmp_path, clock=clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await run_screen(pilot)
        await start_stepping(pilot, screen)
        await pilot.press("s")
        await step_until(pilot, screen, "handoff", "router")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_failure(snap_compare: Any, tmp_path: Path, clock: Clock) -> None:
    app = make_app(failing_system(tmp_path), tmp_path, clock=clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "help")
        await pilot.press("enter")
        await finish(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def supervisor_copy(tmp_path: Path) -> Path:
    """agents/research_supervisor.yaml with the scripted model instant."""
    return example_copy(tmp_path, "research_supervisor")


def test_snapshot_inspector_shows_the_selected_step(snap_compare: Any, tmp_path: Path, clock: Clock) -> None:
    """A finished supervisor run; research's web_search call selected in the timeline."""
    app = make_app(load_system(supervisor_copy(tmp_path)), tmp_path, clock=clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "typed handoffs")
        await pilot.press("enter")
        await finish(pilot)
        timeline = screen.query_one(Timeline)
        timeline.focus()
        await pilot.press("home")
        while timeline._steps[timeline.cursor].label != "tool web_search":
            await pilot.press("down")
        await pilot.pause()
        text = screen_text(app)
        # The engine's step number, the one the timeline row shows and fork takes.
        assert "step 4 · tool call" in text and "web_search" in text

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_timeline_of_a_supervisor_run(snap_compare: Any, tmp_path: Path, clock: Clock) -> None:
    """Nested delegations and the supervisor's reviews, the run finished."""
    app = make_app(load_system(supervisor_copy(tmp_path)), tmp_path, clock=clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "typed handoffs")
        await pilot.press("enter")
        await finish(pilot)
        assert screen.view.status == "completed"
        assert {s.kind for s in screen.view.steps} >= {"activation", "tool_call", "review"}

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def test_quit_aborts_a_held_run_and_records_it(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await start_stepping(pilot, screen)
        session_id = screen.view.session_id
        await pilot.press("q")
    async with Store(tmp_path / "store.db") as store:
        assert (await store.session(session_id)).status == "aborted"


def test_the_tui_starts_without_litellm() -> None:
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import playground.tui.app, playground.cli\n"
        "print(round(time.perf_counter() - t, 3), 'litellm' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    _, litellm = proc.stdout.split()  # the time is bench_tui's to report, not a test's to bound
    assert litellm == "False", proc.stderr


async def test_the_app_freezes_what_it_loaded_out_of_the_gcs_full_passes(
    system: System, tmp_path: Path
) -> None:
    """Full GC passes over the imported modules froze the screen for 65-180 ms with 8 agents
    streaming (bench_tui); what the app has loaded when it mounts is frozen out of them."""
    import gc

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await run_screen(pilot)
        assert gc.get_freeze_count() > 0


async def test_an_earlier_runs_worker_ending_late_leaves_the_run_in_progress_alone(
    system: System, tmp_path: Path
) -> None:
    """The notice that a run's worker ended can arrive after the next run started: it must
    not clear the new run's debug session or mark it aborted."""
    from textual.worker import Worker, WorkerState

    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen)
        screen._start(stepping=False)  # what enter does
        first = screen._run_worker
        assert first is not None
        await finish(pilot)
        assert screen.last_result is not None and screen.last_result.status == "completed"
        await start_stepping(pilot, screen)
        held = screen.debug
        assert held is not None and screen.view.status == "paused"
        screen.on_worker_state_changed(Worker.StateChanged(first, WorkerState.SUCCESS))
        assert screen.debug is held and screen.view.status == "paused"
        await pilot.press("c")
        await finish(pilot)
        assert screen.debug is None and screen.view.status == "completed"
