"""What the run screen shows, folded from the event stream.

:class:`RunView` is a plain reducer: the run screen feeds it the engine's
events (live, through :mod:`playground.tui.bridge`) and the gate the run is
held at; widgets read it. No Textual here, so the same fold rebuilds a stored
session from ``store.events(...)`` and is tested without a terminal.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, assert_never

from playground.engine import events as ev
from playground.engine.clock import SYSTEM_CLOCK, Clock
from playground.engine.controller import Gate
from playground.llm.base import approx_tokens
from playground.spec.load import System
from playground.spec.models import AgentSpec

PANE_HISTORY = 200
"""Lines each agent pane keeps; older lines are dropped (long sessions stay flat in memory)."""
STREAM_CHARS = 4000
"""Characters of a streaming reply a pane keeps while it streams."""

AgentState = Literal[
    "idle", "waiting", "thinking", "calling a tool", "handed off", "done", "failed", "aborted"
]
RunStatus = Literal["ready", "running", "paused", "completed", "failed", "aborted"]
LineKind = Literal["incoming", "text", "tool", "result", "handoff", "error", "note", "operator"]
StepKind = Literal[
    "activation",
    "model_call",
    "tool_call",
    "handoff",
    "retry",
    "fallback",
    "validation",
    "permission",
    "loop",
    "escalation",
    "review",
    "operator",
    "run",
]


@dataclass(frozen=True, slots=True)
class TextChunk:
    """Coalesced token deltas of one model call (what the bridge sends instead of each delta)."""

    agent: str
    activation: int | None
    step: int | None
    text: str


RunItem: TypeAlias = ev.Event | TextChunk
"""What :meth:`RunView.apply` folds: an engine event, or coalesced token deltas."""


@dataclass(frozen=True, slots=True)
class PaneLine:
    """One line of an agent pane."""

    kind: LineKind
    text: str


@dataclass
class AgentView:
    """One agent as its pane shows it."""

    name: str
    model: str
    version: str
    description: str = ""
    state: AgentState = "idle"
    lines: deque[PaneLine] = field(default_factory=lambda: deque(maxlen=PANE_HISTORY))
    stream: str = ""
    """The reply streaming in now (empty between model calls); its last ``STREAM_CHARS``."""
    streamed: int = 0
    """Characters appended to ``stream`` since it was last cleared (a pane wraps only the new ones)."""
    stream_epoch: int = 0
    """Bumped whenever ``stream`` is cleared, so a pane knows to start over."""
    pending: str = ""
    """What is about to happen, while the run is held at this agent's gate."""
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    revision: int = 0
    """Bumped whenever ``lines`` change, so a pane redraws them only then."""

    def end_stream(self) -> None:
        """The streaming reply is over (it became lines, or the call failed)."""
        self.stream = ""
        self.streamed = 0
        self.stream_epoch += 1

    def add(self, kind: LineKind, text: str) -> None:
        self.lines.append(PaneLine(kind, text))
        self.revision += 1


@dataclass
class Step:
    """One row of the trace timeline."""

    seq: int
    kind: StepKind
    agent: str | None
    depth: int
    label: str
    start: float
    """Seconds of run time (time held at gates left out) since the run started."""
    end: float | None = None
    cost_usd: float = 0.0
    status: Literal["running", "ok", "failed", "info"] = "running"
    detail: list[tuple[str, str]] = field(default_factory=list)
    """Name/value pairs the inspector shows for this step."""
    handoff: HandoffView | None = None

    @property
    def latency_ms(self) -> float | None:
        return None if self.end is None else (self.end - self.start) * 1000


@dataclass
class HandoffView:
    """A handoff as the inspector shows it: delivered, or held at its gate."""

    source: str
    target: str
    payload: dict[str, Any]
    payload_tokens: int
    schema: str
    history: str = "none"
    history_tokens: int | None = None
    """What the source's full conversation would have cost; None while only estimated."""
    history_estimate: int = 0
    edited: bool = False
    pending: bool = False
    seq: int | None = None

    def typed_fields(self, system: System) -> list[tuple[str, str, str]]:
        """``(field, type, value as JSON)`` per payload field, typed by the handoff's schema."""
        types: dict[str, str] = {}
        source = system.spec.agents.get(self.source)
        if source is not None:
            for handoff in source.handoffs:
                if handoff.to == self.target:
                    types = {
                        f.name: f.type_name + ("?" if f.optional else "") for f in handoff.schema_.fields
                    }
        names = [*types, *(k for k in self.payload if k not in types)]
        return [
            (
                name,
                types.get(name, "?"),
                json.dumps(self.payload[name], ensure_ascii=False) if name in self.payload else "—",
            )
            for name in names
        ]


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fields(payload: dict[str, Any]) -> str:
    return "  ".join(f"{k}={_short(v, 80)}" for k, v in payload.items())


class RunView:
    """The run as the screen shows it, folded from events.

    Args:
        system: The loaded system.
        agents: The specs that run (the store's active versions).
        versions: Agent name to active version id.
        clock: Where the elapsed time comes from.
    """

    def __init__(
        self,
        system: System,
        agents: dict[str, AgentSpec] | None = None,
        versions: dict[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.system = system
        self._wall = clock.now
        specs = agents or system.spec.agents
        versions = versions or {}
        self.agents: dict[str, AgentView] = {
            name: AgentView(name, spec.model, versions.get(name, ""), spec.description)
            for name, spec in specs.items()
        }
        self.reset()

    def reset(self) -> None:
        """Clear everything of the last run (agents keep their model and version)."""
        for agent in self.agents.values():
            fresh = AgentView(agent.name, agent.model, agent.version, agent.description)
            self.agents[agent.name] = fresh
        self.session_id = ""
        self.status: RunStatus = "ready"
        self.input = ""
        self.output = ""
        self.error: dict[str, Any] | None = None
        self.path: list[str] = []
        self.steps: list[Step] = []
        self.handoffs: list[HandoffView] = []
        self.gate: Gate | None = None
        self.pending_handoff: HandoffView | None = None
        self.started: float | None = None
        self.last_ts: float | None = None
        self.finished: float | None = None
        self._paused_at: float | None = None
        self._paused_s = 0.0
        self._open: dict[tuple[str, int], Step] = {}
        self._depth: dict[int, int] = {}
        self._active: list[tuple[int, str]] = []
        self._messages: dict[int, list[dict[str, Any]]] = {}

    # -- what widgets read -------------------------------------------------------------------

    @property
    def active(self) -> str | None:
        """The agent handling the request now (the innermost unfinished activation)."""
        return self._active[-1][1] if self._active else None

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")

    def elapsed(self, now: float | None = None) -> float:
        """Seconds the run has been running, not counting time held at gates."""
        if self.started is None:
            return 0.0
        if self.finished is not None:
            end = self.finished
        elif self._paused_at is not None:
            end = self._paused_at
        else:
            end = now if now is not None else self._wall()
        return max(0.0, end - self.started - self._paused_s)

    def totals(self) -> tuple[int, int, float]:
        """Input tokens, output tokens and cost of the whole run."""
        views = self.agents.values()
        return (
            sum(a.input_tokens for a in views),
            sum(a.output_tokens for a in views),
            sum(a.cost_usd for a in views),
        )

    # -- gates -------------------------------------------------------------------------------

    def hold(self, gate: Gate) -> None:
        """The run stopped at ``gate``: show what is about to happen."""
        self.gate = gate
        self.status = "paused"
        self._paused_at = self._wall()
        agent = self.agents.get(gate.agent)
        payload = gate.payload
        if gate.kind == "model_call":
            messages = payload.get("messages") or []
            last = messages[-1] if messages else {}
            what = f"call {payload.get('model')} with {len(messages)} messages"
            content = last.get("content") or ""
            pending = f"{what}; last [{last.get('role', '?')}] {_short(content, 200)}"
        elif gate.kind == "tool_call":
            pending = f"run tool {payload.get('tool')}({_fields(payload.get('args') or {})})"
        else:
            target = str(payload.get("target"))
            context = payload.get("context") or {}
            pending = f"hand off to {target}: {_fields(context)}"
            self.pending_handoff = self._pending_handoff(gate.agent, target, context)
        if agent is not None:
            agent.pending = pending
            agent.state = "waiting"

    def release(self) -> None:
        """The operator let the held step go."""
        gate, self.gate = self.gate, None
        self.pending_handoff = None
        if self._paused_at is not None:
            self._paused_s += self._wall() - self._paused_at
            self._paused_at = None
        if self.status == "paused":
            self.status = "running"
        if gate is not None and gate.agent in self.agents:
            agent = self.agents[gate.agent]
            agent.pending = ""
            agent.state = {"model_call": "thinking", "tool_call": "calling a tool"}.get(
                gate.kind, "handed off"
            )  # type: ignore[assignment]

    def _pending_handoff(self, source: str, target: str, context: dict[str, Any]) -> HandoffView:
        schema = "{question: str}"
        spec = self.system.spec.agents.get(source)
        history = "none"
        if spec is not None:
            for handoff in spec.handoffs:
                if handoff.to == target:
                    schema, history = handoff.schema_.describe(), handoff.history
        rendered = json.dumps(context, ensure_ascii=False, separators=(",", ":"))
        estimate = 0
        if self._active:
            messages = self._messages.get(self._active[-1][0], [])
            estimate = sum(approx_tokens(str(m.get("content") or "")) for m in messages[1:])
        return HandoffView(
            source,
            target,
            dict(context),
            approx_tokens(rendered),
            schema,
            history=history,
            history_estimate=estimate,
            pending=True,
        )

    # -- events ------------------------------------------------------------------------------

    def apply_all(self, items: Iterable[RunItem]) -> None:
        for item in items:
            self.apply(item)

    def apply(self, item: RunItem) -> None:
        """Fold one event (or a :class:`TextChunk`) into the view."""
        if isinstance(item, TextChunk):
            agent = self.agents.get(item.agent)
            if agent is not None:
                agent.stream = (agent.stream + item.text)[-STREAM_CHARS:]
                agent.streamed += len(item.text)
                agent.state = "thinking"
            return
        self.last_ts = item.ts
        match item:
            case ev.AgentStarted():
                self._on_agent_started(item)
            case ev.ModelRequested():
                self._on_model_requested(item)
            case ev.ModelResponded():
                self._on_model_responded(item)
            case ev.AgentFinished():
                self._on_agent_finished(item)
            case ev.HandoffDelivered():
                self._on_handoff_delivered(item)
            case ev.ToolCalled():
                self._on_tool_called(item)
            case ev.ToolReturned():
                self._on_tool_returned(item)
            case ev.RunStarted():
                self._on_run_started(item)
            case ev.RunFinished():
                self._on_run_finished(item)
            case ev.RunFailed():
                self._on_run_failed(item)
            case ev.ModelFailed():
                self._on_model_failed(item)
            case ev.RetryScheduled():
                self._on_retry_scheduled(item)
            case ev.FallbackUsed():
                self._on_fallback_used(item)
            case ev.ValidationFailed():
                self._on_validation_failed(item)
            case ev.PermissionDenied():
                self._on_permission_denied(item)
            case ev.LoopDetected():
                self._on_loop_detected(item)
            case ev.Escalated():
                self._on_escalated(item)
            case ev.CheckpointReviewed():
                self._on_checkpoint_reviewed(item)
            case ev.OperatorActed():
                self._on_operator_acted(item)
            case ev.TokenDelta():
                pass  # the bridge turns deltas into TextChunks; a stored session has none
            case _:
                assert_never(item)

    def _agent(self, name: str | None) -> AgentView | None:
        return self.agents.get(name) if name else None

    def _clock(self, ts: float) -> float:
        """Run time of an event: seconds since the run started, without time held at gates.

        Events reach the view in order, before the next hold and after the last release,
        so the time held so far is exactly what happened before ``ts``.
        """
        return max(0.0, ts - (self.started or ts) - self._paused_s)

    def _step(
        self, event: ev.Event, kind: StepKind, label: str, *, depth: int | None = None, **kw: Any
    ) -> Step:
        if depth is None:
            activation = event.activation
            if activation is None and self._active:
                activation = next((a for a, name in reversed(self._active) if name == event.agent), None)
            depth = self._depth.get(activation or -1, -1) + 1
        step = Step(event.seq, kind, event.agent, depth, label, self._clock(event.ts), **kw)
        self.steps.append(step)
        return step

    def _instant(self, event: ev.Event, kind: StepKind, label: str, status: str = "info", **kw: Any) -> Step:
        step = self._step(event, kind, label, **kw)
        step.end = step.start
        step.status = status  # type: ignore[assignment]
        return step

    def _on_run_started(self, event: ev.RunStarted) -> None:
        self.session_id = event.session_id
        self.status = "running"
        self.input = event.input
        self.started = event.ts
        for name, version in event.versions.items():
            if name in self.agents:
                self.agents[name].version = version

    def _on_agent_started(self, event: ev.AgentStarted) -> None:
        parent_depth = self._depth.get(event.parent_activation or -1)
        depth = parent_depth + 2 if parent_depth is not None else 0
        self._depth[event.seq] = depth
        if event.parent_activation is not None:
            for _, name in self._active:
                view = self._agent(name)
                if view is not None and view.state != "waiting":
                    view.state = "waiting"
        self._active.append((event.seq, event.agent or ""))
        if not self.path or self.path[-1] != event.agent:
            self.path.append(event.agent or "")
        agent = self._agent(event.agent)
        if agent is not None:
            agent.state = "waiting"
            if event.model:
                agent.model = event.model
            if event.context is not None:
                source = self.handoffs[-1].source if event.reason == "handoff" and self.handoffs else ""
                who = f"from {source}" if source else event.reason
                agent.add("incoming", f"⇠ {who}: {_fields(event.context)}")
            else:
                agent.add("incoming", f"⇠ {event.reason}: {_short(event.incoming, 300)}")
        self._open[("act", event.seq)] = self._step(
            event,
            "activation",
            f"{event.agent} ({event.reason})",
            depth=depth,
            detail=[
                ("agent", event.agent or ""),
                ("reason", event.reason),
                ("model", event.model),
                ("incoming", _short(event.incoming, 400)),
            ],
        )

    def _on_agent_finished(self, event: ev.AgentFinished) -> None:
        self._active = [(seq, name) for seq, name in self._active if seq != event.activation]
        if self._active:
            parent = self._agent(self._active[-1][1])
            if parent is not None and parent.state == "waiting" and not parent.pending:
                parent.state = "thinking"
        agent = self._agent(event.agent)
        if agent is not None:
            agent.state = {"reply": "done", "handoff": "handed off", "failed": "failed"}.get(
                event.outcome, "aborted"
            )  # type: ignore[assignment]
        step = self._open.pop(("act", event.activation or -1), None)
        if step is not None:
            step.end = self._clock(event.ts)
            step.status = "failed" if event.outcome in ("failed", "aborted") else "ok"
            step.label += f" → {event.handoff_to}" if event.handoff_to else f" {event.outcome}"

    def _on_model_requested(self, event: ev.ModelRequested) -> None:
        agent = self._agent(event.agent)
        if agent is not None:
            agent.state = "thinking"
            agent.end_stream()
            agent.pending = ""
        if event.activation is not None:
            self._messages[event.activation] = event.messages
        last = event.messages[-1] if event.messages else {}
        attempt = f" attempt {event.attempt}" if event.attempt > 1 else ""
        self._open[("model", event.step or 0)] = self._step(
            event,
            "model_call",
            f"llm {event.model}{attempt}",
            detail=[
                ("agent", event.agent or ""),
                ("model", event.model),
                ("messages", str(len(event.messages))),
                ("tools", ", ".join(event.tools) or "none"),
                (f"last [{last.get('role', '?')}]", _short(last.get("content") or "", 400)),
            ],
        )

    def _on_model_responded(self, event: ev.ModelResponded) -> None:
        agent = self._agent(event.agent)
        if agent is not None:
            agent.end_stream()
            agent.calls += 1
            agent.input_tokens += event.input_tokens
            agent.output_tokens += event.output_tokens
            agent.cost_usd += event.cost_usd
            agent.latency_ms += event.latency_ms
            if event.retry_of is not None:
                agent.add("operator", f"↻ retried (replaces response #{event.retry_of})")
            if event.text:
                agent.add("text", event.text)
        step = self._open.pop(("model", event.step or 0), None)
        if step is not None:
            step.end = self._clock(event.ts)
            step.status = "ok"
            step.cost_usd = event.cost_usd
            calls = ", ".join(c.get("name", "?") for c in event.tool_calls)
            if event.retry_of is not None:
                step.label += " (retry)"
            if event.replayed:
                step.label += " (replayed)"  # answered from the recording of a fork or replay
            step.detail += [
                ("answer", calls or _short(event.text, 400)),
                ("tokens", f"{event.input_tokens} in / {event.output_tokens} out"),
                ("cost", f"${event.cost_usd:.6f}"),
                ("latency", f"{event.latency_ms:.0f} ms"),
            ]

    def _on_model_failed(self, event: ev.ModelFailed) -> None:
        agent = self._agent(event.agent)
        if agent is not None:
            agent.end_stream()
            agent.latency_ms += event.latency_ms
            agent.add("error", f"✘ {event.error_type}: {event.message}")
        step = self._open.pop(("model", event.step or 0), None)
        if step is not None:
            step.end = self._clock(event.ts)
            step.status = "failed"
            step.detail += [("error", f"{event.error_type}: {event.message}")]

    def _on_retry_scheduled(self, event: ev.RetryScheduled) -> None:
        self._instant(event, "retry", f"retry {event.model} (attempt {event.attempt}) in {event.delay_s:g} s")
        agent = self._agent(event.agent)
        if agent is not None:
            agent.add("note", f"↻ retry {event.attempt} in {event.delay_s:g} s")

    def _on_fallback_used(self, event: ev.FallbackUsed) -> None:
        self._instant(event, "fallback", f"fallback {event.from_model} → {event.to_model}")
        agent = self._agent(event.agent)
        if agent is not None:
            agent.model = event.to_model
            agent.add("note", f"⤳ fallback to {event.to_model}")

    def _on_tool_called(self, event: ev.ToolCalled) -> None:
        agent = self._agent(event.agent)
        if agent is not None:
            agent.state = "calling a tool"
            agent.pending = ""
            agent.add("tool", f"→ {event.tool}({_fields(event.args)})")
        self._open[("tool", event.step or 0)] = self._step(
            event,
            "tool_call",
            f"tool {event.tool}",
            detail=[("agent", event.agent or ""), ("tool", event.tool), ("args", _short(event.args, 400))],
        )

    def _on_tool_returned(self, event: ev.ToolReturned) -> None:
        agent = self._agent(event.agent)
        if agent is not None:
            if event.error:
                agent.add("error", f"← {event.tool} raised {event.error}")
            else:
                agent.add("result", f"← {_short(event.result, 300)}")
            if agent.state == "calling a tool":
                agent.state = "thinking"
        step = self._open.pop(("tool", event.step or 0), None)
        if step is not None:
            step.end = self._clock(event.ts)
            step.status = "failed" if event.error else "ok"
            step.detail += [("result", _short(event.error or event.result, 400))]

    def _on_permission_denied(self, event: ev.PermissionDenied) -> None:
        self._instant(event, "permission", f"permission denied: {event.tool}", "failed")
        agent = self._agent(event.agent)
        if agent is not None:
            agent.add("error", f"⛔ not permitted: {event.tool} (allowed: {', '.join(event.allowed)})")

    def _on_handoff_delivered(self, event: ev.HandoffDelivered) -> None:
        view = HandoffView(
            event.source,
            event.target,
            event.payload,
            event.payload_tokens,
            event.payload_schema,
            history=event.history,
            history_tokens=event.history_tokens,
            edited=event.edited,
            seq=event.seq,
        )
        self.handoffs.append(view)
        self.pending_handoff = None
        agent = self._agent(event.agent)
        if agent is not None:
            agent.pending = ""
            edited = " (edited)" if event.edited else ""
            agent.add("handoff", f"⇢ {event.target}{edited}: {_fields(event.payload)}")
        self._instant(
            event,
            "handoff",
            f"handoff → {event.target} · {event.payload_tokens} tok",
            "ok",
            handoff=view,
            detail=[("payload", _short(event.payload, 400)), ("schema", event.payload_schema)],
        )

    def _on_validation_failed(self, event: ev.ValidationFailed) -> None:
        self._instant(event, "validation", f"invalid {event.what.replace('_', ' ')}", "failed")
        self._steps_detail(("errors", event.errors), ("target", event.target or ""))
        agent = self._agent(event.agent)
        if agent is not None:
            agent.add("error", f"✘ invalid {event.what.replace('_', ' ')}: {_short(event.errors, 300)}")

    def _on_checkpoint_reviewed(self, event: ev.CheckpointReviewed) -> None:
        status = "ok" if event.verdict == "accept" else "failed"
        self._instant(event, "review", f"review {event.worker}: {event.verdict}", status)
        agent = self._agent(event.agent)
        if agent is not None:
            agent.add("note", f"✔ reviewed {event.worker}: {event.verdict} {_short(event.feedback, 200)}")

    def _on_loop_detected(self, event: ev.LoopDetected) -> None:
        self._instant(event, "loop", f"loop: {event.reason} → {event.policy}", "failed")
        agent = self._agent(event.agent)
        if agent is not None:
            agent.add("error", f"⟲ loop detected: {event.reason} (policy: {event.policy})")

    def _on_escalated(self, event: ev.Escalated) -> None:
        self._instant(event, "escalation", f"escalated to {event.target}")

    def _on_operator_acted(self, event: ev.OperatorActed) -> None:
        self._instant(event, "operator", f"{event.action} ({event.gate.replace('_', ' ')})")
        self._steps_detail(*((k, _short(v, 400)) for k, v in event.detail.items()))
        agent = self._agent(event.agent)
        if agent is not None and event.action not in ("step", "continue"):
            agent.add("operator", f"⚑ operator {event.action} at {event.gate}")

    def _steps_detail(self, *pairs: tuple[str, str]) -> None:
        self.steps[-1].detail += [p for p in pairs if p[1]]

    def _close_all(self, ts: float, status: Literal["ok", "failed"]) -> None:
        for step in self._open.values():
            step.end = self._clock(ts)
            step.status = status
        self._open.clear()
        self._active.clear()
        self.gate = None
        self.pending_handoff = None
        for agent in self.agents.values():
            agent.pending = ""
            agent.end_stream()
            if agent.state in ("waiting", "thinking", "calling a tool"):
                agent.state = "failed" if status == "failed" else "done"

    def _on_run_finished(self, event: ev.RunFinished) -> None:
        self.status = "completed"
        self.output = event.output
        self.path = list(event.path) or self.path
        self.finished = event.ts
        self._close_all(event.ts, "ok")
        self._instant(event, "run", "run completed", "ok", depth=0)

    def _on_run_failed(self, event: ev.RunFailed) -> None:
        self.status = event.status
        self.finished = event.ts
        self.error = {
            "type": event.error_type,
            "message": event.message,
            "origin": event.origin,
            "manifested": event.manifested,
        }
        self.path = list(event.path) or self.path
        self._close_all(event.ts, "failed")
        if event.status == "aborted":
            for agent in self.agents.values():
                if agent.state == "failed":
                    agent.state = "aborted"
        else:
            manifested = self._agent(event.manifested)
            if manifested is not None:
                manifested.state = "failed"
                origin = f" (origin: {event.origin})" if event.origin != event.manifested else ""
                manifested.add("error", f"✘ the run failed here{origin}: {event.error_type}")
        self._instant(event, "run", f"run {event.status}: {event.error_type}", "failed", depth=0)
        self._steps_detail(
            ("error", event.message), ("origin", event.origin or "-"), ("manifested", event.manifested or "-")
        )
