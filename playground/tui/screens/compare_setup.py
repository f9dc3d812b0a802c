"""Choose what to compare: an agent, two variants of it (versions or models), and an input."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from playground.spec.load import System
from playground.store.store import Store, VersionRow
from playground.tui.screens.dialog import say


@dataclass(frozen=True)
class CompareChoice:
    """What the operator chose: the compare screen runs it."""

    agent: str
    a: str
    """A version id (or prefix) of ``agent``, or a model string."""
    b: str
    request: str | None
    """The request both variants answer (None when ``scenarios`` is given)."""
    scenarios: str | None
    """A scenario file whose inputs both variants answer."""
    lockstep: bool
    """Both runs stop at every gate; ``s`` steps both."""
    session: str | None = None
    """A recorded session both variants replay: only the compared agent, and what follows it,
    calls a model."""


def version_label(row: VersionRow) -> str:
    """How a version reads in a chooser: short id, where it came from, its note."""
    active = " · active" if row.active else ""
    note = f" · {row.note}" if row.note else ""
    text = f"{row.version_id[:8]} {row.source}{active}{note}"
    return text if len(text) <= 60 else text[:59] + "…"


class CompareSetupScreen(ModalScreen[CompareChoice | None]):
    """Returns the operator's :class:`CompareChoice`, or None when cancelled.

    Args:
        system: The system whose agent is compared.
        store: The open store (its versions are the choices).
        agent: The agent chosen at first (the focused one).
        request: The request box's text, offered as the input.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="compare.cancel", tooltip="Close without comparing"),
        Binding("ctrl+r", "run", "Run", id="compare.run", tooltip="Run both variants"),
    ]

    def __init__(self, system: System, store: Store, agent: str, request: str = "") -> None:
        super().__init__()
        self.system = system
        self.store = store
        self.agent = agent
        self.request = request
        self._versions: list[VersionRow] = []

    def compose(self) -> ComposeResult:
        agents = list(self.system.spec.agents)
        with Vertical(id="compare-dialog", classes="dialog"):
            yield Label(f"Compare two variants of one agent of {self.system.name}", classes="dialog-title")
            with Horizontal(classes="compare-row"):
                yield Label("agent", classes="compare-label")
                yield Select(
                    [(a, a) for a in agents], value=self.agent, allow_blank=False, id="compare-agent"
                )
            for side in ("a", "b"):
                with Horizontal(classes="compare-row"):
                    yield Label(side.upper(), classes="compare-label")
                    yield Select[str]([], prompt="a version or a model", id=f"compare-{side}-choice")
                    yield Input(placeholder="or type a model / version id", id=f"compare-{side}-typed")
            with Horizontal(classes="compare-row"):
                yield Label("input", classes="compare-label")
                yield Input(self.request, placeholder="the request both answer", id="compare-request")
            with Horizontal(classes="compare-row"):
                yield Label("or file", classes="compare-label")
                yield Input(
                    placeholder="a scenario file, e.g. agents/support_router.scenarios.yaml",
                    id="compare-scenarios",
                )
            with Horizontal(classes="compare-row"):
                yield Label("or session", classes="compare-label")
                yield Input(
                    placeholder="a recorded session id (replayed: unchanged agents cost nothing)",
                    id="compare-session",
                )
            yield Checkbox("Step both in lockstep (s steps both, c continues both)", id="compare-lockstep")
            yield Static("", id="compare-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Run (ctrl+r)", id="compare-run", variant="primary")
                yield Button("Cancel (esc)", id="compare-cancel")

    async def on_mount(self) -> None:
        self._versions = await self.store.versions(self.system.name)
        self._fill(self.agent)
        self.query_one("#compare-a-choice", Select).focus()

    def _models(self) -> list[str]:
        models = {"scripted"}
        for spec in self.system.spec.agents.values():
            models.update([spec.model, *spec.fallbacks])
        return sorted(models)

    def _fill(self, agent: str) -> None:
        """The choices for A and B: the agent's stored versions, then the models in use."""
        rows = [r for r in self._versions if r.agent == agent]
        options = [(version_label(r), r.version_id) for r in rows]
        options += [(f"model {m}", m) for m in self._models()]
        active = next((r.version_id for r in rows if r.active), None)
        other = next((r.version_id for r in rows if not r.active), None)
        for side, default in (("a", active), ("b", other)):
            select: Select[str] = self.query_one(f"#compare-{side}-choice", Select)
            select.set_options(options)
            if default is not None:
                select.value = default

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "compare-agent" and isinstance(event.value, str) and event.value != self.agent:
            self.agent = event.value
            self._fill(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "compare-run":
            self.action_run()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_run()

    def _side(self, side: str) -> str:
        typed = self.query_one(f"#compare-{side}-typed", Input).value.strip()
        if typed:
            return typed
        value = self.query_one(f"#compare-{side}-choice", Select).value
        return value if isinstance(value, str) else ""

    def action_run(self) -> None:
        error = self.query_one("#compare-error", Static)
        a, b = self._side("a"), self._side("b")
        request = self.query_one("#compare-request", Input).value.strip()
        scenarios = self.query_one("#compare-scenarios", Input).value.strip()
        session = self.query_one("#compare-session", Input).value.strip()
        if not a or not b:
            say(error, "Choose (or type) both A and B.")
            return
        if a == b:
            say(error, "A and B are the same variant: choose two different ones.")
            return
        if not request and not scenarios and not session:
            say(error, "Type a request, or give a scenario file or a session id.")
            return
        lockstep = self.query_one("#compare-lockstep", Checkbox).value
        self.dismiss(
            CompareChoice(
                self.agent,
                a,
                b,
                None if (scenarios or session) else request,
                None if session else scenarios or None,
                lockstep=lockstep,
                session=session or None,
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
