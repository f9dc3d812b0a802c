"""The TUI at 80x24: every dialog's buttons and messages stay on screen, the compare screen
shows its summary and each side's differences, and ids are shown whole.

A widget counts as shown when the terminal cell at each of its corners belongs to it (or to
one of its children): a widget laid out past a container's edge, or past the terminal's,
is not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.app import App
from textual.errors import NoWidget
from textual.pilot import Pilot
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, DataTable, Input, OptionList, Select, Static, TextArea

from playground.replay import fork_session
from playground.service import run_session
from playground.spec import System, load_system
from playground.store import Store
from playground.tui.screens.breakpoint_dialog import BreakpointScreen
from playground.tui.screens.compare import CompareScreen
from playground.tui.screens.compare_setup import CompareSetupScreen
from playground.tui.screens.deny_reason import DenyReasonScreen
from playground.tui.screens.edit_payload import EditPayloadScreen
from playground.tui.screens.fork import BranchScreen, ForkPoint
from playground.tui.screens.model_swap import ModelSwapScreen
from playground.tui.screens.sessions import SessionsScreen
from playground.tui.screens.version_dialogs import ConfirmRollbackScreen, SnapshotNameScreen
from tests.test_tui import (
    REQUEST,
    edit_routers_handoff,
    make_app,
    router_copy,
    run_screen,
    screen_text,
)
from tests.test_tui_compare import finish, open_setup, start

SMALL = (80, 24)
LONG_PROBLEM = "; ".join(f"field_{i}: Input should be a valid string" for i in range(8))


@pytest.fixture
def system(tmp_path: Path) -> System:
    return load_system(router_copy(tmp_path))


def shown(app: App[Any], widget: Widget) -> bool:
    """Whether every corner of ``widget`` is on the terminal and is ``widget``'s own cell."""
    region = widget.region
    if not region or not app.screen.region.contains_region(region):
        return False
    for x, y in ((region.x, region.y), (region.right - 1, region.bottom - 1)):
        try:
            found, _ = app.screen.get_widget_at(x, y)
        except NoWidget:
            return False
        if found is not widget and widget not in found.ancestors:
            return False
    return True


# -- the compare setup dialog (issue #14 item 4) --------------------------------------------


async def test_compare_setup_run_and_lockstep_are_reachable_at_80x24(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        setup = await open_setup(pilot, "billing")
        run = setup.query_one("#compare-run", Button)
        assert shown(app, run), "the Run button is on screen as soon as the dialog opens"
        lockstep = setup.query_one("#compare-lockstep", Checkbox)
        for _ in range(12):  # tab to the checkbox, as a keyboard user does
            if lockstep.has_focus:
                break
            await pilot.press("tab")
        assert lockstep.has_focus
        await pilot.pause()
        assert shown(app, lockstep), "the focused checkbox scrolled into view"
        await pilot.press("space")
        assert lockstep.value
        assert shown(app, run)

        # A problem is said where it is seen: no B chosen.
        await pilot.press("ctrl+r")
        await pilot.pause()
        error = setup.query_one("#compare-error", Static)
        assert "Choose (or type) both A and B." in str(error.content)
        assert shown(app, error)

        setup.query_one("#compare-a-typed", Input).value = "scripted"
        setup.query_one("#compare-b-typed", Input).value = "scripted/b"
        assert await pilot.click(run), "the click lands on Run"
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert screen.choice.lockstep
        screen.action_abort()
        await finish(pilot)


# -- every dialog at 80x24 (issue #14 item 4) -----------------------------------------------


def _compare(system: System, app: Any) -> ModalScreen[Any]:
    return CompareSetupScreen(system, app.store, "billing", REQUEST)


def _edit(system: System, app: Any) -> ModalScreen[Any]:
    value = {"customer_id": "C-1", "question": "refund"}
    return EditPayloadScreen("Handoff context router → billing", value, lambda v: LONG_PROBLEM)


def _swap(system: System, app: Any) -> ModalScreen[Any]:
    spec = system.spec.agents["billing"]
    return ModelSwapScreen("billing", spec, ["scripted", "openai/gpt-4o-mini", "scripted/alt"])


def _fork(system: System, app: Any) -> ModalScreen[Any]:
    at = ForkPoint(3, "handoff", "router")
    return BranchScreen("fork", "0123456789ab", at, list(system.spec.agents), ["scripted"])


def _breakpoint(system: System, app: Any) -> ModalScreen[Any]:
    return BreakpointScreen(list(system.spec.agents), [])


def _deny(system: System, app: Any) -> ModalScreen[Any]:
    return DenyReasonScreen("refund(order_id=A-17, amount=40)")


def _rollback(system: System, app: Any) -> ModalScreen[Any]:
    diff = Text("\n".join(f"- instructions line {i}" for i in range(30)))
    return ConfirmRollbackScreen("Roll billing back to 0123abcd?", diff)


def _snapshot(system: System, app: Any) -> ModalScreen[Any]:
    return SnapshotNameScreen("support-router", set(), "")


async def _fail_compare(pilot: Pilot[Any], dialog: ModalScreen[Any]) -> str:
    await pilot.press("ctrl+r")  # no B chosen
    return "#compare-error"


async def _fail_edit(pilot: Pilot[Any], dialog: ModalScreen[Any]) -> str:
    dialog.query_one(TextArea).text = json.dumps({"customer_id": 1, "question": 2})
    await pilot.press("ctrl+s")
    return "#edit-error"


async def _fail_swap(pilot: Pilot[Any], dialog: ModalScreen[Any]) -> str:
    dialog.query_one("#swap-key-env", Input).value = "not a variable!"
    dialog.query_one(OptionList).focus()  # at the top of the dialog; the message is at its foot
    await pilot.press("enter")
    await dialog.workers.wait_for_complete()
    return "#swap-error"


async def _fail_fork(pilot: Pilot[Any], dialog: ModalScreen[Any]) -> str:
    dialog.query_one("#branch-agent", Select).value = "billing"
    dialog.query_one("#branch-go", Button).press()  # no model typed
    return "#branch-error"


async def _fail_breakpoint(pilot: Pilot[Any], dialog: ModalScreen[Any]) -> str:
    await pilot.press(*"cost:nobody>x", "enter")
    return "#breakpoint-error"


async def _fail_snapshot(pilot: Pilot[Any], dialog: ModalScreen[Any]) -> str:
    await pilot.press("enter")  # no name
    return "#snapshot-warning"


async def _no_message(pilot: Pilot[Any], dialog: ModalScreen[Any]) -> str:
    return ".dim"


async def _question(pilot: Pilot[Any], dialog: ModalScreen[Any]) -> str:
    return ".dialog-title"  # what is asked; the long diff under it scrolls


DIALOGS: dict[str, tuple[Callable[[System, Any], ModalScreen[Any]], Any]] = {
    "compare": (_compare, _fail_compare),
    "edit": (_edit, _fail_edit),
    "model": (_swap, _fail_swap),
    "fork": (_fork, _fail_fork),
    "breakpoint": (_breakpoint, _fail_breakpoint),
    "deny": (_deny, _no_message),
    "rollback": (_rollback, _question),
    "snapshot": (_snapshot, _fail_snapshot),
}


@pytest.mark.parametrize("name", list(DIALOGS))
async def test_every_dialog_shows_its_buttons_and_its_message_at_80x24(
    name: str, system: System, tmp_path: Path
) -> None:
    make, fail = DIALOGS[name]
    app = make_app(system, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await run_screen(pilot)
        dialog = make(system, app)
        app.push_screen(dialog)
        await pilot.pause()
        assert app.screen is dialog
        message = await fail(pilot, dialog)
        await pilot.pause()
        await pilot.pause()
        assert app.screen is dialog, "the dialog stays open"
        line = dialog.query(message).last(Static)
        assert str(line.content), f"{message} says something"
        assert shown(app, line), f"{name}: {message} ({line.content}) is cut off at 80x24"
        for button in dialog.query(Button):
            assert shown(app, button), f"{name}: the {button.label} button is off screen at 80x24"
        box = dialog.query_one(".dialog")
        assert app.screen.region.contains_region(box.region), f"{name}: the dialog runs off the terminal"


async def test_a_long_validation_error_is_shown_whole_beside_apply(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await run_screen(pilot)
        dialog = _edit(system, app)
        app.push_screen(dialog)
        await pilot.pause()
        await _fail_edit(pilot, dialog)
        await pilot.pause()
        await pilot.pause()
        error = dialog.query_one("#edit-error", Static).region
        rows = screen_text(app).splitlines()[error.y : error.bottom]
        said = " ".join(" ".join(row[error.x : error.right] for row in rows).split())
        assert said == f"rejected: {LONG_PROBLEM}", "every word of the error is on screen"
        assert "Apply (ctrl+s)" in screen_text(app)


# -- ids (issue #14 item 4) -----------------------------------------------------------------


async def test_the_sessions_browser_shows_a_forks_parent_id_whole(system: System, tmp_path: Path) -> None:
    async with Store(tmp_path / "store.db") as store:
        parent = await run_session(system, REQUEST, store=store)
        fork = await fork_session(store, parent.session_id, 2)
    assert len(parent.session_id) == 12
    app = make_app(system, tmp_path)
    async with app.run_test(size=(200, 24)) as pilot:
        await run_screen(pilot)
        await pilot.press("escape", "o")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)
        table = app.screen.query_one("#session-list", DataTable)
        cells = {str(table.get_row_at(i)[1]): table.get_row_at(i) for i in range(table.row_count)}
        origin = str(cells[fork.result.session_id][7])
        assert origin == f"⑂ {parent.session_id}@2"
        assert f"⑂ {parent.session_id}@2" in screen_text(app)


# -- the compare screen (issue #14 item 4) --------------------------------------------------


async def test_the_compare_screen_at_80x24_shows_the_summary_and_each_sides_differences(
    system: System, tmp_path: Path
) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        setup = await open_setup(pilot, "billing")
        screen = await start(pilot, setup, "scripted", "scripted/b")
        await finish(pilot)
        summary = screen.query_one("#compare-summary")
        assert shown(app, summary)
        for side in screen.query(".side-diff").results(Static):
            assert shown(app, side), "each side's path and output, with what differs"
            assert "path router → billing   same path" in str(side.content)
        for timeline in screen.query(".compare-side Timeline"):
            assert timeline.region.height >= 4
        text = screen_text(app)
        assert "A scripted    completed" in text and "B scripted/b  completed" in text
        assert "Δ B-A" in text
        # Each side's title keeps its status and its whole session id at 38 columns.
        title_row = text.splitlines()[screen.query_one("#side-a .side-title").region.y]
        for run in screen.sides:
            assert f" {run.key}    COMPLETED " in title_row
            assert re.search(rf"\b{run.results[0].session_id}\b", title_row), title_row
        # Where the comparison is stored is said on the summary (a toast would cover it).
        stored = re.search(r"stored: playground comparisons show ([0-9a-f]{12}) ─╯", text)
        assert stored is not None, text
        assert not app.screen.query("Toast"), "no toast over the summary"


async def test_a_long_compare_summary_scrolls_to_its_last_input(system: System, tmp_path: Path) -> None:
    scenarios = str(Path(__file__).resolve().parent.parent / "agents" / "support_router.scenarios.yaml")
    app = make_app(system, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        setup = await open_setup(pilot, "billing")
        screen = await start(pilot, setup, "scripted", "scripted/b", scenarios=scenarios)
        await finish(pilot)
        summary = screen.query_one("#compare-summary")
        assert shown(app, summary)
        assert len(screen.reports) > 3
        assert summary.allow_vertical_scroll, "rows past the summary's height scroll, not cut"
        summary.focus()
        await pilot.press("end")
        await pilot.pause()
        region = summary.content_region
        rows = screen_text(app).splitlines()[region.y : region.bottom]
        assert "Δ B-A" in rows[-1], "the last input's delta row is reachable"


async def test_a_rejected_handoff_edit_at_80x24_keeps_its_error_and_buttons_in_view(
    system: System, tmp_path: Path
) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        screen = await run_screen(pilot)
        dialog = await edit_routers_handoff(pilot, screen)
        wrong = {"customer_id": 17, "question": ["not", "a", "string"], **{f"note_{i}": i for i in range(6)}}
        dialog.query_one(TextArea).text = json.dumps(wrong, indent=2)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.pause()
        assert app.screen is dialog, "a rejected edit keeps the dialog open"
        error = dialog.query_one("#edit-error", Static)
        assert str(error.content).startswith("rejected: ")
        assert "customer_id" in str(error.content)
        assert shown(app, error), str(error.content)
        for button in dialog.query(Button):
            assert shown(app, button)
        await pilot.click(dialog.query_one("#edit-cancel", Button))
        await pilot.pause()
        assert app.screen is screen  # type: ignore[comparison-overlap]  # narrowed before the await
        await pilot.press("a")
        await finish(pilot)
