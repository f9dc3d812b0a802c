"""The runtime: runs one request through a system and emits its events.

One :class:`Runtime` runs one session and holds its state: the events, the
step and event counters, the path, the totals, the loop checks. The jobs live
in modules of their own, as functions of the runtime and the branch they run in:

- :mod:`~playground.engine.activation`: one agent activation, its turn loop;
- :mod:`~playground.engine.model_calls`: a model call with retries and fallbacks;
- :mod:`~playground.engine.tools`: tool calls and delegations, several at once;
- :mod:`~playground.engine.handoffs`: handoffs and the loop checks;
- :mod:`~playground.engine.pipeline`: pipelines (with parallel groups) and isolated runs;
- :mod:`~playground.engine.plans`: what is derived once from the agent specs.

Every step (a model call, a tool call or delegation, a handoff) gets its number
from :meth:`Runtime.next_step` before it is held at a gate, so a step has one
number everywhere, also when branches run at once. Before every step the runtime
asks the controller, if there is one; gates of concurrent branches are held one
at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from playground.engine import events as ev
from playground.engine.activation import activate
from playground.engine.branch import Branch
from playground.engine.budgets import declares_budget
from playground.engine.clock import SYSTEM_CLOCK, Clock
from playground.engine.controller import CONTINUE, Controller, Decision, Gate, GateKind
from playground.engine.events import (
    TRUSTED,
    Event,
    EventBase,
    new_event,
    set_dict,
    set_extra,
    set_fields_set,
    set_private,
)
from playground.engine.lineage import failing_field, trace
from playground.engine.loops import LoopWatch
from playground.engine.messages import render_context
from playground.engine.model_calls import default_llm_factory
from playground.engine.outcomes import Aborted, Escalate, Failure, Reply, WaitingApproval
from playground.engine.pipeline import drive_isolated, drive_pipeline
from playground.engine.plans import Plan, file_versions, make_plan, world_of
from playground.engine.results import AgentTotals, RunResult
from playground.llm.base import LLM
from playground.spec.load import System
from playground.spec.models import AgentSpec

__all__ = [
    "AgentTotals",
    "EventSink",
    "LLMFactory",
    "RunResult",
    "Runtime",
    "SideEffectsDone",
    "ToolReplay",
    "default_llm_factory",
]

log = logging.getLogger("playground.engine")

EventSink = Callable[[Event], None]
"""Receives every event (token deltas only if registered as live)."""
LLMFactory = Callable[[AgentSpec, str], LLM]
"""Returns the model to call for an agent and a model string."""
ToolReplay = Callable[[str, str, dict[str, Any]], "tuple[str, str | None] | None"]
"""(agent, tool, args) -> the recorded (result, error), or None to run the tool."""
SideEffectsDone = dict[tuple[str, str, str], tuple[str, str | None]]
"""Side-effect tools' results by (agent, tool, arguments as JSON): served, never run twice."""

E = TypeVar("E", bound=EventBase)

_ERROR_KINDS = frozenset(
    {"model_failed", "validation_failed", "permission_denied", "loop_detected", "fallback_used"}
)


class Runtime:
    """Runs one request through a system.

    Args:
        system: The loaded system.
        agents: The agent specs to run (the active versions); defaults to the file's.
        controller: Asked at every gate; None runs without stopping.
        llm_factory: Builds the model for an agent and model string.
        sinks: Receive every event (the store's writer, the tracer, the CLI).
        live: Receive every event and each token delta as it streams (the TUI).
        versions: The version id of each agent spec (computed from the specs if absent).
        session_id: The session's id (a new random one if absent).
        tool_replay: Answers tool calls from a recording (fork, replay) instead of running them.
        clock: The time and id sources (tests pass a fixed one).
        side_effects_done: Results of side-effect tools that already ran (a fork's or a
            replay's recording), by (agent, tool, arguments as JSON): served, never run again.
        approvals: Decisions a person already took on calls that need approval (``playground
            approve``), by (agent, tool, arguments as JSON): one decision, or several taken in
            order when the same call was asked for more than once (a model that asks again after
            a denial).
    """

    def __init__(
        self,
        system: System,
        *,
        agents: dict[str, AgentSpec] | None = None,
        controller: Controller | None = None,
        llm_factory: LLMFactory = default_llm_factory,
        sinks: list[EventSink] | None = None,
        live: list[EventSink] | None = None,
        versions: dict[str, str] | None = None,
        session_id: str | None = None,
        tool_replay: ToolReplay | None = None,
        clock: Clock = SYSTEM_CLOCK,
        side_effects_done: SideEffectsDone | None = None,
        approvals: Mapping[tuple[str, str, str], Decision | Sequence[Decision]] | None = None,
    ) -> None:
        self.system = system
        self.spec = system.spec
        # CPython keeps an instance's attributes inline, where reading one is fastest, only
        # while it has fewer than 30: at 30, every hop costs ~2% more. Group new state.
        self.agents = agents or dict(system.spec.agents)
        world = world_of(system, self.agents)
        if not versions:
            if world.versions is None:
                world.versions = file_versions(system, self.agents)
            versions = dict(world.versions)
        self.versions = versions
        self._plans = world.plans
        self.controller = controller
        self.tool_replay = tool_replay
        self.llm_factory = llm_factory
        self.sinks = list(sinks or [])
        self.live = list(live or [])
        self.clock = clock
        self._wall = clock.wall
        self.session_id = session_id or clock.token_hex(6)
        self.correlation_id = clock.token_hex(16)
        self.events: list[Event] = []
        self.path: list[str] = []
        self.totals: dict[str, AgentTotals] = {}
        """Per agent, created at its first model call (reported in the agents' order)."""
        self._seq = 0
        self._step = 0
        self.loops = LoopWatch(self.spec)
        """What the run has done so far, as far as loops are concerned."""
        self.budgeted = declares_budget(self.spec, self.agents)
        """Whether any budget is declared (else model calls skip the budget check)."""
        self.approvals: dict[tuple[str, str, str], list[Decision]] = {
            key: [taken] if isinstance(taken, Decision) else list(taken)
            for key, taken in (approvals or {}).items()
        }
        """Decisions already taken on tool calls that need approval (a resumed run), by
        (agent, tool, arguments as JSON), each key's in the order they were taken."""
        self.side_effects_done = dict(side_effects_done or {})
        """Side-effect tools' results by (agent, tool, arguments as JSON): never run twice."""
        self.budget_waived: set[str] = set()
        """Budgets (``run:LIMIT`` or ``AGENT:LIMIT``) an operator or an escalation let pass."""
        self.llms: dict[tuple[str, str], LLM] = {}
        self.escalated = False
        self.input = ""
        self.finished: set[int] = set()
        """Activations that have their ``agent_finished``."""
        self.failed_in: str | None = None
        """The innermost agent a run-level failure (timeout, abort, bug) happened in."""
        self._gates: _Gates | None = None

    # -- events and steps -----------------------------------------------------------------

    def emit(self, cls: type[E], agent: str | None = None, **data: Any) -> E:
        """Number, record and send an event to every sink."""
        self._seq += 1
        data["session_id"] = self.session_id
        data["seq"] = self._seq
        data["ts"] = self._wall()
        data["agent"] = agent
        data["version"] = self.versions.get(agent) if agent else None
        trusted = TRUSTED.get(cls)
        event: E
        if trusted is None:
            event = cls.trusted(data)
        else:  # cls.trusted(data), inlined
            event = new_event(cls)
            set_dict(event, {**trusted[0], **data})
            set_fields_set(event, trusted[1])
            set_extra(event, None)
            set_private(event, None)
        self.events.append(event)  # type: ignore[arg-type]  # every event class is in the union
        for sink in self.sinks:
            sink(event)  # type: ignore[arg-type]
        for sink in self.live:
            sink(event)  # type: ignore[arg-type]
        return event

    def next_step(self) -> int:
        """The number of the step about to happen (before its gate): unique in the session."""
        self._step += 1
        return self._step

    def give_back_step(self, step: int) -> None:
        """A numbered step did not happen (an operator redid the model call before it)."""
        if self._step == step:
            self._step -= 1

    def delta_sink(self, agent: str, activation: int, step: int) -> Callable[[str], None] | None:
        if not self.live:
            return None
        version = self.versions.get(agent)

        def on_delta(text: str) -> None:
            event = ev.TokenDelta.trusted(
                {
                    "session_id": self.session_id,
                    "seq": 0,
                    "ts": self._wall(),
                    "agent": agent,
                    "version": version,
                    "step": step,
                    "activation": activation,
                    "text": text,
                }
            )
            for sink in self.live:
                sink(event)

        return on_delta

    def plan(self, name: str) -> Plan:
        plan = self._plans.get(name)
        if plan is None:
            plan = self._plans[name] = make_plan(self.system, self.agents, name)
        return plan

    def totals_of(self, name: str) -> AgentTotals:
        totals = self.totals.get(name)
        if totals is None:
            totals = self.totals[name] = AgentTotals()
        return totals

    # -- gates ----------------------------------------------------------------------------

    async def gate(
        self,
        kind: GateKind,
        agent: str,
        step: int,
        payload: dict[str, Any],
        *,
        validate: Callable[[dict[str, Any]], str | None] | None = None,
        can_retry: bool = False,
        hold: bool = False,
        failure: str | None = None,
        summarize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Decision:
        """Hold step ``step`` for the controller; returns what to do. Branches running at
        once are held one at a time, each with its own step number. ``hold``: the run asks
        the operator here, whatever the breakpoints. ``failure``: the model call before
        failed for good; the run fails unless the operator retries it. ``summarize``: what
        an edited payload changes, recorded instead of the payload itself."""
        if self.controller is None:
            return CONTINUE
        gates = self._gates
        if gates is None:
            gates = self._gates = _Gates()
        async with gates.lock:
            return await self._decide(
                gates, kind, agent, step, payload, validate, can_retry, hold, failure, summarize
            )

    async def _decide(
        self,
        gates: _Gates,
        kind: GateKind,
        agent: str,
        step: int,
        payload: dict[str, Any],
        validate: Callable[[dict[str, Any]], str | None] | None,
        can_retry: bool,
        hold: bool,
        failure: str | None = None,
        summarize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Decision:
        assert self.controller is not None
        errors: list[str] = [e.kind for e in self.events[gates.mark :] if e.kind in _ERROR_KINDS]
        gate = Gate(
            kind, agent, step, payload, can_retry=can_retry, errors=errors, hold=hold, failure=failure
        )
        gates.mark = len(self.events)
        if validate is not None:
            gate.validate = validate
        while True:
            # Time held at a gate is the operator's, not the run's: limits.timeout_s measures
            # the system, so the deadline stops while the controller decides.
            timer, loop = self._deadline, asyncio.get_running_loop()
            deadline = timer.when() if timer is not None else None
            if timer is not None and deadline is not None:
                left = deadline - loop.time()
                timer.reschedule(None)
            held_from = self.clock.perf()
            try:
                decision = await self.controller.decide(gate)
            finally:
                if timer is not None and deadline is not None:
                    timer.reschedule(loop.time() + left)
            held = self.clock.perf() - held_from
            gates.held_s += held
            if decision.operator is not None:
                edited = decision.payload
                if edited and summarize is not None and decision.action == "edit":
                    what = summarize(edited)
                else:
                    what = {"payload": edited} if edited else {}
                self.emit(
                    ev.OperatorActed,
                    agent=agent,
                    action=decision.operator,
                    gate=kind,
                    detail={"step": step, **what},
                    held_ms=held * 1000,
                )
            if decision.action == "abort":
                raise Aborted
            if decision.action == "edit":
                error = gate.validate(decision.payload or {})
                if error is not None:
                    self.emit(
                        ev.OperatorActed,
                        agent=agent,
                        action="edit_rejected",
                        gate=kind,
                        detail={"error": error},
                    )
                    continue
            if decision.action == "retry" and not can_retry:
                continue
            if decision.action == "deny" and not payload.get("approval"):
                continue  # only a call that needs approval can be denied
            return decision

    _deadline: asyncio.Timeout | None = None
    _started: float = 0.0
    """``clock.perf()`` when the run started: the final event carries the run's wall time."""

    # -- the run --------------------------------------------------------------------------

    async def run(
        self,
        request: str,
        *,
        parent_session_id: str | None = None,
        forked_from_step: int | None = None,
        agent: str | None = None,
        context: dict[str, Any] | None = None,
        scenario: str | None = None,
        scenario_file: str | None = None,
    ) -> RunResult:
        """Run ``request`` through the system; never raises for a failing run.

        Args:
            agent: Run only this agent, in isolation: it receives ``context`` (validated
                against its ``input``) or ``request``, and a handoff it makes ends the run.
            context: The handoff context the isolated agent receives.
            scenario: The scenario this run is, and ``scenario_file`` its file (recorded on
                ``run_started``, so the session row names them).
        """
        perf = self.clock.perf
        started = perf()
        branch = Branch()
        self.input = request
        self.emit(
            ev.RunStarted,
            system=self.spec.name,
            input=request,
            correlation_id=self.correlation_id,
            versions=self.versions,
            parent_session_id=parent_session_id,
            forked_from_step=forked_from_step,
            system_path=self.spec.path,
            scenario=scenario,
            scenario_file=scenario_file,
        )
        self._started = started
        status, output, error = "completed", "", None
        try:
            async with asyncio.timeout(self.spec.limits.timeout_s) as self._deadline:
                output = await self._drive(branch, request, agent, context)
        except Failure as failure:
            status = "failed"
            error = self._fail(failure)
        except WaitingApproval as waiting:
            status = "waiting_approval"
            error = {
                "type": "waiting_approval",
                "message": f"{waiting.tool} needs a person's approval: playground approve {self.session_id}",
                "origin": None,
                "manifested": self._where(),
            }
        except Aborted:
            status = "aborted"
            error = self._fail(
                Failure("aborted", "the operator aborted the run", None, self._where()),
                status="aborted",
            )
        except TimeoutError:
            status = "failed"
            where = self._where()
            error = self._fail(
                Failure(
                    "timeout",
                    f"the run took longer than limits.timeout_s = {self.spec.limits.timeout_s} s",
                    where,
                    where,
                )
            )
        except asyncio.CancelledError:
            # Ctrl-C, or the task running the session was cancelled: record the abort (the
            # store's writer flushes it on close), then let the cancellation go on.
            self._fail(
                Failure("aborted", "the run was interrupted (cancelled)", None, self._where()),
                status="aborted",
            )
            branch.close()
            raise
        except Exception as exc:  # a bug of ours or of a tool: record it, never lose the session
            log.exception("run %s failed unexpectedly", self.session_id)
            status = "failed"
            where = self._where()
            error = self._fail(Failure("internal_error", f"{type(exc).__name__}: {exc}", where, where))
        else:
            self.emit(
                ev.RunFinished,
                cause=self._seq,
                output=output,
                path=list(self.path),
                totals=self._totals_json(),
                latency_ms=self._run_ms(),
            )
        branch.close()
        last = self.events[-1]
        final = last if isinstance(last, ev.RunFinished | ev.RunFailed) else None
        latency_ms = self._run_ms()
        if final is not None and final.latency_ms is not None:
            latency_ms = final.latency_ms  # the session row, derived from the events, says the same
        result = RunResult(
            session_id=self.session_id,
            correlation_id=self.correlation_id,
            system=self.spec.name,
            status=status,
            path=list(self.path),
            output=output,
            per_agent=self._per_agent(),
            latency_ms=latency_ms,
            error=error,
            events=self.events,
        )
        if final is not None:
            result._final_totals = final.totals  # the totals have not changed since
        return result

    async def _drive(
        self, branch: Branch, request: str, isolated: str | None, context: dict[str, Any] | None
    ) -> str:
        spec = self.spec
        if isolated is not None:
            return await drive_isolated(self, branch, isolated, request, context)
        if spec.pattern == "pipeline":
            return await drive_pipeline(self, branch, request)
        agent, incoming, reason, cause = spec.entry_agent, request, "entry", 1
        context = None
        history: list[dict[str, Any]] = []
        while True:
            try:
                result = await activate(
                    self, branch, agent, incoming, context, reason, cause, history=history
                )
            except Escalate as escalation:
                result, reason = escalation.handoff, "escalation"
            else:
                reason = "handoff"
            if isinstance(result, Reply):
                return result.text
            agent, context, cause, history = result.target, result.payload, result.cause, result.history
            incoming = result.rendered if result.rendered is not None else render_context(context)

    def _fail(self, failure: Failure, status: str = "failed") -> dict[str, Any]:
        lineage = None
        about = failing_field(self.events, failure.manifested) if status == "failed" else None
        if about is not None:
            traced = trace(self.events, about[0], failure.manifested, missing=about[1])
            lineage = traced.as_json()
            if traced.origin is not None:
                failure.origin = traced.origin
        self.emit(
            ev.RunFailed,
            agent=failure.manifested,
            cause=failure.cause or self._seq,
            status=status,
            error_type=failure.error_type,
            message=failure.message,
            origin=failure.origin,
            manifested=failure.manifested,
            path=list(self.path),
            totals=self._totals_json(),
            lineage=lineage,
            latency_ms=self._run_ms(),
        )
        error: dict[str, Any] = {
            "type": failure.error_type,
            "message": failure.message,
            "origin": failure.origin,
            "manifested": failure.manifested,
        }
        if lineage is not None:
            error["lineage"] = lineage
        return error

    def _run_ms(self) -> float:
        """Milliseconds since the run started, less the time held at gates (the operator's)."""
        held = self._gates.held_s if self._gates is not None else 0.0
        return (self.clock.perf() - self._started - held) * 1000

    def _where(self) -> str | None:
        return self.failed_in or (self.path[-1] if self.path else None)

    def _totals_json(self) -> dict[str, Any]:
        """The totals of the agents with a model call, for the run's last event."""
        totals = self.totals
        return {name: totals[name].as_json() for name in self.agents if name in totals and totals[name].calls}

    def _per_agent(self) -> dict[str, AgentTotals]:
        """The agents on the path or with a model call, in the agents' order."""
        on_path = set(self.path)
        per_agent = {}
        for name in self.agents:
            totals = self.totals.get(name)
            if name in on_path or (totals is not None and totals.calls):
                per_agent[name] = totals if totals is not None else self.totals_of(name)
        return per_agent


class _Gates:
    """Holding gates one at a time, and where the last gate was in the event list."""

    __slots__ = ("held_s", "lock", "mark")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.mark = 0
        """Events before this index were seen by an earlier gate (for ``error:*`` breakpoints)."""
        self.held_s = 0.0
        """Seconds the run was held at gates: not the run's time."""
