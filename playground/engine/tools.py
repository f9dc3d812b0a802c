"""Tool calls and delegations of a model response.

A call is first *prepared* (its arguments parsed, its permission checked, its
arguments validated: no waiting, so the calls of one response are numbered in
the order the model made them), then *executed*: held at the gate, then the
tool runs (a synchronous tool in a thread of its own, never on the event loop)
or the delegated worker's activation runs. Several calls of one response
execute at once (:func:`run_concurrently`), each in a branch of its own.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from playground.engine import events as ev
from playground.engine.branch import Branch, in_branches
from playground.engine.call_edits import call_changes, check_call_edit, edited_messages, held_call
from playground.engine.checkpoints import rejected_for_good, run_check
from playground.engine.guards import refuse_input
from playground.engine.handoffs import check_hops, loop_found
from playground.engine.messages import parse_or_text, render_context
from playground.engine.model_calls import call_model
from playground.engine.outcomes import (
    Answered,
    CallOutcome,
    Escalate,
    Failure,
    Handoff,
    Invalid,
    RetryStep,
    WaitingApproval,
)
from playground.engine.plans import TASK_SCHEMA, tool_schemas
from playground.engine.threads import call_in_thread
from playground.llm.base import REVIEW_ACCEPT, REVIEW_REJECT, ToolCall, ToolDef, parse_json
from playground.spec.load import HANDOFF_PREFIX, Tool
from playground.spec.models import AgentSpec
from playground.spec.schema import format_validation_error

if TYPE_CHECKING:
    from playground.engine.runtime import Runtime

ArgsCheck = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(slots=True)
class Prepared:
    """A call that passed its checks and may run."""

    call: ToolCall
    args: dict[str, Any]
    check: ArgsCheck
    """Validates edited arguments (raises ``ValidationError``)."""
    tool: Tool | None
    """The tool to run, or None for a delegation to the worker named by the call."""

    def edit_error(self, payload: dict[str, Any]) -> str | None:
        """Why an operator's edit (``{"args": {...}}``) of this call does not validate."""
        try:
            self.check(payload.get("args", {}))
        except ValidationError as exc:
            return format_validation_error(exc)
        return None


def prepare_call(
    run: Runtime, name: str, agent: AgentSpec, call: ToolCall, act: int, cause: int
) -> Prepared | Invalid:
    """Parse, permit and validate one tool or delegate call; refusals are recorded and
    returned with the message the model gets."""
    try:
        raw = parse_json(call.arguments or "{}")
        if not isinstance(raw, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as exc:
        problem: ev.ValidationFailed | ev.PermissionDenied = run.emit(
            ev.ValidationFailed,
            agent=name,
            activation=act,
            cause=cause,
            what="tool_args",
            errors=f"arguments of {call.name!r} are not valid JSON: {exc}",
            target=call.name,
        )
        return Invalid(
            f"Error: the arguments of {call.name} were not valid JSON ({exc}). Call it again.", problem
        )
    tool: Tool | None = None
    check: ArgsCheck
    if call.name in agent.delegates:
        check = (run.agents[call.name].input or TASK_SCHEMA).validate
        what = "input"
    elif call.name in agent.tools:
        tool = run.system.tools[call.name]
        check, what = tool.validate, "tool_args"
    else:
        allowed = [*agent.tools, *agent.delegates, *(HANDOFF_PREFIX + h.to for h in agent.handoffs)]
        problem = run.emit(
            ev.PermissionDenied,
            agent=name,
            activation=act,
            cause=cause,
            tool=call.name,
            call_id=call.id,
            allowed=allowed,
            args=call.arguments,
        )
        return Invalid(
            f"Error: {name} is not permitted to call {call.name!r}."
            f" Permitted: {', '.join(allowed) or 'none'}.",
            problem,
        )
    try:
        args = check(raw)
    except ValidationError as exc:
        error = format_validation_error(exc)
        problem = run.emit(
            ev.ValidationFailed,
            agent=name,
            activation=act,
            cause=cause,
            what=what,
            errors=error,
            target=call.name,
        )
        return Invalid(f"Error: invalid arguments for {call.name}: {error}", problem)
    return Prepared(call, args, check, tool)


async def execute_call(
    run: Runtime,
    branch: Branch,
    name: str,
    agent: AgentSpec,
    prepared: Prepared,
    act: int,
    cause: int,
    step: int,
) -> Answered | Invalid | RetryStep:
    """Hold a prepared call at the gate as ``step``, then run it."""
    args = prepared.args
    if run.controller is not None:
        decision = await run.gate(
            "tool_call",
            name,
            step,
            {"tool": prepared.call.name, "args": args},
            validate=prepared.edit_error,
            can_retry=True,
        )
        if decision.action == "retry":
            run.give_back_step(step)
            return RetryStep()
        if decision.action == "edit" and decision.payload is not None:
            args = prepared.check(decision.payload.get("args", {}))
    if prepared.tool is None:
        refused = await refuse_input(run, name, prepared.call.name, args, act, cause)
        if refused is not None:
            run.give_back_step(step)
            return refused
        return await delegate(run, branch, name, agent, prepared.call, args, act, cause, step)
    found = run.loops.tool_call(name, prepared.call.name, render_context(args), cause)
    if found is not None:
        loop_found(run, name, None, found, cause)
    if prepared.tool.approval:
        approved = await await_approval(run, name, prepared, args, act, cause, step)
        if isinstance(approved, Answered):
            return approved
        args, cause = approved
    return await run_tool(run, name, prepared.tool, prepared.call, args, act, cause, step)


async def await_approval(
    run: Runtime, name: str, prepared: Prepared, args: dict[str, Any], act: int, cause: int, step: int
) -> tuple[dict[str, Any], int] | Answered:
    """A person decides on a call that needs approval: the arguments it runs with (and the
    decision's ``seq``), or the denial the model gets. Headless, the run stops here."""
    call = prepared.call
    key = (name, call.name, render_context(args))
    requested = run.emit(
        ev.ApprovalRequested,
        agent=name,
        step=step,
        activation=act,
        cause=cause,
        tool=call.name,
        call_id=call.id,
        args=args,
    )
    taken = run.approvals.get(key)
    decision = taken.pop(0) if taken else None
    if decision is None:
        if run.controller is None:
            raise WaitingApproval(call.name, requested.seq)
        decision = await run.gate(
            "tool_call",
            name,
            step,
            {"tool": call.name, "args": args, "approval": True},
            validate=prepared.edit_error,
            hold=True,
        )
    edited = decision.action == "edit" and decision.payload is not None
    if edited:
        assert decision.payload is not None
        args = prepared.check(decision.payload.get("args", {}))
    denied = decision.action == "deny"
    reason = str((decision.payload or {}).get("reason", "")) if denied else ""
    decided = run.emit(
        ev.ApprovalDecided,
        agent=name,
        step=step,
        activation=act,
        cause=requested.seq,
        tool=call.name,
        call_id=call.id,
        verdict="denied" if denied else "approved",
        reason=reason,
        edited=edited,
        args=args,
    )
    if denied:
        return Answered(
            f"Error: a person denied this call of {call.name}: {reason or 'no reason given'}", decided.seq
        )
    return args, decided.seq


async def run_call(
    run: Runtime, branch: Branch, name: str, agent: AgentSpec, call: ToolCall, act: int, cause: int
) -> Answered | Invalid | RetryStep:
    """Prepare and execute one call."""
    prepared = prepare_call(run, name, agent, call, act, cause)
    if isinstance(prepared, Invalid):
        return prepared
    return await execute_call(run, branch, name, agent, prepared, act, cause, run.next_step())


async def run_concurrently(
    run: Runtime,
    branch: Branch,
    name: str,
    agent: AgentSpec,
    calls: list[tuple[int, ToolCall]],
    act: int,
    cause: int,
) -> dict[int, CallOutcome]:
    """Run the calls of one response at once, each in a branch of its own.

    Every call is prepared (and numbered) in the order the model made it before any
    runs. A call whose worker fails does not stop its siblings: they finish and are
    recorded, then the first failure (in call order) fails the activation. An abort or
    the run's timeout cancels them all.
    """
    outcomes: dict[int, CallOutcome] = {}
    ready: list[tuple[int, Prepared, int]] = []
    for index, call in calls:
        prepared = prepare_call(run, name, agent, call, act, cause)
        if isinstance(prepared, Invalid):
            outcomes[index] = prepared
        else:
            ready.append((index, prepared, run.next_step()))
    if len(ready) == 1:
        index, prepared, step = ready[0]
        outcomes[index] = await execute_call(run, branch, name, agent, prepared, act, cause, step)
        return outcomes
    done = await in_branches(
        [
            functools.partial(_execute_in, run, name, agent, prepared, act, cause, step)
            for _index, prepared, step in ready
        ]
    )
    for (index, _prepared, _step), outcome in zip(ready, done, strict=True):
        outcomes[index] = outcome
    return outcomes


async def _execute_in(
    run: Runtime,
    name: str,
    agent: AgentSpec,
    prepared: Prepared,
    act: int,
    cause: int,
    step: int,
    branch: Branch,
) -> Answered | Invalid | RetryStep:
    return await execute_call(run, branch, name, agent, prepared, act, cause, step)


async def run_tool(
    run: Runtime, name: str, tool: Tool, call: ToolCall, args: dict[str, Any], act: int, cause: int, step: int
) -> Answered:
    """Run a tool (or answer it from a recording) and record what it returned."""
    called = run.emit(
        ev.ToolCalled,
        agent=name,
        step=step,
        activation=act,
        cause=cause,
        tool=call.name,
        call_id=call.id,
        args=args,
    )
    perf = run.clock.perf
    t0 = perf()
    error = None
    recorded = run.tool_replay(name, call.name, args) if run.tool_replay is not None else None
    done_key = (name, call.name, render_context(args)) if tool.side_effects else None
    served = False
    if recorded is None and done_key is not None:
        recorded = run.side_effects_done.get(done_key)
        served = recorded is not None
    if recorded is not None:
        result, error = recorded
        served = served or tool.side_effects
    else:
        timeout_s = tool.timeout_s or run.spec.limits.tool_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                if tool.is_async:
                    value = await tool.func(**args)
                    result = value if isinstance(value, str) else json.dumps(value, default=str)
                else:
                    result = await call_in_thread(tool.func, args, call.name)
        except TimeoutError:
            where = "its own timeout_s" if tool.timeout_s else "limits.tool_timeout_s"
            error, result = f"TimeoutError: {call.name} did not return within {where} = {timeout_s} s", ""
        except asyncio.CancelledError:
            raise  # the run is being cancelled (its timeout, an abort): not the tool's doing
        except BaseException as exc:  # SystemExit and the like from a tool are the tool's error
            error, result = f"{type(exc).__name__}: {exc}", ""
    latency = (perf() - t0) * 1000
    run.totals_of(name).latency_ms += latency
    run.loops.tool_results += 1
    limit = run.spec.limits.max_tool_result_chars
    truncated_from = None
    if len(result) > limit:
        truncated_from = len(result)
        result = result[:limit]
    returned = run.emit(
        ev.ToolReturned,
        agent=name,
        step=step,
        activation=act,
        cause=called.seq,
        tool=call.name,
        call_id=call.id,
        result=result,
        error=error,
        latency_ms=latency,
        replayed=recorded is not None,
        truncated_from=truncated_from,
        side_effect_served=served,
    )
    if done_key is not None and recorded is None:
        run.side_effects_done[done_key] = (result, error)
    if error:
        return Answered(f"Error: {error}", returned.seq)
    if truncated_from is not None:
        note = f"\n[truncated: {call.name} returned {truncated_from} characters; the first {limit} are shown]"
        return Answered(result + note, returned.seq)
    return Answered(result, returned.seq)


async def delegate(
    run: Runtime,
    branch: Branch,
    name: str,
    agent: AgentSpec,
    call: ToolCall,
    args: dict[str, Any],
    act: int,
    cause: int,
    step: int,
) -> Answered:
    """Run a delegated worker (reviewing its output, if the supervisor reviews) as a tool call."""
    from playground.engine.activation import activate

    check_hops(run, name, call.name, args, cause)
    called = run.emit(
        ev.ToolCalled,
        agent=name,
        step=step,
        activation=act,
        cause=cause,
        tool=call.name,
        call_id=call.id,
        args=args,
    )
    perf = run.clock.perf
    t0 = perf()
    feedback = ""
    output = ""
    last = called.seq
    checkpoint = agent.checkpoint
    checked = checkpoint is not None or agent.review
    allowed = checkpoint.max_rejections if checkpoint is not None else agent.max_reviews
    rejections = 0
    while True:
        context = {**args, "feedback": feedback} if feedback else args
        try:
            result = await activate(
                run, branch, call.name, render_context(context), context, "delegation", called.seq, parent=act
            )
        except Failure as failure:
            run.emit(
                ev.ToolReturned,
                agent=name,
                step=step,
                activation=act,
                cause=failure.cause or called.seq,
                tool=call.name,
                call_id=call.id,
                error=f"worker {call.name!r} failed: {failure.message}",
                latency_ms=(perf() - t0) * 1000,
            )
            raise Failure(
                failure.error_type,
                f"worker {call.name!r} failed: {failure.message}",
                failure.origin,
                name,
                failure.cause,
            ) from None
        if isinstance(result, Handoff):
            raise Failure(
                "handoff_in_delegation",
                f"worker {call.name!r} tried to hand off to {result.target!r};"
                " a delegated worker returns its result",
                call.name,
                name,
                result.cause,
            )
        output, last = result.text, result.seq
        if not checked:
            break
        verdict, feedback, by = await _checkpoint(
            run, branch, name, agent, call.name, args, output, act, last, rejections + 1
        )
        last = by[1]
        if verdict == "accept":
            break
        rejections += 1
        if rejections > allowed:
            on_reject = checkpoint.on_reject if checkpoint is not None else agent.on_reject
            try:
                rejected_for_good(
                    run, name, call.name, on_reject, "delegation", by[0], allowed, feedback, last
                )
            except (Failure, Escalate) as stop:
                error = stop.message if isinstance(stop, Failure) else stop.handoff.payload["reason"]
                run.emit(
                    ev.ToolReturned,
                    agent=name,
                    step=step,
                    activation=act,
                    cause=last,
                    tool=call.name,
                    call_id=call.id,
                    error=error,
                    latency_ms=(perf() - t0) * 1000,
                )
                raise
            break
    returned = run.emit(
        ev.ToolReturned,
        agent=name,
        step=step,
        activation=act,
        cause=called.seq,
        tool=call.name,
        call_id=call.id,
        result=output,
        latency_ms=(perf() - t0) * 1000,
    )
    return Answered(output, returned.seq)


async def _checkpoint(
    run: Runtime,
    branch: Branch,
    name: str,
    agent: AgentSpec,
    worker: str,
    args: dict[str, Any],
    output: str,
    act: int,
    cause: int,
    round_: int,
) -> tuple[str, str, tuple[Literal["model", "check"], int]]:
    """A supervisor's checkpoint over one worker output: its Python check, then (if that
    accepts and ``review`` is on) the model's review. The verdict, the feedback, and who
    decided with the ``seq`` of the event that recorded it."""
    verdict, feedback = "accept", ""
    by: Literal["model", "check"] = "check"
    if agent.checkpoint is not None:
        why = await run_check(run, agent.checkpoint.check, parse_or_text(output))
        if why is not None:
            verdict, feedback = "reject", why
        cause = run.emit(
            ev.CheckpointReviewed,
            agent=name,
            activation=act,
            cause=cause,
            worker=worker,
            verdict=verdict,
            feedback=feedback,
            round=round_,
            by="check",
        ).seq
    if verdict == "accept" and agent.review:
        by = "model"
        verdict, feedback, reviewed = await review(run, branch, name, agent, worker, args, output, act, cause)
        cause = run.emit(
            ev.CheckpointReviewed,
            agent=name,
            activation=act,
            cause=reviewed,
            worker=worker,
            verdict=verdict,
            feedback=feedback,
            round=round_,
        ).seq
    return verdict, feedback, (by, cause)


_REVIEW_TOOLS = [
    ToolDef(REVIEW_ACCEPT, "Accept the worker's output.", {"type": "object", "properties": {}}),
    ToolDef(
        REVIEW_REJECT,
        "Reject the output and say what to fix.",
        {"type": "object", "properties": {"feedback": {"type": "string"}}, "required": ["feedback"]},
    ),
]
_REVIEW_SCHEMAS = tool_schemas(_REVIEW_TOOLS)


async def review(
    run: Runtime,
    branch: Branch,
    name: str,
    agent: AgentSpec,
    worker: str,
    args: dict[str, Any],
    output: str,
    act: int,
    cause: int,
) -> tuple[str, str, int]:
    """A supervisor's checkpoint over a worker's output: the verdict, the feedback, and the
    ``seq`` of the model response that gave them."""
    prompt = (
        f"Review the output of worker {worker!r}.\nTask: {render_context(args)}\n"
        f"Output:\n{output}\n\nCall {REVIEW_ACCEPT} to use it, or {REVIEW_REJECT} with feedback "
        "saying what to fix."
    )
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": agent.instructions + "\n\nYou are checking a worker's output."},
        {"role": "user", "content": prompt},
    ]
    step = run.next_step()
    if run.controller is not None:  # a review is a model call too: the debugger can hold it
        held = held_call(agent, messages, _REVIEW_SCHEMAS, run.plan(name).settings[agent.model])
        decision = await run.gate(
            "model_call",
            name,
            step,
            held,
            validate=check_call_edit(held),
            summarize=functools.partial(call_changes, held),
        )
        if decision.action == "edit" and decision.payload is not None:
            messages = edited_messages(held, decision.payload)
    response, responded = await call_model(
        run, branch, name, agent, messages, _REVIEW_TOOLS, act, cause, step, run.plan(name), own_tools=False
    )
    for call in response.tool_calls:
        if call.name == REVIEW_ACCEPT:
            return "accept", "", responded.seq
        if call.name == REVIEW_REJECT:
            try:
                feedback = str(json.loads(call.arguments or "{}").get("feedback", ""))
            except (ValueError, AttributeError):
                feedback = call.arguments
            return "reject", feedback or "rejected without feedback", responded.seq
    text = response.text.strip()
    verdict = ("accept", "") if text.lower().startswith("accept") else ("reject", text or "no verdict")
    return verdict[0], verdict[1], responded.seq
