"""The versions screen: history, diff, rollback, snapshot and restore, from the run screen's ``v``.

Two versions of billing come from editing the system file between two loads, as an
operator would. Tests wait on workers, never on the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList

from playground.service import active_agents
from playground.spec import System, load_system
from playground.store import Store, comparisons, sessions, versions
from playground.tui.app import PlaygroundApp
from playground.tui.screens.run import RunScreen
from playground.tui.screens.version_dialogs import (
    ConfirmRollbackScreen,
    RestoreSnapshotScreen,
    SnapshotNameScreen,
)
from playground.tui.screens.versions import VersionsScreen
from playground.tui.widgets.agent_pane import AgentPane
from playground.tui.widgets.spec_diff import diff_text
from tests.test_tui import REQUEST, SIZE, finish, pane_text, router_copy, screen_text, type_request

OLD_REPLY = "A refund for the duplicate charge is on its way."
NEW_REPLY = "Your duplicate charge was refunded today."
OLD_INSTRUCTIONS = "answer in two sentences."
NEW_INSTRUCTIONS = "answer in one friendly sentence."


async def two_billing_versions(path: Path, db: Path) -> tuple[System, str, str]:
    """Record the file as it is (billing v1), edit billing's instructions and reply, load again (v2).

    Returns:
        The system as loaded the second time, and billing's two version ids (old, new).
    """
    async with Store(db) as store:
        _, first = await active_agents(store, load_system(path))
        text = path.read_text(encoding="utf-8")
        assert OLD_REPLY in text and OLD_INSTRUCTIONS in text
        path.write_text(
            text.replace(OLD_REPLY, NEW_REPLY).replace(OLD_INSTRUCTIONS, NEW_INSTRUCTIONS), encoding="utf-8"
        )
        system = load_system(path)
        _, second = await active_agents(store, system)
    assert first["billing"] != second["billing"] and first["router"] == second["router"]
    return system, first["billing"], second["billing"]


async def open_versions(pilot: Pilot[Any], agent: str = "billing") -> VersionsScreen:
    """From the run screen: focus ``agent``'s pane, press v, wait for the versions to load."""
    app = pilot.app
    await app.workers.wait_for_complete()
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, RunScreen)
    screen.query_one(f"#pane-{agent}", AgentPane).focus()
    await pilot.press("v")
    await app.workers.wait_for_complete()
    await pilot.pause()
    versions = app.screen
    assert isinstance(versions, VersionsScreen)
    return versions


async def select_version(pilot: Pilot[Any], screen: VersionsScreen, version: str) -> None:
    table = screen.query_one("#versions-table", DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(version))
    await pilot.pause()
    assert screen.selected == version


@pytest.fixture
async def setup(tmp_path: Path) -> tuple[PlaygroundApp, System, str, str]:
    system, old, new = await two_billing_versions(router_copy(tmp_path), tmp_path / "store.db")
    return PlaygroundApp(system, db_path=tmp_path / "store.db"), system, old, new


async def test_v_lists_the_focused_agents_versions(setup: tuple[PlaygroundApp, System, str, str]) -> None:
    app, _, old, new = setup
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_versions(pilot)
        assert screen.agent == "billing"
        assert [r.version_id for r in screen.rows] == [new, old]
        assert [r.active for r in screen.rows] == [True, False]
        text = screen_text(app)
        assert "versions of billing (2)" in text and old[:8] in text and new[:8] in text
        assert screen.selected == new  # the cursor starts on the active version

        await select_version(pilot, screen, old)
        text = screen_text(app)
        assert f"active {new[:8]} → selected {old[:8]} (what r changes)" in text
        assert f"-{NEW_INSTRUCTIONS}" in text and f"+{OLD_INSTRUCTIONS}" in text
        assert "billing @ " + old[:8] in text and "instructions: |" in text

        await pilot.press("a")  # the next agent
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.agent == "technical" and len(screen.rows) == 1
        assert "The only version of this agent" in screen_text(app)

        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)


async def test_roll_back_billing_and_the_next_run_uses_it(
    setup: tuple[PlaygroundApp, System, str, str],
) -> None:
    app, system, old, new = setup
    async with app.run_test(size=SIZE) as pilot:
        run = app.screen
        assert isinstance(run, RunScreen)
        screen = await open_versions(pilot)
        await select_version(pilot, screen, old)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmRollbackScreen)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()

        assert (await app.store.active_versions(system.name))["billing"] == old
        log = await app.store.version_log(system.name, "billing")
        assert (log[0].action, log[0].from_version, log[0].to_version) == ("rollback", new, old)
        assert [r.active for r in screen.rows] == [False, True]
        assert any(n.title == "rolled back" and old[:8] in n.message for n in app._notifications)

        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is run  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across the await
        assert run.view.agents["billing"].version == old
        assert old[:8] in screen_text(app)  # billing's pane header
        assert run.specs["billing"].instructions.strip().endswith(OLD_INSTRUCTIONS)

        await type_request(pilot, run, REQUEST)
        run.query_one("#request", Input).focus()
        await pilot.press("enter")
        await finish(pilot)
        result = run.last_result
        assert result is not None and result.status == "completed"
        started = [e for e in result.events if e.kind == "agent_started" and e.agent == "billing"]
        assert started[0].version == old
        assert OLD_REPLY in pane_text(run, "billing") and NEW_REPLY not in pane_text(run, "billing")


async def test_cancelled_rollback_moves_nothing(setup: tuple[PlaygroundApp, System, str, str]) -> None:
    app, system, old, new = setup
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_versions(pilot)
        await pilot.press("r")  # on the active version: nothing to do
        await pilot.pause()
        assert any("already billing's active version" in n.message for n in app._notifications)
        await select_version(pilot, screen, old)
        await pilot.press("enter")  # enter on a row asks too
        await pilot.pause()
        assert isinstance(app.screen, ConfirmRollbackScreen)
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across the await
        assert (await app.store.active_versions(system.name))["billing"] == new


async def test_snapshot_then_restore(setup: tuple[PlaygroundApp, System, str, str]) -> None:
    app, system, old, new = setup
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_versions(pilot)
        await pilot.press("o")  # nothing to restore yet
        await app.workers.wait_for_complete()
        assert any("No snapshots" in n.message for n in app._notifications)

        await pilot.press("n")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, SnapshotNameScreen)
        dialog.query_one(Input).value = "with-new-billing"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        snapshots = await app.store.snapshots(system.name)
        assert [s.name for s in snapshots] == ["with-new-billing"]
        assert snapshots[0].versions["billing"] == new
        assert any(n.title == "snapshot 'with-new-billing' taken" for n in app._notifications)

        await select_version(pilot, screen, old)
        await pilot.press("r", "y")
        await app.workers.wait_for_complete()
        assert (await app.store.active_versions(system.name))["billing"] == old

        await pilot.press("o")
        await pilot.pause()
        chooser = app.screen
        assert isinstance(chooser, RestoreSnapshotScreen)
        options = chooser.query_one(OptionList)
        assert "moves billing" in str(options.get_option_at_index(0).prompt)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert (await app.store.active_versions(system.name))["billing"] == new
        assert any(n.title == "restored 'with-new-billing'" for n in app._notifications)
        assert [r.active for r in screen.rows] == [True, False]

        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        run = app.screen
        assert isinstance(run, RunScreen) and run.view.agents["billing"].version == new


async def test_a_taken_snapshot_name_asks_before_replacing(
    setup: tuple[PlaygroundApp, System, str, str],
) -> None:
    app, system, _, _ = setup
    async with app.run_test(size=SIZE) as pilot:
        await open_versions(pilot)
        await app.store.snapshot(system.name, "base")
        await pilot.press("n")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, SnapshotNameScreen)
        dialog.query_one(Input).value = "base"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and "exists" in screen_text(app)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert any(n.title == "snapshot 'base' replaced" for n in app._notifications)


def test_diff_text_colours_added_and_removed_lines() -> None:
    text = diff_text("instructions:\n--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\nmodel: x -> y")
    styles = {text.plain[s.start : s.end]: str(s.style) for s in text.spans}
    assert styles["-old"] == "red" and styles["+new"] == "green" and styles[" x -> y"] == "yellow"


# -- snapshot (plain def: snap_compare runs its own loop) ----------------------------------


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The store's clock starts at a fixed instant and ticks a minute per write, shown in UTC."""
    now = [1_700_000_000.0]

    def tick() -> float:
        now[0] += 60
        return now[0]

    for module in (versions, sessions, comparisons):  # the store's parts that read the clock
        monkeypatch.setattr(module, "time", SimpleNamespace(time=tick))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# The snapshot runs its own system, so edits to the bundled examples do not move it.
SNAPSHOT_SYSTEM = f"""
name: versions-snapshot
description: A router and one billing agent.
pattern: router
entry: router
scripted: {{latency_ms: 0, tokens_per_s: 0}}
agents:
  router:
    description: Picks billing.
    handoffs:
      - to: billing
        context: {{question: str}}
    script:
      - handoff: billing
        context: {{question: "{{input}}"}}
  billing:
    model: scripted
    description: Answers billing questions.
    instructions: |
      You answer billing questions. Look up the invoice first, then
      {OLD_INSTRUCTIONS}
    input: {{question: str}}
    script:
      - reply: "{OLD_REPLY}"
"""


def test_snapshot_versions_with_a_diff(snap_compare: Any, tmp_path: Path, fixed_clock: None) -> None:
    path = tmp_path / "versions.yaml"
    path.write_text(SNAPSHOT_SYSTEM, encoding="utf-8")
    system, old, _ = asyncio.run(two_billing_versions(path, tmp_path / "store.db"))
    app = PlaygroundApp(system, db_path=tmp_path / "store.db")

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await open_versions(pilot)
        await select_version(pilot, screen, old)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
