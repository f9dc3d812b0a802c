"""Deny a held tool call that needs approval, with a reason the model is told."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

REASON_LIMIT = 500
"""Characters of a reason: it goes into the model's next prompt."""


class DenyReasonScreen(ModalScreen[str | None]):
    """Returns the reason (maybe empty), or None when cancelled.

    Args:
        call: The held call, as the banner shows it (``refund(order_id=A-17, amount=40)``).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="deny.cancel", tooltip="Leave the call held")]

    def __init__(self, call: str) -> None:
        super().__init__()
        self.call = call

    def compose(self) -> ComposeResult:
        with Vertical(id="deny-dialog", classes="dialog"):
            yield Label(f"Deny {self.call}", classes="dialog-title")
            yield Input(placeholder="why (the model is told)", max_length=REASON_LIMIT, id="deny-reason")
            yield Static("enter denies · esc leaves the call held", classes="dim")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
