"""Edit a held handoff context or tool arguments as JSON, validated before delivery."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static, TextArea

from playground.bounds import LimitExceeded, loads_bounded
from playground.tui.screens.dialog import say


@dataclass(frozen=True)
class Edited:
    """What the operator saved in the dialog."""

    value: dict[str, Any]
    changed: bool
    """Whether ``value`` differs from the held value (as JSON: ``1``, ``1.0`` and ``true``
    differ). Saved unchanged, it is no edit: the held step runs as it was, with no edit event."""


class EditPayloadScreen(ModalScreen[Edited | None]):
    """Returns what was saved (:class:`Edited`), or None when cancelled.

    Args:
        title: What is being edited.
        value: The held value (handoff ``context`` or tool ``args``).
        validate: Checks an edited value; returns an error message or None.
    """

    BINDINGS = [
        Binding("ctrl+s", "apply", "Apply", id="edit.apply", tooltip="Validate and deliver the edit"),
        Binding("escape", "cancel", "Cancel", id="edit.cancel", tooltip="Leave the held value as it was"),
    ]

    def __init__(
        self, title: str, value: dict[str, Any], validate: Callable[[dict[str, Any]], str | None]
    ) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.validate = validate

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-dialog", classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield TextArea(
                json.dumps(self.value, indent=2, ensure_ascii=False), id="edit-json", show_line_numbers=True
            )
            yield Static("", id="edit-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply (ctrl+s)", id="edit-apply", variant="primary")
                yield Button("Cancel (esc)", id="edit-cancel")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "edit-apply":
            self.action_apply()
        else:
            self.action_cancel()

    def action_apply(self) -> None:
        error = self.query_one("#edit-error", Static)
        try:
            value = loads_bounded(self.query_one(TextArea).text, "the edit")
        except LimitExceeded as exc:
            say(error, str(exc))
            return
        except ValueError as exc:
            say(error, f"not valid JSON: {exc}")
            return
        if not isinstance(value, dict):
            say(error, "the value must be a JSON object")
            return
        problem = self.validate(value)
        if problem is not None:
            say(error, f"rejected: {problem}")
            return
        self.dismiss(Edited(value, _canonical(value) != _canonical(self.value)))

    def action_cancel(self) -> None:
        self.dismiss(None)


def _canonical(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
