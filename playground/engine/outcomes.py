"""Typed outcomes of the steps of a run.

Each step returns what happened as a value (pydantic-ai's ``_agent_graph`` nodes,
openai-agents' ``NextStep*``), so its caller never reads the event list to learn why:

- an activation ends in a :class:`Reply` or a :class:`Handoff`;
- a tool call, delegation or handoff call of a model response ends in
  :class:`Answered` (its result goes back to the model), :class:`Invalid` (the
  problem goes back to the model and counts against ``max_validation_retries``),
  :class:`RetryStep` (an operator asked to run the model call again) or a
  :class:`Handoff`;
- what ends the run is raised: :class:`Failure` (:class:`CallFailed` for a model call that
  failed for good), :class:`Aborted`, :class:`Escalate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.engine import events as ev


class Failure(Exception):
    """The run fails: what went wrong, the agent whose output first went wrong (``origin``),
    where it showed (``manifested``) and the event that recorded it (``cause``)."""

    def __init__(
        self,
        error_type: str,
        message: str,
        origin: str | None,
        manifested: str | None,
        cause: int | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.origin = origin
        self.manifested = manifested
        self.cause = cause


class CallFailed(Failure):
    """Every model of a model call (and every retry of each) failed: the run fails, unless an
    operator holding the run at that point (an ``error:*`` breakpoint) runs the call again."""


class Aborted(Exception):
    """An operator aborted the run at a gate."""


class WaitingApproval(Exception):
    """A tool needs a person's approval and nobody is there to give it (a headless run):
    the run stops, resumable, with the session ``waiting_approval``."""

    def __init__(self, tool: str, requested: int) -> None:
        super().__init__(tool)
        self.tool = tool
        self.requested = requested


class Escalate(Exception):
    """A loop was detected and the run is handed to the ``on_loop`` agent."""

    def __init__(self, target: str, payload: dict[str, Any], cause: int) -> None:
        super().__init__(target)
        self.handoff = Handoff(target, payload, [], cause)


@dataclass(slots=True)
class Reply:
    """An activation ended with a final answer."""

    text: str
    seq: int
    """``seq`` of the activation's :class:`~playground.engine.events.AgentFinished`."""


@dataclass(slots=True)
class Handoff:
    """An activation handed the request on (or a loop escalated it)."""

    target: str
    payload: dict[str, Any]
    history: list[dict[str, Any]]
    cause: int
    """``seq`` of the event that made it (the handoff, or the escalation)."""
    rendered: str | None = None
    """The payload as JSON text, when already rendered (the target's incoming message)."""


@dataclass(slots=True)
class Answered:
    """A tool or delegate call ran (or raised); ``content`` goes back to the model."""

    content: str
    seq: int
    """``seq`` of the call's last event (what the next model call answers)."""


@dataclass(slots=True)
class Invalid:
    """A call was refused before it ran; ``content`` tells the model why."""

    content: str
    problem: ev.ValidationFailed | ev.PermissionDenied | ev.GuardDenied


@dataclass(slots=True)
class RetryStep:
    """An operator asked, at this call's gate, to run the model call before it again."""


CallOutcome = Answered | Invalid | RetryStep | Handoff
"""What one call of a model response came to."""
ActivationOutcome = Reply | Handoff
"""What one agent activation came to."""
