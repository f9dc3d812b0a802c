"""Choose a model for one agent: one of those in use, or any litellm model string."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option


class ModelSwapScreen(ModalScreen[str | None]):
    """Returns the chosen model string, or None when cancelled.

    Args:
        agent: The agent whose model is swapped.
        current: Its model now.
        choices: Models in use in the system.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="swap.cancel", tooltip="Keep the model")]

    def __init__(self, agent: str, current: str, choices: list[str]) -> None:
        super().__init__()
        self.agent = agent
        self.current = current
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(id="swap-dialog", classes="dialog"):
            yield Label(f"Model for {self.agent} (now {self.current})", classes="dialog-title")
            yield Static("Models in use:", classes="dim")
            yield OptionList(
                *(Option(f"{m}  (current)" if m == self.current else m, id=m) for m in self.choices),
                id="swap-choices",
            )
            yield Static("Or type any litellm model string:", classes="dim")
            yield Input(placeholder="e.g. openai/gpt-4o-mini, ollama/llama3.1", id="swap-input")
            yield Static(
                "A new version of the agent is recorded and runs from the next request.",
                classes="dim",
            )

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if value:
            self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
