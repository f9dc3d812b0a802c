"""The TUI's diff: mark a session in the browser, pick another, see them side by side.

Sessions are recorded headless with the scripted model at zero latency; tests wait on
workers, never on the wall clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from playground.engine.clock import SYSTEM_CLOCK, Clock
from playground.tui.screens.diff import DiffScreen
from playground.tui.screens.sessions import SessionsScreen
from tests.helpers import fixed_clock
from tests.test_tui import SIZE, screen_text
from tests.test_tui_sessions import make_app, record, router_system, settle

BILLING = "I was charged twice on my last invoice"
TECHNICAL = "The API is down with an error"


async def record_two(tmp_path: Path, clocks: tuple[Clock, Clock] | None = None) -> tuple[str, str]:
    """A billing session, then a technical one (newest first in the browser)."""
    system = router_system(tmp_path)
    first, second = clocks or (SYSTEM_CLOCK, SYSTEM_CLOCK)
    return await record(tmp_path, system, BILLING, first), await record(tmp_path, system, TECHNICAL, second)


async def mark_and_pick(pilot: Pilot[Any]) -> None:
    """From home: open the browser, mark the older (billing) session as A, pick the newer as B."""
    await settle(pilot)
    await pilot.press("o")
    await settle(pilot)
    assert isinstance(pilot.app.screen, SessionsScreen)
    await pilot.press("down", "d", "up", "enter")
    await settle(pilot)


async def test_mark_a_session_and_pick_another_shows_the_diff(tmp_path: Path) -> None:
    a, b = await record_two(tmp_path)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        browser = app.screen
        assert isinstance(browser, SessionsScreen)
        await pilot.press("down", "d")
        await pilot.pause()
        assert browser.marked == a
        assert f"A = {a}" in screen_text(app) and f"A {a}" in screen_text(app)
        await pilot.press("up", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DiffScreen) and screen.result is not None
        assert (screen.result.a.session.session_id, screen.result.b.session.session_id) == (a, b)
        text = screen_text(app)
        assert "first difference at step 2" in text
        assert "A router: asked for transfer_to_billing" in text
        assert "B router: asked for transfer_to_technical" in text
        assert "path: router → billing" in text and "path: router → technical" in text
        assert "I checked your account" in text and "No open incidents" in text
        assert "different paths" in text and "B - A: cost -0.000008 USD" in text
        await pilot.press("escape")
        await pilot.pause()
        assert browser.marked is None
        assert app.screen is browser
        assert "d marks it to diff against another" in screen_text(app)


async def test_escape_forgets_the_mark_and_a_session_is_not_its_own_b(tmp_path: Path) -> None:
    await record_two(tmp_path)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        browser = app.screen
        assert isinstance(browser, SessionsScreen)
        await pilot.press("d", "d")
        await pilot.pause()
        assert browser.marked is not None
        assert isinstance(app.screen, SessionsScreen)  # still the browser
        assert any("another session as B" in n.message for n in app._notifications)
        await pilot.press("escape")
        await pilot.pause()
        assert browser.marked is None
        assert app.screen is browser
        await pilot.press("enter")  # with nothing marked, enter opens read-only again
        await settle(pilot)
        assert not isinstance(app.screen, (SessionsScreen, DiffScreen))


# -- snapshot (plain def: snap_compare runs its own loop) ------------------------------------


@pytest.fixture
def clock() -> Clock:
    """Same session ids, and a clock that stands still: every latency is 0, however the
    engine derives it."""
    return fixed_clock()


def test_snapshot_diff(snap_compare: Any, tmp_path: Path, clock: Clock) -> None:
    # B a second later, with its own ids: one store holds both, newest first.
    later = Clock(wall=lambda: clock.wall() + 1, perf=clock.perf, token_hex=lambda n: "b0" * n, now=clock.now)
    asyncio.run(record_two(tmp_path, (clock, later)))
    app = make_app(tmp_path, clock)
    assert snap_compare(app, terminal_size=SIZE, run_before=mark_and_pick)
