"""The timeline's filter box: ctrl+f on the run screen, a query of :mod:`playground.tui.query`.

``agent:NAME kind:KIND status:STATUS text`` keeps the timeline rows that match. ``kind``
takes the row kinds the timeline draws (``model_call``, ``tool_call``, ``handoff``,
``activation``, ``retry``, ...) and the event kinds behind them (``tool_called``,
``model_responded``, ``handoff_delivered``, ...); ``status`` is ``running``, ``ok``,
``failed`` or ``info``. Free text is searched in a row's label, agent, kind and the
name/value pairs the inspector shows for it.

enter keeps the filter and goes to the timeline (its border says how many rows are
shown); esc clears it and closes the box.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding
from textual.widgets import Input

from playground.tui.query import Getter, Query, matches, parse
from playground.tui.state import Step
from playground.tui.widgets.timeline import Timeline

EVENT_KINDS: dict[str, tuple[str, ...]] = {
    "activation": ("agent_started", "agent_finished"),
    "model_call": ("model_requested", "model_responded", "model_failed", "token_delta"),
    "tool_call": ("tool_called", "tool_returned"),
    "handoff": ("handoff_delivered",),
    "retry": ("retry_scheduled",),
    "fallback": ("fallback_used",),
    "validation": ("validation_failed",),
    "permission": ("permission_denied",),
    "loop": ("loop_detected",),
    "budget": ("budget_exceeded",),
    "guard": ("guard_allowed", "guard_rewrote", "guard_denied"),
    "approval": ("approval_requested", "approval_decided"),
    "escalation": ("escalated",),
    "review": ("checkpoint_reviewed",),
    "operator": ("operator_acted",),
    "run": ("run_started", "run_finished", "run_failed"),
}
"""The event kinds behind each kind of timeline row (``kind:tool_called`` finds tool calls)."""


def _agent(step: object) -> Iterable[str]:
    assert isinstance(step, Step)
    return (step.agent or "",)


def _kind(step: object) -> Iterable[str]:
    assert isinstance(step, Step)
    return (step.kind, *EVENT_KINDS.get(step.kind, ()))


def _status(step: object) -> Iterable[str]:
    assert isinstance(step, Step)
    return (step.status,)


def _text(step: object) -> Iterable[str]:
    assert isinstance(step, Step)
    yield step.label
    yield step.agent or ""
    yield step.kind
    for name, value in step.detail:
        yield name
        yield value


STEP_FIELDS: dict[str, Getter] = {"agent": _agent, "kind": _kind, "status": _status}
"""The fields a timeline query takes."""

SYNTAX = (
    "Filter the timeline: agent:NAME kind:KIND status:STATUS and free text, all must match. "
    "kind: model_call, tool_call, handoff, activation, retry, ... or an event kind "
    "(tool_called, model_responded, handoff_delivered, ...); status: running, ok, failed, info. "
    "field:a,b matches either; -term excludes; quotes keep spaces. "
    "enter keeps the filter, esc clears it."
)


def step_query(text: str) -> Query:
    """``text`` as a query over timeline rows."""
    return parse(text, STEP_FIELDS)


def step_matches(query: Query, step: Step) -> bool:
    """Whether the timeline row ``step`` matches ``query``."""
    return matches(query, step, STEP_FIELDS, _text)


class TimelineFilter(Input):
    """The filter box above a :class:`Timeline`; hidden until :meth:`open`.

    Args:
        timeline: The id of the timeline it filters (on the same screen).
    """

    DEFAULT_CSS = """
    TimelineFilter {
        display: none;
        height: 3;
    }
    TimelineFilter.-open {
        display: block;
    }
    """

    BINDINGS = [Binding("escape", "close", "Clear filter", show=False)]

    def __init__(self, timeline: str = "timeline", *, id: str | None = None) -> None:
        super().__init__(placeholder="agent:NAME kind:KIND status:STATUS text", id=id)
        self.timeline = timeline
        self.tooltip = SYNTAX

    def _target(self) -> Timeline:
        return self.screen.query_one(f"#{self.timeline}", Timeline)

    def open(self) -> None:
        """Show the box and put the cursor in it (the current filter stays)."""
        self.add_class("-open")
        self.focus()

    def apply(self, text: str) -> None:
        """Filter the timeline by ``text`` (empty: show every row)."""
        query = step_query(text)
        self._target().filter((lambda step: step_matches(query, step)) if query else None, text.strip())

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.apply(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.remove_class("-open")
        self._target().focus()

    def action_close(self) -> None:
        self.value = ""
        self.apply("")
        self.remove_class("-open")
        self._target().focus()
