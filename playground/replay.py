"""Fork and replay: re-run a recorded session without paying for it again.

Two ways to reuse a recording, one :class:`ReplaySource` behind both:

- **fork** from step N: every model call and tool call before the recorded step
  N is answered from the recording *by position* (no model call, no tool side
  effect), whatever agent version runs; from N on the run is live, optionally
  with one agent swapped to another version or model, or with the pending
  handoff context or tool arguments at N edited.
- **replay** (counterfactual): each model call is answered from the recording
  while its request still *matches* one recorded for the same agent, version,
  model and messages; from the first call that does not match (the first
  divergence) the run is live. Changing one agent therefore costs model calls
  only for that agent and what follows it.

The replay model is a wrapper around the live model, built per agent by the
normal LLM factory: the engine cannot tell a replayed answer from a live one,
except that the response says ``replayed`` so costs can be reported honestly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal, assert_never

from pydantic_core import to_json

from playground.engine import events as ev
from playground.engine.clock import SYSTEM_CLOCK, Clock
from playground.engine.controller import CONTINUE, Controller, Decision, Gate
from playground.engine.events import Event
from playground.engine.messages import render_context
from playground.engine.runtime import EventSink, LLMFactory, RunResult, SideEffectsDone, default_llm_factory
from playground.errors import PlaygroundError, StoreError
from playground.llm.base import LLM, ModelRequest, ModelResponse, OnDelta, ToolCall
from playground.service import run_session
from playground.spec.identity import canonical_spec, version_id
from playground.spec.load import System, load_system_ref
from playground.spec.models import AgentSpec
from playground.spec.python import ref_file
from playground.store.store import SessionRow, Store


def request_key(agent: str, version: str, model: str, messages: list[dict[str, Any]]) -> str:
    """What a recorded model call is matched on."""
    digest = hashlib.sha256(to_json([agent, version, model, messages])).hexdigest()
    return digest[:24]


StepKind = Literal["model_call", "tool_call", "handoff", "stage"]
"""The steps a fork can start at. ``stage``: a pipeline's stage transition (the step its next
stage's ``agent_started`` carries), where the previous stage's output is held and delivered."""


def step_kind(event: Event) -> StepKind | None:
    """The kind of step ``event`` belongs to, when a fork can start at that step; else None."""
    match event:
        case ev.ModelRequested() | ev.ModelResponded() | ev.ModelFailed():
            return "model_call"
        case ev.ToolCalled() | ev.ToolReturned():
            return "tool_call"
        case ev.HandoffDelivered():
            return "handoff"
        case ev.AgentStarted() if event.step is not None:
            return "stage"
        case (
            ev.RunStarted()
            | ev.AgentStarted()
            | ev.TokenDelta()
            | ev.RetryScheduled()
            | ev.FallbackUsed()
            | ev.PermissionDenied()
            | ev.ValidationFailed()
            | ev.CheckpointReviewed()
            | ev.LoopDetected()
            | ev.BudgetExceeded()
            | ev.GuardAllowed()
            | ev.GuardRewrote()
            | ev.GuardDenied()
            | ev.ApprovalRequested()
            | ev.ApprovalDecided()
            | ev.Escalated()
            | ev.AgentFinished()
            | ev.OperatorActed()
            | ev.RunFinished()
            | ev.RunFailed()
        ):
            return None
        case _:
            assert_never(event)


@dataclass
class RecordedCall:
    """One successful model call of a recording."""

    step: int
    agent: str
    version: str
    model: str
    messages: list[dict[str, Any]]
    response: ModelResponse
    used: bool = False

    @property
    def key(self) -> str:
        return request_key(self.agent, self.version, self.model, self.messages)


@dataclass
class RecordedTool:
    """One tool result of a recording."""

    step: int
    agent: str
    tool: str
    args: dict[str, Any]
    result: str
    error: str | None
    used: bool = False


@dataclass
class Recording:
    """A stored session, ready to be replayed."""

    session: SessionRow
    events: list[Event]
    calls: list[RecordedCall]
    tools: list[RecordedTool]

    @classmethod
    def from_events(cls, session: SessionRow, events: list[Event]) -> Recording:
        requests: dict[int, ev.ModelRequested] = {}
        calls: list[RecordedCall] = []
        tools: list[RecordedTool] = []
        pending_tools: dict[str, ev.ToolCalled] = {}
        agents = set(session.versions)
        for event in events:
            match event:
                case ev.ModelRequested() if event.step is not None:
                    requests[event.step] = event
                case ev.ModelResponded() if event.step is not None and event.step in requests:
                    req = requests[event.step]
                    response = ModelResponse(
                        text=event.text,
                        tool_calls=[ToolCall(c["id"], c["name"], c["arguments"]) for c in event.tool_calls],
                        input_tokens=event.input_tokens,
                        output_tokens=event.output_tokens,
                        cost_usd=event.cost_usd,
                        model=event.model,
                        first_token_ms=event.first_token_ms,
                        replayed=True,
                    )
                    calls.append(
                        RecordedCall(
                            event.step,
                            event.agent or "",
                            event.version or "",
                            req.model,
                            req.messages,
                            response,
                        )
                    )
                case ev.ToolCalled() if event.tool not in agents:  # delegations are not tools
                    pending_tools[event.call_id + str(event.activation)] = event
                case ev.ToolReturned() if event.step is not None:
                    called = pending_tools.pop(event.call_id + str(event.activation), None)
                    if called is not None:
                        tools.append(
                            RecordedTool(
                                event.step,
                                event.agent or "",
                                event.tool,
                                called.args,
                                event.result,
                                event.error,
                            )
                        )
                case (
                    ev.ModelRequested()  # without a step: nothing can ask for it
                    | ev.ModelResponded()  # to a request not recorded
                    | ev.ToolCalled()  # a delegation
                    | ev.ToolReturned()  # without a step
                    | ev.RunStarted()
                    | ev.AgentStarted()
                    | ev.TokenDelta()
                    | ev.ModelFailed()
                    | ev.RetryScheduled()
                    | ev.FallbackUsed()
                    | ev.PermissionDenied()
                    | ev.HandoffDelivered()
                    | ev.ValidationFailed()
                    | ev.CheckpointReviewed()
                    | ev.LoopDetected()
                    | ev.BudgetExceeded()
                    | ev.GuardAllowed()
                    | ev.GuardRewrote()
                    | ev.GuardDenied()
                    | ev.ApprovalRequested()
                    | ev.ApprovalDecided()
                    | ev.Escalated()
                    | ev.AgentFinished()
                    | ev.OperatorActed()
                    | ev.RunFinished()
                    | ev.RunFailed()
                ):
                    pass  # nothing a replay answers from
                case _:
                    assert_never(event)
        return cls(session, events, calls, tools)

    def step_kind(self, step: int) -> StepKind | None:
        """What happened at a recorded step: ``model_call``, ``tool_call``, ``handoff`` or
        ``stage``."""
        for event in self.events:
            if event.step == step:
                kind = step_kind(event)
                if kind is not None:
                    return kind
        return None

    @property
    def last_step(self) -> int:
        return max((e.step for e in self.events if e.step is not None), default=0)


def side_effects_of(
    recording: Recording, system: System
) -> dict[tuple[str, str, str], tuple[str, str | None]]:
    """The recorded results of the system's side-effect tools, by (agent, tool, arguments):
    a fork or replay serves them whatever step it runs live from, and never runs them again."""
    done: SideEffectsDone = {}
    for recorded in recording.tools:
        tool = system.tools.get(recorded.tool)
        if tool is not None and tool.side_effects:
            key = (recorded.agent, recorded.tool, render_context(recorded.args))
            done.setdefault(key, (recorded.result, recorded.error))
    return done


class ReplaySource:
    """Answers model and tool calls from a recording, until it must go live.

    Args:
        recording: The session to answer from.
        mode: ``fork`` (by position, before ``before_step``) or ``replay`` (by content,
            until the first divergence).
        before_step: With ``fork``: the first step that runs live.
    """

    def __init__(
        self, recording: Recording, mode: Literal["fork", "replay"], before_step: int | None = None
    ) -> None:
        self.recording = recording
        self.mode = mode
        self.before_step = before_step if before_step is not None else recording.last_step + 1
        self.first_divergence: dict[str, Any] | None = None
        self.replayed_calls = 0
        self.replayed_tools = 0
        self._by_key: dict[str, list[RecordedCall]] = {}
        for call in recording.calls:
            self._by_key.setdefault(call.key, []).append(call)

    @property
    def live(self) -> bool:
        """Whether the run has gone live (nothing more will be answered from the recording)."""
        if self.mode == "replay":
            return self.first_divergence is not None
        return not any(not c.used and c.step < self.before_step for c in self.recording.calls) and not any(
            not t.used and t.step < self.before_step for t in self.recording.tools
        )

    def model(self, request: ModelRequest) -> ModelResponse | None:
        if self.mode == "fork":
            return self._by_position(request)
        if self.first_divergence is not None:
            return None
        candidates = self._by_key.get(
            request_key(request.agent, request.version, request.model, request.messages)
        )
        for call in candidates or ():
            if not call.used:
                call.used = True
                self.replayed_calls += 1
                return call.response
        self.first_divergence = self._explain(request)
        return None

    def _by_position(self, request: ModelRequest) -> ModelResponse | None:
        """The recorded answer to this call in a fork: the same agent's next recorded call
        before the fork's step (the one with this very request, when branches that ran at once
        answered in another order than they asked)."""
        key = request_key(request.agent, request.version, request.model, request.messages)
        mine = [
            c
            for c in self.recording.calls
            if not c.used and c.step < self.before_step and c.agent == request.agent
        ]
        if not mine:
            earlier = [c for c in self.recording.calls if not c.used and c.step < self.before_step]
            seen = any(c.agent == request.agent and c.step < self.before_step for c in self.recording.calls)
            if earlier and not seen:
                # Calls before the fork are still to come, and this agent made none of them.
                call = earlier[0]
                raise PlaygroundError(
                    f"the fork no longer follows the recording: step {call.step} was a call of "
                    f"{call.agent!r}, but {request.agent!r} is calling"
                )
            return None
        call = next((c for c in mine if c.key == key), mine[0])
        call.used = True
        self.replayed_calls += 1
        return call.response

    def tool(self, agent: str, tool: str, args: dict[str, Any]) -> tuple[str, str | None] | None:
        if self.mode == "replay" and self.first_divergence is not None:
            return None
        pending = [
            t
            for t in self.recording.tools
            if not t.used and (self.mode == "replay" or t.step < self.before_step)
        ]
        # Tools that ran at once returned in their own order: match on what was asked.
        for recorded in pending:
            if recorded.agent == agent and recorded.tool == tool and recorded.args == args:
                recorded.used = True
                self.replayed_tools += 1
                return recorded.result, recorded.error
        mine = [t for t in pending if t.agent == agent]
        if self.mode == "fork" and mine:
            recorded = mine[0]
            raise PlaygroundError(
                f"the fork no longer follows the recording: step {recorded.step} ran "
                f"{recorded.tool}({recorded.args}) for {recorded.agent!r}, not {tool}({args})"
            )
        return None

    def _explain(self, request: ModelRequest) -> dict[str, Any]:
        same_agent = [c for c in self.recording.calls if c.agent == request.agent and not c.used]
        out: dict[str, Any] = {"agent": request.agent}
        if not same_agent:
            out["reason"] = f"{request.agent!r} made no further model call in the recording"
            return out
        recorded = same_agent[0]
        out["recorded_step"] = recorded.step
        if recorded.model != request.model:
            out["reason"] = f"model {recorded.model} -> {request.model}"
        elif recorded.version != request.version:
            out["reason"] = f"version {recorded.version} -> {request.version}"
        else:
            for index, (old, new) in enumerate(zip(recorded.messages, request.messages, strict=False)):
                if old != new:
                    out["reason"] = (
                        f"message {index} ({new.get('role')}) differs: "
                        f"{str(old.get('content'))[:60]!r} -> {str(new.get('content'))[:60]!r}"
                    )
                    break
            else:
                out["reason"] = f"{len(recorded.messages)} recorded messages, {len(request.messages)} now"
        return out


@dataclass
class _ReplayLLM:
    source: ReplaySource
    live: LLM

    async def complete(self, request: ModelRequest, on_delta: OnDelta | None = None) -> ModelResponse:
        recorded = self.source.model(request)
        if recorded is not None:
            if on_delta is not None and recorded.text:
                on_delta(recorded.text)
            return recorded
        return await self.live.complete(request, on_delta)


def replay_factory(source: ReplaySource, base: LLMFactory = default_llm_factory) -> LLMFactory:
    """An LLM factory whose models answer from ``source`` first and call ``base``'s when live."""

    def factory(agent: AgentSpec, model: str) -> LLM:
        return _ReplayLLM(source, base(agent, model))

    return factory


@dataclass
class _EditAtFork:
    """Applies an operator's edit at the first live gate of the given kind."""

    source: ReplaySource
    kind: str
    payload: dict[str, Any]
    inner: Controller | None = None
    """The operator's controller (the TUI's debugger), asked at every other gate."""
    done: bool = field(default=False)
    error: str | None = None

    async def decide(self, gate: Gate) -> Decision:
        if not self.done and gate.kind == self.kind and self.source.live:
            self.done = True
            self.error = gate.validate(self.payload)
            if self.error is not None:  # never run the fork on the original payload instead
                return Decision("abort", operator="abort")
            return Decision("edit", self.payload, operator="edit")
        return CONTINUE if self.inner is None else await self.inner.decide(gate)


@dataclass
class Variant:
    """One agent changed for a fork or replay: another version, or another model."""

    agent: str
    version: str | None = None
    model: str | None = None


async def recorded_agents(
    store: Store, session: SessionRow, system: System, *, force: bool
) -> tuple[dict[str, AgentSpec], dict[str, str]]:
    """The agent specs and version ids ``session`` ran with, from the store; with ``force``,
    the active versions for any the store does not have (else that is refused)."""
    agents: dict[str, AgentSpec] = {}
    versions: dict[str, str] = {}
    missing = []
    for name in system.spec.agents:
        vid = session.versions.get(name)
        if vid is None:
            missing.append(name)
            continue
        try:
            spec_json = await store.version_spec(session.system, name, vid)
        except StoreError:
            missing.append(name)
            continue
        agents[name] = AgentSpec.model_validate_json(spec_json)
        versions[name] = vid
    if missing and not force:
        raise PlaygroundError(
            f"session {session.session_id} ran versions this store does not have for {missing}; "
            "replaying onto other versions would not match the recording. Pass --current --force "
            "to replay onto the active versions (the agents that differ run live)."
        )
    if missing:
        active = await store.active_versions(session.system)
        for name in missing:
            agents[name] = system.spec.agents[name]
            versions[name] = active.get(name) or version_id(system.spec.agents[name])
    return agents, versions


async def _apply_variant(
    store: Store,
    system: System,
    agents: dict[str, AgentSpec],
    versions: dict[str, str],
    variant: Variant | None,
) -> None:
    if variant is None:
        return
    if variant.agent not in agents:
        raise PlaygroundError(f"{variant.agent!r} is not an agent of {system.name!r}")
    if variant.version is not None:
        vid = await store.resolve_version(system.name, variant.agent, variant.version)
        agents[variant.agent] = AgentSpec.model_validate_json(
            await store.version_spec(system.name, variant.agent, vid)
        )
        versions[variant.agent] = vid
    if variant.model is not None:
        changed = agents[variant.agent].model_copy(update={"model": variant.model})
        spec_json = canonical_spec(changed)
        await store.record_versions(
            system.name,
            {variant.agent: spec_json},
            source="operator",
            note=f"model {variant.model} for a fork/replay",
            activate=False,  # a fork must not move active pointers
        )
        agents[variant.agent] = changed
        versions[variant.agent] = version_id(changed)


async def load_recording(store: Store, session_id: str) -> tuple[Recording, System]:
    """A stored session as a :class:`Recording`, and its system loaded from where it ran."""
    session = await store.session(session_id)
    events = await store.events(session.session_id)
    file = ref_file(session.system_path) if session.system_path else None
    if not session.system_path or (file is not None and not file.exists()):
        raise PlaygroundError(
            f"session {session.session_id} was run from {session.system_path!r}, which is not here; "
            "run fork/replay where the system file is"
        )
    return Recording.from_events(session, events), load_system_ref(session.system_path)


@dataclass
class ReplayOutcome:
    """A fork's or replay's result, with what it reused."""

    result: RunResult
    parent_session_id: str
    first_divergence: dict[str, Any] | None
    replayed_calls: int
    replayed_tools: int
    forked_from_step: int | None = None

    def as_json(self) -> dict[str, Any]:
        """``playground run --json``'s object plus the replay's own fields."""
        events: list[Event] = self.result.events
        live_calls = [e for e in events if isinstance(e, ev.ModelResponded) and not e.replayed]
        divergence = self.first_divergence
        if divergence is not None:
            live = live_calls[0] if live_calls else None
            divergence = {**divergence, "step": live.step if live is not None else None}
        return {
            **self.result.as_json(),
            "parent_session_id": self.parent_session_id,
            "forked_from_step": self.forked_from_step,
            "first_divergence": divergence,
            "replayed": {"model_calls": self.replayed_calls, "tool_calls": self.replayed_tools},
            # cost_usd above is the session's whole cost, replayed calls at their recorded price;
            # this is what running it actually spent.
            "live": {
                "model_calls": len(live_calls),
                "cost_usd": round(sum(e.cost_usd for e in live_calls), 8),
            },
        }


def _check_stage_edit(
    recording: Recording, agents: dict[str, AgentSpec], at_step: int, edit: dict[str, Any]
) -> None:
    """Refuse, before anything runs, a new output for the stage transition at ``at_step`` that
    the next stage's ``input`` would refuse (the same check the stage's gate makes)."""
    from playground.engine.messages import parse_or_text
    from playground.engine.pipeline import stage_edit_problem

    started = [e for e in recording.events if isinstance(e, ev.AgentStarted) and e.step == at_step]
    if not started or any(e.agent not in agents for e in started):
        return  # the gate checks it when the fork gets there
    as_text = not isinstance(parse_or_text(started[0].incoming), dict)
    schemas = [(e.agent or "", agents[e.agent or ""].input) for e in started]
    problem = stage_edit_problem(schemas, edit, as_text)
    if problem is not None:
        targets = " ∥ ".join(name for name, _ in schemas)
        raise PlaygroundError(
            f"the edit for step {at_step} (the stage output {targets} receives) does not "
            f"validate: {problem}; nothing was run"
        )


def _check_handoff_edit(
    recording: Recording, system: System, agents: dict[str, AgentSpec], at_step: int, edit: dict[str, Any]
) -> None:
    """Refuse, before anything runs, a new context for the handoff at ``at_step`` that its
    route would refuse (else the fork starts, meets the edit at the gate and is aborted,
    leaving an aborted session behind). The same check the gate makes."""
    from playground.engine.handoffs import check_route
    from playground.engine.plans import make_plan, route_for

    handed = next(
        (e for e in recording.events if isinstance(e, ev.HandoffDelivered) and e.step == at_step), None
    )
    if handed is None or handed.source not in agents or handed.target not in agents:
        return  # the gate checks it when the fork gets there
    plan = make_plan(system, agents, handed.source)
    route = route_for(agents, agents[handed.source], plan, handed.target)
    if route is None:
        return
    problem = check_route(route, handed.target, edit)[1]
    if problem is not None:
        raise PlaygroundError(
            f"the edit for step {at_step} (handoff {handed.source} -> {handed.target}) does not "
            f"validate: {problem}; nothing was run"
        )


async def fork_session(
    store: Store,
    session_id: str,
    at_step: int,
    *,
    variant: Variant | None = None,
    edit: dict[str, Any] | None = None,
    tracer: EventSink | None = None,
    live: list[EventSink] | None = None,
    controller: Controller | None = None,
    base: LLMFactory = default_llm_factory,
    clock: Clock = SYSTEM_CLOCK,
) -> ReplayOutcome:
    """Fork a recorded session at ``at_step``: replay what came before, run live from there.

    Args:
        edit: For a handoff at ``at_step``: the new context; for a stage transition: the
            previous stage's new output (a JSON object, ``{"text": ...}`` for a text output);
            for a tool call: the new arguments.

    At a stage transition the stages before it are answered from the recording, and the
    output they produced is held at the transition's gate and delivered live (edited, with
    ``edit``): the next stage runs live from there.
    """
    recording, system = await load_recording(store, session_id)
    kind = recording.step_kind(at_step)
    if kind is None:
        raise PlaygroundError(
            f"session {recording.session.session_id} has no step {at_step} (steps 1..{recording.last_step}; "
            "'playground sessions show ID' lists them)"
        )
    agents, versions = await recorded_agents(store, recording.session, system, force=True)
    await _apply_variant(store, system, agents, versions, variant)
    source = ReplaySource(recording, "fork", before_step=at_step)
    if edit is not None:
        if kind == "model_call":
            raise PlaygroundError(
                f"step {at_step} is a model call; --edit applies to a handoff, a stage's output "
                "or a tool call"
            )
        if kind == "handoff":
            _check_handoff_edit(recording, system, agents, at_step, edit)
        if kind == "stage":
            _check_stage_edit(recording, agents, at_step, edit)
        payload = {"context": edit} if kind in ("handoff", "stage") else {"args": edit}
        # A stage's output is held at a gate of kind handoff (its payload says ``stage``).
        gate_kind = "handoff" if kind == "stage" else kind
        controller = _EditAtFork(source, gate_kind, payload, inner=controller)
    result = await run_session(
        system,
        recording.session.input,
        store=store,
        tracer=tracer,
        controller=controller,
        live=live,
        llm_factory=replay_factory(source, base),
        agents=agents,
        versions=versions,
        tool_replay=source.tool,
        side_effects_done=side_effects_of(recording, system),
        parent_session_id=recording.session.session_id,
        clock=clock,
        forked_from_step=at_step,
    )
    if isinstance(controller, _EditAtFork) and controller.error is not None:
        raise PlaygroundError(
            f"the edit for step {at_step} does not validate: {controller.error} "
            f"(fork session {result.session_id} was aborted)"
        )
    return ReplayOutcome(
        result, recording.session.session_id, None, source.replayed_calls, source.replayed_tools, at_step
    )


async def replay_session(
    store: Store,
    session_id: str,
    *,
    variant: Variant | None = None,
    current: bool = False,
    force: bool = False,
    tracer: EventSink | None = None,
    live: list[EventSink] | None = None,
    controller: Controller | None = None,
    base: LLMFactory = default_llm_factory,
    clock: Clock = SYSTEM_CLOCK,
) -> ReplayOutcome:
    """Re-run a recorded session, answering from the recording until the first divergence.

    Args:
        variant: The one agent to change (another version or model).
        current: Replay onto the store's active versions instead of the recorded ones;
            refused when they differ from the recording, unless ``force``.
    """
    recording, system = await load_recording(store, session_id)
    if current:
        from playground.service import active_agents

        agents, versions = await active_agents(store, system)
        agents, versions = dict(agents), dict(versions)
        differ = {
            name: (recording.session.versions.get(name), vid)
            for name, vid in versions.items()
            if recording.session.versions.get(name) != vid and (variant is None or name != variant.agent)
        }
        if differ and not force:
            listed = ", ".join(f"{n} {old} -> {new}" for n, (old, new) in differ.items())
            raise PlaygroundError(
                f"the active versions differ from what session {recording.session.session_id} ran with "
                f"({listed}); those agents would run live. Pass --force to replay onto them anyway."
            )
    else:
        agents, versions = await recorded_agents(store, recording.session, system, force=force)
    await _apply_variant(store, system, agents, versions, variant)
    source = ReplaySource(recording, "replay")
    result = await run_session(
        system,
        recording.session.input,
        store=store,
        tracer=tracer,
        controller=controller,
        live=live,
        llm_factory=replay_factory(source, base),
        agents=agents,
        versions=versions,
        tool_replay=source.tool,
        side_effects_done=side_effects_of(recording, system),
        parent_session_id=recording.session.session_id,
        clock=clock,
    )
    return ReplayOutcome(
        result,
        recording.session.session_id,
        source.first_divergence,
        source.replayed_calls,
        source.replayed_tools,
    )
