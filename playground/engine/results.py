"""What a run comes to: per-agent totals and the ``playground run --json`` result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from playground.engine import events as ev
from playground.engine.events import Event


@dataclass(slots=True)
class AgentTotals:
    """What one agent cost in a session."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "tokens": {"input": self.input_tokens, "output": self.output_tokens},
            "cost_usd": round(self.cost_usd, 8),
            "latency_ms": round(self.latency_ms, 3),
        }


@dataclass
class RunResult:
    """The outcome of one session: what ``playground run --json`` prints."""

    session_id: str
    correlation_id: str
    system: str
    status: str
    path: list[str]
    output: str
    per_agent: dict[str, AgentTotals]
    latency_ms: float
    """Wall-clock time of the run; agents that ran at the same time overlap in ``per_agent``."""
    error: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list, repr=False)
    _final_totals: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    """The JSON of each agent's totals with a model call, as the run's last event has them."""

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.per_agent.values())

    @property
    def tokens(self) -> dict[str, int]:
        return {
            "input": sum(a.input_tokens for a in self.per_agent.values()),
            "output": sum(a.output_tokens for a in self.per_agent.values()),
        }

    @property
    def agent_latency_ms(self) -> float:
        """The sum of every agent's own time: above ``latency_ms`` when agents ran at once."""
        return sum(a.latency_ms for a in self.per_agent.values())

    def _per_agent_json(self) -> dict[str, Any]:
        final = self._final_totals or {}  # the same totals: made once, not twice per run
        return {name: final.get(name) or totals.as_json() for name, totals in self.per_agent.items()}

    def as_json(self) -> dict[str, Any]:
        """The ``playground run --json`` contract (shared/DESIGN.md)."""
        return {
            "session_id": self.session_id,
            "correlation_id": self.correlation_id,
            "system": self.system,
            "status": self.status,
            "path": self.path,
            "output": self.output,
            "cost_usd": round(self.cost_usd, 8),
            "tokens": self.tokens,
            "latency_ms": round(self.latency_ms, 3),
            "agent_latency_ms": round(self.agent_latency_ms, 3),
            "per_agent": self._per_agent_json(),
            "error": self.error,
        }


def run_time_ms(events: Sequence[Event]) -> float:
    """A run's time from its events, in milliseconds: from its first event to its last, less
    the time it was held at gates (each operator action's ``held_ms``).

    The one definition of a session's elapsed time: the TUI shows it live and for a stored
    session, and an interrupted session (no final event to carry the engine's own
    ``latency_ms``, which measures the same span) is stored with it.
    """
    if not events:
        return 0.0
    held = sum(e.held_ms or 0.0 for e in events if isinstance(e, ev.OperatorActed))
    return max(0.0, (events[-1].ts - events[0].ts) * 1000 - held)


def recorded_totals(events: Sequence[Event]) -> tuple[list[str], dict[str, AgentTotals]]:
    """The path (agents in the order they began handling the request, a re-run worker once, as
    the runtime keeps it) and each agent's totals, from a session's events: what its final
    event would have carried, for a session that has none (killed mid-run)."""
    path: list[str] = []
    totals: dict[str, AgentTotals] = {}
    for event in events:
        if isinstance(event, ev.AgentStarted) and event.agent is not None:
            if not path or path[-1] != event.agent:
                path.append(event.agent)
        elif isinstance(event, ev.ModelResponded | ev.ModelFailed) and event.agent is not None:
            agent = totals.setdefault(event.agent, AgentTotals())
            agent.latency_ms += event.latency_ms
            if isinstance(event, ev.ModelResponded):
                agent.calls += 1
                agent.input_tokens += event.input_tokens
                agent.output_tokens += event.output_tokens
                agent.cost_usd += event.cost_usd
    return path, totals
