"""What the model saw (i), editing a held model call (e), and editing an agent (E), in the TUI.

The support router runs with the scripted model at zero latency; tests wait on workers and
on ``controller.wait_paused()``, never on the wall clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Static, TextArea

from playground.engine import events as ev
from playground.llm.base import LLM, ModelRequest
from playground.llm.scripted import ScriptedLLM
from playground.redact import check_env_name
from playground.spec import System, load_system
from playground.spec.models import AgentSpec
from playground.tui.screens.agent_editor import AgentEditorScreen, SaveVersionScreen, edited_spec
from playground.tui.screens.call_edit import CallEditScreen
from playground.tui.screens.keys import KeysScreen
from playground.tui.screens.model_call import ModelCallScreen
from playground.tui.screens.run import RunScreen
from playground.tui.screens.versions import VersionsScreen
from playground.tui.widgets.agent_pane import AgentPane
from playground.tui.widgets.spec_diff import SpecDiff
from playground.tui.widgets.timeline import Timeline
from tests.helpers import example_copy
from tests.test_tui import (
    SIZE,
    finish,
    make_app,
    pane_text,
    router_copy,
    run_screen,
    start_stepping,
    type_request,
)
from tests.test_tui_sessions import make_app as home_app
from tests.test_tui_sessions import open_read_only, record

NEW_INSTRUCTIONS = "Send every request to technical support, whatever it says."


def billing_with_settings(tmp_path: Path) -> System:
    """The router example, billing calling with ``temperature`` and ``max_tokens``."""
    path = router_copy(tmp_path)
    text = path.read_text(encoding="utf-8")
    marker = "    tools: [lookup_invoice]\n"
    assert text.count(marker) == 1
    path.write_text(
        text.replace(marker, marker + "    model_settings: {temperature: 0.2, max_tokens: 300}\n"),
        encoding="utf-8",
    )
    return load_system(path)


def recording_factory(received: list[ModelRequest]) -> Any:
    """The scripted model, keeping every request it is sent."""

    class Recording(ScriptedLLM):
        async def complete(self, request: ModelRequest, on_delta: Any = None) -> Any:
            received.append(request)
            return await super().complete(request, on_delta)

    def factory(agent: AgentSpec, model: str) -> LLM:
        return Recording(agent.name, agent.script, 0.0, 0.0)

    return factory


def showing(pilot: Pilot[Any]) -> object:
    """The screen on top now (typed loosely: mypy would keep an earlier narrowing)."""
    return pilot.app.screen


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)


async def open_call(pilot: Pilot[Any]) -> ModelCallScreen:
    """Press i; wait until the call is read (not for a held run's worker)."""
    await pilot.press("i")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ModelCallScreen)
    await settle(pilot, screen)
    return screen


async def settle(pilot: Pilot[Any], screen: Any) -> None:
    """Wait for ``screen``'s workers (not for a held run's), then let the app catch up."""
    workers = [w for w in pilot.app.workers if w.node is screen]
    if workers:  # an empty list would wait for every worker
        await pilot.app.workers.wait_for_complete(workers)
    await pilot.pause()
    await pilot.pause()


async def abort(pilot: Pilot[Any], screen: RunScreen) -> None:
    """Let a held run go (aborted), so the app can close."""
    assert screen.controller is not None
    screen.controller.abort()
    await finish(pilot)


async def select_row(pilot: Pilot[Any], screen: RunScreen, kind: str, agent: str) -> None:
    row = next(s for s in screen.view.steps if s.kind == kind and s.agent == agent)
    timeline = screen.query_one(Timeline)
    timeline.select(row)
    timeline.focus()
    await pilot.pause()


# -- what the model saw --------------------------------------------------------------------------


async def test_i_shows_the_full_request_and_response_of_a_past_model_call(tmp_path: Path) -> None:
    app = make_app(billing_with_settings(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen)
        await pilot.press("enter")
        await finish(pilot)
        assert screen.view.status == "completed"
        await select_row(pilot, screen, "model_call", "billing")
        call = await open_call(pilot)
        assert call.call is not None and call.call.agent == "billing" and call.call.status == "answered"
        settings = text_of(call, "#call-settings")
        assert "temperature: 0.2" in settings and "max_tokens: 300" in settings
        assert "You answer billing questions." in text_of(call, "#call-system")
        messages = text_of(call, "#call-messages")
        assert '#1 user\n{"customer_id":"C-1"' in messages  # the handoff context billing received
        tools = text_of(call, "#call-tools")
        assert "lookup_invoice" in tools and '"customer_id": {"type": "string"}' in tools
        response = text_of(call, "#call-response")
        assert "→ lookup_invoice" in response and '{"customer_id": "C-1"}' in response
        assert "usage " in response and " in / " in response and "$0.0000" in response
        assert "call 2 of 3" in text_of(call, "#call-summary")
        # The summary counts the messages as their box does (the system prompt apart).
        assert "system prompt + 1 message · 1 tool" in text_of(call, "#call-summary")
        assert call.query_one("#call-messages", Static).border_title == "messages (1)"
        # ] goes to billing's second call: its tool result came back, and it answered.
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert "call 3 of 3" in text_of(call, "#call-summary")
        assert "system prompt + 3 messages" in text_of(call, "#call-summary")
        assert "#3 tool" in text_of(call, "#call-messages")
        assert "I checked your account" in text_of(call, "#call-response")
        # f1 names the screen in words (its class is ModelCallScreen).
        await pilot.press("f1")
        await pilot.pause()
        keys = showing(pilot)
        assert isinstance(keys, KeysScreen)
        assert keys.title_text.endswith("· model call screen")
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert showing(pilot) is screen


async def test_i_in_a_stored_session_shows_the_call_read_only(tmp_path: Path) -> None:
    system = billing_with_settings(tmp_path)
    session_id = await record(tmp_path, system)
    app = home_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_read_only(pilot, session_id)
        await select_row(pilot, screen, "model_call", "router")
        call = await open_call(pilot)
        assert "You are the front desk" in text_of(call, "#call-system")
        assert "transfer_to_billing" in text_of(call, "#call-tools")
        assert "→ transfer_to_billing" in text_of(call, "#call-response")
        assert not call.check_action("edit", ())  # nothing is held in a stored session


async def test_i_at_a_held_call_shows_what_is_about_to_be_sent(tmp_path: Path) -> None:
    app = make_app(billing_with_settings(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await start_stepping(pilot, screen)
        call = await open_call(pilot)
        assert call.call is not None and call.call.status == "held" and call.call.agent == "router"
        assert "not sent yet" in text_of(call, "#call-response")
        assert "transfer_to_technical" in text_of(call, "#call-tools")
        assert "I was charged twice" in text_of(call, "#call-messages")
        assert call.check_action("edit", ())
        await abort(pilot, screen)


# -- editing a held model call -------------------------------------------------------------------


async def held_call_editor(pilot: Pilot[Any], screen: RunScreen) -> CallEditScreen:
    """Step to the router's first model call, open it with i, press e."""
    await start_stepping(pilot, screen)
    await open_call(pilot)
    await pilot.press("e")
    await pilot.pause()
    editor = pilot.app.screen
    assert isinstance(editor, CallEditScreen)
    return editor


async def test_edited_instructions_at_a_held_call_are_what_the_model_receives(tmp_path: Path) -> None:
    received: list[ModelRequest] = []
    app = make_app(load_system(router_copy(tmp_path)), tmp_path, llm_factory=recording_factory(received))
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        editor = await held_call_editor(pilot, screen)
        editor.query_one("#call-edit-instructions", TextArea).text = NEW_INSTRUCTIONS
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert showing(pilot) is screen  # the edit went to the run, which holds at its next gate
        assert screen.controller is not None
        await screen.controller.wait_paused()
        await pilot.press("c")
        await finish(pilot)
        assert screen.view.status == "completed"
        assert received[0].messages[0]["content"] == NEW_INSTRUCTIONS
        events = await app.store.events(screen.view.session_id)
        sent = next(e for e in events if isinstance(e, ev.ModelRequested))
        assert sent.messages[0]["content"] == NEW_INSTRUCTIONS
        edit = next(e for e in events if isinstance(e, ev.OperatorActed) and e.action == "edit")
        assert edit.gate == "model_call" and edit.detail["changed"] == ["instructions"]
        assert edit.detail["instructions"] == NEW_INSTRUCTIONS
        assert "⚑ operator edit at model call: instructions" in pane_text(screen, "router")
        # The router's version is unchanged: nothing was saved.
        assert screen.specs["router"].instructions != NEW_INSTRUCTIONS
        # The past call now says it was edited, and shows what was sent.
        await select_row(pilot, screen, "model_call", "router")
        call = await open_call(pilot)
        assert "edited by the operator before it was sent: instructions" in text_of(call, "#call-edit-note")
        assert NEW_INSTRUCTIONS in text_of(call, "#call-system")


async def test_an_edited_message_at_a_held_call_changes_the_scripted_route(tmp_path: Path) -> None:
    app = make_app(load_system(router_copy(tmp_path)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await start_stepping(pilot, screen)
        await pilot.press("e")  # e at a held model call opens the call's editor directly
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, CallEditScreen)
        messages = editor.query_one("#call-edit-messages", TextArea)
        assert "I was charged twice" in messages.text
        messages.text = '[{"role": "user", "content": "the API is down with an error"}]'
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen.controller is not None
        await screen.controller.wait_paused()
        await pilot.press("c")
        await finish(pilot)
        assert screen.view.path == ["router", "technical"]


async def test_a_refused_call_edit_says_why_and_the_run_stays_held(tmp_path: Path) -> None:
    app = make_app(load_system(router_copy(tmp_path)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        editor = await held_call_editor(pilot, screen)
        editor.query_one("#call-edit-messages", TextArea).text = '[{"role": "tool", "content": "x"}]'
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert showing(pilot) is editor
        assert "no earlier message made" in text_of(editor, "#call-edit-error")
        editor.query_one("#call-edit-messages", TextArea).text = "[not json"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "not valid JSON" in text_of(editor, "#call-edit-error")
        await pilot.press("escape")
        await pilot.pause()
        assert screen.controller is not None and screen.controller.pending is not None
        await abort(pilot, screen)


async def test_the_call_editor_says_what_esc_does_the_call_stays_held(tmp_path: Path) -> None:
    """esc closes the editor and the call stays held (s or c makes it as it was): the hint and
    the refusal of an unchanged edit say so, not that esc makes the call."""
    app = make_app(load_system(router_copy(tmp_path)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        editor = await held_call_editor(pilot, screen)
        assert "esc closes; it stays held" in text_of(editor, "#call-edit-error")
        await pilot.press("ctrl+s")  # nothing changed
        await pilot.pause()
        refusal = text_of(editor, "#call-edit-error")
        assert "nothing changed" in refusal and "then s or c makes the call" in refusal
        await pilot.press("escape")
        await pilot.pause()
        assert showing(pilot) is not editor
        assert screen.controller is not None and screen.controller.pending is not None
        assert screen.controller.pending.kind == "model_call"  # not made: still held
        await abort(pilot, screen)


@pytest.mark.parametrize("example", ["support_router", "content_pipeline"])
async def test_the_call_editor_fits_80x24_with_its_title_in_view(example: str, tmp_path: Path) -> None:
    """The router's call, and a pipeline stage's (whose system prompt adds a reply shape,
    shown on one line after the instructions)."""
    app = make_app(load_system(example_copy(tmp_path, example)), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await run_screen(pilot)
        editor = await held_call_editor(pilot, screen)
        await pilot.pause()
        dialog = editor.query_one("#call-edit-dialog")
        # Nothing to scroll: the title (which call), the hint and the save box all show.
        assert dialog.max_scroll_y == 0 and dialog.scroll_y == 0
        assert bool(editor.query("#call-edit-added")) == (example == "content_pipeline")
        assert editor.query_one("#call-edit-instructions", TextArea).size.height >= 3
        assert editor.query_one("#call-edit-messages", TextArea).size.height >= 2
        await pilot.press("escape")
        await pilot.pause()
        await abort(pilot, screen)


async def test_instructions_edited_at_a_held_call_can_be_saved_as_a_version(tmp_path: Path) -> None:
    app = make_app(load_system(router_copy(tmp_path)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await finish(pilot)
        before = await app.store.active_versions(screen.system.name)
        editor = await held_call_editor(pilot, screen)
        editor.query_one("#call-edit-instructions", TextArea).text = NEW_INSTRUCTIONS
        editor.query_one("#call-edit-save", Checkbox).value = True
        await pilot.press("ctrl+s")
        await pilot.pause()
        agent_editor = app.screen
        assert isinstance(agent_editor, AgentEditorScreen) and agent_editor.agent == "router"
        await settle(pilot, agent_editor)
        assert agent_editor.query_one("#agent-edit-instructions", TextArea).text == NEW_INSTRUCTIONS
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, SaveVersionScreen)
        diff = str(dialog.query_one(SpecDiff).content)
        assert f"+{NEW_INSTRUCTIONS}" in diff and "-You are the front desk" in diff
        assert "edited at step 1 of session" in dialog.query_one(Input).value
        await pilot.press("enter")
        await settle(pilot, agent_editor)
        assert showing(pilot) is screen
        after = await app.store.active_versions(screen.system.name)
        assert after["router"] != before["router"]
        newest = (await app.store.versions(screen.system.name, "router"))[0]
        assert newest.version_id == after["router"] and newest.active and newest.source == "operator"
        assert "edited at step 1 of session" in newest.note
        assert screen.specs["router"].instructions == NEW_INSTRUCTIONS  # what the next run uses
        await abort(pilot, screen)


# -- editing an agent ----------------------------------------------------------------------------


async def open_editor(pilot: Pilot[Any], screen: RunScreen, agent: str) -> AgentEditorScreen:
    await finish(pilot)
    screen.query_one(f"#pane-{agent}", AgentPane).focus()
    await pilot.press("E")
    await finish(pilot)
    editor = pilot.app.screen
    assert isinstance(editor, AgentEditorScreen) and editor.active is not None
    return editor


async def test_an_agent_edited_in_the_tui_is_saved_as_an_operator_version_after_its_diff(
    tmp_path: Path,
) -> None:
    app = make_app(load_system(router_copy(tmp_path)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        editor = await open_editor(pilot, screen, "billing")
        instructions = editor.query_one("#agent-edit-instructions", TextArea)
        assert instructions.text.startswith("You answer billing questions.")
        model = editor.query_one("#agent-edit-model", Input)
        assert model.value == "scripted"
        # Nothing changed yet: nothing to save.
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert showing(pilot) is editor and "Nothing changed" in text_of(editor, "#agent-edit-error")
        # A model without its provider is refused, with the way to write it.
        model.value = "gpt-4o"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "openai/gpt-4o" in text_of(editor, "#agent-edit-error")
        model.value = "openai/gpt-4o-mini"
        editor.query_one("#agent-edit-key-env", Input).value = "BILLING_OPENAI_KEY"
        editor.query_one("#agent-edit-settings", TextArea).text = '{"temperature": 0.3}'
        instructions.text = "Answer billing questions in one sentence."
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, SaveVersionScreen)
        diff = str(dialog.query_one(SpecDiff).content)
        assert "model: scripted -> openai/gpt-4o-mini" in diff
        assert "+Answer billing questions in one sentence." in diff
        assert "temperature" in diff and "api_key_env" in diff
        dialog.query_one(Input).value = "one-sentence answers on gpt-4o-mini"
        await pilot.press("enter")
        await finish(pilot)
        assert showing(pilot) is screen
        newest = (await app.store.versions(screen.system.name, "billing"))[0]
        assert newest.active and newest.source == "operator"
        assert newest.note == "one-sentence answers on gpt-4o-mini"
        spec = screen.specs["billing"]
        assert spec.model == "openai/gpt-4o-mini"
        assert spec.model_settings == {"temperature": 0.3, "api_key_env": "BILLING_OPENAI_KEY"}
        assert spec.instructions == "Answer billing questions in one sentence."
        assert screen.view.agents["billing"].version == newest.version_id


async def test_esc_leaves_the_agent_unchanged(tmp_path: Path) -> None:
    app = make_app(load_system(router_copy(tmp_path)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        editor = await open_editor(pilot, screen, "general")
        before = await app.store.versions(screen.system.name, "general")
        editor.query_one("#agent-edit-instructions", TextArea).text = "something else"
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("escape")  # back to editing from the diff
        await pilot.pause()
        assert showing(pilot) is editor
        await pilot.press("escape")
        await finish(pilot)
        assert showing(pilot) is screen
        assert await app.store.versions(screen.system.name, "general") == before


async def test_e_on_the_versions_screen_edits_the_agent_shown(tmp_path: Path) -> None:
    app = make_app(load_system(router_copy(tmp_path)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await finish(pilot)
        screen.query_one("#pane-technical", AgentPane).focus()
        await pilot.press("v")
        await finish(pilot)
        versions = app.screen
        assert isinstance(versions, VersionsScreen) and versions.agent == "technical"
        await pilot.press("e")
        await finish(pilot)
        editor = app.screen
        assert isinstance(editor, AgentEditorScreen) and editor.agent == "technical"
        editor.query_one("#agent-edit-instructions", TextArea).text = "Check the status page first."
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("enter")
        await finish(pilot)
        assert showing(pilot) is versions
        active = versions.active_row()
        assert active is not None and active.source == "operator" and versions.selected == active.version_id
        assert len(versions.rows) == 2


def test_the_agent_editor_refuses_a_key_pasted_as_its_variable_by_the_system_files_rule() -> None:
    active = AgentSpec.model_validate({"model": "scripted", "instructions": "x"})

    def edit(key_env: str) -> AgentSpec | str:
        return edited_spec(
            active, model="openai/gpt-4o", instructions="x", settings_json="{}", key_env=key_env
        )

    assert edit("sk-proj-not-a-name") == f"api_key_env {check_env_name('sk-proj-not-a-name')}"
    edited = edit("BILLING_OPENAI_KEY")
    assert isinstance(edited, AgentSpec) and edited.model_settings == {"api_key_env": "BILLING_OPENAI_KEY"}
