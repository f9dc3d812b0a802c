"""Type a breakpoint on what an agent has spent: ``cost:AGENT>USD`` or ``latency:AGENT>MS``."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from playground.tui.metric_breakpoints import MetricPoint, parse_metric_point
from playground.tui.screens.dialog import say


class BreakpointScreen(ModalScreen[MetricPoint | None]):
    """Returns the typed breakpoint, or None when cancelled.

    Args:
        agents: The system's agents (a breakpoint names one, or ``*``).
        current: The breakpoints set now (typing one again removes it).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="breakpoint.cancel", tooltip="Set nothing")]

    def __init__(self, agents: list[str], current: list[str]) -> None:
        super().__init__()
        self.agents = agents
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="breakpoint-dialog", classes="dialog"):
            yield Label("Break when an agent's cost or latency passes a value", classes="dialog-title")
            yield Input(placeholder="cost:billing>0.01  ·  latency:*>500", id="breakpoint-point")
            yield Static("", id="breakpoint-error", classes="error")
            now = ", ".join(self.current) or "none"
            yield Static(
                f"agents: {', '.join(self.agents)} · set now: {now}\n"
                "enter sets it (typing one that is set removes it) · esc cancels",
                classes="dim",
            )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        point = parse_metric_point(event.value, self.agents)
        if isinstance(point, str):
            say(self.query_one("#breakpoint-error", Static), point)
            return
        self.dismiss(point)

    def action_cancel(self) -> None:
        self.dismiss(None)
