"""Interrupted sessions and elapsed time (issue #14, item 10).

A session killed mid-run (``kill -9``: :func:`tests.helpers.run_killed_when`) has no final
event to carry its path, totals and time: the store rebuilds them from the events it recorded,
so the sessions browser shows where it got to and what it cost, and its read-only view shows it
interrupted. A session's elapsed time has one definition (first to last event, less the time
held at gates), the same live and stored.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from playground.engine import events as ev
from playground.engine.results import run_time_ms
from playground.spec import load_system
from playground.store import Store
from playground.tui.app import PlaygroundApp
from playground.tui.screens.run import RunScreen
from playground.tui.screens.sessions import SessionsScreen
from playground.tui.state import RunView
from playground.tui.widgets.agent_pane import AgentPane
from tests.helpers import run_killed_when, write_system
from tests.test_tui import REQUEST, SIZE, finish, make_app, router_copy, screen_text
from tests.test_tui_sessions import open_read_only, settle

SLOW = """
name: slow-router
pattern: router
entry: a
scripted: {latency_ms: 300}
agents:
  a:
    price: {input: 1.0, output: 2.0}
    handoffs: [{to: b, context: {question: str}}]
    script:
      - handoff: b
        context: {question: "{input}"}
  b:
    price: {input: 1.0, output: 2.0}
    tools: [t]
    input: {question: str}
    script:
      - tool: t
        args: {x: "1"}
      - tool: t
        args: {x: "2"}
      - reply: done
tools: {t: tools.py:t}
"""


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A workspace with one session of ``SLOW`` killed in b's second model call: the system
    file and the store."""
    tmp_path = tmp_path_factory.mktemp("killed")
    (tmp_path / "tools.py").write_text("def t(x: str) -> str:\n    return x\n", encoding="utf-8")
    path = write_system(tmp_path, SLOW, "slow.yaml")
    status, kinds = run_killed_when(path, tmp_path / "store.db", "tool_returned")
    assert status == "interrupted" and "run_finished" not in kinds and kinds.count("model_responded") == 2
    return path, tmp_path / "store.db"


async def test_an_interrupted_sessions_row_has_its_path_cost_tokens_and_time(
    killed: tuple[Path, Path],
) -> None:
    _, db = killed
    async with Store(db) as store:
        row = (await store.sessions())[0]
        events = await store.events(row.session_id)
    responded = [e for e in events if isinstance(e, ev.ModelResponded)]
    assert row.status == "interrupted"
    assert row.path == ["a", "b"]
    assert row.cost_usd == pytest.approx(sum(e.cost_usd for e in responded)) and row.cost_usd > 0
    assert row.input_tokens == sum(e.input_tokens for e in responded) > 0
    assert row.output_tokens == sum(e.output_tokens for e in responded) > 0
    assert set(row.totals) == {"a", "b"} and row.totals["b"]["calls"] == 1
    assert row.latency_ms == pytest.approx(run_time_ms(events), abs=0.01) and row.latency_ms > 300


async def test_a_session_marked_interrupted_before_is_mended_when_the_store_opens(
    killed: tuple[Path, Path], tmp_path: Path
) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(killed[1]) as source, sqlite3.connect(db) as copy:
        source.backup(copy)
        # As an older playground left it: interrupted, with no path, totals or time.
        copy.execute("UPDATE sessions SET path = '[]', totals = '{}', cost_usd = 0, latency_ms = 0")
    async with Store(db) as store:
        row = (await store.sessions())[0]
    assert row.path == ["a", "b"] and row.cost_usd > 0 and row.latency_ms > 0


async def test_the_tui_shows_an_interrupted_sessions_path_cost_and_state(killed: tuple[Path, Path]) -> None:
    path, db = killed
    app = PlaygroundApp(load_system(path), db_path=db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("escape", "o")
        await settle(pilot)
        browser = app.screen
        assert isinstance(browser, SessionsScreen)
        row = browser.sessions[0]
        cells = [str(c) for c in browser.query_one("#session-list", DataTable).get_row_at(0)]
        assert "a → b" in cells and f"{row.cost_usd:.6f}" in cells and "0.000000" not in cells

        screen = await open_read_only(pilot, row.session_id)
        assert screen.view.status == "interrupted"
        assert screen.view.path == ["a", "b"]
        assert screen.view.totals()[2] == pytest.approx(row.cost_usd)
        # The figure stored for the session is the one its view shows.
        assert screen.view.elapsed() == pytest.approx(row.latency_ms / 1000, abs=1e-6)
        assert screen.query_one("#pane-b", AgentPane).agent == "b"
        assert screen.view.agents["b"].state == "interrupted"
        assert not [s for s in screen.view.steps if s.status == "running"]
        text = screen_text(app)
        assert "INTERRUPTED" in text and "ABORTED" not in text and "$0.000000" not in text


async def held_then_finished(pilot: Pilot[Any], screen: RunScreen, hold_s: float) -> None:
    """Step through the run, holding ``hold_s`` at its first gate (the operator thinks)."""
    screen.query_one("#request", Input).value = REQUEST
    await pilot.pause()
    await pilot.press("escape", "s")
    assert screen.controller is not None
    await screen.controller.wait_paused()
    await pilot.pause()
    await asyncio.sleep(hold_s)
    await pilot.press("c")
    await finish(pilot)


async def test_elapsed_is_the_same_live_and_stored_when_the_run_was_held(tmp_path: Path) -> None:
    system = load_system(router_copy(tmp_path))
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await held_then_finished(pilot, screen, 0.4)
        assert screen.view.status == "completed"
        live = screen.view.elapsed()
        session = await app.store.session(screen.view.session_id)
        events = await app.store.events(session.session_id)

    stored = RunView(system)
    stored.apply_all(events)
    assert stored.elapsed() == pytest.approx(live, abs=1e-9)
    assert live * 1000 == pytest.approx(run_time_ms(events), abs=1e-6)
    # The time held is left out of all of them, the engine's own latency too.
    acted = [e for e in events if isinstance(e, ev.OperatorActed)]
    assert acted and sum(e.held_ms or 0 for e in acted) >= 400
    assert live < 0.4 and session.latency_ms < 400
    assert session.latency_ms / 1000 == pytest.approx(live, abs=0.05)
