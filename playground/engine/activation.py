"""One agent activation: the turn loop of model calls and the calls they make.

An activation starts when an agent receives the request, a handoff, a delegation
or a stage's input, and ends in a :class:`~playground.engine.outcomes.Reply` or a
:class:`~playground.engine.outcomes.Handoff`. Each turn calls the model; a reply is
checked against the output schemas, the calls of a response run (several at
once when there are several), and their results go back to the model in the
order the model made them.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from playground.engine import events as ev
from playground.engine.call_edits import call_changes, check_call_edit, edited_messages, held_call
from playground.engine.checkpoints import rejected_for_good, run_check
from playground.engine.guards import fill_from, guard_handoff, refuse_input, verdict_of
from playground.engine.handoffs import Checked, check_handoff, deliver, gated_handoff
from playground.engine.messages import (
    assistant_message,
    before_last_assistant,
    check_json,
    parse_or_text,
    tool_message,
)
from playground.engine.model_calls import call_model
from playground.engine.outcomes import (
    Aborted,
    ActivationOutcome,
    Answered,
    CallOutcome,
    Escalate,
    Failure,
    Handoff,
    Invalid,
    Reply,
    RetryStep,
    WaitingApproval,
)
from playground.engine.plans import system_prompt
from playground.engine.tools import run_call, run_concurrently
from playground.llm.base import ToolCall
from playground.spec.load import HANDOFF_PREFIX
from playground.spec.models import AgentSpec, CheckpointSpec
from playground.spec.schema import Schema

if TYPE_CHECKING:
    from playground.engine.branch import Branch
    from playground.engine.plans import Plan
    from playground.engine.runtime import Runtime


async def activate(
    run: Runtime,
    branch: Branch,
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
) -> ActivationOutcome:
    """Run one activation of ``name``; every activation ends with an ``agent_finished``."""
    agent = run.agents[name]
    path = run.path
    if not path or path[-1] != name:  # a re-run worker is one entry of the path
        path.append(name)
    started = run.emit(
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
        return await _turns(
            run, branch, name, agent, act, incoming, context, cause, history, expect, expect_for
        )
    except Escalate as escalation:
        finish(
            run, name, act, "handoff", handoff_to=escalation.handoff.target, cause=escalation.handoff.cause
        )
        raise
    except WaitingApproval:
        raise  # the activation is suspended, not ended: `playground approve` resumes it
    except Aborted:
        if run.failed_in is None:
            run.failed_in = name
        finish(run, name, act, "aborted")
        raise
    except BaseException as exc:  # failures, timeouts, cancellation, bugs: close the activation
        if run.failed_in is None:
            run.failed_in = name
        if act not in run.finished:
            finish(run, name, act, "failed", cause=exc.cause if isinstance(exc, Failure) else None)
        raise


async def _turns(
    run: Runtime,
    branch: Branch,
    name: str,
    agent: AgentSpec,
    act: int,
    incoming: str,
    context: dict[str, Any] | None,
    cause: int,
    history: list[dict[str, Any]] | None,
    expect: Schema | None,
    expect_for: str | None,
) -> ActivationOutcome:
    plan = run.plan(name)
    # A reply must satisfy the agent's own output schema and the next stage's input, if any.
    checks: list[tuple[Schema, str | None]] = []
    if agent.output is not None:
        checks.append((agent.output, None))
    if expect is not None:
        checks.append((expect, expect_for))
    prompt = plan.prompt if agent.output is not None or expect is None else system_prompt(agent, expect)
    if history:
        prompt += "\n\nConversation before this handoff:\n" + "\n".join(
            f"[{m.get('role')}] {m.get('content') or ''}" for m in history
        )
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": prompt},
        {"role": "user", "content": incoming},
    ]
    tools = plan.tools
    controller = run.controller
    output_check = agent.validators.output if agent.validators is not None else None
    max_invalid = run.spec.limits.max_validation_retries
    invalid = 0
    rejections: dict[str, int] = {}
    """Handoff target to the times its checkpoint rejected this activation's payloads."""
    last_response: int | None = None
    retry_of: int | None = None
    turn = 0
    while turn < run.spec.limits.max_turns:
        turn += 1
        step = run.next_step()
        if controller is not None:
            held = held_call(agent, messages, plan.tool_schemas, plan.settings[agent.model])
            decision = await run.gate(
                "model_call",
                name,
                step,
                held,
                validate=check_call_edit(held),
                summarize=partial(call_changes, held),
                can_retry=last_response is not None,
            )
            if decision.action == "edit" and decision.payload is not None:
                messages = edited_messages(held, decision.payload)
            elif decision.action == "retry":
                messages, retry_of = before_last_assistant(messages), last_response
                if last_response is not None:
                    run.loops.retried.add(last_response)
        # The first call answers what started the activation; a later one, what came back last.
        response, responded = await call_model(
            run, branch, name, agent, messages, tools, act, cause, step, plan, retry_of=retry_of
        )
        retry_of = None
        last_response = cause = responded.seq
        messages.append(assistant_message(response))
        calls = response.tool_calls
        if not calls:
            text = response.text
            refusal = _schema_problem(text, checks)
            if refusal is None and output_check is not None:
                why = await verdict_of(run, output_check, parse_or_text(text))
                if why is not None:
                    refusal = why, None, ""
            if refusal is None:
                return Reply(text, finish(run, name, act, "reply", text, cause=responded.seq))
            problem, whom_for, shape = refusal
            invalid += 1
            failed = run.emit(
                ev.ValidationFailed,
                agent=name,
                cause=responded.seq,
                activation=act,
                what="output",
                errors=problem,
                attempt=invalid,
                target=whom_for,
            )
            cause = failed.seq
            if invalid > max_invalid:
                finish(run, name, act, "failed", text, cause=failed.seq)
                whom = f"{whom_for!r}'s input" if whom_for else "its output checks"
                raise Failure(
                    "invalid_output",
                    f"{name!r} returned output that does not match {whom}: {problem}",
                    name,
                    whom_for or name,
                    failed.seq,
                )
            again = f" Reply with only a JSON object of this shape: {shape}" if shape else ""
            messages.append({"role": "user", "content": f"Your reply was rejected: {problem}.{again}"})
            continue
        # Several tool calls or delegations in one response run at once (a handoff ends the
        # activation, so handoffs are taken one by one, in order, after them).
        ran: dict[int, CallOutcome] = {}
        if len(calls) > 1:
            others = [(i, c) for i, c in enumerate(calls) if not c.name.startswith(HANDOFF_PREFIX)]
            if len(others) > 1:
                ran = await run_concurrently(run, branch, name, agent, others, act, responded.seq)
        for index, call in enumerate(calls):
            outcome = ran.get(index)
            if outcome is None:
                outcome = await _one_call(
                    run, branch, name, agent, plan, call, act, responded.seq, messages, rejections, context
                )
            if isinstance(outcome, Handoff):
                finish(run, name, act, "handoff", handoff_to=outcome.target, cause=outcome.cause)
                return outcome
            if isinstance(outcome, RetryStep):
                messages, retry_of = before_last_assistant(messages), last_response
                run.loops.retried.add(responded.seq)
                break
            messages.append(tool_message(call.id, outcome.content))
            if isinstance(outcome, Answered):
                cause = outcome.seq
                continue
            invalid += 1
            cause = outcome.problem.seq
            if invalid > max_invalid:
                finish(run, name, act, "failed")
                raise _invalid_failure(run, name, outcome)
    finish(run, name, act, "failed")
    raise Failure(
        "max_turns",
        f"{name!r} made {run.spec.limits.max_turns} model calls without finishing (limits.max_turns)",
        name,
        name,
        cause,
    )


async def _one_call(
    run: Runtime,
    branch: Branch,
    name: str,
    agent: AgentSpec,
    plan: Plan,
    call: ToolCall,
    act: int,
    cause: int,
    messages: list[dict[str, Any]],
    rejections: dict[str, int],
    context: dict[str, Any] | None,
) -> CallOutcome:
    if not call.name.startswith(HANDOFF_PREFIX):
        return await run_call(run, branch, name, agent, call, act, cause)
    checked = check_handoff(run, name, agent, plan, call, act, cause, messages)
    if isinstance(checked, Invalid):
        return checked
    if checked[0].guarded:
        return await _guarded_handoff(run, name, checked, act, cause, messages, rejections, context)
    if run.controller is not None:
        return await gated_handoff(run, name, checked, act, cause, messages)
    return deliver(run, name, act, cause, messages, checked)


async def _guarded_handoff(
    run: Runtime,
    name: str,
    checked: Checked,
    act: int,
    cause: int,
    messages: list[dict[str, Any]],
    rejections: dict[str, int],
    context: dict[str, Any] | None,
) -> CallOutcome:
    """A handoff that declares guardrails: ``from:`` fields filled, its guard, the target's
    input validator and its checkpoint, in that order, then the gate and delivery."""
    spec = checked[0].spec
    filled: list[str] = []
    if spec.from_:
        done = fill_from(run, checked, context)
        if isinstance(done, str):
            refused = run.emit(
                ev.ValidationFailed,
                agent=name,
                activation=act,
                cause=cause,
                what="handoff_payload",
                errors=done,
                target=spec.to,
            )
            return Invalid(f"Error: the handoff to {spec.to} was refused: {done}", refused)
        checked, filled = done
    carried = None
    if spec.guard is not None:
        guarded = await guard_handoff(run, name, checked, messages, act, cause)
        if isinstance(guarded, Invalid):
            return guarded
        checked, carried = guarded
    refused_input = await refuse_input(run, name, spec.to, checked[2], act, cause)
    if refused_input is not None:
        return refused_input
    if spec.checkpoint is not None:
        rejected = await _handoff_checkpoint(run, name, spec.checkpoint, checked, act, cause, rejections)
        if rejected is not None:
            return rejected
    if run.controller is not None:
        return await gated_handoff(run, name, checked, act, cause, messages, carried, filled)
    return deliver(run, name, act, cause, messages, checked, carried=carried, filled=filled)


async def _handoff_checkpoint(
    run: Runtime,
    name: str,
    checkpoint: CheckpointSpec,
    checked: Checked,
    act: int,
    cause: int,
    rejections: dict[str, int],
) -> Answered | None:
    """Check a handoff's payload before delivery: None to deliver it, else the rejection the
    model gets back (after the last allowed one, ``on_reject`` decides)."""
    target, payload = checked[1], checked[2]
    why = await run_check(run, checkpoint.check, payload)
    rejected = rejections.get(target, 0) + (why is not None)
    rejections[target] = rejected
    if why is not None and rejected > checkpoint.max_rejections:
        rejected_for_good(
            run, target, name, checkpoint.on_reject, "handoff", "check", rejected - 1, why, cause
        )
        return None  # use_last: deliver it as it is
    reviewed = run.emit(
        ev.CheckpointReviewed,
        agent=target,
        activation=act,
        cause=cause,
        worker=name,
        verdict="accept" if why is None else "reject",
        feedback=why or "",
        round=rejected + (why is None),
        boundary="handoff",
        by="check",
    )
    if why is None:
        return None
    return Answered(
        f"Error: the handoff to {target} was rejected at its checkpoint: {why}."
        " Fix the context and hand off again.",
        reviewed.seq,
    )


def _schema_problem(text: str, checks: list[tuple[Schema, str | None]]) -> tuple[str, str | None, str] | None:
    """Why a reply fails a schema it must meet (its own output's, the next stage's input), for
    whom, and the shape to ask for; None when it meets them all."""
    for schema, whom_for in checks:
        problem = check_json(text, schema)
        if problem is not None:
            return problem, whom_for, schema.describe()
    return None


def _invalid_failure(run: Runtime, name: str, outcome: Invalid) -> Failure:
    """The failure of an agent that kept making calls that were refused."""
    problem = outcome.problem
    if isinstance(problem, ev.GuardDenied):
        return Failure(
            "guard_denied",
            f"{name!r} kept making handoffs to {problem.target!r} its guard denied: {problem.reason}",
            name,
            problem.target,
            problem.seq,
        )
    if isinstance(problem, ev.PermissionDenied):
        return Failure(
            "permission_denied",
            f"{name!r} kept calling {problem.tool!r}, which it is not permitted to call",
            name,
            name,
            problem.seq,
        )
    manifested = (
        problem.target
        if problem.what in ("input", "handoff_payload") and problem.target in run.agents
        else name
    )
    return Failure(
        f"invalid_{problem.what}",
        f"{name!r} kept producing invalid calls: {problem.errors}",
        name,
        manifested,
        problem.seq,
    )


def finish(
    run: Runtime,
    name: str,
    act: int,
    outcome: str,
    output: str = "",
    *,
    handoff_to: str | None = None,
    cause: int | None = None,
) -> int:
    """Close an activation; returns the ``seq`` of its ``agent_finished``."""
    run.finished.add(act)
    return run.emit(
        ev.AgentFinished,
        agent=name,
        activation=act,
        cause=cause or act,
        outcome=outcome,
        output=output,
        handoff_to=handoff_to,
    ).seq
