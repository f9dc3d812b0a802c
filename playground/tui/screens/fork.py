"""Fork or replay a recorded session from the run screen.

:func:`fork_point` maps the timeline row the operator selected to the step a
fork starts live at; :class:`BranchScreen` asks for an optional model swap;
:class:`Branch` is what the run screen runs live (through its bridge) once the
operator confirms.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from playground.debug import DebugSession
from playground.engine import events as ev
from playground.replay import ReplayOutcome, Variant, step_kind
from playground.tui.screens.dialog import say
from playground.tui.state import possessive

BranchMode = Literal["fork", "replay"]


@dataclass(frozen=True)
class ForkPoint:
    """Where a fork starts running live."""

    step: int
    kind: str
    agent: str

    def describe(self) -> str:
        if self.kind == "stage output":  # ``agent``: the stage(s) receiving it
            return f"step {self.step}, the stage output {self.agent} receives"
        return f"step {self.step}, {possessive(self.agent)} {self.kind}"


def fork_point(events: list[ev.Event], seq: int, step: int | None = None) -> ForkPoint | None:
    """The step a fork from the timeline row of event ``seq`` starts at.

    ``step``, when the row shows a step of its own that a fork can start at: a pipeline's
    stage transition, whose row shares its event with the next stage's activation row.
    Else that event's own step when it has one (a model call, tool call or handoff: the
    number its row shows); for an agent's activation, that activation's first step; for
    an operator's action, the step held when it acted; else the first step after it.
    None when nothing runs after it.
    """
    if step is not None:
        point = _first_step([e for e in events if e.step == step], 0)
        if point is not None:
            return point
    chosen = next((e for e in events if e.seq == seq), None)
    match chosen:
        case ev.AgentStarted():
            own = [e for e in events if e.activation == seq]  # not a branch running beside it
            return _first_step(own, seq) or _first_step(events, seq)
        case ev.OperatorActed(detail={"step": int(step)}):
            held = [e for e in events if e.step == step]
            return _first_step(held, 0) or _first_step(events, seq)
        case _:
            return _first_step(events, seq)


def _first_step(events: list[ev.Event], seq: int) -> ForkPoint | None:
    for event in events:
        if event.seq < seq or event.step is None:
            continue
        kind = step_kind(event)
        if kind == "stage":
            # The transition delivers to the next stage: every agent of it (a parallel group).
            receiving = [e.agent or "?" for e in events if e.step == event.step and step_kind(e) == "stage"]
            return ForkPoint(event.step, "stage output", " ∥ ".join(receiving))
        if kind is not None:
            return ForkPoint(event.step, kind.replace("_", " "), event.agent or "?")
    return None


@dataclass(frozen=True)
class Branch:
    """A fork or replay of a stored session, ready to run live in a run screen.

    Args:
        mode: ``fork`` or ``replay``.
        session_id: The recorded session.
        request: Its request (shown in the run screen's input).
        at: With ``fork``: where the fork goes live.
        variant: The one agent whose model changes, if any.
    """

    mode: BranchMode
    session_id: str
    request: str
    at: ForkPoint | None = None
    variant: Variant | None = None

    def describe(self) -> str:
        what = f"fork of {self.session_id}" if self.mode == "fork" else f"replay of {self.session_id}"
        if self.at is not None:
            what += f" from {self.at.describe()}"
        if self.variant is not None and self.variant.model:
            what += f" · {self.variant.agent} on {self.variant.model}"
        return what

    def start(self, session: DebugSession) -> Awaitable[ReplayOutcome]:
        """Run the branch in ``session`` (under its controller, its events to its sinks)."""
        if self.mode == "fork":
            assert self.at is not None
            return session.fork(self.session_id, self.at.step, variant=self.variant)
        return session.replay(self.session_id, variant=self.variant, force=True)

    def summary(self, outcome: ReplayOutcome) -> str:
        """One line for the operator once it ran."""
        result = outcome.result
        calls = _count(outcome.replayed_calls, "model call")
        tools = _count(outcome.replayed_tools, "tool call")
        return (
            f"{self.mode.capitalize()} {result.session_id} {result.status}: "
            f"{calls} and {tools} answered from {outcome.parent_session_id}."
        )


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


class BranchScreen(ModalScreen[Variant | Literal[False] | None]):
    """Confirm a fork or replay, optionally swapping one agent's model.

    Returns a :class:`~playground.replay.Variant`, ``False`` for no swap, or None when cancelled.

    Args:
        mode: ``fork`` or ``replay``.
        session_id: The recorded session.
        at: With ``fork``: where the fork goes live.
        agents: The system's agents.
        models: Models in use (a hint for the model field).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="branch.cancel", tooltip="Do not fork")]

    def __init__(
        self,
        mode: BranchMode,
        session_id: str,
        at: ForkPoint | None,
        agents: list[str],
        models: list[str],
    ) -> None:
        super().__init__()
        self.mode = mode
        self.session_id = session_id
        self.at = at
        self.agents = agents
        self.models = models

    def compose(self) -> ComposeResult:
        verb = "Fork" if self.mode == "fork" else "Replay"
        with Vertical(id="branch-dialog", classes="dialog"):
            if self.at is not None:
                title = f"Fork session {self.session_id} from {self.at.describe()}"
                how = (
                    f"Steps before {self.at.step} are answered from the recording (no model or tool "
                    f"calls); from step {self.at.step} on the fork runs live."
                )
            else:
                title = f"Replay session {self.session_id}"
                how = (
                    "Each model call is answered from the recording while its request matches; "
                    "from the first one that differs the replay runs live."
                )
            yield Label(title, classes="dialog-title")
            yield Static(how, classes="dim")
            yield Static("Swap one agent's model (optional):", id="branch-swap-label")
            with Horizontal(id="branch-swap"):
                yield Select[str](
                    [(a, a) for a in self.agents], prompt="no swap", id="branch-agent", allow_blank=True
                )
                yield Input(placeholder="model, e.g. " + ", ".join(self.models[:3]), id="branch-model")
            yield Static("", id="branch-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{verb} (enter)", id="branch-go", variant="primary")
                yield Button("Cancel (esc)", id="branch-cancel")

    def on_mount(self) -> None:
        self.query_one("#branch-go", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "branch-go":
            self.action_go()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_go()

    def action_go(self) -> None:
        agent = self.query_one("#branch-agent", Select).value
        model = self.query_one("#branch-model", Input).value.strip()
        error = self.query_one("#branch-error", Static)
        if isinstance(agent, str):
            if not model:
                say(error, f"Type the model {agent} should run, or pick “no swap”.")
                return
            self.dismiss(Variant(agent, model=model))
        elif model:
            say(error, "Pick the agent whose model changes.")
        else:
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(None)
