"""What a run comes to: per-agent totals and the ``playground run --json`` result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
