"""Resuming a session that waits for a person's approval (``playground approve``).

A headless run that reaches a call of an ``approval: required`` tool stops with the
session ``waiting_approval`` (see :class:`~playground.engine.outcomes.WaitingApproval`).
:func:`resume_session` takes the person's decision and continues **the same session**:

1. The session is run again from its request, on the agent versions it ran with, with no
   controller and the decisions already taken on earlier approvals plus the new one
   (``Runtime(approvals=...)``).
2. Every event up to the last one stored (the replayed prefix) is compared, in order, with
   the stored event of the same ``seq`` (all fields but timings and replay flags). Nothing
   of the prefix is written again; the first difference stops the resume: the session is
   left waiting, nothing written, and :class:`CannotResume` says where it differed.
3. Inside the prefix every model call and tool call is answered from the recording by the
   step it is at (:class:`_Follower`): a response as recorded, a failure as recorded (so
   retries and fallbacks replay too), a tool's recorded result. Only a call the recording
   never answered (one cut off when the run stopped, e.g. a sibling that ran at once) runs
   live. No model is called again for a step already taken.
4. After the prefix the run is live; its events are appended to the session, and the
   session's row gets the new status (``completed``, ``failed``, ``aborted``, or
   ``waiting_approval`` again at the next approval).

The session is taken (status ``running``, this process's id) before the run starts, so two
``approve`` at once cannot both run the call, and a process that dies while resuming leaves
the session ``interrupted`` rather than resumable a second time.

Why not the fork or replay sources of :mod:`playground.replay`: a fork answers by position
and a replay by content, and neither replays a failed call, so a session with a retried
model call, or one a parallel branch was cut off in, would not come back event for event.
This module uses the same recording (:class:`~playground.replay.Recording`) and the same
recorded agent versions, and answers by step, which the event-by-event check makes exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from playground.engine import events as ev
from playground.engine.clock import SYSTEM_CLOCK, Clock
from playground.engine.controller import Decision
from playground.engine.events import Event
from playground.engine.messages import render_context
from playground.engine.runtime import EventSink, LLMFactory, RunResult, Runtime, default_llm_factory
from playground.errors import (
    ModelError,
    ModelRequestError,
    ModelTimeout,
    PlaygroundError,
    ProviderError,
    RateLimited,
    ReplayMismatch,
    ScriptError,
)
from playground.llm.base import LLM, ModelRequest, ModelResponse, OnDelta
from playground.replay import Recording, load_recording, recorded_agents, side_effects_of
from playground.service import make_way, needs_litellm
from playground.spec.models import AgentSpec
from playground.spec.schema import format_validation_error
from playground.store.store import Store

if TYPE_CHECKING:
    from playground.tracing.tracer import EventTracer

__all__ = ["CannotResume", "NotWaiting", "ResumeOutcome", "Verdict", "resume_session"]

_VOLATILE = frozenset(
    {"ts", "correlation_id", "latency_ms", "first_token_ms", "replayed", "side_effect_served", "system_path"}
)
"""Event fields that differ between a run and its replay (timings, replay flags, and where the
system file is: a session recorded before ``run_started`` carried it has none)."""

_ERRORS: dict[str, type[ModelError]] = {
    "provider_error": ProviderError,
    "rate_limited": RateLimited,
    "timeout": ModelTimeout,
    "request_error": ModelRequestError,
    "script_error": ScriptError,
}


class NotWaiting(PlaygroundError):
    """The session does not wait for an approval, or the decision does not fit the call
    (``playground approve`` exits 2)."""


class CannotResume(PlaygroundError):
    """Running the session again did not follow its recording: nothing was written, and
    the session still waits."""


@dataclass(frozen=True)
class Verdict:
    """A person's decision on the call a session waits for.

    Attributes:
        approve: Run the call (False: deny it; the model is told ``reason``).
        reason: Why it was denied.
        args: Run it with these arguments instead (validated against the tool's schema).
    """

    approve: bool = True
    reason: str = ""
    args: dict[str, Any] | None = None

    def decision(self) -> Decision:
        if not self.approve:
            return Decision("deny", {"reason": self.reason})
        if self.args is not None:
            return Decision("edit", {"args": self.args})
        return Decision()


@dataclass
class ResumeOutcome:
    """A resumed session: its result (the whole session's totals), and what was replayed."""

    result: RunResult
    decided: ev.ApprovalRequested
    """The call the person decided on."""
    verdict: Verdict
    resumed_after: int
    """The ``seq`` of the last event stored before the resume: later events are new."""
    replayed_calls: int
    replayed_tools: int

    def as_json(self) -> dict[str, Any]:
        """``playground run --json``'s object plus what was decided and replayed."""
        new = [e for e in self.result.events if e.seq > self.resumed_after]
        live_calls = [e for e in new if isinstance(e, ev.ModelResponded)]
        return {
            **self.result.as_json(),
            "approval": {
                "agent": self.decided.agent,
                "tool": self.decided.tool,
                "args": self.decided.args,
                "verdict": "approved" if self.verdict.approve else "denied",
                "reason": self.verdict.reason,
                "edited_args": self.verdict.args,
            },
            "resumed_after_event": self.resumed_after,
            "replayed": {"model_calls": self.replayed_calls, "tool_calls": self.replayed_tools},
            "live": {
                "model_calls": len(live_calls),
                "cost_usd": round(sum(e.cost_usd for e in live_calls), 8),
            },
        }


def _comparable(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable_python(event.__dict__)
    return {k: v for k, v in data.items() if k not in _VOLATILE}


def _brief(event: Event) -> str:
    what = getattr(event, "tool", None) or getattr(event, "target", None) or ""
    at = f" step {event.step}" if event.step is not None else ""
    return f"{event.kind}{f' {what}' if what else ''} of {event.agent or 'the run'}{at}"


class _Follower:
    """The sink, model wrapper and tool answerer of a resumed run: checks the replayed
    prefix against the stored events, answers its calls from the recording by step, and
    passes only the new events on."""

    def __init__(self, recording: Recording, sinks: list[EventSink], live: list[EventSink]) -> None:
        self.stored = recording.events
        self.resumed_after = recording.events[-1].seq if recording.events else 0
        self.sinks = sinks
        self.live_sinks = live
        self.runtime: Runtime | None = None
        self.done = not recording.events
        """Every stored event came back: from here on the run is live."""
        self.diverged: str | None = None
        self.last: Event | None = None
        """The last event of the prefix that came back (the call about to be answered)."""
        self.replayed_calls = 0
        self.replayed_tools = 0
        self._responses = {call.step: call.response for call in recording.calls}
        self._failures = {
            e.step: e for e in recording.events if isinstance(e, ev.ModelFailed) and e.step is not None
        }
        self._returned = {
            (e.activation, e.call_id): e for e in recording.events if isinstance(e, ev.ToolReturned)
        }

    # -- the events ------------------------------------------------------------------------

    def sink(self, event: Event) -> None:
        if self.diverged is not None:
            return
        if event.seq > self.resumed_after:
            if not self.done:
                self._diverge(f"the run went on past event {event.seq - 1} before the stored events ended")
                return
            for sink in self.sinks:
                sink(event)
            return
        stored = self.stored[event.seq - 1]
        mine, theirs = _comparable(event), _comparable(stored)
        if mine != theirs:
            fields = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            differs = f" (differs in {', '.join(fields)})" if event.kind == stored.kind else ""
            self._diverge(f"event {event.seq} was {_brief(stored)}, and is now {_brief(event)}{differs}")
            return
        self._fix_latency(event, stored)
        self.last = event
        if event.seq == self.resumed_after:
            self.done = True

    def live(self, event: Event) -> None:
        if self.diverged is not None or not self.done:
            return
        if isinstance(event, ev.TokenDelta) or event.seq > self.resumed_after:
            for sink in self.live_sinks:
                sink(event)

    def _diverge(self, why: str) -> None:
        self.diverged = why
        self.done = False

    def _fix_latency(self, event: Event, stored: Event) -> None:
        """An agent's latency counts its replayed calls at their recorded time, not the replay's."""
        if self.runtime is None or event.agent is None:
            return
        if isinstance(event, ev.ModelResponded | ev.ModelFailed | ev.ToolReturned) and isinstance(
            stored, ev.ModelResponded | ev.ModelFailed | ev.ToolReturned
        ):
            self.runtime.totals_of(event.agent).latency_ms += stored.latency_ms - event.latency_ms

    # -- the calls -------------------------------------------------------------------------

    def answer_model(self, request: ModelRequest) -> ModelResponse | None:
        """The recorded answer to the call the run is at; None: call the model (live)."""
        if self.diverged is not None:
            raise ReplayMismatch(
                f"the resume stopped following the recording ({self.diverged})", model=request.model
            )
        last = self.last
        if self.done or not isinstance(last, ev.ModelRequested) or last.step is None:
            return None
        response = self._responses.get(last.step)
        if response is not None:
            self.replayed_calls += 1
            return response
        failed = self._failures.get(last.step)
        if failed is not None:
            error = _ERRORS.get(failed.error_type, ModelError)(failed.message, model=failed.model)
            error.error_type, error.retryable = failed.error_type, failed.retryable
            raise error
        return None  # cut off when the run stopped: never answered, so it runs now

    def answer_tool(self, agent: str, tool: str, args: dict[str, Any]) -> tuple[str, str | None] | None:
        """The recorded result of the tool call the run is at; None: run the tool."""
        if self.diverged is not None:
            return "", f"not run: the resume stopped following the recording ({self.diverged})"
        last = self.last
        if self.done or not isinstance(last, ev.ToolCalled):
            return None
        returned = self._returned.get((last.activation, last.call_id))
        if returned is None:
            return None  # cut off when the run stopped: it never returned, so it runs now
        self.replayed_tools += 1
        return returned.result, returned.error

    def llm_factory(self, base: LLMFactory) -> LLMFactory:
        def factory(agent: AgentSpec, model: str) -> LLM:
            return _FollowingLLM(self, base(agent, model))

        return factory


@dataclass
class _FollowingLLM:
    follower: _Follower
    live: LLM

    async def complete(self, request: ModelRequest, on_delta: OnDelta | None = None) -> ModelResponse:
        recorded = self.follower.answer_model(request)
        if recorded is not None:
            return recorded
        return await self.live.complete(request, on_delta)


Approvals = dict[tuple[str, str, str], list[Decision]]
"""Decisions taken on calls that need approval, by (agent, tool, arguments as JSON), in order."""


def pending_approval(events: list[Event]) -> tuple[ev.ApprovalRequested, Approvals]:
    """The call a session waits for, and the decisions already taken on earlier calls in
    the order they were asked (by agent, tool and arguments).

    Raises:
        NotWaiting: No call, or more than one, is waiting.
    """
    decided = {e.cause: e for e in events if isinstance(e, ev.ApprovalDecided)}
    taken: Approvals = {}
    waiting: list[ev.ApprovalRequested] = []
    for event in events:
        if not isinstance(event, ev.ApprovalRequested):
            continue
        verdict = decided.get(event.seq)
        if verdict is None:
            waiting.append(event)
            continue
        if verdict.verdict == "denied":
            decision = Decision("deny", {"reason": verdict.reason})
        elif verdict.edited:
            decision = Decision("edit", {"args": verdict.args})
        else:
            decision = Decision()
        taken.setdefault((event.agent or "", event.tool, render_context(event.args)), []).append(decision)
    if len(waiting) != 1:
        raise NotWaiting(
            f"{len(waiting) or 'no'} tool calls wait for approval in the stored events; "
            "exactly one should (the session may have been edited by hand)"
        )
    return waiting[0], taken


async def resume_session(
    store: Store,
    session_id: str,
    verdict: Verdict,
    *,
    live: list[EventSink] | None = None,
    base: LLMFactory = default_llm_factory,
    clock: Clock = SYSTEM_CLOCK,
    tracer: EventTracer | None = None,
) -> ResumeOutcome:
    """Apply a person's decision to the call a ``waiting_approval`` session waits for, and
    run the session on, in the same session (see the module docstring).

    Args:
        session_id: The session (or a unique prefix of its id).
        verdict: Approve (maybe with edited arguments) or deny.
        live: Receive the new events (not the replayed ones) as they happen.
        base: Builds the live models, for the steps after the approval.
        tracer: Traces the resumed part: the trace of the run that stopped goes on (see
            :meth:`~playground.tracing.tracer.EventTracer.resume`); replayed steps are not
            exported again.

    Raises:
        NotWaiting: The session is not ``waiting_approval``, or ``verdict.args`` does not
            validate against the tool's arguments.
        CannotResume: The replay did not follow the stored events (nothing was written).
    """
    session = await store.session(session_id)
    if session.status != "waiting_approval":
        raise NotWaiting(f"session {session.session_id} is {session.status}, not waiting for approval")
    recording, system = await load_recording(store, session.session_id)
    waiting, taken = pending_approval(recording.events)
    key = (waiting.agent or "", waiting.tool, render_context(waiting.args))
    tool = system.tools.get(waiting.tool)
    if tool is None:
        raise CannotResume(f"{session.system_path} no longer declares the tool {waiting.tool!r}")
    if verdict.args is not None:
        try:
            verdict = Verdict(verdict.approve, verdict.reason, tool.validate(verdict.args))
        except ValidationError as exc:
            raise NotWaiting(
                f"the edited arguments of {waiting.tool} do not validate: {format_validation_error(exc)}"
            ) from None
    taken.setdefault(key, []).append(verdict.decision())
    agents, versions = await recorded_agents(store, session, system, force=True)
    sinks: list[EventSink] = [store.sink] if tracer is None else [store.sink, tracer]
    follower = _Follower(recording, sinks, list(live or []))
    runtime = Runtime(
        system,
        agents=agents,
        versions=versions,
        llm_factory=follower.llm_factory(base),
        sinks=[follower.sink],
        live=[follower.live] if live else None,
        tool_replay=follower.answer_tool,
        side_effects_done=side_effects_of(recording, system),
        session_id=session.session_id,
        clock=clock,
        approvals=taken,
    )
    follower.runtime = runtime
    if needs_litellm(agents):
        from playground.llm.litellm_model import preload

        await preload()
    if not await store.claim_waiting(session.session_id):
        now = await store.session(session.session_id)
        raise NotWaiting(f"session {session.session_id} is {now.status}, not waiting for approval")
    if tracer is not None:
        tracer.resume(recording.events, clock.wall())
    try:
        result = await runtime.run(
            session.input,
            parent_session_id=session.parent_session_id,
            forked_from_step=session.forked_from_step,
        )
    except BaseException:
        if not follower.done:
            await store.unclaim(session.session_id)
            if tracer is not None:
                tracer.discard(session.session_id)
        raise
    if follower.diverged is not None or not follower.done:
        await store.unclaim(session.session_id)
        if tracer is not None:
            tracer.discard(session.session_id)
        why = follower.diverged or f"it ended at event {len(result.events)} of {len(recording.events)}"
        raise CannotResume(
            f"session {session.session_id} cannot be resumed: running it again no longer follows its "
            f"recording ({why}). Nothing was written; it still waits. The system file or its tools "
            "may have changed since it ran."
        )
    # The session's time: before the stop, and now. A final event adds its time to the
    # row's as it is written; a run that stops waiting again writes its outcome here.
    result.latency_ms += session.latency_ms
    if result.status == "waiting_approval":
        await store.record_waiting(result)
        if tracer is not None:
            tracer.suspend(result.session_id, result.events[-1].ts)
    await make_way()
    return ResumeOutcome(
        result, waiting, verdict, follower.resumed_after, follower.replayed_calls, follower.replayed_tools
    )
