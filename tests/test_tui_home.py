"""Getting around the TUI: back home from a run (esc, H, the palette), the home screen's
sessions kept current and shown with their ids, the ``?`` list of a screen's keys, where the
palette's screenshot goes; and the small things an operator would otherwise be misled by:
the model dialog's checks, an unchanged edit, and token figures that are estimates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, TextArea

from playground.engine import events as ev
from playground.spec import System, load_system
from playground.store import Store
from playground.tui.app import PlaygroundApp
from playground.tui.screens.edit_payload import EditPayloadScreen
from playground.tui.screens.home import HomeScreen
from playground.tui.screens.keys import KeysScreen
from playground.tui.screens.model_swap import ModelSwapScreen
from playground.tui.screens.run import RunScreen
from playground.tui.widgets.agent_pane import AgentPane
from tests.test_tui import (
    REQUEST,
    edit_routers_handoff,
    finish,
    make_app,
    router_copy,
    run_screen,
    screen_text,
    start_stepping,
    step_until,
    type_request,
)

SIZE = (120, 40)


@pytest.fixture
def system(tmp_path: Path) -> System:
    return load_system(router_copy(tmp_path))


def workspace(tmp_path: Path) -> Path:
    """An agents/ folder holding the support router (scripted, instant)."""
    agents = tmp_path / "agents"
    agents.mkdir()
    router_copy(agents)
    return agents


async def open_router_from_home(pilot: Pilot[Any]) -> RunScreen:
    """On the home screen of :func:`workspace`: enter opens its one system."""
    await pilot.pause()
    assert isinstance(pilot.app.screen, HomeScreen)
    await pilot.press("enter")
    return await run_screen(pilot)


def messages(app: PlaygroundApp) -> list[str]:
    return [n.message for n in app._notifications]


# -- item 9: a way home, and a home screen that is current -----------------------------------


async def test_esc_goes_home_from_a_run_opened_there_and_home_lists_the_new_session(tmp_path: Path) -> None:
    app = make_app(None, tmp_path, agents_dir=workspace(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        home = app.screen
        assert isinstance(home, HomeScreen) and home.sessions == []
        screen = await open_router_from_home(pilot)
        await type_request(pilot, screen)
        await pilot.press("enter")
        await finish(pilot)
        session_id = screen.view.session_id
        assert screen.view.status == "completed" and len(session_id) == 12
        screen.query_one("#pane-router", AgentPane).focus()
        await pilot.press("escape")
        await finish(pilot)
        assert app.screen is home
        assert isinstance(home, HomeScreen)
        # Listed without f5, with its whole id (what replay, diff and export take).
        assert [row.session_id for row in home.sessions] == [session_id]
        assert session_id in screen_text(app)
        table = home.query_one("#sessions", DataTable)
        assert str(table.get_row_at(0)[1]) == session_id


async def test_esc_never_leaves_a_run_in_progress(tmp_path: Path) -> None:
    app = make_app(None, tmp_path, agents_dir=workspace(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_router_from_home(pilot)
        await start_stepping(pilot, screen)
        await pilot.press("escape")  # focus is on a pane: this would be "back"
        await pilot.pause()
        assert app.screen is screen and screen.controller is not None
        await pilot.press("H")
        await pilot.pause()
        assert app.screen is screen and screen.controller is not None
        assert any("A run is in progress" in m for m in messages(app))
        await pilot.press("a")
        await finish(pilot)
        await pilot.press("escape")
        await finish(pilot)
        assert isinstance(app.screen, HomeScreen)
        assert app.screen.sessions[0].status == "aborted"


async def test_home_from_a_run_screen_opened_on_one_system(system: System, tmp_path: Path) -> None:
    """``playground tui SYSTEM.yaml`` has no home screen below the run screen: H and the
    palette's Home replace it with one."""
    async with Store(tmp_path / "store.db") as store:
        from playground.service import run_session

        done = await run_session(system, REQUEST, store=store)
    app = make_app(system, tmp_path, agents_dir=workspace(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        titles = {c.title: c for c in app.get_system_commands(screen)}
        assert "Home (H)" in titles
        await titles["Home (H)"].callback()  # the palette awaits it too
        await finish(pilot)
        home = app.screen
        assert isinstance(home, HomeScreen) and len(app.screen_stack) == 2
        assert done.session_id in screen_text(app)
        assert "Home (H)" not in {c.title for c in app.get_system_commands(home)}


# -- item 11a: the keys of the screen --------------------------------------------------------


def listed(app: PlaygroundApp) -> str:
    screen = app.screen
    assert isinstance(screen, KeysScreen)
    return "\n".join(f"{' / '.join(r.keys)} {r.description} {r.tooltip} [{r.where}]" for r in screen.rows)


async def test_question_mark_lists_every_key_the_run_screen_offers_now(
    system: System, tmp_path: Path
) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        screen.query_one("#pane-router", AgentPane).focus()
        await pilot.press("question_mark")
        await pilot.pause()
        text = listed(app)
        # Built from the screen's bindings: every one it offers now is there, with its tooltip.
        for binding in RunScreen.BINDINGS:
            assert isinstance(binding, Binding)
            if screen.check_action(binding.action, ()) is False:
                assert f"{binding.description} {binding.tooltip}" not in text
            else:
                assert f"{binding.description} {binding.tooltip} [screen]" in text
        assert "Approve" not in text  # nothing waits for approval
        # e edits whatever holds, a model call too (not only a handoff or a tool's arguments).
        assert "e Edit Edit what the run holds: a handoff context, a stage's output" in text
        assert "a model call's messages and instructions [screen]" in text
        assert "? / f1 Keys" in text and "H Home" in text and "q Quit" in text
        assert "Run to the next gate and pause" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen


async def test_keys_from_the_request_box_say_which_keys_it_types(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        assert isinstance(screen.focused, Input)
        await pilot.press("question_mark")  # typed: the request box takes it
        assert screen.query_one("#request", Input).value == "?"
        await pilot.press("f1")
        await pilot.pause()
        rows = app.screen.rows if isinstance(app.screen, KeysScreen) else []
        assert ("s", "Step") in [(r.keys[0], r.description) for r in rows if r.where == "typing"]
        assert "while the text box has focus these keys type text" in screen_text(app)


async def test_keys_of_the_home_screen(tmp_path: Path) -> None:
    app = make_app(None, tmp_path, agents_dir=workspace(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Keys of this screen (?)" in titles
        await pilot.press("question_mark")
        await pilot.pause()
        text = listed(app)
        assert "o Sessions Browse and filter past sessions [screen]" in text
        assert "f5 Reload" in text and "H Home" not in text


# -- item 11b: the screenshot ----------------------------------------------------------------


async def test_the_palette_screenshot_goes_beside_the_store(
    system: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A home with no Downloads folder: Textual's default place, where saving failed.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    app = PlaygroundApp(system, db_path=tmp_path / "ws" / "store.db")
    (tmp_path / "ws").mkdir()
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        [shot] = [c for c in app.get_system_commands(screen) if c.title == "Screenshot"]
        shot.callback()
        folder = tmp_path / "ws" / "screenshots"
        for _ in range(200):
            await pilot.pause(0.02)
            if any("screenshot" in m.lower() for m in messages(app)):
                break
        saved = list(folder.glob("*.svg"))
        assert len(saved) == 1 and "<svg" in saved[0].read_text(encoding="utf-8")
        assert any(str(saved[0]) in m for m in messages(app)), messages(app)


# -- item 11c: the model dialog --------------------------------------------------------------


async def test_the_model_dialog_checks_the_provider_and_sets_the_key_variable(
    system: System, tmp_path: Path
) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await app.workers.wait_for_complete()
        screen.query_one("#pane-billing", AgentPane).focus()
        await pilot.press("m")
        await pilot.pause()
        first = app.screen
        assert isinstance(first, ModelSwapScreen)
        dialog = first
        model, key_env = dialog.query_one("#swap-input", Input), dialog.query_one("#swap-key-env", Input)

        async def submit(value: str) -> str:
            model.value = value
            model.focus()
            await pilot.press("enter")
            await app.workers.wait_for_complete()  # litellm is asked in a thread
            await pilot.pause()
            return str(dialog.query_one("#swap-error").render()) if app.screen is dialog else ""

        error = await submit("llama3")
        assert app.screen is dialog
        assert "litellm does not know 'llama3': write provider/model, e.g." in error
        error = await submit("foo/bar")
        assert app.screen is dialog and "'foo' is not a provider litellm knows" in error
        key_env.value = "sk-not-a-name"
        error = await submit("openai/gpt-4o-mini")
        assert app.screen is dialog and "names an environment variable" in error
        key_env.value = "BILLING_OPENAI_KEY"
        await submit("gpt-4o")  # litellm knows it: recorded with its provider
        await finish(pilot)
        assert app.screen is screen  # type: ignore[comparison-overlap]  # narrowed before the awaits

        active = await app.store.active_versions(system.name)
        spec = json.loads(await app.store.version_spec(system.name, "billing", active["billing"]))
        assert spec["model"] == "openai/gpt-4o"
        assert spec["model_settings"]["api_key_env"] == "BILLING_OPENAI_KEY"
        assert any(
            "billing now runs openai/gpt-4o, its key from $BILLING_OPENAI_KEY" in m for m in messages(app)
        )

        # Back to scripted (no litellm check), the key variable cleared.
        await pilot.press("m")
        await pilot.pause()
        second = app.screen
        assert isinstance(second, ModelSwapScreen)
        dialog = second
        assert dialog.query_one("#swap-key-env", Input).value == "BILLING_OPENAI_KEY"
        dialog.query_one("#swap-key-env", Input).value = ""
        model = dialog.query_one("#swap-input", Input)
        await submit("scripted/label")
        await finish(pilot)
        active = await app.store.active_versions(system.name)
        spec = json.loads(await app.store.version_spec(system.name, "billing", active["billing"]))
        assert spec["model"] == "scripted/label" and "api_key_env" not in spec.get("model_settings", {})


# -- item 11d: an unchanged edit -------------------------------------------------------------


async def test_saving_an_edit_unchanged_is_no_edit(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        dialog = await edit_routers_handoff(pilot, screen)
        area = dialog.query_one(TextArea)
        area.text = json.dumps(json.loads(area.text))  # the same object, written differently
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen
        await step_until(pilot, screen, "model_call", "billing")  # it stepped, as before
        await pilot.press("c")
        await finish(pilot)
        result = screen.last_result
        assert result is not None and result.status == "completed"
        [delivered] = [e for e in result.events if isinstance(e, ev.HandoffDelivered)]
        assert not delivered.edited
        actions = [e.action for e in result.events if isinstance(e, ev.OperatorActed)]
        assert "edit" not in actions and actions[-1] == "continue"
        text = screen_text(app)
        assert "handoff router → billing · delivered" in text and "edited" not in text
        assert any("Nothing changed" in m for m in messages(app))


async def test_approving_arguments_saved_unchanged_is_a_plain_approval(tmp_path: Path) -> None:
    from tests import test_tui_approval as approval

    (tmp_path / "tools.py").write_text(approval.TOOLS)
    (tmp_path / "refunds.yaml").write_text(approval.SYSTEM)
    app = make_app(load_system(tmp_path / "refunds.yaml"), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await approval.held_for_approval(pilot, screen)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, EditPayloadScreen)
        await pilot.press("ctrl+s")
        await finish(pilot)
        result = screen.last_result
        assert result is not None and result.output == "told them: refunded 40 on A-17"
        [decided] = [e for e in result.events if isinstance(e, ev.ApprovalDecided)]
        assert decided.verdict == "approved" and not decided.edited
        actions = [e.action for e in result.events if isinstance(e, ev.OperatorActed)]
        assert "edit" not in actions
    assert approval.ran(tmp_path) == ["refund A-17 40"]


# -- item 11e: token figures are estimates ---------------------------------------------------


async def test_payload_and_history_tokens_say_they_are_estimates(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await start_stepping(pilot, screen)
        await pilot.press("s")
        await step_until(pilot, screen, "handoff", "router")
        text = screen_text(app)
        assert "payload ≈" in text and "full history ≈" in text
        await pilot.press("c")
        await finish(pilot)
        text = screen_text(app)
        assert "payload ≈" in text and "full history ≈" in text
        # The timeline's row (cut to its column here): its label says so too.
        assert [s.label for s in screen.view.steps if s.kind == "handoff"] == ["handoff → billing · ≈19 tok"]


def test_snapshot_keys_of_the_run_screen_at_80x24(snap_compare: Any, tmp_path: Path) -> None:
    """The ``?`` list over the run screen in the smallest terminal: it fits and scrolls."""
    from tests.test_tui import snapshot_workspace

    app = make_app(load_system(snapshot_workspace(tmp_path) / "router.yaml"), tmp_path)

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await run_screen(pilot)
        screen.query_one("#pane-router", AgentPane).focus()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, KeysScreen)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
