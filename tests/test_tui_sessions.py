"""The TUI's sessions: browse them, open one read-only, fork it from a step, replay it.

Sessions are recorded with the scripted model at zero latency; tests wait on
workers, never on the wall clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select

from playground.engine.clock import SYSTEM_CLOCK, Clock
from playground.service import run_session
from playground.spec import System, load_system
from playground.store import Store
from playground.tui.app import PlaygroundApp
from playground.tui.screens.fork import BranchScreen, fork_point
from playground.tui.screens.home import HomeScreen
from playground.tui.screens.run import RunScreen
from playground.tui.screens.sessions import SessionChosen, SessionsScreen
from playground.tui.widgets.timeline import Timeline
from tests.helpers import fixed_clock
from tests.test_tui import FAILING, REQUEST, SIZE, pane_text, router_copy, screen_text
from tests.test_tui import make_app as make_run_app


def router_system(tmp_path: Path) -> System:
    """agents/support_router.yaml with the scripted model made instant."""
    return load_system(router_copy(tmp_path))


async def record(tmp_path: Path, system: System, request: str = REQUEST, clock: Clock = SYSTEM_CLOCK) -> str:
    """Run ``request`` headless into the test's store; the session's id."""
    async with Store(tmp_path / "store.db") as store:
        result = await run_session(system, request, store=store, clock=clock)
    return result.session_id


def make_app(tmp_path: Path, clock: Clock = SYSTEM_CLOCK) -> PlaygroundApp:
    """The app on its home screen, listing the systems in ``tmp_path``."""
    return make_run_app(None, tmp_path, agents_dir=tmp_path, clock=clock)


async def settle(pilot: Pilot[Any]) -> None:
    """Let every worker finish and the screen catch up."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def open_read_only(pilot: Pilot[Any], session_id: str) -> RunScreen:
    pilot.app.post_message(SessionChosen(session_id))
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, RunScreen) and screen.recorded is not None
    return screen


async def select_step(pilot: Pilot[Any], screen: RunScreen, kind: str, agent: str) -> None:
    """Move the timeline's cursor to the first ``kind`` step of ``agent``."""
    index = next(i for i, s in enumerate(screen.view.steps) if s.kind == kind and s.agent == agent)
    screen.query_one(Timeline).focus()
    await pilot.press("home", *(["down"] * index))


async def run_branch(pilot: Pilot[Any], key: str) -> RunScreen:
    """Press ``key`` (f or R), confirm the dialog as it is, and wait for the branch to finish."""
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(pilot.app.screen, BranchScreen)
    await pilot.press("enter")
    for _ in range(50):  # the new screen mounts, loads versions, then starts its worker
        await settle(pilot)
        screen = pilot.app.screen
        ran = isinstance(screen, RunScreen) and screen.branch is not None
        if isinstance(screen, RunScreen) and ran and screen.view.status not in ("ready", "running"):
            return screen
    raise AssertionError("the branch did not run")


# -- opening a stored session ----------------------------------------------------------------


async def test_enter_on_a_home_session_opens_it_read_only(tmp_path: Path) -> None:
    system = router_system(tmp_path)
    session_id = await record(tmp_path, system)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("tab", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen) and screen.recorded is not None
        view = screen.view
        assert view.session_id == session_id
        assert view.status == "completed"
        assert view.path == ["router", "billing"]
        billing = pane_text(screen, "billing")
        assert "from router: customer_id=C-1" in billing
        assert "→ lookup_invoice(customer_id=C-1)" in billing
        assert "I checked your account" in billing
        request = screen.query_one("#request", Input)
        assert request.value == REQUEST and request.disabled
        text = screen_text(app)
        assert "router ⇢ billing" in text
        assert "handoff router → billing · delivered" in text
        assert "tool lookup_invoice" in text
        assert f"session {session_id}" in text
        assert "COMPLETED" in text
        assert "read-only" in text
        # Nothing runs here: the run keys are hidden and do nothing.
        assert screen.check_action("step", ()) is False
        await pilot.press("s", "c", "e", "m")
        await settle(pilot)
        assert app.screen is screen and view.status == "completed"
        assert len(await app.store.sessions()) == 1
        titles = [c.title for c in app.get_system_commands(screen)]
        assert "Fork (f)" in titles and "Replay (R)" in titles and "Step (s)" not in titles
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)


async def test_selecting_a_step_shows_its_stored_details(tmp_path: Path) -> None:
    session_id = await record(tmp_path, router_system(tmp_path))
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_read_only(pilot, session_id)
        await select_step(pilot, screen, "tool_call", "billing")
        await pilot.pause()
        text = screen_text(app)
        assert "lookup_invoice" in text and "INV-1042" in text


async def test_the_sessions_browser_filters_and_opens(tmp_path: Path) -> None:
    system = router_system(tmp_path)
    first = await record(tmp_path, system)
    failing_path = tmp_path / "failing.yaml"
    failing_path.write_text(FAILING, encoding="utf-8")
    failed = await record(tmp_path, load_system(failing_path), "help")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        browser = app.screen
        assert isinstance(browser, SessionsScreen)
        assert [row.session_id for row in browser.sessions] == [failed, first]  # newest first
        status: Select[str] = browser.query_one("#filter-status", Select)
        status.value = "failed"
        await settle(pilot)
        assert [row.session_id for row in browser.sessions] == [failed]
        status.clear()
        system_filter: Select[str] = browser.query_one("#filter-system", Select)
        system_filter.value = "support-router"
        await settle(pilot)
        assert [row.session_id for row in browser.sessions] == [first]
        assert "support-router" in screen_text(app) and "failing-router" not in screen_text(app)
        browser.query_one("#session-list", DataTable).focus()
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen) and screen.view.session_id == first
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is browser


async def test_o_on_the_run_screen_opens_the_sessions_browser(tmp_path: Path) -> None:
    system = router_system(tmp_path)
    await record(tmp_path, system)
    app = PlaygroundApp(system, db_path=tmp_path / "store.db")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("escape", "o")
        await settle(pilot)
        assert isinstance(app.screen, SessionsScreen)
        assert len(app.screen.sessions) == 1


# -- fork and replay -------------------------------------------------------------------------


def test_fork_point_is_the_selected_step_or_the_next_one() -> None:
    def event(seq: int, kind: str, step: int | None) -> Any:
        from playground.engine import events as ev

        return ev.EVENT_TYPES[kind].model_construct(
            session_id="s", seq=seq, ts=0.0, step=step, agent="billing"
        )

    events = [
        event(7, "agent_started", None),
        event(8, "model_requested", 3),
        event(9, "model_responded", 3),
        event(10, "tool_called", 4),
        event(15, "run_finished", None),
    ]
    at = fork_point(events, 7)
    assert at is not None and (at.step, at.kind) == (3, "model call")
    at = fork_point(events, 10)
    assert at is not None and (at.step, at.kind) == (4, "tool call")
    assert fork_point(events, 15) is None


async def test_fork_a_read_only_session_from_the_selected_step(tmp_path: Path) -> None:
    session_id = await record(tmp_path, router_system(tmp_path))
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_read_only(pilot, session_id)
        await select_step(pilot, screen, "model_call", "billing")
        await pilot.press("f")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, BranchScreen)
        assert dialog.at is not None and dialog.at.step == 3
        assert "from step 3, billing's model call" in screen_text(app)
        dialog.query_one("#branch-agent", Select).value = "billing"
        dialog.query_one("#branch-model", Input).value = "scripted"
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        for _ in range(50):
            fork = app.screen
            if isinstance(fork, RunScreen) and fork.branch is not None and not fork.view.running:
                break
            await settle(pilot)
        assert isinstance(fork, RunScreen) and fork.branch is not None
        assert fork.view.status == "completed"
        assert fork.view.path == ["router", "billing"]
        assert "I checked your account" in pane_text(fork, "billing")
        text = screen_text(app)
        assert f"fork of {session_id} from step 3" in text
        assert "COMPLETED" in text
        assert any("answered from" in n.message for n in app._notifications)
        row = await app.store.session(fork.view.session_id)
        assert row.parent_session_id == session_id
        assert row.forked_from_step == 3
        assert row.status == "completed"
        assert fork.last_result is not None and fork.last_result.session_id == row.session_id


async def test_f_on_the_run_screen_forks_the_session_it_ran(tmp_path: Path) -> None:
    system = router_system(tmp_path)
    app = PlaygroundApp(system, db_path=tmp_path / "store.db")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await pilot.press("escape", "f")
        assert any("Nothing to fork yet" in n.message for n in app._notifications)
        screen.query_one("#request", Input).value = REQUEST
        screen.query_one("#request", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        ran = screen.view.session_id
        assert screen.view.status == "completed"
        await pilot.press("escape", "f")  # enter kept the focus in the request box
        assert any("Select the step to fork from" in n.message for n in app._notifications)
        await select_step(pilot, screen, "handoff", "router")
        fork = await run_branch(pilot, "f")
        assert fork is not screen
        row = await app.store.session(fork.view.session_id)
        assert (row.parent_session_id, row.forked_from_step) == (ran, 2)
        assert fork.view.path == ["router", "billing"]


async def test_replay_a_read_only_session(tmp_path: Path) -> None:
    session_id = await record(tmp_path, router_system(tmp_path))
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_read_only(pilot, session_id)
        replay = await run_branch(pilot, "R")
        assert replay.view.status == "completed"
        row = await app.store.session(replay.view.session_id)
        assert row.parent_session_id == session_id and row.forked_from_step is None
        assert any("3 model calls and 1 tool call answered" in n.message for n in app._notifications)
        assert f"replay of {session_id}" in screen_text(app)


# -- snapshot (plain def: snap_compare runs its own loop) ------------------------------------


@pytest.fixture
def clock() -> Clock:
    """Same session id, and a clock where each engine event takes exactly 10 ms."""
    return fixed_clock(tick_s=0.01)


def test_snapshot_read_only_session(snap_compare: Any, tmp_path: Path, clock: Clock) -> None:
    session_id = asyncio.run(record(tmp_path, router_system(tmp_path), clock=clock))
    app = make_app(tmp_path, clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await open_read_only(pilot, session_id)
        await select_step(pilot, screen, "handoff", "router")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def test_back_from_a_running_fork_aborts_it_and_records_that(tmp_path: Path) -> None:
    # Regression: escape dismissed the screen, which cancelled the run's worker before the
    # session was recorded; the store kept it "running" for ever.
    from playground.tui.screens.fork import Branch

    system = router_system(tmp_path)
    session_id = await record(tmp_path, system)
    app = PlaygroundApp(system, db_path=tmp_path / "store.db")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        first = app.screen
        replay = RunScreen(system, app.store, branch=Branch("replay", session_id, REQUEST, None, None))
        replay.breakpoints.add("handoff:*")
        await app.push_screen(replay)
        await pilot.pause()
        assert replay.controller is not None
        await replay.controller.wait_paused()
        await pilot.pause()
        running = replay.view.session_id
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is first
        assert (await app.store.session(running)).status == "aborted"
