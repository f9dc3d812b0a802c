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
from playground.engine.call_edits import (
    call_changes,
    check_call_edit,
    check_failed_call_edit,
    edited_messages,
    held_call,
)
from playground.engine.checkpoints import rejected_for_good_or_held, run_check
from playground.engine.controller import FailedKind, hold_failure
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
    CallFailed,
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
from playground.llm.base import ModelResponse, ToolCall
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
    step: int | None = None,
) -> ActivationOutcome:
    """Run one activation of ``name``; every activation ends with an ``agent_finished``.
    ``step``: the step that delivered what it receives (a pipeline's stage transition)."""
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
        step=step,
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
    max_turns = run.spec.limits.max_turns
    while True:
        if turn >= max_turns:
            out_of_turns = Failure(
                "max_turns",
                f"{name!r} made {turn} model calls without finishing (limits.max_turns)",
                name,
                name,
                cause,
            )
            if controller is not None:
                try:
                    messages = await hold_failure(
                        run,
                        name,
                        out_of_turns,
                        "max_turns",
                        {"model": agent.model, "messages": messages},
                        on_retry="one more model call",
                    )
                except Failure:
                    finish(run, name, act, "failed")
                    raise
                max_turns += 1
            else:
                finish(run, name, act, "failed")
                raise out_of_turns
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
        try:
            response, responded = await call_model(
                run, branch, name, agent, messages, tools, act, cause, step, plan, retry_of=retry_of
            )
        except CallFailed as lost:
            if controller is None:
                raise
            response, responded, messages = await _call_again(
                run, branch, name, agent, plan, messages, act, cause, lost
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
            again = f" Reply with only a JSON object of this shape: {shape}" if shape else ""
            feedback = {"role": "user", "content": f"Your reply was rejected: {problem}.{again}"}
            if invalid > max_invalid:
                whom = f"{whom_for!r}'s input" if whom_for else "its output checks"
                invalid_output = Failure(
                    "invalid_output",
                    f"{name!r} returned output that does not match {whom}: {problem}",
                    name,
                    whom_for or name,
                    failed.seq,
                )
                if controller is None:
                    finish(run, name, act, "failed", text, cause=failed.seq)
                    raise invalid_output
                try:
                    # Retry: one more attempt past limits.max_validation_retries, told why.
                    messages = await hold_failure(
                        run,
                        name,
                        invalid_output,
                        "invalid_output",
                        {"model": agent.model, "messages": [*messages, feedback]},
                        on_retry=f"ask {name} again, told why",
                    )
                except Failure:
                    finish(run, name, act, "failed", text, cause=failed.seq)
                    raise
                continue
            messages.append(feedback)
            continue
        # Several tool calls or delegations in one response run at once (a handoff ends the
        # activation, so handoffs are taken one by one, in order, after them).
        try:
            ran: dict[int, CallOutcome] = {}
            if len(calls) > 1:
                others = [(i, c) for i, c in enumerate(calls) if not c.name.startswith(HANDOFF_PREFIX)]
                if len(others) > 1:
                    ran = await run_concurrently(run, branch, name, agent, others, act, responded.seq)
            for index, call in enumerate(calls):
                outcome = ran.get(index)
                if outcome is None:
                    outcome = await _one_call(
                        run,
                        branch,
                        name,
                        agent,
                        plan,
                        call,
                        act,
                        responded.seq,
                        messages,
                        rejections,
                        context,
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
                    refused = _invalid_failure(run, name, outcome)
                    if controller is None:
                        finish(run, name, act, "failed")
                        raise refused
                    try:
                        # Retry: the response's other calls run, and the model is asked once
                        # more (past limits.max_validation_retries), told why these were refused.
                        messages = await hold_failure(
                            run,
                            name,
                            refused,
                            "invalid_calls",
                            {"model": agent.model, "messages": messages},
                            on_retry=f"ask {name} again, told why",
                        )
                    except Failure:
                        finish(run, name, act, "failed")
                        raise
        except Failure as failure:
            # A call of this response fails the run (a loop, a checkpoint's last rejection on a
            # delegation, a worker that handed off): hold it first. A failure a worker's own
            # activation already held (run.failed_in is set then) fails at once, and so does
            # one held and let go here already (hold_failure knows those).
            if controller is None or run.failed_in is not None:
                raise
            messages = await _hold_call_failure(run, name, agent, messages, failure)
            retry_of = last_response
            run.loops.retried.add(responded.seq)
            turn -= 1  # the call is run again, not one more turn


async def _hold_call_failure(
    run: Runtime, name: str, agent: AgentSpec, messages: list[dict[str, Any]], failure: Failure
) -> list[dict[str, Any]]:
    """Hold a failure that a call of the last model response caused; returns the messages to
    run that model call again with (retry), else raises the failure. A loop is not retried:
    the loop watch has already counted it, and the same call would go round again."""
    again = {"model": agent.model, "messages": before_last_assistant(messages)}
    retry = f"rerun the last call of {name}"
    if failure.error_type == "loop":
        return await hold_failure(
            run,
            name,
            failure,
            "loop",
            again,
            no_retry="a loop would go round again",
        )
    failed: FailedKind = "error"
    if isinstance(failure, CallFailed):
        failed = "model_call"  # a supervisor's review of a worker's output
    elif failure.error_type == "checkpoint_rejected":
        failed = "checkpoint"  # a worker's output, rejected for good at a delegation
    return await hold_failure(run, name, failure, failed, again, on_retry=retry)


async def _call_again(
    run: Runtime,
    branch: Branch,
    name: str,
    agent: AgentSpec,
    plan: Plan,
    messages: list[dict[str, Any]],
    act: int,
    cause: int,
    failed: CallFailed,
) -> tuple[ModelResponse, ev.ModelResponded, list[dict[str, Any]]]:
    """A model call failed for good: before the run fails, hold it at a gate that shows the
    error (an ``error:*`` breakpoint stops there). The operator's ``retry`` (or ``edit`` of the
    messages) runs the call again, until it answers; anything else fails the run as before."""
    while True:
        step = run.next_step()
        decision = await run.gate(
            "model_call",
            name,
            step,
            {
                "model": agent.model,
                "messages": messages,
                "failed": "model_call",
                "on_retry": "retry the call",
            },
            can_retry=True,
            failure=failed.message,
            validate=check_failed_call_edit(editable=True),
        )
        if decision.action == "edit" and decision.payload and decision.payload.get("messages"):
            messages = list(decision.payload["messages"])
        elif decision.action != "retry":
            run.give_back_step(step)
            raise failed
        try:
            response, responded = await call_model(
                run, branch, name, agent, messages, plan.tools, act, cause, step, plan
            )
        except CallFailed as again:
            failed = again
        else:
            return response, responded, messages


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
        rejected = await _handoff_checkpoint(
            run, name, spec.checkpoint, checked, act, cause, rejections, messages
        )
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
    messages: list[dict[str, Any]],
) -> Answered | None:
    """Check a handoff's payload before delivery: None to deliver it, else the rejection the
    model gets back (after the last allowed one, ``on_reject`` decides)."""
    target, payload = checked[1], checked[2]
    why = await run_check(run, checkpoint.check, payload)
    rejected = rejections.get(target, 0) + (why is not None)
    rejections[target] = rejected
    if why is not None and rejected > checkpoint.max_rejections:
        retried = await rejected_for_good_or_held(
            run, target, name, checkpoint.on_reject, "handoff", "check", rejected - 1, why, cause, messages
        )
        if retried is None:
            return None  # use_last: deliver it as it is
        # The operator retried a rejection for good: it goes back to the model once more.
        return Answered(
            f"Error: the handoff to {target} was rejected at its checkpoint: {why}."
            " Fix the context and hand off again.",
            retried.cause or cause,
        )
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
