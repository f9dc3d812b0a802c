"""Edit a held model call: the agent's instructions for this call, and its messages as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Label, Static, TextArea

from playground.bounds import LimitExceeded, loads_bounded
from playground.engine.controller import Gate
from playground.tui.state import possessive

HINT = "ctrl+s makes the call with your edit · esc closes; it stays held"


@dataclass(frozen=True)
class CallEdit:
    """An operator's edit of a held model call.

    Attributes:
        payload: What :meth:`StepController.edit` takes: ``instructions`` and ``messages``.
        save: Also save the instructions as a new version of the agent (after a diff).
    """

    payload: dict[str, Any]
    save: bool = False

    @property
    def instructions(self) -> str:
        return str(self.payload.get("instructions") or "")


class CallEditScreen(ModalScreen[CallEdit | None]):
    """Returns the edit, or None when cancelled.

    The system message is the agent's instructions and what the run adds to them (a reply
    shape, an earlier conversation): the instructions are edited on their own, the rest of
    the conversation as a JSON list.

    Args:
        gate: The held ``model_call`` gate (its payload from :func:`~playground.engine.call_edits.held_call`).
    """

    CSS_PATH = "model_call.tcss"  # its styles live with the model call screen's
    BINDINGS = [
        Binding(
            "ctrl+s",
            "apply",
            "Send",
            id="call_edit.apply",
            tooltip="Validate the edit and make the call with it",
        ),
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="call_edit.cancel",
            tooltip="Close without an edit: the call stays held (s or c then makes it as it was)",
        ),
    ]

    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.gate = gate
        payload = gate.payload
        self.instructions: str = payload.get("instructions") or ""
        self.messages: list[dict[str, Any]] = list(payload.get("messages") or [])

    def compose(self) -> ComposeResult:
        system = str(self.messages[0].get("content") or "") if self.messages else ""
        added = system[len(self.instructions) :] if system.startswith(self.instructions) else ""
        with Vertical(id="call-edit-dialog", classes="dialog"):
            yield Label(
                f"Edit {possessive(self.gate.agent)} call at step {self.gate.step} (this call only)",
                classes="dialog-title",
            )
            yield Static(HINT, id="call-edit-error")
            yield Static("Instructions (the system prompt):", classes="dim")
            yield TextArea(self.instructions, id="call-edit-instructions", soft_wrap=True)
            if added.strip():
                yield Static(
                    f"The run adds after them: {' '.join(added.split())[:200]}",
                    id="call-edit-added",
                    classes="dim",
                )
            yield Static("Messages after the system prompt (JSON):", classes="dim")
            yield TextArea(
                json.dumps(self.messages[1:], indent=2, ensure_ascii=False),
                id="call-edit-messages",
                show_line_numbers=True,
            )
            yield Checkbox(
                "Also save these instructions as a new version of the agent",
                id="call-edit-save",
                compact=True,
            )

    def on_mount(self) -> None:
        self.query_one("#call-edit-instructions", TextArea).focus()

    def action_apply(self) -> None:
        try:
            rest = loads_bounded(self.query_one("#call-edit-messages", TextArea).text, "the messages")
        except LimitExceeded as exc:
            self._refuse(str(exc))
            return
        except ValueError as exc:
            self._refuse(f"the messages are not valid JSON: {exc}")
            return
        if not isinstance(rest, list):
            self._refuse("the messages must be a JSON list of {role, content} objects")
            return
        instructions = self.query_one("#call-edit-instructions", TextArea).text
        payload = {"instructions": instructions, "messages": [*self.messages[:1], *rest]}
        if instructions == self.instructions and payload["messages"] == self.messages:
            self._refuse("nothing changed: esc closes, then s or c makes the call as it was")
            return
        problem = self.gate.validate(payload)
        if problem is not None:
            self._refuse(f"rejected: {problem}")
            return
        save = self.query_one("#call-edit-save", Checkbox).value
        if save and instructions == self.instructions:
            self._refuse("the instructions are unchanged: there is no new version to save")
            return
        self.dismiss(CallEdit(payload, save=save))

    def _refuse(self, why: str) -> None:
        error = self.query_one("#call-edit-error", Static)
        error.update(Text(why))  # not markup: an error may quote brackets
        error.add_class("-error")

    def action_cancel(self) -> None:
        self.dismiss(None)
