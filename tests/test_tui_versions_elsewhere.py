"""Active versions moved by another process (``playground rollback`` from a shell) while the TUI
is open: what the screens show is what runs (issue #14, item 5).

The other process is a second :class:`Store` on the same file, as the CLI opens one: the TUI's
store object is not told of the change; only the file knows.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.pilot import Pilot
from textual.widgets import Input

from playground.spec import System
from playground.store import Store
from playground.tui.app import PlaygroundApp
from playground.tui.screens.run import RunScreen
from tests.test_tui import REQUEST, SIZE, finish, pane_text, screen_text, type_request
from tests.test_tui_versions import NEW_REPLY, OLD_INSTRUCTIONS, OLD_REPLY, open_versions, setup

__all__ = ["setup"]  # the fixture, shared with the versions screen's tests


async def roll_back_elsewhere(app: PlaygroundApp, system: System, version: str) -> None:
    """``playground rollback billing VERSION``, as the CLI does it: its own store on the file."""
    async with Store(app.store.path) as other:
        await other.rollback(system.name, "billing", version, note="from a shell")


async def terminal_refocused(pilot: Pilot[Any]) -> None:
    """The operator switches to a shell and back: the terminal reports blur, then focus."""
    pilot.app.post_message(events.AppBlur())
    await pilot.pause()
    pilot.app.post_message(events.AppFocus())
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_the_next_run_uses_a_version_rolled_back_elsewhere_and_shows_it(
    setup: tuple[PlaygroundApp, System, str, str],
) -> None:
    app, system, old, new = setup
    async with app.run_test(size=SIZE) as pilot:
        run = app.screen
        assert isinstance(run, RunScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert run.view.agents["billing"].version == new

        await roll_back_elsewhere(app, system, old)
        await type_request(pilot, run, REQUEST)
        run.query_one("#request", Input).focus()
        await pilot.press("enter")
        await finish(pilot)

        result = run.last_result
        assert result is not None and result.status == "completed"
        started = [e for e in result.events if e.kind == "agent_started" and e.agent == "billing"]
        assert started[0].version == old
        assert OLD_REPLY in pane_text(run, "billing") and NEW_REPLY not in pane_text(run, "billing")
        assert run.view.agents["billing"].version == old
        assert run.specs["billing"].instructions.strip().endswith(OLD_INSTRUCTIONS)
        assert old[:8] in screen_text(app) and new[:8] not in screen_text(app)


async def test_the_run_screen_shows_a_version_rolled_back_elsewhere_when_the_terminal_regains_focus(
    setup: tuple[PlaygroundApp, System, str, str],
) -> None:
    app, system, old, new = setup
    async with app.run_test(size=SIZE) as pilot:
        run = app.screen
        assert isinstance(run, RunScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert new[:8] in screen_text(app)

        await roll_back_elsewhere(app, system, old)
        await terminal_refocused(pilot)
        assert run.view.agents["billing"].version == old
        assert old[:8] in screen_text(app) and new[:8] not in screen_text(app)


async def test_the_versions_screen_shows_a_rollback_made_elsewhere(
    setup: tuple[PlaygroundApp, System, str, str],
) -> None:
    app, system, old, new = setup
    async with app.run_test(size=SIZE) as pilot:
        run = app.screen
        assert isinstance(run, RunScreen)
        versions = await open_versions(pilot)
        assert [(r.version_id, r.active) for r in versions.rows] == [(new, True), (old, False)]

        await roll_back_elsewhere(app, system, old)
        await terminal_refocused(pilot)
        assert [(r.version_id, r.active) for r in versions.rows] == [(new, False), (old, True)]

        # Back on the run screen (resumed, not refocused), it shows the same active version.
        await roll_back_elsewhere(app, system, new)
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)
        assert run.view.agents["billing"].version == new
