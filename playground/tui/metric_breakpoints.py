"""Breakpoints on what an agent has spent: ``cost:AGENT>USD`` and ``latency:AGENT>MS``.

The engine's gate carries the agent. :class:`MetricController` adds these breakpoints to
the engine's :class:`~playground.engine.controller.StepController` without changing its
gate: it also listens to the run's events (a live sink, :meth:`MetricController.observe`),
so its figures are exact at each gate (the screen's view gets events in batches, a little
later), and each point stops the run once, at the first gate of that agent (``*``: any
agent) after its figure passed the value. Latency is the agent's model and tool calls (a
supervisor's delegation counts its worker's time too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from playground.engine import events as ev
from playground.engine.controller import Gate, StepController

Metric = Literal["cost", "latency"]
_POINT = re.compile(r"^(cost|latency):([^\s>]+)\s*>\s*([0-9]*\.?[0-9]+)$")


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """``cost:billing>0.01``: stop when billing's cost so far passes $0.01."""

    metric: Metric
    agent: str
    """An agent's name, or ``*`` for any."""
    value: float

    def __str__(self) -> str:
        return f"{self.metric}:{self.agent}>{self.value:g}"


def parse_metric_point(text: str, agents: list[str]) -> MetricPoint | str:
    """The breakpoint ``text`` spells, or what is wrong with it."""
    match = _POINT.match(text.strip())
    if match is None:
        return "write cost:AGENT>USD or latency:AGENT>MS (AGENT may be *), e.g. cost:billing>0.01"
    metric, agent, value = match.group(1), match.group(2), float(match.group(3))
    if agent != "*" and agent not in agents:
        return f"no agent {agent!r} (agents: {', '.join(agents)})"
    return MetricPoint("cost" if metric == "cost" else "latency", agent, value)


@dataclass
class MetricController(StepController):
    """A :class:`StepController` that also stops at :class:`MetricPoint` breakpoints.

    Attributes:
        metric_points: Shared with the screen (the operator adds and removes them mid-run).
    """

    metric_points: set[MetricPoint] = field(default_factory=set)
    figures: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Each agent's cost (USD) and latency (ms) so far in this run."""
    fired: set[MetricPoint] = field(default_factory=set)
    """Points that already stopped this run (each stops once)."""
    last_hit: MetricPoint | None = None
    """The point that stopped the run last (the screen says which)."""

    def should_stop(self, gate: Gate) -> bool:
        if super().should_stop(gate):
            return True
        if not self.metric_points:
            return False
        cost, latency = self.figures.get(gate.agent, (0.0, 0.0))
        for point in self.metric_points:
            if point in self.fired or point.agent not in ("*", gate.agent):
                continue
            figure = cost if point.metric == "cost" else latency
            if figure > point.value:
                self.fired.add(point)
                self.last_hit = point
                return True
        return False

    def observe(self, event: ev.Event) -> None:
        """A live sink of the run's events: adds up each agent's cost and latency."""
        match event:
            case ev.ModelResponded() | ev.ModelFailed() | ev.ToolReturned() if event.agent:
                cost, latency = self.figures.get(event.agent, (0.0, 0.0))
                extra = event.cost_usd if isinstance(event, ev.ModelResponded) else 0.0
                self.figures[event.agent] = (cost + extra, latency + event.latency_ms)
            case _:
                pass
