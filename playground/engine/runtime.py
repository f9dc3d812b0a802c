"""The runtime: runs one request through a system and emits its events.

One :class:`Runtime` runs one session. It drives the three patterns with one
mechanism: agents hand off (router), call delegates as tools (supervisor) or
pass their output to the next stage (pipeline). Before every model call, tool
call and handoff delivery it asks the controller, if there is one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_json

from playground.engine import events as ev
from playground.engine.controller import CONTINUE, Controller, Decision, Gate, GateKind
from playground.engine.events import (
    TRUSTED,
    new_event,
    set_dict,
    set_extra,
    set_fields_set,
    set_private,
)
from playground.errors import ModelError, ModelTimeout, ProviderError, ScriptError
from playground.llm.base import (
    LLM,
    REVIEW_ACCEPT,
    REVIEW_REJECT,
    ModelRequest,
    ModelResponse,
    ToolDef,
    approx_tokens,
    parse_json,
)
from playground.spec.identity import version_id
from playground.spec.load import HANDOFF_PREFIX, System
from playground.spec.models import AgentSpec, HandoffSpec
from playground.spec.schema import Schema, format_validation_error

log = logging.getLogger("playground.engine")

EventSink = Callable[[Any], None]
"""Receives every event (token deltas only if registered as live)."""
LLMFactory = Callable[[AgentSpec, str], LLM]
"""Returns the model to call for an agent and a model string."""
ToolReplay = Callable[[str, str, dict[str, Any]], "tuple[str, str | None] | None"]
"""(agent, tool, args) -> the recorded (result, error), or None to run the tool."""

_TASK_SCHEMA = Schema.parse({"task": "str"})
_ERROR_KINDS = frozenset(
    {"model_failed", "validation_failed", "permission_denied", "loop_detected", "fallback_used"}
)


def default_llm_factory(agent: AgentSpec, model: str) -> LLM:
    """``scripted`` (or ``scripted/<label>``) answers from the agent's script; anything else
    goes to litellm, imported only now."""
    if model == "scripted" or model.startswith("scripted/"):
        from playground.llm.scripted import ScriptedLLM

        return ScriptedLLM(agent.name, agent.script, agent.latency_ms or 0.0, agent.tokens_per_s or 0.0)
    from playground.llm.litellm_model import LiteLLM

    return LiteLLM()


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
    error: dict[str, Any] | None = None
    events: list[Any] = field(default_factory=list, repr=False)
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
            "per_agent": self._per_agent_json(),
            "error": self.error,
        }


class _Failure(Exception):
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


class _Aborted(Exception):
    pass


@dataclass
class _Reply:
    text: str


@dataclass(slots=True)
class _Handoff:
    target: str
    payload: dict[str, Any]
    history: list[dict[str, Any]]
    cause: int
    rendered: str | None = None
    """The payload as JSON text, when already rendered (the target's incoming message)."""


@dataclass(slots=True)
class _Route:
    """One declared handoff of an agent, as the runtime checks it."""

    spec: HandoffSpec
    schema: Schema
    target_input: Schema | None
    """The target's own input schema, when it differs from the handoff's (validated too)."""
    described: str


@dataclass(slots=True)
class _Plan:
    """What the runtime derives from one agent spec (and the specs it hands off or delegates
    to): computed once per system and set of agent specs, not once per call."""

    tools: list[ToolDef]
    tool_names: list[str]
    models: list[str]
    settings: dict[str, dict[str, Any]]
    """Model string to the settings a call to it is made with."""
    routes: dict[str, _Route]
    """Handoff target to how it is checked."""
    prompt: str
    """The system prompt, unless a pipeline's next stage asks for a reply shape."""
    llms: dict[str, LLM] = field(default_factory=dict)
    """The default factory's models, by model string (they keep no per-run state)."""


@dataclass(slots=True)
class _World:
    """A set of agent specs runtimes of one system run with, and what is derived from them."""

    specs: list[AgentSpec]
    """Kept so the ids in the key stay theirs."""
    versions: dict[str, str] | None
    """The file's version ids, when the versions are the file's."""
    plans: dict[str, _Plan] = field(default_factory=dict)


_WORLDS_KEPT = 64
"""Sets of agent versions a system keeps plans for (forks and variants each make one)."""


class Runtime:
    """Runs one request through a system.

    Args:
        system: The loaded system.
        agents: The agent specs to run (the active versions); defaults to the file's.
        controller: Asked at every gate; None runs without stopping.
        llm_factory: Builds the model for an agent and model string.
        sinks: Receive every event (the store's writer, the tracer, the CLI).
        live: Receive every event and each token delta as it streams (the TUI).
        tool_replay: Answers tool calls from a recording (fork, replay) instead of running them.
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
    ) -> None:
        self.system = system
        self.spec = system.spec
        # CPython keeps an instance's attributes inline, where reading one is fastest, only
        # while it has fewer than 30: at 30, every hop costs ~2% more. Group new state.
        self.agents = agents or dict(system.spec.agents)
        world = self._world()
        if not versions:
            if world.versions is None:
                world.versions = self._file_versions()
            versions = dict(world.versions)
        self.versions = versions
        self._plans = world.plans
        self.controller = controller
        self.tool_replay = tool_replay
        self.llm_factory = llm_factory
        self.sinks = list(sinks or [])
        self.live = list(live or [])
        self.session_id = session_id or secrets.token_hex(6)
        self.correlation_id = secrets.token_hex(16)
        self.events: list[Any] = []
        self.path: list[str] = []
        self.totals: dict[str, AgentTotals] = {}
        """Per agent, created at its first model call (reported in the agents' order)."""
        self._seq = 0
        self._step = 0
        self._hops = 0
        self._edges: set[tuple[str, str, str]] = set()
        self._llms: dict[tuple[str, str], LLM] = {}
        self._escalated = False
        self._input = ""
        self._deadline: asyncio.Timeout | None = None
        self._watchdog = _Watchdog()
        self._finished: set[int] = set()
        self._gate_mark = 0
        """Events before this index were seen by an earlier gate (for ``error:*`` breakpoints)."""
        self._failed_in: str | None = None
        """The innermost agent a run-level failure (timeout, abort, bug) happened in."""

    def _world(self) -> _World:
        """The plans shared by every runtime of this system running these very agent specs."""
        agents = self.agents
        key = (tuple(agents), tuple(map(id, agents.values())))
        worlds = self.system.cache.get("worlds")
        if worlds is None:
            worlds = self.system.cache["worlds"] = {}
        world: _World | None = worlds.get(key)
        if world is None:
            if len(worlds) >= _WORLDS_KEPT:
                worlds.clear()
            world = worlds[key] = _World(list(agents.values()), None)
        return world

    def _file_versions(self) -> dict[str, str]:
        cache = self.system.cache
        versions = {}
        for name, agent in self.agents.items():
            key = ("version", name, id(agent))
            vid = cache.get(key)
            if vid is None:
                vid = cache[key] = version_id(agent)
                cache[("keep", name, id(agent))] = agent  # keeps id(agent) from being reused
            versions[name] = vid
        return versions

    # -- events ---------------------------------------------------------------------------

    def _emit(self, cls: type[Any], agent: str | None = None, **data: Any) -> Any:
        self._seq += 1
        data["session_id"] = self.session_id
        data["seq"] = self._seq
        data["ts"] = time.time()
        data["agent"] = agent
        data["version"] = self.versions.get(agent) if agent else None
        trusted = TRUSTED.get(cls)
        if trusted is None:
            event = cls.trusted(data)
        else:  # cls.trusted(data), inlined
            event = new_event(cls)
            set_dict(event, {**trusted[0], **data})
            set_fields_set(event, trusted[1])
            set_extra(event, None)
            set_private(event, None)
        self.events.append(event)
        for sink in self.sinks:
            sink(event)
        for sink in self.live:
            sink(event)
        return event

    def _delta_sink(self, agent: str, activation: int, step: int) -> Callable[[str], None] | None:
        if not self.live:
            return None
        version = self.versions.get(agent)

        def on_delta(text: str) -> None:
            event = ev.TokenDelta.trusted(
                {
                    "session_id": self.session_id,
                    "seq": 0,
                    "ts": time.time(),
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

    # -- the run --------------------------------------------------------------------------

    async def run(
        self,
        request: str,
        *,
        parent_session_id: str | None = None,
        forked_from_step: int | None = None,
        agent: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> RunResult:
        """Run ``request`` through the system; never raises for a failing run.

        Args:
            agent: Run only this agent, in isolation: it receives ``context`` (validated
                against its ``input``) or ``request``, and a handoff it makes ends the run.
            context: The handoff context the isolated agent receives.
        """
        started = time.perf_counter()
        self._watchdog.bind()
        self._input = request
        self._emit(
            ev.RunStarted,
            system=self.spec.name,
            input=request,
            correlation_id=self.correlation_id,
            versions=self.versions,
            parent_session_id=parent_session_id,
            forked_from_step=forked_from_step,
        )
        status, output, error = "completed", "", None
        try:
            async with asyncio.timeout(self.spec.limits.timeout_s) as self._deadline:
                output = await self._drive(request, agent, context)
        except _Failure as failure:
            status = "failed"
            error = self._fail(failure)
        except _Aborted:
            status = "aborted"
            error = self._fail(
                _Failure("aborted", "the operator aborted the run", None, self._where()),
                status="aborted",
            )
        except TimeoutError:
            status = "failed"
            where = self._where()
            error = self._fail(
                _Failure(
                    "timeout",
                    f"the run took longer than limits.timeout_s = {self.spec.limits.timeout_s} s",
                    where,
                    where,
                )
            )
        except Exception as exc:  # a bug of ours or of a tool: record it, never lose the session
            log.exception("run %s failed unexpectedly", self.session_id)
            status = "failed"
            where = self._where()
            error = self._fail(_Failure("internal_error", f"{type(exc).__name__}: {exc}", where, where))
        else:
            self._emit(
                ev.RunFinished,
                cause=self._seq,
                output=output,
                path=list(self.path),
                totals=self._totals_json(),
            )
        self._watchdog.close()
        per_agent = self._per_agent()
        result = RunResult(
            session_id=self.session_id,
            correlation_id=self.correlation_id,
            system=self.spec.name,
            status=status,
            path=list(self.path),
            output=output,
            per_agent=per_agent,
            latency_ms=(time.perf_counter() - started) * 1000,
            error=error,
            events=self.events,
        )
        last = self.events[-1]
        if last.kind in ("run_finished", "run_failed"):
            result._final_totals = last.totals  # the totals have not changed since
        return result

    def _fail(self, failure: _Failure, status: str = "failed") -> dict[str, Any]:
        self._emit(
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
        )
        return {
            "type": failure.error_type,
            "message": failure.message,
            "origin": failure.origin,
            "manifested": failure.manifested,
        }

    def _where(self) -> str | None:
        return self._failed_in or (self.path[-1] if self.path else None)

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
                per_agent[name] = totals if totals is not None else self._totals_of(name)
        return per_agent

    def _totals_of(self, name: str) -> AgentTotals:
        totals = self.totals.get(name)
        if totals is None:
            totals = self.totals[name] = AgentTotals()
        return totals

    async def _drive(self, request: str, isolated: str | None, context: dict[str, Any] | None) -> str:
        spec = self.spec
        if isolated is not None:
            return await self._drive_isolated(isolated, request, context)
        if spec.pattern == "pipeline":
            return await self._drive_pipeline(request)
        agent, incoming, reason, cause = spec.entry_agent, request, "entry", 1
        context = None
        history: list[dict[str, Any]] = []
        while True:
            try:
                result = await self._activate(agent, incoming, context, reason, cause, history=history)
            except _Escalate as escalation:
                result, reason = escalation.handoff, "escalation"
            else:
                reason = "handoff"
            if isinstance(result, _Reply):
                return result.text
            agent, context, cause, history = result.target, result.payload, result.cause, result.history
            incoming = result.rendered if result.rendered is not None else _render_context(context)

    async def _drive_isolated(self, name: str, request: str, context: dict[str, Any] | None) -> str:
        if name not in self.agents:
            raise _Failure("unknown_agent", f"{name!r} is not an agent of {self.spec.name!r}", None, None)
        schema = self.agents[name].input
        if context is not None and schema is not None:
            try:
                context = schema.validate(context)
            except ValidationError as exc:
                raise _Failure(
                    "invalid_input",
                    f"the context given to {name!r} does not match its input: {format_validation_error(exc)}",
                    None,
                    name,
                ) from None
        incoming = _render_context(context) if context is not None else request
        expect = None
        stages = self.spec.pipeline or []
        if name in stages and stages.index(name) + 1 < len(stages):
            expect = self.agents[stages[stages.index(name) + 1]].input
        try:
            result = await self._activate(name, incoming, context, "entry", 1, expect=expect)
        except _Escalate as escalation:
            result = escalation.handoff
        return result.text if isinstance(result, _Reply) else ""

    async def _drive_pipeline(self, request: str) -> str:
        stages = self.spec.pipeline or []
        incoming: str = request
        context: dict[str, Any] | None = None
        cause = 1
        output = ""
        for i, stage in enumerate(stages):
            nxt = stages[i + 1] if i + 1 < len(stages) else None
            expect = self.agents[nxt].input if nxt else None
            try:
                result = await self._activate(
                    stage,
                    incoming,
                    context,
                    "entry" if i == 0 else "stage",
                    cause,
                    expect=expect,
                    expect_for=nxt,
                )
            except _Escalate as escalation:
                # A loop inside a stage (a delegation) escalates: the on_loop agent answers instead.
                result = await self._activate(
                    escalation.handoff.target,
                    _render_context(escalation.handoff.payload),
                    escalation.handoff.payload,
                    "escalation",
                    escalation.handoff.cause,
                )
                if isinstance(result, _Reply):
                    return result.text
            if isinstance(result, _Handoff):
                raise _Failure(
                    "handoff_in_pipeline",
                    f"stage {stage!r} tried to hand off; a pipeline's stages pass their output on",
                    stage,
                    stage,
                    result.cause,
                )
            output = result.text
            if nxt is not None:
                self._hops += 1
                context = expect.validate(parse_json(output)) if expect is not None else None
                incoming = output
                cause = self._seq
        return output

    # -- one activation -------------------------------------------------------------------

    def _plan(self, name: str) -> _Plan:
        plan = self._plans.get(name)
        if plan is None:
            plan = self._plans[name] = self._make_plan(name)
        return plan

    def _make_plan(self, name: str) -> _Plan:
        agent = self.agents[name]
        defs: list[ToolDef] = []
        for tool_name in agent.tools:
            tool = self.system.tools[tool_name]
            defs.append(ToolDef(tool.name, tool.description, tool.parameters))
        for worker in agent.delegates:
            w = self.agents[worker]
            schema = w.input or _TASK_SCHEMA
            defs.append(ToolDef(worker, w.description or f"Ask the {worker} agent.", schema.json_schema))
        for handoff in agent.handoffs:
            defs.append(
                ToolDef(
                    HANDOFF_PREFIX + handoff.to,
                    handoff.description or f"Hand the request to {handoff.to}.",
                    handoff.schema_.json_schema,
                )
            )
        models = [agent.model, *agent.fallbacks]
        return _Plan(
            tools=defs,
            tool_names=[t.name for t in defs],
            models=models,
            settings={model: agent.settings_for(model) for model in models},
            routes={},
            prompt=self._system_prompt(agent, agent.output),
        )

    def _route(self, agent: AgentSpec, plan: _Plan, target: str) -> _Route | None:
        """How a handoff of ``agent`` to ``target`` is checked; None if it declares none."""
        route = plan.routes.get(target)
        if route is not None:
            return route
        declared = {h.to: h for h in agent.handoffs}
        handoff = declared.get(target)
        if handoff is None:
            return None
        schema = handoff.schema_
        target_input = self.agents[target].input
        if target_input is not None and target_input.fields == schema.fields:
            target_input = None  # the same shape: validating twice would change nothing
        route = plan.routes[target] = _Route(handoff, schema, target_input, schema.describe())
        return route

    def _system_prompt(self, agent: AgentSpec, expect: Schema | None) -> str:
        prompt = agent.instructions
        if expect is not None:
            prompt += f"\n\nReply with only a JSON object of this shape: {expect.describe()}"
        return prompt

    async def _activate(
        self,
        name: str,
        incoming: str,
        context: dict[str, Any] | None,
        reason: str,
        cause: int,
        *,
        history: list[dict[str, Any]] | None = None,
        parent: int | None = None,
        expect: Schema | None = None,
        expect_for: str | None = None,
    ) -> _Reply | _Handoff:
        agent = self.agents[name]
        if not self.path or self.path[-1] != name:  # a re-run worker is one entry of the path
            self.path.append(name)
        started = self._emit(
            ev.AgentStarted,
            agent=name,
            cause=cause,
            reason=reason,
            incoming=incoming,
            context=context,
            model=agent.model,
            parent_activation=parent,
        )
        act = started.seq
        try:
            return await self._run_activation(name, agent, act, incoming, cause, history, expect, expect_for)
        except _Escalate as escalation:
            self._finish(
                name, act, "handoff", handoff_to=escalation.handoff.target, cause=escalation.handoff.cause
            )
            raise
        except _Aborted:
            if self._failed_in is None:
                self._failed_in = name
            self._finish(name, act, "aborted")
            raise
        except BaseException as exc:  # failures, timeouts, cancellation, bugs: close the activation
            if self._failed_in is None:
                self._failed_in = name
            if act not in self._finished:
                self._finish(name, act, "failed", cause=exc.cause if isinstance(exc, _Failure) else None)
            raise

    async def _run_activation(
        self,
        name: str,
        agent: AgentSpec,
        act: int,
        incoming: str,
        cause: int,
        history: list[dict[str, Any]] | None,
        expect: Schema | None,
        expect_for: str | None,
    ) -> _Reply | _Handoff:
        plan = self._plan(name)
        # A reply must satisfy the agent's own output schema and the next stage's input, if any.
        checks: list[tuple[Schema, str | None]] = []
        if agent.output is not None:
            checks.append((agent.output, None))
        if expect is not None:
            checks.append((expect, expect_for))
        if agent.output is not None or expect is None:
            system_prompt = plan.prompt
        else:
            system_prompt = self._system_prompt(agent, expect)
        if history:
            system_prompt += "\n\nConversation before this handoff:\n" + "\n".join(
                f"[{m.get('role')}] {m.get('content') or ''}" for m in history
            )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": incoming},
        ]
        tools = plan.tools
        controller = self.controller
        validation_failures = 0
        last_response: int | None = None
        retry_of: int | None = None
        turn = 0
        while turn < self.spec.limits.max_turns:
            turn += 1
            decision = (
                CONTINUE
                if controller is None
                else await self._gate(
                    "model_call",
                    name,
                    {"model": agent.model, "messages": messages},
                    can_retry=last_response is not None,
                )
            )
            if decision.action == "retry":
                messages, retry_of = _before_last_assistant(messages), last_response
            # The first call answers what started the activation; a later one, what came back last.
            response, responded = await self._call_model(
                name,
                agent,
                messages,
                tools,
                act,
                cause if turn == 1 else self._seq,
                retry_of=retry_of,
                plan=plan,
            )
            retry_of = None
            last_response = responded.seq
            messages.append(_assistant_message(response))
            if not response.tool_calls:
                text = response.text
                for schema, whom_for in checks:
                    problem = _check_json(text, schema)
                    if problem is not None:
                        validation_failures += 1
                        failed = self._emit(
                            ev.ValidationFailed,
                            agent=name,
                            cause=responded.seq,
                            activation=act,
                            what="output",
                            errors=problem,
                            attempt=validation_failures,
                            target=whom_for,
                        )
                        if validation_failures > self.spec.limits.max_validation_retries:
                            self._finish(name, act, "failed", text)
                            whom = f"{whom_for!r}'s input" if whom_for else "its output schema"
                            raise _Failure(
                                "invalid_output",
                                f"{name!r} returned output that does not match {whom}: {problem}",
                                name,
                                whom_for or name,
                                failed.seq,
                            )
                        messages.append(
                            {
                                "role": "user",
                                "content": f"Your reply was rejected: {problem}. "
                                f"Reply with only a JSON object of this shape: {schema.describe()}",
                            }
                        )
                        break
                else:
                    self._finish(name, act, "reply", text, cause=responded.seq)
                    return _Reply(text)
                continue
            for call in response.tool_calls:
                if call.name.startswith(HANDOFF_PREFIX):
                    if controller is None:
                        checked = self._check_handoff(name, agent, plan, call, act, responded.seq, messages)
                        outcome = (
                            checked
                            if isinstance(checked, str)
                            else self._deliver(name, call, act, responded.seq, messages, *checked)
                        )
                    else:
                        outcome = await self._gated_handoff(
                            name, agent, plan, call, act, responded.seq, messages
                        )
                else:
                    outcome = await self._tool_call(name, agent, call, act, responded.seq, messages)
                if isinstance(outcome, _Handoff):
                    self._finish(name, act, "handoff", handoff_to=outcome.target, cause=outcome.cause)
                    return outcome
                if outcome == "retry":
                    messages, retry_of = _before_last_assistant(messages), last_response
                    break
                if outcome == "invalid":
                    validation_failures += 1
                    if validation_failures > self.spec.limits.max_validation_retries:
                        problem = self.events[-1]  # the validation_failed or permission_denied event
                        self._finish(name, act, "failed")
                        if problem.kind == "permission_denied":
                            raise _Failure(
                                "permission_denied",
                                f"{name!r} kept calling {problem.tool!r}, which it is not permitted to call",
                                name,
                                name,
                                problem.seq,
                            )
                        raise _Failure(
                            f"invalid_{problem.what}",
                            f"{name!r} kept producing invalid calls: {problem.errors}",
                            name,
                            problem.target
                            if problem.what in ("input", "handoff_payload") and problem.target in self.agents
                            else name,
                            problem.seq,
                        )
        self._finish(name, act, "failed")
        raise _Failure(
            "max_turns",
            f"{name!r} made {self.spec.limits.max_turns} model calls without finishing (limits.max_turns)",
            name,
            name,
            self._seq,
        )

    def _finish(
        self,
        name: str,
        act: int,
        outcome: str,
        output: str = "",
        *,
        handoff_to: str | None = None,
        cause: int | None = None,
    ) -> None:
        self._finished.add(act)
        self._emit(
            ev.AgentFinished,
            agent=name,
            activation=act,
            cause=cause or act,
            outcome=outcome,
            output=output,
            handoff_to=handoff_to,
        )

    async def _gate(
        self,
        kind: GateKind,
        agent: str,
        payload: dict[str, Any],
        *,
        validate: Callable[[dict[str, Any]], str | None] | None = None,
        can_retry: bool = False,
    ) -> Decision:
        if self.controller is None:
            return CONTINUE
        errors = [e.kind for e in self.events[self._gate_mark :] if e.kind in _ERROR_KINDS]
        gate = Gate(kind, agent, self._step + 1, payload, can_retry=can_retry, errors=errors)
        self._gate_mark = len(self.events)
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
            try:
                decision = await self.controller.decide(gate)
            finally:
                if timer is not None and deadline is not None:
                    timer.reschedule(loop.time() + left)
            if decision.operator is not None:
                self._emit(
                    ev.OperatorActed,
                    agent=agent,
                    action=decision.operator,
                    gate=kind,
                    detail={"step": gate.step, **({"payload": decision.payload} if decision.payload else {})},
                )
            if decision.action == "abort":
                raise _Aborted
            if decision.action == "edit":
                error = gate.validate(decision.payload or {})
                if error is not None:
                    self._emit(
                        ev.OperatorActed,
                        agent=agent,
                        action="edit_rejected",
                        gate=kind,
                        detail={"error": error},
                    )
                    continue
            if decision.action == "retry" and not can_retry:
                continue
            return decision

    # -- model calls ----------------------------------------------------------------------

    def _llm(self, agent: AgentSpec, model: str, plan: _Plan) -> LLM:
        if self.llm_factory is default_llm_factory:
            # The default models keep no per-run state that could leak between sessions (the
            # scripted model's is keyed by session), so one per spec and model serves every run.
            llm = plan.llms.get(model)
            if llm is None:
                llm = plan.llms[model] = default_llm_factory(agent, model)
            return llm
        key = (agent.name, model)
        llm = self._llms.get(key)
        if llm is None:
            llm = self._llms[key] = self.llm_factory(agent, model)
        return llm

    async def _call_model(
        self,
        name: str,
        agent: AgentSpec,
        messages: list[dict[str, Any]],
        tools: list[ToolDef],
        act: int,
        cause: int,
        *,
        retry_of: int | None = None,
        plan: _Plan | None = None,
    ) -> tuple[ModelResponse, Any]:
        """Call the agent's model (its fallbacks if it keeps failing); ``plan``: the agent's,
        when ``tools`` are its own."""
        limits = self.spec.limits
        if plan is not None:
            tool_names = list(plan.tool_names)
        else:
            plan = self._plan(name)
            tool_names = [t.name for t in tools]
        models = plan.models
        last_error: ModelError | None = None
        last_failed: Any = None
        activation = f"{self.session_id}:{act}"
        version = self.versions.get(name, "")
        watchdog = self._watchdog
        for index, model in enumerate(models):
            if index:
                last_failed = self._emit(
                    ev.FallbackUsed,
                    agent=name,
                    activation=act,
                    cause=last_failed.seq if last_failed else cause,
                    from_model=models[index - 1],
                    to_model=model,
                )
            llm = plan.llms.get(model) if self.llm_factory is default_llm_factory else None
            if llm is None:
                llm = self._llm(agent, model, plan)
            settings = plan.settings[model]
            for attempt in range(1, limits.retries + 2):
                self._step += 1
                step = self._step
                requested = self._emit(
                    ev.ModelRequested,
                    agent=name,
                    step=step,
                    activation=act,
                    cause=last_failed.seq if last_failed else cause,
                    model=model,
                    messages=list(messages),
                    tools=tool_names,
                    attempt=attempt,
                )
                request = ModelRequest(
                    name, model, messages, tools, settings, limits.call_timeout_s, activation, version
                )
                t0 = time.perf_counter()
                call = llm.complete(request, self._delta_sink(name, act, step) if self.live else None)
                try:
                    # The watchdog, inline: one coroutine less per call than wrapping ``call``.
                    watchdog.arm(limits.call_timeout_s)
                    try:
                        response = await call
                    except asyncio.CancelledError:
                        if watchdog.timed_out():
                            raise TimeoutError from None
                        raise
                    finally:
                        watchdog.disarm()
                except TimeoutError:
                    error: ModelError = ModelTimeout(
                        f"{model} did not answer within limits.call_timeout_s = {limits.call_timeout_s} s",
                        model=model,
                    )
                except ModelError as exc:
                    error = exc
                except Exception as exc:
                    error = ProviderError(f"{type(exc).__name__}: {exc}", model=model)
                else:
                    latency = (time.perf_counter() - t0) * 1000
                    price = agent.price
                    cost = (
                        (response.input_tokens * price.input + response.output_tokens * price.output) / 1e6
                        if price is not None
                        else response.cost_usd or 0.0
                    )
                    totals = self.totals.get(name) or self._totals_of(name)
                    totals.calls += 1
                    totals.input_tokens += response.input_tokens
                    totals.output_tokens += response.output_tokens
                    totals.cost_usd += cost
                    totals.latency_ms += latency
                    calls = response.tool_calls
                    responded = self._emit(
                        ev.ModelResponded,
                        agent=name,
                        step=step,
                        activation=act,
                        cause=requested.seq,
                        model=response.model or model,
                        text=response.text,
                        tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls],
                        input_tokens=response.input_tokens,
                        output_tokens=response.output_tokens,
                        cost_usd=cost,
                        latency_ms=latency,
                        first_token_ms=response.first_token_ms,
                        retry_of=retry_of,
                        replayed=response.replayed,
                    )
                    return response, responded
                latency = (time.perf_counter() - t0) * 1000
                self._totals_of(name).latency_ms += latency
                last_error = error
                last_failed = self._emit(
                    ev.ModelFailed,
                    agent=name,
                    step=step,
                    activation=act,
                    cause=requested.seq,
                    model=model,
                    error_type=error.error_type,
                    message=str(error),
                    attempt=attempt,
                    retryable=error.retryable,
                    latency_ms=latency,
                )
                if isinstance(error, ScriptError):
                    raise _Failure(
                        "script_error", f"error of the script: {error}", name, name, last_failed.seq
                    )
                if not error.retryable or attempt > limits.retries:
                    break
                delay = limits.backoff_s * (2 ** (attempt - 1))
                last_failed = self._emit(
                    ev.RetryScheduled,
                    agent=name,
                    activation=act,
                    cause=last_failed.seq,
                    model=model,
                    attempt=attempt + 1,
                    delay_s=delay,
                )
                if delay:
                    await asyncio.sleep(delay)
        assert last_error is not None
        tried = ", ".join(models)
        raise _Failure(
            last_error.error_type,
            f"{name!r}: every model failed ({tried}); last: {last_error}",
            name,
            name,
            last_failed.seq if last_failed else None,
        )

    # -- tool calls, delegations and handoffs -----------------------------------------------

    async def _tool_call(
        self, name: str, agent: AgentSpec, call: Any, act: int, cause: int, messages: list[dict[str, Any]]
    ) -> Any:
        """Handle one tool call of a model response (not a handoff): a delegation or a tool.

        Returns ``"invalid"`` after feeding a validation error back, ``"retry"`` if the
        operator asked to redo the model call, or None.
        """

        def answer(content: str) -> None:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})

        try:
            raw = parse_json(call.arguments or "{}")
            if not isinstance(raw, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            self._emit(
                ev.ValidationFailed,
                agent=name,
                activation=act,
                cause=cause,
                what="tool_args",
                errors=f"arguments of {call.name!r} are not valid JSON: {exc}",
                target=call.name,
            )
            answer(f"Error: the arguments of {call.name} were not valid JSON ({exc}). Call it again.")
            return "invalid"
        if call.name in agent.delegates:
            return await self._delegate(name, agent, call, raw, act, cause, answer)
        if call.name not in agent.tools:
            allowed = [*agent.tools, *agent.delegates, *(HANDOFF_PREFIX + h.to for h in agent.handoffs)]
            self._emit(
                ev.PermissionDenied,
                agent=name,
                activation=act,
                cause=cause,
                tool=call.name,
                call_id=call.id,
                allowed=allowed,
                args=call.arguments,
            )
            answer(
                f"Error: {name} is not permitted to call {call.name!r}."
                f" Permitted: {', '.join(allowed) or 'none'}."
            )
            return "invalid"
        tool = self.system.tools[call.name]
        args = await self._checked_args(name, call, raw, tool.validate, "tool_args", act, cause, answer)
        if not isinstance(args, dict):
            return args
        self._step += 1
        called = self._emit(
            ev.ToolCalled,
            agent=name,
            step=self._step,
            activation=act,
            cause=cause,
            tool=call.name,
            call_id=call.id,
            args=args,
        )
        t0 = time.perf_counter()
        error = None
        recorded = self.tool_replay(name, call.name, args) if self.tool_replay is not None else None
        if recorded is not None:
            result, error = recorded
        else:
            try:
                value = await tool.func(**args) if tool.is_async else tool.func(**args)
                result = value if isinstance(value, str) else json.dumps(value, default=str)
            except Exception as exc:
                error, result = f"{type(exc).__name__}: {exc}", ""
        latency = (time.perf_counter() - t0) * 1000
        self._totals_of(name).latency_ms += latency
        self._emit(
            ev.ToolReturned,
            agent=name,
            step=self._step,
            activation=act,
            cause=called.seq,
            tool=call.name,
            call_id=call.id,
            result=result,
            error=error,
            latency_ms=latency,
            replayed=recorded is not None,
        )
        answer(f"Error: {error}" if error else result)
        return None

    async def _checked_args(
        self,
        name: str,
        call: Any,
        raw: dict[str, Any],
        check: Callable[[dict[str, Any]], dict[str, Any]],
        what: str,
        act: int,
        cause: int,
        answer: Callable[[str], None],
    ) -> dict[str, Any] | str:
        """Validate a tool's or delegate's arguments, then hold them at the gate.

        Returns the arguments to run with (possibly edited by the operator), or
        ``"invalid"`` after feeding the problem back, or ``"retry"``.
        """
        try:
            args = check(raw)
        except ValidationError as exc:
            problem = format_validation_error(exc)
            self._emit(
                ev.ValidationFailed,
                agent=name,
                activation=act,
                cause=cause,
                what=what,
                errors=problem,
                target=call.name,
            )
            answer(f"Error: invalid arguments for {call.name}: {problem}")
            return "invalid"
        if self.controller is None:
            return args

        def validate(payload: dict[str, Any]) -> str | None:
            try:
                check(payload.get("args", {}))
            except ValidationError as exc:
                return format_validation_error(exc)
            return None

        decision = await self._gate(
            "tool_call", name, {"tool": call.name, "args": args}, validate=validate, can_retry=True
        )
        if decision.action == "retry":
            return "retry"
        if decision.action == "edit" and decision.payload is not None:
            return check(decision.payload.get("args", {}))
        return args

    async def _delegate(
        self,
        name: str,
        agent: AgentSpec,
        call: Any,
        raw: dict[str, Any],
        act: int,
        cause: int,
        answer: Callable[[str], None],
    ) -> Any:
        schema = self.agents[call.name].input or _TASK_SCHEMA
        args = await self._checked_args(name, call, raw, schema.validate, "input", act, cause, answer)
        if not isinstance(args, dict):
            return args
        self._check_hops(name, call.name, args, cause)
        self._step += 1
        step = self._step
        called = self._emit(
            ev.ToolCalled,
            agent=name,
            step=step,
            activation=act,
            cause=cause,
            tool=call.name,
            call_id=call.id,
            args=args,
        )
        t0 = time.perf_counter()
        feedback = ""
        output = ""
        for round_ in range(1, agent.max_reviews + 2):
            context = {**args, "feedback": feedback} if feedback else args
            try:
                result = await self._activate(
                    call.name, _render_context(context), context, "delegation", called.seq, parent=act
                )
            except _Failure as failure:
                self._emit(
                    ev.ToolReturned,
                    agent=name,
                    step=step,
                    activation=act,
                    cause=failure.cause or called.seq,
                    tool=call.name,
                    call_id=call.id,
                    error=f"worker {call.name!r} failed: {failure.message}",
                    latency_ms=(time.perf_counter() - t0) * 1000,
                )
                raise _Failure(
                    failure.error_type,
                    f"worker {call.name!r} failed: {failure.message}",
                    failure.origin,
                    name,
                    failure.cause,
                ) from None
            if isinstance(result, _Handoff):
                raise _Failure(
                    "handoff_in_delegation",
                    f"worker {call.name!r} tried to hand off to "
                    f"{result.target!r}; a delegated worker returns its result",
                    call.name,
                    name,
                    result.cause,
                )
            output = result.text
            if not agent.review:
                break
            if round_ > agent.max_reviews:
                self._emit(
                    ev.CheckpointReviewed,
                    agent=name,
                    activation=act,
                    cause=self._seq,
                    worker=call.name,
                    verdict="limit",
                    round=round_,
                    feedback=f"rejected {agent.max_reviews} times; using the last output",
                )
                break
            verdict, feedback = await self._review(name, agent, call.name, args, output, act)
            self._emit(
                ev.CheckpointReviewed,
                agent=name,
                activation=act,
                cause=self._seq,
                worker=call.name,
                verdict=verdict,
                feedback=feedback,
                round=round_,
            )
            if verdict == "accept":
                break
        self._emit(
            ev.ToolReturned,
            agent=name,
            step=step,
            activation=act,
            cause=called.seq,
            tool=call.name,
            call_id=call.id,
            result=output,
            latency_ms=(time.perf_counter() - t0) * 1000,
        )
        answer(output)
        return None

    async def _review(
        self, name: str, agent: AgentSpec, worker: str, args: dict[str, Any], output: str, act: int
    ) -> tuple[str, str]:
        prompt = (
            f"Review the output of worker {worker!r}.\nTask: {_render_context(args)}\n"
            f"Output:\n{output}\n\nCall {REVIEW_ACCEPT} to use it, or {REVIEW_REJECT} with feedback "
            "saying what to fix."
        )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": agent.instructions + "\n\nYou are checking a worker's output."},
            {"role": "user", "content": prompt},
        ]
        tools = [
            ToolDef(REVIEW_ACCEPT, "Accept the worker's output.", {"type": "object", "properties": {}}),
            ToolDef(
                REVIEW_REJECT,
                "Reject the output and say what to fix.",
                {"type": "object", "properties": {"feedback": {"type": "string"}}, "required": ["feedback"]},
            ),
        ]
        if self.controller is not None:  # a review is a model call too: the debugger can hold it
            await self._gate("model_call", name, {"model": agent.model, "messages": messages})
        response, _ = await self._call_model(name, agent, messages, tools, act, self._seq)
        for call in response.tool_calls:
            if call.name == REVIEW_ACCEPT:
                return "accept", ""
            if call.name == REVIEW_REJECT:
                try:
                    feedback = str(json.loads(call.arguments or "{}").get("feedback", ""))
                except (ValueError, AttributeError):
                    feedback = call.arguments
                return "reject", feedback or "rejected without feedback"
        text = response.text.strip()
        return ("accept", "") if text.lower().startswith("accept") else ("reject", text or "no verdict")

    async def _gated_handoff(
        self,
        name: str,
        agent: AgentSpec,
        plan: _Plan,
        call: Any,
        act: int,
        cause: int,
        messages: list[dict[str, Any]],
    ) -> _Handoff | str:
        """Handle a handoff call, held at the controller's gate: a :class:`_Handoff`, or
        ``"invalid"``, or ``"retry"``."""
        checked = self._check_handoff(name, agent, plan, call, act, cause, messages)
        if isinstance(checked, str):
            return checked
        route, target, payload, rendered, history_tokens = checked
        decision = await self._gate(
            "handoff",
            name,
            {
                "target": target,
                "context": payload,
                "schema": route.described,
                "payload_tokens": approx_tokens(rendered),
                "history": route.spec.history,
                "history_tokens": history_tokens,
            },
            validate=lambda p: _check_route(route, target, p.get("context", {}))[1],
            can_retry=True,
        )
        if decision.action == "retry":
            return "retry"
        edited = decision.action == "edit" and decision.payload is not None
        if edited:
            assert decision.payload is not None
            payload = _check_route(route, target, decision.payload.get("context", {}))[0] or payload
            rendered = _render_context(payload)
        return self._deliver(
            name, call, act, cause, messages, route, target, payload, rendered, history_tokens, edited
        )

    def _check_handoff(
        self,
        name: str,
        agent: AgentSpec,
        plan: _Plan,
        call: Any,
        act: int,
        cause: int,
        messages: list[dict[str, Any]],
    ) -> tuple[_Route, str, dict[str, Any], str, int] | str:
        """The route, target, clean payload, its JSON and the history's tokens of a handoff
        call, or ``"invalid"`` after feeding the problem back."""
        target = call.name[len(HANDOFF_PREFIX) :]
        route = plan.routes.get(target) or self._route(agent, plan, target)
        if route is None:
            known = ", ".join({h.to: h for h in agent.handoffs}) or "none"
            self._emit(
                ev.ValidationFailed,
                agent=name,
                activation=act,
                cause=cause,
                what="handoff_target",
                errors=f"{target!r} is not a handoff target of {name!r} (targets: {known})",
                target=target,
            )
            _answer(
                messages, call, f"Error: there is no agent {target!r} to hand off to. Choose one of: {known}."
            )
            return "invalid"
        try:
            raw = parse_json(call.arguments or "{}")
            if not isinstance(raw, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            payload: dict[str, Any] | None = None
            problem: str | None = f"handoff arguments are not valid JSON: {exc}"
            what = "handoff_payload"
        else:
            payload, problem, what = _check_route(route, target, raw)
        if payload is None:
            self._emit(
                ev.ValidationFailed,
                agent=name,
                activation=act,
                cause=cause,
                what=what,
                errors=problem or "",
                target=target,
            )
            _answer(
                messages,
                call,
                f"Error: the handoff to {target} was refused: {problem}. Required: {route.described}",
            )
            return "invalid"
        return route, target, payload, _render_context(payload), _history_tokens(messages)

    def _deliver(
        self,
        name: str,
        call: Any,
        act: int,
        cause: int,
        messages: list[dict[str, Any]],
        route: _Route,
        target: str,
        payload: dict[str, Any],
        rendered: str,
        history_tokens: int,
        edited: bool = False,
    ) -> _Handoff:
        """Deliver a checked handoff: record it, answer the call, and return it."""
        policy = route.spec.history
        history = _history(messages, policy) if policy != "none" else []
        self._check_hops(name, target, payload, cause, rendered)
        self._step += 1
        delivered = self._emit(
            ev.HandoffDelivered,
            agent=name,
            step=self._step,
            activation=act,
            cause=cause,
            source=name,
            target=target,
            payload=payload,
            payload_tokens=approx_tokens(rendered),
            history=policy,
            history_tokens=history_tokens,
            payload_schema=route.described,
            edited=edited,
        )
        messages.append({"role": "tool", "tool_call_id": call.id, "content": f"Handed off to {target}."})
        return _Handoff(target, payload, history, delivered.seq, rendered)

    def _check_hops(
        self, source: str, target: str, payload: dict[str, Any], cause: int, rendered: str | None = None
    ) -> None:
        self._hops += 1
        edge = (source, target, rendered if rendered is not None else _render_context(payload))
        reason = ""
        if edge in self._edges:
            reason = f"{source} -> {target} repeated with the same context"
        elif self._hops > self.spec.limits.max_hops:
            reason = f"more than limits.max_hops = {self.spec.limits.max_hops} handoffs"
        self._edges.add(edge)
        if not reason:
            return
        policy = self.spec.on_loop
        if self._escalated:
            policy = "stop"
        detected = self._emit(
            ev.LoopDetected, agent=source, cause=cause, reason=reason, edge=[source, target], policy=policy
        )
        if policy == "stop":
            raise _Failure("loop", f"loop detected: {reason}", source, source, detected.seq)
        self._escalated = True
        escalated = self._emit(ev.Escalated, agent=source, cause=detected.seq, target=policy, reason=reason)
        raise _Escalate(policy, {"request": self._input, "reason": reason}, escalated.seq)


class _Escalate(Exception):
    def __init__(self, target: str, payload: dict[str, Any], cause: int) -> None:
        super().__init__(target)
        self.handoff = _Handoff(target, payload, [], cause)


class _Watchdog:
    """Per-call timeouts for one run's model calls, which never overlap.

    ``asyncio.timeout`` allocates and cancels a timer handle per call (~5 µs, a hot path
    with the scripted model). Here a call only records its deadline; one timer per run
    fires when the earliest deadline may have passed, cancels the call if it has, and
    otherwise re-arms for the current call.
    """

    def __init__(self) -> None:
        self._deadline: float | None = None
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._when = 0.0
        """When ``_timer`` fires."""
        self._fired = False

    def bind(self) -> None:
        """The run starts in the current task; every call it makes is awaited in that task."""
        self._task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()

    def arm(self, timeout_s: float) -> None:
        """A call starts: it may take ``timeout_s``."""
        loop = self._loop
        if loop is None:
            self.bind()
            loop = self._loop
            assert loop is not None
        self._deadline = deadline = loop.time() + timeout_s
        self._fired = False
        if self._timer is None or self._when > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._check)
            self._when = deadline

    def disarm(self) -> None:
        """The call ended."""
        self._deadline = None

    def timed_out(self) -> bool:
        """On a ``CancelledError`` during the call: whether the watchdog cancelled it (and
        nothing else did), so the call timed out rather than the run being cancelled."""
        return self._fired and self._task is not None and self._task.uncancel() == 0

    def _check(self) -> None:
        self._timer = None
        if self._deadline is None or self._task is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self._deadline:
            self._fired = True
            self._task.cancel()
        else:
            self._timer = loop.call_at(self._deadline, self._check)
            self._when = self._deadline

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _render_context(context: dict[str, Any]) -> str:
    return to_json(context, fallback=str).decode()


def _answer(messages: list[dict[str, Any]], call: Any, content: str) -> None:
    messages.append({"role": "tool", "tool_call_id": call.id, "content": content})


def _check_route(
    route: _Route, target: str, payload: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None, str]:
    """The clean payload of a handoff, or None, the problem and what was wrong."""
    try:
        clean = route.schema.validate(payload)
    except ValidationError as exc:
        return None, format_validation_error(exc), "handoff_payload"
    if route.target_input is not None:
        try:
            clean = route.target_input.validate(clean)
        except ValidationError as exc:
            return None, f"{target!r} rejects its input: {format_validation_error(exc)}", "input"
    return clean, None, ""


def _history_tokens(messages: list[dict[str, Any]]) -> int:
    """What the conversation after the system prompt would cost a handoff's target, in tokens."""
    tokens = 0
    for message in messages[1:]:
        text = str(message.get("content") or "")
        if text:
            tokens += (len(text) + 3) // 4  # approx_tokens, inlined: once per message
    return tokens


def _assistant_message(response: ModelResponse) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.text or None}
    if response.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in response.tool_calls
        ]
    return message


def _before_last_assistant(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for index in range(len(messages) - 1, 1, -1):
        if messages[index].get("role") == "assistant":
            return messages[:index]
    return messages


def _history(messages: list[dict[str, Any]], policy: str) -> list[dict[str, Any]]:
    if policy == "none":
        return []
    turns = [m for m in messages[1:] if m.get("content")]
    if policy == "full":
        return turns
    return turns[-int(policy.split(":", 1)[1]) :]


def _check_json(text: str, schema: Schema) -> str | None:
    try:
        data = parse_json(text)
    except ValueError as exc:
        return f"not valid JSON ({exc})"
    try:
        schema.validate(data)
    except ValidationError as exc:
        return format_validation_error(exc)
    return None
