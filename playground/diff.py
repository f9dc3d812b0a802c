"""Two recorded sessions side by side, without running anything again.

:func:`diff_sessions` compares any two sessions of the store (run here, forked, replayed
or observed from another framework): their paths, each agent's output, calls, tokens,
cost and latency, the totals, and the first point where they differ. The first
difference is found on each session's *steps* as the event stream tells them (an agent
starting, a model's answer, a tool call, a handoff, a failure, the end), compared in
order on what they did, not when or at what cost.

``playground diff A B`` prints it; ``--json`` prints :meth:`SessionDiff.as_json`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from playground.engine import events as ev
from playground.store import SessionRow


@dataclass(frozen=True)
class Step:
    """One thing a session did, as compared: who, what, and the detail that must match."""

    seq: int
    agent: str
    what: str
    detail: str

    def describe(self) -> str:
        who = f"{self.agent}: " if self.agent else ""
        return f"{who}{self.what} {self.detail}".rstrip()


@dataclass
class AgentSide:
    """One agent in one session."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    output: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "tokens": {"input": self.input_tokens, "output": self.output_tokens},
            "cost_usd": round(self.cost_usd, 8),
            "latency_ms": round(self.latency_ms, 3),
            "output": self.output,
        }


@dataclass
class Side:
    """One of the two sessions."""

    session: SessionRow
    observed: str | None
    agents: dict[str, AgentSide]
    steps: list[Step]

    def as_json(self) -> dict[str, Any]:
        row = self.session
        return {
            "session_id": row.session_id,
            "system": row.system,
            "observed": self.observed,
            "status": row.status,
            "input": row.input,
            "output": row.output,
            "path": row.path,
            "cost_usd": row.cost_usd,
            "tokens": {"input": row.input_tokens, "output": row.output_tokens},
            "latency_ms": row.latency_ms,
            "error": row.error,
            "steps": len(self.steps),
            "per_agent": {name: agent.as_json() for name, agent in self.agents.items()},
        }


@dataclass
class SessionDiff:
    """What :func:`diff_sessions` found."""

    a: Side
    b: Side
    first_difference: int | None
    """Index (0-based) of the first step that differs, None when every step matches."""
    agents: list[str] = field(default_factory=list)
    """Every agent of either session: A's in order, then B's others."""

    @property
    def same_path(self) -> bool:
        return self.a.session.path == self.b.session.path

    @property
    def identical(self) -> bool:
        """Same steps, same outcome (costs and times may differ)."""
        return self.first_difference is None and self.a.session.status == self.b.session.status

    def difference(self) -> tuple[Step | None, Step | None]:
        """The first differing step of each side (None where that side has no more steps)."""
        index = self.first_difference
        if index is None:
            return None, None
        a = self.a.steps[index] if index < len(self.a.steps) else None
        b = self.b.steps[index] if index < len(self.b.steps) else None
        return a, b

    def summary(self) -> str:
        """One line: where the sessions part ways."""
        if self.first_difference is None:
            if self.a.session.status != self.b.session.status:
                return f"same steps; A {self.a.session.status}, B {self.b.session.status}"
            return "same steps and outcome"
        a, b = self.difference()
        return (
            f"first difference at step {self.first_difference + 1}: "
            f"A {a.describe() if a else '(ended)'} | B {b.describe() if b else '(ended)'}"
        )

    def as_json(self) -> dict[str, Any]:
        a, b = self.difference()
        return {
            "a": self.a.as_json(),
            "b": self.b.as_json(),
            "same_path": self.same_path,
            "identical": self.identical,
            "first_difference": None
            if self.first_difference is None
            else {
                "step": self.first_difference + 1,
                "a": None
                if a is None
                else {"seq": a.seq, "agent": a.agent, "what": a.what, "detail": a.detail},
                "b": None
                if b is None
                else {"seq": b.seq, "agent": b.agent, "what": b.what, "detail": b.detail},
            },
            "delta": {
                "cost_usd": round(self.b.session.cost_usd - self.a.session.cost_usd, 8),
                "input_tokens": self.b.session.input_tokens - self.a.session.input_tokens,
                "output_tokens": self.b.session.output_tokens - self.a.session.output_tokens,
                "latency_ms": round(self.b.session.latency_ms - self.a.session.latency_ms, 3),
            },
            "summary": self.summary(),
        }


def _short(value: Any, limit: int = 120) -> str:
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def steps_of(events: Sequence[ev.Event]) -> list[Step]:
    """What a session did, step by step, as :func:`diff_sessions` compares it."""
    steps: list[Step] = []
    for event in events:
        agent = event.agent or ""
        match event:
            case ev.AgentStarted():
                steps.append(Step(event.seq, agent, "started", f"({event.reason})"))
            case ev.ModelResponded():
                calls = ", ".join(
                    f"{c.get('name')}({_short(c.get('arguments', ''), 80)})" for c in event.tool_calls
                )
                if calls:
                    steps.append(Step(event.seq, agent, "asked for", calls))
                else:
                    steps.append(Step(event.seq, agent, "replied", repr(_short(event.text))))
            case ev.ModelFailed():
                steps.append(Step(event.seq, agent, "model call failed", event.error_type))
            case ev.ToolCalled():
                steps.append(Step(event.seq, agent, "called", f"{event.tool}({_short(event.args, 80)})"))
            case ev.ToolReturned() if event.error:
                steps.append(Step(event.seq, agent, f"tool {event.tool} raised", _short(event.error, 80)))
            case ev.HandoffDelivered():
                steps.append(
                    Step(event.seq, agent, f"handed off to {event.target}", _short(event.payload, 80))
                )
            case ev.RunFinished():
                steps.append(Step(event.seq, "", "completed", repr(_short(event.output))))
            case ev.RunFailed():
                where = f" in {event.manifested}" if event.manifested else ""
                steps.append(Step(event.seq, "", f"{event.status}{where}", event.error_type))
            case _:
                pass
    return steps


def _agents(events: Sequence[ev.Event]) -> dict[str, AgentSide]:
    agents: dict[str, AgentSide] = {}
    for event in events:
        if event.agent is None:
            continue
        if isinstance(event, ev.AgentStarted):
            agents.setdefault(event.agent, AgentSide())
        elif isinstance(event, ev.ModelResponded):
            side = agents.setdefault(event.agent, AgentSide())
            side.calls += 1
            side.input_tokens += event.input_tokens
            side.output_tokens += event.output_tokens
            side.cost_usd += event.cost_usd
            side.latency_ms += event.latency_ms
        elif isinstance(event, ev.ModelFailed):
            agents.setdefault(event.agent, AgentSide()).latency_ms += event.latency_ms
        elif isinstance(event, ev.AgentFinished) and event.output:
            agents.setdefault(event.agent, AgentSide()).output = event.output
    return agents


def _side(session: SessionRow, events: Sequence[ev.Event]) -> Side:
    first = events[0] if events else None
    observed = first.observed if isinstance(first, ev.RunStarted) else None
    return Side(session, observed, _agents(events), steps_of(events))


def diff_sessions(
    a: SessionRow, a_events: Sequence[ev.Event], b: SessionRow, b_events: Sequence[ev.Event]
) -> SessionDiff:
    """Compare two stored sessions (their rows and events)."""
    left, right = _side(a, a_events), _side(b, b_events)
    first: int | None = None
    for index in range(max(len(left.steps), len(right.steps))):
        x = left.steps[index] if index < len(left.steps) else None
        y = right.steps[index] if index < len(right.steps) else None
        if x is None or y is None or (x.agent, x.what, x.detail) != (y.agent, y.what, y.detail):
            first = index
            break
    agents = list(left.agents) + [name for name in right.agents if name not in left.agents]
    return SessionDiff(left, right, first, agents)


def numbers_table(result: SessionDiff) -> Any:
    """Per agent and side, calls, tokens, cost and latency, then each side's totals: one row
    per agent and side (both sides on one row do not fit 80 columns). A Rich table, shared by
    ``playground diff`` and the TUI's diff screen."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    table.add_column("agent")
    table.add_column("", no_wrap=True)
    for column in ("calls", "tokens", "cost (USD)", "ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for name in result.agents:
        for label, side in (("A", result.a), ("B", result.b)):
            agent = side.agents.get(name)
            cells = (
                ["-", "-", "-", "-"]
                if agent is None
                else [
                    str(agent.calls),
                    f"{agent.input_tokens}+{agent.output_tokens}",
                    f"{agent.cost_usd:.6f}",
                    f"{agent.latency_ms:.0f}",
                ]
            )
            table.add_row(escape(name) if label == "A" else "", label, *cells)
    table.add_section()
    for label, side in (("A", result.a), ("B", result.b)):
        row = side.session
        table.add_row(
            "[bold]total[/]" if label == "A" else "",
            label,
            str(sum(a.calls for a in side.agents.values())),
            f"{row.input_tokens}+{row.output_tokens}",
            f"{row.cost_usd:.6f}",
            f"{row.latency_ms:.0f}",
        )
    return table
