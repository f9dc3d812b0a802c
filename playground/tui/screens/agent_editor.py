"""Edit an agent: its instructions, model, settings and ``api_key_env``, saved as a version.

Opened with ``E`` from the run screen (the focused agent) or ``e`` from the versions
screen, and after an edit of a held call's instructions when the operator asked to keep
them. It starts from the agent's active version; ``ctrl+s`` shows the diff against that
version and asks for a note, and saving records a new ``operator`` version and makes it
active: the next run uses it, and ``v`` can roll it back. Nothing is written before that.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Header, Input, Label, Static, TextArea

from playground import redact
from playground.bounds import LimitExceeded, loads_bounded
from playground.errors import PlaygroundError
from playground.service import active_agents
from playground.spec.identity import canonical_spec, version_id_of_json
from playground.spec.load import System
from playground.spec.models import AgentSpec
from playground.spec.schema import format_validation_error
from playground.store.store import Store
from playground.tui.state import possessive
from playground.tui.widgets.folding_footer import FoldingFooter
from playground.tui.widgets.spec_diff import SpecDiff
from playground.versions import NO_DIFFERENCES, diff_specs

KEY_ENV = "api_key_env"


def model_problem(model: str) -> str | None:
    """Why ``model`` is not a model string an agent can run, or None."""
    if not model:
        return "the model is empty"
    if any(c.isspace() for c in model):
        return f"the model {model!r} has a space in it"
    if model != "scripted" and not model.startswith("scripted/") and "/" not in model:
        return f"write the model with its provider, e.g. openai/{model} (a litellm model string)"
    return None


def edited_spec(
    active: AgentSpec, *, model: str, instructions: str, settings_json: str, key_env: str
) -> AgentSpec | str:
    """``active`` with the edited fields, validated as a spec; or why the edit is refused."""
    problem = model_problem(model)
    if problem is not None:
        return problem
    try:
        settings = loads_bounded(settings_json or "{}", "the settings")
    except LimitExceeded as exc:
        return str(exc)
    except ValueError as exc:
        return f"the settings are not valid JSON: {exc}"
    if not isinstance(settings, dict):
        return 'the settings must be a JSON object, e.g. {"temperature": 0.2}'
    if KEY_ENV in settings:
        return f"set {KEY_ENV} in its own field, not in the settings"
    if key_env:
        problem = redact.check_env_name(key_env)  # the system file's rule, not a copy of it
        if problem is not None:
            return f"{KEY_ENV} {problem}"
        settings[KEY_ENV] = key_env
    data: dict[str, Any] = json.loads(canonical_spec(active))
    data.update(model=model, instructions=instructions, model_settings=settings)
    try:
        return AgentSpec.model_validate(data)
    except ValidationError as exc:
        return format_validation_error(exc)


class SaveVersionScreen(ModalScreen[str | None]):
    """The diff of an edit against the active version, and a note: returns the note, or None.

    Args:
        agent: The edited agent.
        diff: :func:`~playground.versions.diff_specs` of the active version and the edit.
        note: The note offered.
    """

    CSS_PATH = "agent_editor.tcss"
    BINDINGS = [Binding("escape", "cancel", "Back", id="save_version.cancel", tooltip="Back to editing")]

    def __init__(self, agent: str, diff: str, note: str) -> None:
        super().__init__()
        self.agent = agent
        self.diff = diff
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(id="save-version-dialog", classes="dialog"):
            yield Label(f"Save a new version of {self.agent}?", classes="dialog-title")
            with VerticalScroll(id="save-version-diff-box"):
                yield SpecDiff(id="save-version-diff")
            yield Static("A note for the version (what changed and why):", classes="dim")
            yield Input(self.note, placeholder="e.g. shorter answers", id="save-version-note")
            yield Static("enter saves it as the active version (v rolls back) · esc edits on", classes="dim")

    def on_mount(self) -> None:
        self.query_one(SpecDiff).show(self.diff)
        self.query_one(
            "#save-version-diff-box"
        ).border_title = f"{possessive(self.agent)} active version → this edit"
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class AgentEditorScreen(Screen[str | None]):
    """Edit one agent; returns the id of the version saved, or None.

    Args:
        system: The loaded system.
        store: The open session store.
        agent: The agent edited.
        instructions: Start from these instructions rather than the active version's
            (an edit made at a held call, to keep).
        note: The note offered when saving.
    """

    CSS_PATH = "agent_editor.tcss"
    BINDINGS = [
        Binding(
            "ctrl+s",
            "review",
            "Review & save",
            id="agent_editor.save",
            tooltip="See the diff, add a note, save",
        ),
        Binding("escape", "cancel", "Cancel", id="agent_editor.cancel", tooltip="Leave without saving"),
    ]

    def __init__(
        self, system: System, store: Store, agent: str, *, instructions: str | None = None, note: str = ""
    ) -> None:
        super().__init__()
        self.system = system
        self.store = store
        self.agent = agent
        self.start_instructions = instructions
        self.note = note
        self.active: AgentSpec | None = None
        """The agent's active version (what the edit is compared with), once read."""
        self.active_version = ""
        self.saved: str | None = None
        """The version id saved, once it is."""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="agent-edit-form"):
            yield Static(id="agent-edit-info")
            yield Label("instructions", classes="agent-edit-heading")
            yield TextArea(id="agent-edit-instructions", soft_wrap=True)
            with Horizontal(classes="agent-edit-row"):
                yield Label("model", classes="agent-edit-label")
                yield Input(
                    placeholder="scripted, openai/gpt-4o-mini, ollama/llama3.1, …", id="agent-edit-model"
                )
            with Horizontal(classes="agent-edit-row"):
                yield Label(KEY_ENV, classes="agent-edit-label")
                yield Input(
                    placeholder="the variable holding the key, e.g. OPENAI_API_KEY (never the key itself)",
                    id="agent-edit-key-env",
                )
            yield Label("settings (JSON: temperature, max_tokens, api_base, …)", classes="agent-edit-heading")
            yield TextArea(id="agent-edit-settings", show_line_numbers=False)
        yield Static("", id="agent-edit-error")
        yield FoldingFooter()

    def on_mount(self) -> None:
        self.title = f"Edit {self.agent} · {self.system.spec.name}"
        self.sub_title = "saved as a new operator version, after a diff against the active one"
        self.load()

    @work(exclusive=True, exit_on_error=False, group="agent-editor")
    async def load(self) -> None:
        """Read the agent's active version (it may have changed elsewhere) and fill the form."""
        try:
            agents, versions = await active_agents(self.store, self.system)
        except PlaygroundError as exc:
            self.notify(str(exc), title=f"cannot read {possessive(self.agent)} version", severity="error")
            self.dismiss(None)
            return
        spec = self.active = agents[self.agent]
        self.active_version = versions.get(self.agent, "")
        settings = {k: v for k, v in spec.model_settings.items() if k != KEY_ENV}
        self.query_one("#agent-edit-info", Static).update(
            Text.assemble(
                ("active version ", "dim"),
                (self.active_version[:8] or "—", "bold"),
                (" · ctrl+s: the diff, a note, save · esc: leave it unchanged", "dim"),
            )
        )
        self.query_one("#agent-edit-model", Input).value = spec.model
        self.query_one("#agent-edit-key-env", Input).value = str(spec.model_settings.get(KEY_ENV) or "")
        self.query_one("#agent-edit-settings", TextArea).text = (
            json.dumps(settings, indent=2) if settings else "{}"
        )
        instructions = self.query_one("#agent-edit-instructions", TextArea)
        instructions.text = spec.instructions if self.start_instructions is None else self.start_instructions
        instructions.focus()

    def edited(self) -> AgentSpec | str:
        """The spec the form describes, or why it is refused."""
        assert self.active is not None
        return edited_spec(
            self.active,
            model=self.query_one("#agent-edit-model", Input).value.strip(),
            instructions=self.query_one("#agent-edit-instructions", TextArea).text,
            settings_json=self.query_one("#agent-edit-settings", TextArea).text,
            key_env=self.query_one("#agent-edit-key-env", Input).value.strip(),
        )

    def action_review(self) -> None:
        error = self.query_one("#agent-edit-error", Static)
        if self.active is None:
            return  # still reading the active version
        spec = self.edited()
        if isinstance(spec, str):
            error.update(Text(spec))  # not markup: a validation error may quote brackets
            return
        diff = diff_specs(self.active, spec, a_label=f"active {self.active_version[:8]}", b_label="edited")
        if diff == NO_DIFFERENCES:
            error.update(Text("Nothing changed: the active version already says this."))
            return
        error.update("")

        def confirmed(note: str | None) -> None:
            if note is not None:
                self.save(spec, note)

        self.app.push_screen(SaveVersionScreen(self.agent, diff, self.note), confirmed)

    @work(exclusive=True, exit_on_error=False, group="agent-editor")
    async def save(self, spec: AgentSpec, note: str) -> None:
        """Record ``spec`` as a new operator version of the agent and make it active."""
        spec_json = canonical_spec(spec)
        try:
            await self.store.record_versions(
                self.system.name,
                {self.agent: spec_json},
                source="operator",
                note=note or "edited in the TUI",
                activate=True,  # an operator's edit: active even when the store knew this version
            )
        except PlaygroundError as exc:  # this worker does not exit on error: say it here or nowhere
            self.notify(str(exc), title=f"cannot save {possessive(self.agent)} version", severity="error")
            return
        self.saved = version_id_of_json(spec_json)
        self.notify(
            f"{self.agent} now runs version {self.saved[:8]}; the next run uses it (v rolls back).",
            title="version saved",
        )
        self.dismiss(self.saved)

    def action_cancel(self) -> None:
        self.dismiss(None)
