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
    "idle",
    "waiting",
    "thinking",
    "calling a tool",
    "handed off",
    "done",
    "failed",
    "aborted",
    "interrupted",
]
RunStatus = Literal["ready", "running", "paused", "completed", "failed", "aborted", "interrupted"]
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
    "budget",
    "guard",
    "approval",
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
    """``seq`` of the event that opened the row."""
    kind: StepKind
    agent: str | None
    depth: int
    label: str
    start: float
    """Seconds of run time (time held at gates left out) since the run started."""
    step: int | None = None
    """The engine's step number (what ``playground fork --at`` takes): on the rows of model
    calls, tool calls and delegations, and handoffs; None on every other row."""
    owner: int | None = None
    """The activation the row belongs to (an activation's own row: itself)."""
    end: float | None = None
    cost_usd: float = 0.0
    status: Literal["running", "ok", "failed", "info"] = "running"
    detail: list[tuple[str, str]] = field(default_factory=list)
    """Name/value pairs the inspector shows for this step."""
    handoff: HandoffView | None = None
    parent: Step | None = field(default=None, repr=False, compare=False)
    """The row this one shows under."""
    tail: Step | None = field(default=None, repr=False, compare=False)
    """The last row under this one (None: no row is under it)."""

    @property
    def latency_ms(self) -> float | None:
        return None if self.end is None else (self.end - self.start) * 1000


@dataclass(frozen=True, slots=True)
class BlameHop:
    """One place a failing field went through (a hop of the run's ``error.lineage``)."""

    agent: str
    """The agent (``request`` for the run's input)."""
    kind: str
    """``request``, ``input``, ``output``, ``handoff`` or ``tool_args``."""
    seq: int
    step: int | None
    present: bool
    value: Any
    """The field's value there (None when absent)."""
    payload: Any
    """Everything the agent received or produced at this hop (None when not recorded)."""
    origin: bool
    """The first hop of the origin agent's that lost or changed the field."""


@dataclass(frozen=True, slots=True)
class Blame:
    """Where a failed run's failure started: the field's hops from origin to manifestation."""

    field: str
    traced: bool
    origin: str | None
    manifested: str | None
    reason: str
    hops: list[BlameHop]


EdgeKind = Literal["handoff", "delegation", "stage"]


@dataclass
class HandoffView:
    """An edge of the path as the inspector shows it: a handoff, a supervisor's delegation
    to a worker or a pipeline's stage transition; delivered, or held at its gate."""

    sources: tuple[str, ...]
    """The agent handing off (a parallel group's agents, for the stage after the group)."""
    targets: tuple[str, ...]
    """The agent receiving it (a parallel group's agents, for the stage into the group)."""
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
    step: int | None = None
    """The engine's step number of the handoff (held: the number it will have)."""
    kind: EdgeKind = "handoff"
    types: dict[str, str] | None = None
    """Field to type, for a delegation or a stage: the receiving agent's ``input``."""

    @property
    def source(self) -> str:
        """The sending side as the path reads it (``prices ∥ reviews`` for a group)."""
        return " ∥ ".join(self.sources)

    @property
    def target(self) -> str:
        """The receiving side as the path reads it."""
        return " ∥ ".join(self.targets)

    def typed_fields(self, system: System) -> list[tuple[str, str, str]]:
        """``(field, type, value as JSON)`` per payload field, typed by the handoff's schema."""
        types: dict[str, str] = dict(self.types or {})
        source = system.spec.agents.get(self.source) if self.kind == "handoff" else None
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
                types.get(name, "?" if self.kind == "handoff" else _json_type(self.payload.get(name))),
                json.dumps(self.payload[name], ensure_ascii=False) if name in self.payload else "—",
            )
            for name in names
        ]


def _json_type(value: Any) -> str:
    """The type of an undeclared field's value, in the schemas' words."""
    for kind, name in (
        (bool, "bool"),
        (int, "int"),
        (float, "float"),
        (str, "str"),
        (list, "list"),
        (dict, "dict"),
    ):
        if isinstance(value, kind):
            return name
    return "?"


@dataclass
class Hop:
    """One stop of the path: the agent the request went to, or the agents that took it at once."""

    agents: list[str]
    handoff: HandoffView | None = None
    """The handoff that led here, if one did."""
    activations: list[int] = field(default_factory=list)
    parent: int | None = None
    """The activation that delegated to this stop's agents, if one did."""


@dataclass(slots=True)
class _Running:
    """An activation that has not finished."""

    agent: str
    parent: int | None
    children: int = 0
    """Its delegated workers running now."""
    tools: int = 0
    """Its own tool calls running now (a delegation counts in ``children``)."""


def possessive(name: str) -> str:
    """``billing's``, but ``reviews'``: an agent's name as the owner of its step."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fields(payload: dict[str, Any]) -> str:
    return "  ".join(f"{k}={_short(v, 80)}" for k, v in payload.items())


_GATE_NAMES = {"model_call": "model call", "tool_call": "tool call", "handoff": "handoff"}


def _input_of(system: System, agents: Iterable[str]) -> tuple[str, dict[str, str]]:
    """The ``input`` schema ``agents`` declare (described) and its fields' types; ``any``
    when none declares one (they take the text as it is)."""
    described: list[str] = []
    types: dict[str, str] = {}
    for name in agents:
        spec = system.spec.agents.get(name)
        if spec is None or spec.input is None:
            continue
        described.append(spec.input.describe())
        for f in spec.input.fields:
            types.setdefault(f.name, f.type_name + ("?" if f.optional else ""))
    unique = list(dict.fromkeys(described))
    return (" ∥ ".join(unique) if unique else "any"), types


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
        self.blame: Blame | None = None
        self.over_budget: set[str] = set()
        """Agents (and ``run``) whose budget a model call would have exceeded."""
        """A failed run's lineage of the field it failed over, when the engine traced one."""
        self._values: dict[int, Any] = {}
        """What each agent received or produced, by event seq (the blame view's payloads)."""
        self.path: list[str] = []
        self.hops: list[Hop] = []
        """The path with the agents that ran at once as one stop."""
        self.steps: list[Step] = []
        """The timeline's rows: each nested under the row it belongs to, in the order they began."""
        self.handoffs: list[HandoffView] = []
        """Every edge of the path in the order taken: handoffs, delegations, stage transitions."""
        self._edges_by_seq: dict[int, HandoffView] = {}
        """Delegations by their tool call's seq, stage transitions by their cause's seq."""
        self._stage_rows: dict[int, Step] = {}
        """The timeline rows of stage transitions, by their edge's seq."""
        self._edited_steps: set[int] = set()
        """Steps whose payload an operator edited at their gate."""
        self._held_what: dict[int, str] = {}
        """What was held at a step's gate when it is more than its gate's kind says (``stage
        output``, ``delegation``), by step: how an operator's action there reads."""
        self.gate: Gate | None = None
        self.pending_handoff: HandoffView | None = None
        self.started: float | None = None
        self.last_ts: float | None = None
        self.finished: float | None = None
        self._paused_s = 0.0
        """Seconds the run was held at gates, as its operators' actions recorded (``held_ms``)."""
        self._held_from: float | None = None
        """The hold now shown began: the time of the run's last event before it."""
        self._released_at: float | None = None
        """When the operator let that hold go, until the engine's record of it arrives."""
        self._open: dict[tuple[str, int], Step] = {}
        self._depth: dict[int, int] = {}
        self._running: dict[int, _Running] = {}
        """Unfinished activations by the seq of their ``agent_started``, oldest first."""
        self._rows: dict[int, Step] = {}
        """The rows of activations and tool calls, by the seq of the event that opened them."""
        self._last: Step | None = None
        """The row made last (where a following notice adds its details)."""
        self._messages: dict[int, list[dict[str, Any]]] = {}

    # -- what widgets read -------------------------------------------------------------------

    @property
    def active_agents(self) -> list[str]:
        """The agents handling the request now, in the order they started: every unfinished
        activation not just waiting for its delegated workers (several when branches run at once)."""
        names: list[str] = []
        for running in self._running.values():
            if (running.children == 0 or running.tools) and running.agent not in names:
                names.append(running.agent)
        return names

    @property
    def active(self) -> str | None:
        """The agent that began handling the request last (one of :attr:`active_agents`)."""
        names = self.active_agents
        return names[-1] if names else None

    def agent_time(self) -> float:
        """Seconds the agents worked, summed (model and tool calls): above :meth:`elapsed`
        when agents ran at the same time."""
        return sum(a.latency_ms for a in self.agents.values()) / 1000

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")

    def elapsed(self, now: float | None = None) -> float:
        """The run's time in seconds: from its first event to its last (its final event; the
        last recorded one when it was interrupted; now while it runs), less the time it was
        held at gates (each operator action's ``held_ms``). One definition, live and stored:
        a session shows the same figure while it runs and when it is opened again."""
        if self.started is None:
            return 0.0
        pending = 0.0
        if self.finished is not None:
            end = self.finished
        elif self._held_from is not None and self._released_at is None:
            end = self._held_from  # held now: the run's time stopped at its last event
        else:
            end = now if now is not None else self._wall()
            if self._held_from is not None and self._released_at is not None:
                pending = self._released_at - self._held_from  # until the engine's held_ms arrives
        return max(0.0, end - self.started - self._paused_s - pending)

    def interrupt(self) -> None:
        """The recording ends mid-run (its process was killed): the run ended at its last
        event, and what was in flight then shows as interrupted, not as running."""
        if not self.running or self.last_ts is None:
            return
        in_flight = [a for a in self.agents.values() if a.state in ("waiting", "thinking", "calling a tool")]
        self._close_all(self.last_ts, "failed")
        for agent in in_flight:
            agent.state = "interrupted"
        self.status = "interrupted"
        self.finished = self.last_ts

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
        self._held_from = self.last_ts if self.last_ts is not None else self._wall()
        self._released_at = None
        agent = self.agents.get(gate.agent)
        payload = gate.payload
        if gate.kind == "model_call":
            messages = payload.get("messages") or []
            last = messages[-1] if messages else {}
            what = f"call {payload.get('model')} with {len(messages)} messages"
            content = last.get("content") or ""
            pending = f"{what}; last [{last.get('role', '?')}] {_short(content, 200)}"
        elif gate.kind == "tool_call" and self._is_delegation(gate.agent, str(payload.get("tool"))):
            # A supervisor's delegation held at its gate: a pending edge of the path, like a handoff.
            tool, args = str(payload.get("tool")), dict(payload.get("args") or {})
            pending = f"delegate to {tool}: {_fields(args)}"
            self.pending_handoff = self._delegation_view(gate.agent, tool, args, None, gate.step)
            self.pending_handoff.pending = True
        elif gate.kind == "tool_call":
            pending = f"run tool {payload.get('tool')}({_fields(payload.get('args') or {})})"
        elif payload.get("stage"):
            target = str(payload.get("target"))
            context = payload.get("context") or {}
            pending = f"deliver to {target}: {_fields(context)}"
            self.pending_handoff = self._pending_stage(payload, gate.step)
        else:
            target = str(payload.get("target"))
            context = payload.get("context") or {}
            pending = f"hand off to {target}: {_fields(context)}"
            self.pending_handoff = self._pending_handoff(gate.agent, target, context)
            self.pending_handoff.step = gate.step
        what = self.held_what(gate)
        if what != _GATE_NAMES.get(gate.kind, gate.kind):
            self._held_what[gate.step] = what
        if agent is not None:
            agent.pending = pending
            agent.state = "waiting"

    def held_what(self, gate: Gate) -> str:
        """What is held at ``gate``, in the operator's words: ``model call``, ``tool call``,
        ``handoff``, ``stage output`` (a pipeline stage's, before the next stage receives it)
        or ``delegation`` (a supervisor's to a worker)."""
        if gate.payload.get("stage"):
            return "stage output"
        if gate.kind == "tool_call" and self._is_delegation(gate.agent, str(gate.payload.get("tool"))):
            return "delegation"
        return _GATE_NAMES.get(gate.kind, gate.kind)

    def release(self) -> None:
        """The operator let the held step go."""
        gate, self.gate = self.gate, None
        self.pending_handoff = None
        if self._held_from is not None:
            self._released_at = self._wall()
        if self.status == "paused":
            self.status = "running"
        if gate is not None and gate.agent in self.agents:
            agent = self.agents[gate.agent]
            agent.pending = ""
            if gate.payload.get("stage"):
                agent.state = "done"  # a stage's output goes on; the stage itself has finished
            else:
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
        activation = self._activation_of(source)
        if activation is not None:
            messages = self._messages.get(activation, [])
            estimate = sum(approx_tokens(str(m.get("content") or "")) for m in messages[1:])
        return HandoffView(
            (source,),
            (target,),
            dict(context),
            approx_tokens(rendered),
            schema,
            history=history,
            history_estimate=estimate,
            pending=True,
        )

    def _pending_stage(self, payload: dict[str, Any], step: int) -> HandoffView:
        """A pipeline stage's output held before the next stage receives it."""
        targets = tuple(payload.get("targets") or ())
        schema, types = _input_of(self.system, list(targets))
        return HandoffView(
            tuple(payload.get("sources") or ()),
            targets,
            dict(payload.get("context") or {}),
            int(payload.get("payload_tokens") or 0),
            schema,
            pending=True,
            step=step,
            kind="stage",
            types=types,
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
        self._remember(item)
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
            case ev.BudgetExceeded():
                self._on_budget_exceeded(item)
            case ev.GuardAllowed():
                pass  # shown only when it changed or refused something
            case ev.GuardRewrote():
                rewrote = self._instant(
                    item, "guard", f"guard rewrote {', '.join(item.changed) or 'the history'}"
                )
                rewrote.detail += [("guard", item.guard), ("handoff", f"{item.source} → {item.target}")]
                rewrote.detail += [
                    (
                        name,
                        f"{_short(item.before.get(name, '—'), 150)} → "
                        f"{_short(item.after.get(name, '—'), 150)}",
                    )
                    for name in item.changed
                ]
                rewrote.detail += [("history", "rewritten too")] if item.history_changed else []
                agent = self._agent(item.agent)
                if agent is not None:
                    agent.add(
                        "note", f"guard {item.guard} rewrote {', '.join(item.changed) or 'the history'}"
                    )
            case ev.ApprovalRequested():
                self._instant(
                    item,
                    "approval",
                    f"approval needed: {item.tool}",
                    detail=[("tool", item.tool), ("args", _short(item.args, 400))],
                )
                agent = self._agent(item.agent)
                if agent is not None:
                    agent.add("note", f"{item.tool} needs a person's approval")
            case ev.ApprovalDecided():
                verdict_ok = "ok" if item.verdict == "approved" else "failed"
                decided = self._instant(item, "approval", f"{item.tool} {item.verdict}", verdict_ok)
                decided.detail += [("reason", item.reason)] if item.reason else []
                decided.detail += [("edited args", _short(item.args, 400))] if item.edited else []
            case ev.GuardDenied():
                self._instant(item, "guard", f"guard denied → {item.target}: {item.reason}", "failed")
                agent = self._agent(item.agent)
                if agent is not None:
                    agent.add("error", f"guard denied the handoff to {item.target}: {item.reason}")
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

    def _remember(self, event: ev.Event) -> None:
        """Keep (a reference to) the values lineage hops point at, by their event's seq."""
        match event:
            case ev.RunStarted():
                self._values[event.seq] = event.input
            case ev.AgentStarted():
                self._values[event.seq] = event.context if event.context is not None else event.incoming
            case ev.AgentFinished():
                self._values[event.seq] = event.output
            case ev.HandoffDelivered():
                self._values[event.seq] = event.payload
            case ev.ToolCalled():
                self._values[event.seq] = event.args
            case _:
                pass

    def step_at(self, seq: int, agent: str | None = None) -> Step | None:
        """The timeline row of event ``seq``: the row it opened, else the last row of
        ``agent`` begun before it (an agent's output: the call that produced it)."""
        best: Step | None = None
        for row in self.steps:
            if row.seq == seq:
                return row
            earlier = row.seq < seq and (best is None or row.seq > best.seq)
            if earlier and (agent is None or row.agent == agent) and row.kind != "run":
                best = row
        return best

    def _agent(self, name: str | None) -> AgentView | None:
        return self.agents.get(name) if name else None

    def _activation_of(self, agent: str | None) -> int | None:
        """The newest unfinished activation of ``agent``."""
        return next((seq for seq in reversed(self._running) if self._running[seq].agent == agent), None)

    def _is_delegation(self, agent: str | None, tool: str) -> bool:
        spec = self.system.spec.agents.get(agent or "")
        return spec is not None and tool in spec.delegates

    def _clock(self, ts: float) -> float:
        """Run time of an event: seconds since the run started, without time held at gates.

        Events reach the view in order, before the next hold and after the last release,
        so the time held so far is exactly what happened before ``ts``.
        """
        return max(0.0, ts - (self.started or ts) - self._paused_s)

    def _step(
        self, event: ev.Event, kind: StepKind, label: str, *, depth: int | None = None, **kw: Any
    ) -> Step:
        activation = event.activation
        if activation is None and event.agent is not None:
            activation = self._activation_of(event.agent)
        if depth is None:
            depth = self._depth.get(activation, -1) + 1 if activation is not None else 0
        step = Step(event.seq, kind, event.agent, depth, label, self._clock(event.ts), owner=activation, **kw)
        anchor = self._rows.get(activation) if activation is not None and depth else None
        self._place(step, anchor, activation)
        return step

    def _place(self, row: Step, anchor: Step | None, owner: int | None) -> None:
        """Add ``row`` under ``anchor``, the row it belongs to (a row of ``owner``).

        A run of one branch at a time reads top to bottom in the order things happened:
        ``row`` goes last whenever the row it would then show under (the nearest row above
        that is less indented) is one of ``owner``'s. When branches run at once that row may
        be a sibling branch's: ``row`` then goes after the last of ``anchor``'s rows instead.
        Each row knows the row it shows under and the last row under it, so this costs the
        depth of the tree, not the length of the run.
        """
        rows = self.steps
        self._last = row
        prev = rows[-1] if rows else None
        above = prev
        while above is not None and above.depth >= row.depth:
            above = above.parent
        if anchor is not None and above is not None and above.owner != owner:
            prev = anchor.tail or anchor
            at = len(rows) - 1
            while at >= 0 and rows[at] is not prev:  # near the end: only sibling branches follow
                at -= 1
            rows.insert(at + 1, row)
            above = anchor
        else:
            rows.append(row)
        row.parent = above
        while above is not None and (above.tail or above) is prev:
            above.tail = row
            above = above.parent

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
        parent = event.parent_activation
        parent_depth = self._depth.get(parent) if parent is not None else None
        depth = parent_depth + 2 if parent_depth is not None else 0
        self._depth[event.seq] = depth
        handoff = None
        if event.reason == "handoff":
            handoff = next((h for h in reversed(self.handoffs) if h.seq == event.cause), None)
            handoff = handoff or (self.handoffs[-1] if self.handoffs else None)
        elif event.reason == "delegation":
            handoff = self._edges_by_seq.get(event.cause or -1)
        elif event.reason == "stage":
            handoff = self._stage_edge(event)
        self._add_hop(event, handoff)
        delegator = self._running.get(parent) if parent is not None else None
        if delegator is not None:
            # Only the delegating activation waits; its other workers keep working.
            delegator.children += 1
            view = self._agent(delegator.agent)
            if view is not None and not delegator.tools:
                view.state = "waiting"
        self._running[event.seq] = _Running(event.agent or "", parent)
        if not self.path or self.path[-1] != event.agent:
            self.path.append(event.agent or "")
        agent = self._agent(event.agent)
        if agent is not None:
            agent.state = "waiting"
            if event.model:
                agent.model = event.model
            if event.context is not None:
                who = f"from {handoff.source}" if handoff is not None else event.reason
                agent.add("incoming", f"⇠ {who}: {_fields(event.context)}")
            else:
                agent.add("incoming", f"⇠ {event.reason}: {_short(event.incoming, 300)}")
        row = Step(
            event.seq,
            "activation",
            event.agent,
            depth,
            f"{event.agent} ({event.reason})",
            self._clock(event.ts),
            owner=event.seq,
            detail=[
                ("agent", event.agent or ""),
                ("reason", event.reason),
                ("model", event.model),
                ("incoming", _short(event.incoming, 400)),
            ],
        )
        # A delegated worker shows under the tool call that delegated to it.
        anchor = None
        if parent is not None:
            anchor = self._rows.get(event.cause or -1) or self._rows.get(parent)
        self._place(row, anchor, parent)
        self._rows[event.seq] = row
        self._open[("act", event.seq)] = row

    def _stage_edge(self, event: ev.AgentStarted) -> HandoffView | None:
        """The stage transition that delivered this stage's input: one edge per transition,
        whose target grows by each agent of a parallel group that receives it. None when the
        stage is asked again (its output was rejected at a checkpoint)."""
        name = event.agent or ""
        cause = event.cause or -1
        known = self._edges_by_seq.get(cause)
        if known is not None and known.kind == "stage":
            if name not in known.targets:
                known.targets += (name,)
                known.schema, known.types = _input_of(self.system, list(known.targets))
                row = self._stage_rows.get(known.seq or -1)
                if row is not None:
                    row.label = self._stage_label(known)
            return known
        if event.step is None and self.hops and name in self.hops[-1].agents:
            return None  # the same stage again, not a transition
        previous = self.hops[-1].agents if self.hops else []
        payload = dict(event.context) if event.context is not None else {"text": event.incoming}
        schema, types = _input_of(self.system, [name])
        view = HandoffView(
            tuple(previous) or ("?",),
            (name,),
            payload,
            approx_tokens(event.incoming),
            schema,
            edited=event.step in self._edited_steps,
            seq=event.seq,
            step=event.step,
            kind="stage",
            types=types,
        )
        self._edges_by_seq[cause] = view
        self.handoffs.append(view)
        self.pending_handoff = None
        # The transition's own row (the step it was held at), before the stage's activation.
        row = self._instant(
            event,
            "handoff",
            self._stage_label(view),
            "ok",
            depth=0,
            step=event.step,
            handoff=view,
            detail=[("payload", _short(payload, 400)), ("schema", schema)],
        )
        self._stage_rows[event.seq] = row
        return view

    @staticmethod
    def _stage_label(view: HandoffView) -> str:
        edited = " (edited)" if view.edited else ""
        return f"stage → {view.target} · ≈{view.payload_tokens} tok{edited}"

    def _add_hop(self, event: ev.AgentStarted, handoff: HandoffView | None) -> None:
        name = event.agent or ""
        last = self.hops[-1] if self.hops else None
        if last is not None and last.parent == event.parent_activation:
            if any(seq in self._running for seq in last.activations):
                # Began while a sibling of the same stop still works: they run at once.
                if name not in last.agents:
                    last.agents.append(name)
                last.activations.append(event.seq)
                return
            if last.agents == [name]:  # a re-run worker is one stop, as on the engine's path
                last.activations.append(event.seq)
                return
        self.hops.append(Hop([name], handoff, [event.seq], event.parent_activation))

    def _on_agent_finished(self, event: ev.AgentFinished) -> None:
        running = self._running.pop(event.activation, None) if event.activation is not None else None
        delegator = self._running.get(running.parent) if running and running.parent is not None else None
        if delegator is not None:
            delegator.children = max(0, delegator.children - 1)
            parent = self._agent(delegator.agent)
            waiting = parent is not None and parent.state == "waiting" and not parent.pending
            if parent is not None and waiting and not delegator.children:
                parent.state = "calling a tool" if delegator.tools else "thinking"
        agent = self._agent(event.agent)
        still = any(r.agent == event.agent for r in self._running.values())
        if agent is not None and not still:  # the same worker may run twice at once
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
            step=event.step,
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
        delegation = self._is_delegation(event.agent, event.tool)
        running = self._running.get(event.activation) if event.activation is not None else None
        if running is not None and not delegation:
            running.tools += 1
        agent = self._agent(event.agent)
        if agent is not None:
            agent.state = "waiting" if delegation else "calling a tool"
            agent.pending = ""
            agent.add("tool", f"→ {event.tool}({_fields(event.args)})")
        detail = [("agent", event.agent or ""), ("tool", event.tool), ("args", _short(event.args, 400))]
        if delegation:
            view = self._delegation_edge(event)
            detail += [("payload", f"≈{view.payload_tokens} tok"), ("schema", view.schema)]
        row = self._step(event, "tool_call", f"tool {event.tool}", step=event.step, detail=detail)
        self._open[("tool", event.step or 0)] = self._rows[event.seq] = row

    def _delegation_edge(self, event: ev.ToolCalled) -> HandoffView:
        """A supervisor's delegation to a worker, as an edge of the path."""
        view = self._delegation_view(event.agent or "?", event.tool, dict(event.args), event.seq, event.step)
        view.edited = event.step in self._edited_steps
        self._edges_by_seq[event.seq] = view
        self.handoffs.append(view)
        return view

    def _delegation_view(
        self, source: str, worker: str, args: dict[str, Any], seq: int | None, step: int | None
    ) -> HandoffView:
        """A delegation's payload view: the task ``source`` gives ``worker``, typed by its input."""
        schema, types = _input_of(self.system, [worker])
        rendered = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
        return HandoffView(
            (source,),
            (worker,),
            args,
            approx_tokens(rendered),
            schema,
            seq=seq,
            step=step,
            kind="delegation",
            types=types,
        )

    def _on_tool_returned(self, event: ev.ToolReturned) -> None:
        delegation = self._is_delegation(event.agent, event.tool)
        running = self._running.get(event.activation) if event.activation is not None else None
        if running is not None and not delegation:
            running.tools = max(0, running.tools - 1)
        agent = self._agent(event.agent)
        if agent is not None:
            if not delegation:  # a worker's time is its own
                agent.latency_ms += event.latency_ms
            if event.error:
                agent.add("error", f"← {event.tool} raised {event.error}")
            else:
                agent.add("result", f"← {_short(event.result, 300)}")
            if agent.state == "calling a tool" and (running is None or not running.tools):
                agent.state = "waiting" if running is not None and running.children else "thinking"
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
            (event.source,),
            (event.target,),
            event.payload,
            event.payload_tokens,
            event.payload_schema,
            history=event.history,
            history_tokens=event.history_tokens,
            edited=event.edited,
            seq=event.seq,
            step=event.step,
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
            f"handoff → {event.target} · ≈{event.payload_tokens} tok",  # an estimate: no tokenizer
            "ok",
            step=event.step,
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
        accepted = event.verdict == "accept"
        verdict = {"accept": "accepted", "reject": "rejected"}.get(event.verdict, "rejected for good")
        feedback = f" — {_short(event.feedback, 200)}" if event.feedback else ""
        row = self._instant(
            event, "review", f"review {event.worker}: {verdict}{feedback}", "ok" if accepted else "failed"
        )
        row.detail += [
            ("verdict", event.verdict),
            ("feedback", event.feedback or "—"),
            ("round", str(event.round)),
            ("by", "a Python check" if event.by == "check" else "the model"),
            ("boundary", event.boundary),
        ]
        if event.on_reject:
            row.detail.append(("on_reject", event.on_reject))
        agent = self._agent(event.agent)
        if agent is not None:
            mark = "✔" if accepted else "✘"
            agent.add("note" if accepted else "error", f"{mark} review {event.worker}: {verdict}{feedback}")

    def _on_loop_detected(self, event: ev.LoopDetected) -> None:
        self._instant(event, "loop", f"loop: {event.reason} → {event.policy}", "failed")
        agent = self._agent(event.agent)
        if agent is not None:
            agent.add("error", f"⟲ loop detected: {event.reason} (policy: {event.policy})")

    def _on_budget_exceeded(self, event: ev.BudgetExceeded) -> None:
        scope = "run" if event.scope == "run" else "agent"
        what = f"budget: {scope} {event.limit} {event.spent:g}/{event.allowed:g} → {event.policy}"
        self._instant(event, "budget", what, "failed")
        self.over_budget.add("run" if event.scope == "run" else event.agent or "run")
        agent = self._agent(event.agent)
        if agent is not None:
            agent.add(
                "error",
                f"$ budget exceeded: {scope} {event.limit} = {event.allowed:g} (policy: {event.policy})",
            )

    def _on_escalated(self, event: ev.Escalated) -> None:
        self._instant(event, "escalation", f"escalated to {event.target}")

    def _on_operator_acted(self, event: ev.OperatorActed) -> None:
        step = event.detail.get("step")
        if event.action == "edit" and isinstance(step, int):
            self._edited_steps.add(step)
        if event.held_ms is not None:
            self._paused_s += event.held_ms / 1000
        self._held_from = self._released_at = None
        what = self._acted_at(event)
        self._instant(event, "operator", f"{event.action} ({what})")
        self._steps_detail(*((k, _short(v, 400)) for k, v in event.detail.items()))
        agent = self._agent(event.agent)
        if agent is not None and event.action not in ("step", "continue"):
            changed = event.detail.get("changed")  # a held model call's edit says what it changed
            edits = f": {', '.join(map(str, changed))}" if isinstance(changed, list) and changed else ""
            agent.add("operator", f"⚑ operator {event.action} at {what}{edits}")

    def _acted_at(self, event: ev.OperatorActed) -> str:
        """What the operator acted on: the gate's kind, or what it held when that says more
        (``stage output``, ``delegation``): from the edited payload, else the held gate."""
        payload = event.detail.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        if payload.get("stage"):
            return "stage output"
        if event.gate == "tool_call" and self._is_delegation(event.agent, str(payload.get("tool"))):
            return "delegation"
        step = event.detail.get("step")
        held = self._held_what.get(step) if isinstance(step, int) else None
        return held or _GATE_NAMES.get(event.gate, event.gate.replace("_", " "))

    def _steps_detail(self, *pairs: tuple[str, str]) -> None:
        if self._last is not None:
            self._last.detail += [p for p in pairs if p[1]]

    def _close_all(self, ts: float, status: Literal["ok", "failed"]) -> None:
        for step in self._open.values():
            step.end = self._clock(ts)
            step.status = status
        self._open.clear()
        self._running.clear()
        self.gate = None
        self.pending_handoff = None
        for agent in self.agents.values():
            agent.pending = ""
            agent.end_stream()
            if agent.state in ("waiting", "thinking", "calling a tool"):
                agent.state = "failed" if status == "failed" else "done"

    def _take_totals(self, totals: dict[str, Any]) -> None:
        """The engine's own per-agent totals, once the run is over (``run --json`` has the same)."""
        for name, figures in totals.items():
            agent = self.agents.get(name)
            if agent is not None and isinstance(figures, dict) and "latency_ms" in figures:
                agent.latency_ms = float(figures["latency_ms"])

    def _on_run_finished(self, event: ev.RunFinished) -> None:
        self._take_totals(event.totals)
        self.status = "completed"
        self.output = event.output
        self.path = list(event.path) or self.path
        self.finished = event.ts
        self._close_all(event.ts, "ok")
        self._instant(event, "run", "run completed", "ok", depth=0)

    def _on_run_failed(self, event: ev.RunFailed) -> None:
        self._take_totals(event.totals)
        self.status = event.status
        self.finished = event.ts
        self.error = {
            "type": event.error_type,
            "message": event.message,
            "origin": event.origin,
            "manifested": event.manifested,
        }
        self.path = list(event.path) or self.path
        self.blame = self._blame(event)
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

    def _blame(self, event: ev.RunFailed) -> Blame | None:
        lineage = event.lineage
        if not lineage or not isinstance(lineage.get("hops"), list):
            return None
        origin = lineage.get("origin")
        hops: list[BlameHop] = []
        marked = False
        for raw in lineage["hops"]:
            if not isinstance(raw, dict):
                continue
            seq = int(raw.get("seq", 0))
            agent = str(raw.get("agent", "?"))
            present = bool(raw.get("present"))
            # The origin's hop is where its output no longer carries the field (or changed it).
            is_origin = (
                not marked
                and origin is not None
                and agent == origin
                and raw.get("kind") in ("output", "handoff")
            )
            marked = marked or is_origin
            step = raw.get("step")
            if step is None:  # the number of the timeline row the hop goes to
                row = self.step_at(seq, None if raw.get("kind") == "request" else agent)
                step = row.step if row is not None else None
            hops.append(
                BlameHop(
                    agent,
                    str(raw.get("kind", "?")),
                    seq,
                    step,
                    present,
                    raw.get("value"),
                    self._values.get(seq),
                    is_origin,
                )
            )
        return Blame(
            str(lineage.get("field", "?")),
            bool(lineage.get("traced")),
            origin,
            event.manifested,
            str(lineage.get("reason", "")),
            hops,
        )
