"""Data lineage: where a failing field was last present, and whose output lost or changed it.

"The bug manifests in Agent C but originated in Agent A." When a run fails over a field
(a required field missing, a wrong type, a failed check, a tool raising ``KeyError`` on
it), the recorded events already hold every value each agent received and produced: the
request, each agent's input context, each handoff's payload, each stage's output, each
tool call's arguments. :func:`trace` walks them in order and names the first agent whose
output no longer carries the field (or carries it changed) although what it received
carried it. When the field was never there, it says so instead of guessing, and the
run's origin stays what the failing boundary reported.

What it cannot trace: a field renamed or nested differently by an agent (it looks for
the same name), values carried only inside free text, and a field a tool's code reads
from somewhere other than its arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as listed
from typing import Any

from playground.engine import events as ev
from playground.llm.base import parse_json

_FIELD_PROBLEM = re.compile(r"(?:^|; )([A-Za-z_][\w.]*): (.*?)(?:;|$)")
_NOT_A_FIELD = re.compile(r"^[A-Z]\w*(?:Error|Exception|Warning)$")
"""``ValueError: ...`` is a validator's exception, not a field's problem."""
_KEY_ERROR = re.compile(r"^KeyError: '([^']+)'")
_MISSING = object()


@dataclass(slots=True)
class Hop:
    """One place the field could have been: what an agent received or produced."""

    agent: str
    seq: int
    step: int | None
    kind: str
    """``request``, ``input``, ``output``, ``handoff`` or ``tool_args``."""
    present: bool
    value: Any = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "agent": self.agent,
            "seq": self.seq,
            "kind": self.kind,
            "present": self.present,
        }
        if self.step is not None:
            out["step"] = self.step
        if self.present:
            out["value"] = self.value
        return out


@dataclass(slots=True)
class Lineage:
    """The hops a field went through, and what they say about where it went wrong."""

    field: str
    hops: list[Hop] = listed(default_factory=list)
    origin: str | None = None
    """The agent whose output first lost or changed the field; None when not traced."""
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "traced": self.origin is not None,
            "origin": self.origin,
            "reason": self.reason,
            "hops": [hop.as_json() for hop in self.hops],
        }


def failing_field(events: list[ev.Event], agent: str | None) -> tuple[str, bool] | None:
    """The field a failure of ``agent`` was about, read from its last refusal or tool error,
    and whether it was missing (rather than there with a wrong value)."""
    for event in reversed(events):
        if event.agent != agent and not (isinstance(event, ev.ValidationFailed) and event.target == agent):
            continue
        if isinstance(event, ev.ValidationFailed):
            match = _FIELD_PROBLEM.search(event.errors)
            if match and match.group(1) != "(payload)" and not _NOT_A_FIELD.match(match.group(1)):
                return match.group(1), "missing" in match.group(2)
        elif isinstance(event, ev.ToolReturned) and event.error:
            match = _KEY_ERROR.match(event.error)
            if match:
                return match.group(1), True
        elif isinstance(event, ev.CheckpointReviewed) and event.verdict == "reject":
            match = _FIELD_PROBLEM.search(event.feedback)
            if match and not _NOT_A_FIELD.match(match.group(1)):
                return match.group(1), "missing" in match.group(2)
    return None


def trace(events: list[ev.Event], name: str, upto: str | None, *, missing: bool = True) -> Lineage:
    """Follow field ``name`` through the run's values up to where agent ``upto`` failed.

    ``missing``: the failure was the field's absence (the origin is whoever dropped it);
    otherwise its value (the origin is whoever first produced the value it failed with)."""
    lineage = Lineage(name)
    hops = lineage.hops
    for event in events:
        hop: Hop | None = None
        if isinstance(event, ev.RunStarted):
            hop = _hop("request", event.input, event, "request", name, parse=True)
        elif isinstance(event, ev.AgentStarted) and event.agent:
            value = event.context if event.context is not None else event.incoming
            hop = _hop(event.agent, value, event, "input", name, parse=event.context is None)
        elif isinstance(event, ev.AgentFinished) and event.agent and event.outcome == "reply":
            hop = _hop(event.agent, event.output, event, "output", name, parse=True)
        elif isinstance(event, ev.HandoffDelivered):
            hop = _hop(event.source, event.payload, event, "handoff", name)
        elif isinstance(event, ev.ToolCalled) and event.agent:
            hop = _hop(event.agent, event.args, event, "tool_args", name)
        if hop is not None and (hop.kind != "request" or hop.present):
            hops.append(hop)
        if isinstance(event, ev.RunFailed):
            break
    if not missing:
        return _first_with_bad_value(lineage)
    last: Hop | None = None
    for hop in hops:
        if hop.present:
            last = hop
        elif last is not None and hop.kind in ("output", "handoff"):
            lineage.origin = hop.agent
            lineage.reason = (
                f"{name!r} was present ({last.kind} of {last.agent}, seq {last.seq}) and "
                f"{hop.agent}'s {hop.kind} (seq {hop.seq}) dropped it"
            )
            return lineage
    if last is None:
        lineage.reason = (
            f"{name!r} was never present in the request or in what any agent received or produced"
        )
    else:
        lineage.reason = (
            f"{name!r} was carried unchanged up to {upto or 'the failure'}: the cause is not upstream"
        )
    return lineage


def _first_with_bad_value(lineage: Lineage) -> Lineage:
    """The agent that first produced the value the field failed with."""
    present = [hop for hop in lineage.hops if hop.present]
    if not present:
        lineage.reason = f"{lineage.field!r} was never present in what the agents received or produced"
        return lineage
    bad = present[-1].value
    first = next(hop for hop in present if hop.value == bad)
    if first.kind == "request":
        lineage.reason = f"{lineage.field!r} = {bad!r} came with the request itself"
    else:
        lineage.origin = first.agent
        lineage.reason = (
            f"{first.agent}'s {first.kind} (seq {first.seq}) first gave {lineage.field!r} = {bad!r}"
        )
    return lineage


def _hop(agent: str, value: Any, event: ev.Event, kind: str, name: str, *, parse: bool = False) -> Hop:
    if parse and isinstance(value, str):
        try:
            value = parse_json(value)
        except ValueError:
            value = None
    found = _lookup(value, name)
    present = found is not _MISSING and found is not None
    return Hop(agent, event.seq, event.step, kind, present, found if present else None)


def _lookup(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value
