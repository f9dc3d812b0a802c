"""Choose a model for one agent (one of those in use, or any litellm model string with its
provider) and the environment variable its API key is read from."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from pydantic import ValidationError
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from playground.errors import PlaygroundError
from playground.spec.identity import canonical_spec
from playground.spec.models import AgentSpec
from playground.tui.screens.dialog import say


@dataclass(frozen=True)
class ModelChoice:
    """What the operator chose in the dialog."""

    model: str
    """With its provider (``openai/gpt-4o``), or ``scripted`` / ``scripted/<label>``."""
    api_key_env: str
    """The environment variable the API key is read from; empty for none."""


def is_scripted(model: str) -> bool:
    """The offline scripted model (``scripted`` or ``scripted/<label>``): no provider to check."""
    return model == "scripted" or model.startswith("scripted/")


def swapped_spec(spec: AgentSpec, model: str, api_key_env: str | None = None) -> AgentSpec:
    """``spec`` running ``model``, its key from ``api_key_env`` ("" drops it, None keeps what
    it was), validated as the system file's spec is (an ``*_env`` value must name a variable).

    Raises:
        ValueError: the spec refuses it (the message says why).
    """
    settings = dict(spec.model_settings)
    if api_key_env is not None:
        settings.pop("api_key_env", None)
        if api_key_env:
            settings["api_key_env"] = api_key_env
    data = {**json.loads(canonical_spec(spec)), "model": model, "model_settings": settings}
    try:
        return AgentSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ValueError(problems) from None


def _resolve(model: str) -> str:
    """The model string to record (see :func:`playground.llm.litellm_model.resolve_model`)."""
    from playground.llm.litellm_model import resolve_model  # litellm: imported only here, in a thread

    return resolve_model(model)


class ModelSwapScreen(ModalScreen[ModelChoice | None]):
    """Returns the chosen model and key variable, or None when cancelled.

    A model other than the scripted one is checked with litellm (in a thread: its first
    import takes seconds) before the dialog closes: litellm must know which provider serves
    it. A bare name litellm knows is recorded with its provider (``gpt-4o`` ->
    ``openai/gpt-4o``); anything else stays open with the reason.

    Args:
        agent: The agent whose model is swapped.
        spec: Its active spec (its model and settings now).
        choices: Models in use in the system.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="swap.cancel", tooltip="Keep the model")]

    def __init__(self, agent: str, spec: AgentSpec, choices: list[str]) -> None:
        super().__init__()
        self.agent = agent
        self.spec = spec
        self.current = spec.model
        self.choices = choices

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="swap-dialog", classes="dialog"):
            yield Label(f"Model for {self.agent} (now {self.current})", classes="dialog-title")
            yield Static("Models in use:", classes="dim")
            yield OptionList(
                *(Option(f"{m}  (current)" if m == self.current else m, id=m) for m in self.choices),
                id="swap-choices",
            )
            yield Static("Or type a litellm model string, with its provider:", classes="dim")
            yield Input(
                placeholder="e.g. openai/gpt-4o-mini, ollama/llama3.1, scripted/label", id="swap-input"
            )
            yield Static("api_key_env, the variable holding the API key (not the key):", classes="dim")
            yield Input(
                str(self.spec.model_settings.get("api_key_env") or ""),
                placeholder="e.g. OPENAI_API_KEY",
                id="swap-key-env",
            )
            yield Static("", id="swap-error", classes="error")
            yield Static("Saved as a new version of the agent; the next run uses it.", classes="dim")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.check(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        typed = self.query_one("#swap-input", Input).value.strip()
        if event.input.id == "swap-input" and not typed:
            self._error("Type a model string, or pick one of those in use.")
            return
        self.check(typed or self.current)

    def _error(self, message: str) -> None:
        say(self.query_one("#swap-error", Static), message)

    @work(exclusive=True, exit_on_error=False, group="swap-check")
    async def check(self, model: str) -> None:
        """Validate the choice (litellm knows the provider, the key variable is a name), then close."""
        env = self.query_one("#swap-key-env", Input).value.strip()
        try:
            swapped_spec(self.spec, model, env)
        except ValueError as exc:
            self._error(f"Not valid: {exc}")
            return
        if not is_scripted(model):
            self._error("Checking the model with litellm…")
            try:
                model = await asyncio.to_thread(_resolve, model)
            except PlaygroundError as exc:
                self._error(str(exc))
                return
        self.dismiss(ModelChoice(model, env))

    def action_cancel(self) -> None:
        self.dismiss(None)
