"""One model call as an operator inspects it: the request sent and the response, from events.

A past call is rebuilt from its ``model_requested`` and the ``model_responded`` or
``model_failed`` it caused; a held call from its gate's payload (see
:mod:`playground.engine.call_edits`). No Textual here: the model call screen draws a
:class:`ModelCall`, and tests build one without a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from playground.engine import events as ev
from playground.engine.controller import Gate

CallStatus = Literal["held", "in flight", "answered", "failed"]


@dataclass
class ModelCall:
    """A model call: what was (or is about to be) sent, and what came back."""

    agent: str
    step: int | None
    model: str
    status: CallStatus
    messages: list[dict[str, Any]]
    tool_names: list[str]
    tools: list[dict[str, Any]] | None
    """The tools offered with their schemas; None when the session did not record them."""
    settings: dict[str, Any] | None
    """The settings sent; None when the session did not record them."""
    attempt: int = 1
    seq: int | None = None
    """``seq`` of the call's ``model_requested`` (None while held)."""
    instructions: str | None = None
    """The agent's instructions, while the call is held (they may be edited then)."""
    response: ev.ModelResponded | None = None
    failure: ev.ModelFailed | None = None
    edit: dict[str, Any] | None = None
    """What an operator changed at this call's gate (the ``operator_acted`` detail), if anything."""
    notes: list[str] = field(default_factory=list)
    """Other things worth knowing: a retry, a budget hold, a replayed answer."""

    @property
    def system_prompt(self) -> str:
        first = self.messages[0] if self.messages else {}
        return str(first.get("content") or "") if first.get("role") == "system" else ""

    @property
    def conversation(self) -> list[dict[str, Any]]:
        """The messages after the system prompt."""
        first = self.messages[0] if self.messages else {}
        return self.messages[1:] if first.get("role") == "system" else list(self.messages)


def call_of_gate(gate: Gate) -> ModelCall:
    """The call a run is held before (a ``model_call`` gate)."""
    payload = gate.payload
    tools = payload.get("tools")
    call = ModelCall(
        agent=gate.agent,
        step=gate.step,
        model=str(payload.get("model") or ""),
        status="held",
        messages=list(payload.get("messages") or []),
        tool_names=[str(t.get("name")) for t in tools or []],
        tools=list(tools) if tools is not None else None,
        settings=dict(payload["settings"]) if "settings" in payload else None,
        instructions=payload.get("instructions"),
    )
    budget = payload.get("budget")
    if budget:
        call.notes.append(
            f"held by a budget: {budget.get('limit')} spent {budget.get('spent')} of {budget.get('allowed')}"
        )
    return call


def model_call_seqs(events: Sequence[ev.Event]) -> list[int]:
    """``seq`` of each ``model_requested`` of a session, in order."""
    return [e.seq for e in events if isinstance(e, ev.ModelRequested)]


def call_of_events(events: Sequence[ev.Event], seq: int) -> ModelCall | None:
    """The call whose ``model_requested`` is event ``seq``, with its answer (None: no such call)."""
    request = next((e for e in events if e.seq == seq and isinstance(e, ev.ModelRequested)), None)
    if request is None:
        return None
    call = ModelCall(
        agent=request.agent or "",
        step=request.step,
        model=request.model,
        status="in flight",
        messages=list(request.messages),
        tool_names=list(request.tools),
        # Sessions recorded before the schemas were (or rebuilt from another program's spans)
        # name the tools only.
        tools=list(request.tool_schemas) if request.tool_schemas or not request.tools else None,
        settings=dict(request.settings) if "settings" in request.model_fields_set else None,
        attempt=request.attempt,
        seq=request.seq,
    )
    for event in events:
        if event.seq <= seq:
            if (
                isinstance(event, ev.OperatorActed)
                and event.action == "edit"
                and event.gate == "model_call"
                and event.agent == request.agent
                and event.detail.get("step") == request.step
            ):
                call.edit = dict(event.detail)
            continue
        if event.cause != seq:
            continue
        if isinstance(event, ev.ModelResponded):
            call.response, call.status = event, "answered"
            if event.retry_of is not None:
                call.notes.append(f"an operator's retry: replaces the response #{event.retry_of}")
            if event.replayed:
                call.notes.append("answered from a recorded session (fork or replay), not by a live call")
            break
        if isinstance(event, ev.ModelFailed):
            call.failure, call.status = event, "failed"
            break
    return call


def nearest_call(events: Sequence[ev.Event], seq: int | None, agent: str | None = None) -> int | None:
    """The model call to show for timeline row ``seq``: the call itself, else the last call
    (of ``agent``, when it made one) at or before it; the session's last call when ``seq`` is None."""
    seqs = [
        e.seq
        for e in events
        if isinstance(e, ev.ModelRequested) and (seq is None or e.seq <= seq) and e.agent is not None
    ]
    if not seqs:
        return None
    if agent is not None and seq is not None:
        own = [
            e.seq for e in events if isinstance(e, ev.ModelRequested) and e.agent == agent and e.seq <= seq
        ]
        if own:
            return own[-1]
    return seqs[-1]
