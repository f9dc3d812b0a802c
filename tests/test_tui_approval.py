"""The TUI at a tool call that needs approval: the banner says so and shows the call, y (or
enter) approves, e edits the arguments, n denies with a reason the model is told."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from playground.engine import events as ev
from playground.engine.controller import Gate
from playground.spec import System, load_system
from playground.tui.app import PlaygroundApp
from playground.tui.screens.deny_reason import DenyReasonScreen
from playground.tui.screens.edit_payload import EditPayloadScreen
from playground.tui.screens.run import RunScreen
from tests.test_tui import finish, make_app, run_screen, screen_text, type_request

SIZE = (80, 24)
"""The smallest terminal the screen is made for: the banner and the keys must fit."""

TOOLS = """
import pathlib

LOG = pathlib.Path(__file__).with_name("ran.log")


def lookup(order_id: str) -> str:
    return f"order {order_id}: 40 USD"


def refund(order_id: str, amount: int) -> str:
    with LOG.open("a") as f:
        f.write(f"refund {order_id} {amount}\\n")
    return f"refunded {amount} on {order_id}"
"""

SYSTEM = """
name: refunds
pattern: router
entry: support
tools:
  lookup: tools.py:lookup
  refund: {function: tools.py:refund, approval: required}
agents:
  support:
    tools: [lookup, refund]
    handoffs: [{to: notify, context: {message: str}}]
    script:
      - {tool: lookup, args: {order_id: "A-17"}}
      - {tool: refund, args: {order_id: "A-17", amount: 40}}
      - handoff: notify
        context: {message: "{tool_result}"}
  notify:
    input: {message: str}
    script: [{reply: "told them: {message}"}]
"""


@pytest.fixture
def system(tmp_path: Path) -> System:
    (tmp_path / "tools.py").write_text(TOOLS)
    (tmp_path / "refunds.yaml").write_text(SYSTEM)
    return load_system(tmp_path / "refunds.yaml")


def ran(tmp_path: Path) -> list[str]:
    log = tmp_path / "ran.log"
    return log.read_text().splitlines() if log.exists() else []


async def held_for_approval(pilot: Pilot[Any], screen: RunScreen) -> Gate:
    """Type the request and press enter: the run holds at the refund, whatever the breakpoints."""
    await type_request(pilot, screen, "refund order A-17")
    await pilot.press("enter")
    assert screen.controller is not None
    gate = await screen.controller.wait_paused()
    await pilot.pause()
    assert gate.kind == "tool_call" and gate.payload["approval"] is True
    return gate


def footer_keys(app: PlaygroundApp) -> str:
    return screen_text(app).splitlines()[-1]


async def test_approve_a_held_call_with_y_or_enter(system: System, tmp_path: Path) -> None:
    for key in ("y", "enter"):
        app = make_app(system, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            screen = await run_screen(pilot)
            assert "Approve" not in footer_keys(app)  # only while a call waits
            await held_for_approval(pilot, screen)
            text = screen_text(app)
            assert "APPROVAL NEEDED  before step 4, support wants to run:" in text
            assert "refund(order_id=A-17, amount=40)" in text
            assert "y/enter approve · e edit the arguments · n deny with a reason · a abort" in text
            assert '{"order_id": "A-17", "amount":' in text  # the held call in the inspector
            assert "y Approve" in footer_keys(app) and "n Deny" in footer_keys(app)

            await pilot.press(key)
            await pilot.pause()
            assert "APPROVAL NEEDED" not in screen_text(app)  # released at once, not held on
            await finish(pilot)
            assert "y Approve" not in footer_keys(app)
            result = screen.last_result
            assert result is not None
            assert result.status == "completed", result.error
            assert result.output == "told them: refunded 40 on A-17"
            [decided] = [e for e in result.events if isinstance(e, ev.ApprovalDecided)]
            assert decided.verdict == "approved" and not decided.edited
            actions = [e.action for e in result.events if isinstance(e, ev.OperatorActed)]
            assert actions == ["approve"]
    assert ran(tmp_path) == ["refund A-17 40", "refund A-17 40"]


async def test_deny_a_held_call_with_a_reason(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        gate = await held_for_approval(pilot, screen)

        await pilot.press("n")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, DenyReasonScreen)
        assert "Deny refund(order_id=A-17, amount=40)" in screen_text(app)
        await pilot.press("escape")  # changed their mind: the call stays held
        await pilot.pause()
        assert app.screen is screen and screen.controller is not None
        assert screen.controller.pending is gate

        await pilot.press("n")
        await pilot.pause()
        app.screen.query_one(Input).value = "over the refund limit"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen and "APPROVAL NEEDED" not in screen_text(app)
        await finish(pilot)
        result = screen.last_result
        assert result is not None
        assert result.status == "completed", result.error
        [decided] = [e for e in result.events if isinstance(e, ev.ApprovalDecided)]
        assert decided.verdict == "denied" and decided.reason == "over the refund limit"
        # The model was told, and the tool never ran.
        assert result.output == "told them: Error: a person denied this call of refund: over the refund limit"
        assert not [e for e in result.events if isinstance(e, ev.ToolCalled) and e.tool == "refund"]
        assert "refund denied" in screen_text(app)
        stored = await app.store.events(result.session_id)
        assert [e.reason for e in stored if isinstance(e, ev.ApprovalDecided)] == ["over the refund limit"]
    assert ran(tmp_path) == []


async def test_edit_the_arguments_of_a_held_call(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await held_for_approval(pilot, screen)
        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, EditPayloadScreen)
        assert "Approve support's call to refund with these arguments" in screen_text(app)
        modal.query_one(TextArea).text = json.dumps({"order_id": "A-17", "amount": 25})
        await pilot.press("ctrl+s")
        await finish(pilot)
        result = screen.last_result
        assert result is not None and result.output == "told them: refunded 25 on A-17"
        [decided] = [e for e in result.events if isinstance(e, ev.ApprovalDecided)]
        assert decided.edited and decided.args == {"order_id": "A-17", "amount": 25}
    assert ran(tmp_path) == ["refund A-17 25"]


async def test_y_and_n_do_nothing_at_a_gate_that_is_no_approval(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "refund order A-17")
        await pilot.press("escape", "s")  # step mode: held at the first model call
        assert screen.controller is not None
        gate = await screen.controller.wait_paused()
        await pilot.pause()
        assert gate.kind == "model_call" and "y Approve" not in footer_keys(app)
        await pilot.press("y", "n")
        await pilot.pause()
        assert screen.controller.pending is gate and app.screen is screen
        await pilot.press("c")  # continue: the refund still holds for approval
        gate = await screen.controller.wait_paused()
        await pilot.pause()
        assert gate.payload.get("approval") is True
        await pilot.press("y")
        await finish(pilot)
        assert screen.last_result is not None and screen.last_result.status == "completed"
