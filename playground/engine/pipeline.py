"""The pipeline pattern (stages, and stages that are parallel groups), and running one
agent in isolation."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from playground.engine import events as ev
from playground.engine.activation import activate
from playground.engine.branch import Branch, in_branches
from playground.engine.checkpoints import rejected_for_good_or_held, run_check
from playground.engine.guards import refuse_input
from playground.engine.messages import parse_or_text, render_context
from playground.engine.outcomes import ActivationOutcome, Escalate, Failure, Handoff, Reply
from playground.llm.base import approx_tokens
from playground.spec.schema import Schema, format_validation_error

if TYPE_CHECKING:
    from playground.engine.runtime import Runtime


async def drive_pipeline(run: Runtime, branch: Branch, request: str) -> str:
    """Run each stage on the previous stage's output; the last stage's output is the run's.

    A stage of one agent must reply what the next stage (when it is one agent) accepts,
    and is asked again if it does not. A parallel group's agents all receive the previous
    stage's output and run at once; the stage after it receives one object with a field
    per agent of the group: that agent's JSON when it declares ``output``, else its text.
    """
    stages = run.spec.stages
    incoming: str = request
    value: Any = None
    """What the previous stage produced: its reply's text, or a group's object."""
    cause = 1
    output = ""
    step: int | None = None
    """The step of the stage transition that delivered ``incoming`` (none for the entry)."""
    for i, group in enumerate(stages):
        following = stages[i + 1] if i + 1 < len(stages) else None
        expect_for = following[0] if following is not None and len(following) == 1 else None
        expect = run.agents[expect_for].input if expect_for is not None else None
        reason = "entry" if i == 0 else "stage"
        if len(group) == 1:
            name = group[0]
            context = _received(run, name, value, stages[i - 1] if i else None, cause) if i else None
            try:
                reply = await _stage(
                    run, branch, name, incoming, context, reason, cause, expect, expect_for, step
                )
            except Escalate as escalation:
                return await _escalated(run, branch, escalation)
            output, cause = reply.text, reply.seq
            value = output
        else:
            try:
                replies = await _group(run, group, incoming, value, stages[i - 1], reason, cause, step)
            except Escalate as escalation:
                return await _escalated(run, branch, escalation)
            value = {
                name: parse_or_text(reply.text) if run.agents[name].output is not None else reply.text
                for name, reply in replies.items()
            }
            output = render_context(value)
            cause = max(reply.seq for reply in replies.values())
        if following is not None:
            run.loops.hops += 1
            step = run.next_step()
            value, output = await _stage_gate(run, group, following, value, output, step)
            incoming = output
    return output


async def _stage_gate(
    run: Runtime, group: list[str], following: list[str], value: Any, output: str, step: int
) -> tuple[Any, str]:
    """Hold a stage's output at a ``handoff`` gate before the next stage receives it; an
    operator may edit it there (checked against the next stage's ``input``). Returns the
    value and the text the next stage receives.

    The output is edited as the JSON object it is, or as ``{"text": ...}`` when it is not one.
    """
    if run.controller is None:
        return value, output
    parsed = value if isinstance(value, dict) else parse_or_text(output)
    as_text = not isinstance(parsed, dict)
    schemas = [(name, run.agents[name].input) for name in following]
    described = [schema.describe() for _, schema in schemas if schema is not None]
    # The model call that produced the output (a group's earliest last call): where a fork
    # starts to run the stage again, since a stage's output is delivered, not retried.
    calls = [e for e in run.events if isinstance(e, ev.ModelResponded) and e.agent in group and e.step]
    produced = [max((e.step or 0 for e in calls if e.agent == name), default=0) for name in group]
    decision = await run.gate(
        "handoff",
        group[0],
        step,
        {
            "target": " ∥ ".join(following),
            "targets": list(following),
            "context": {"text": output} if as_text else parsed,
            "stage": True,
            "source": " ∥ ".join(group),
            "sources": list(group),
            "as_text": as_text,
            "schema": described[0] if len(set(described)) == 1 else " ∥ ".join(described) or "any",
            "payload_tokens": approx_tokens(output),
            "produced_at": min(produced) or None,
        },
        validate=lambda p: stage_edit_problem(schemas, p.get("context"), as_text),
    )
    if decision.action != "edit" or decision.payload is None:
        return value, output
    edited = decision.payload["context"]
    if as_text:
        return str(edited["text"]), str(edited["text"])
    rendered = render_context(edited)
    return (edited if isinstance(value, dict) else rendered), rendered


def stage_edit_problem(schemas: list[tuple[str, Schema | None]], context: Any, as_text: bool) -> str | None:
    """Why an edited stage output would not do for the next stage, or None."""
    if not isinstance(context, dict):
        return "the output must be a JSON object"
    if as_text:
        if set(context) != {"text"} or not isinstance(context["text"], str):
            return 'a text output is edited as {"text": "..."}'
        return None
    for name, schema in schemas:
        if schema is None:
            continue
        try:
            schema.validate(context)
        except ValidationError as exc:
            return f"{name!r} rejects it: {format_validation_error(exc)}"
    return None


async def _stage(
    run: Runtime,
    branch: Branch,
    name: str,
    incoming: str,
    context: dict[str, Any] | None,
    reason: str,
    cause: int,
    expect: Schema | None,
    expect_for: str | None,
    step: int | None = None,
) -> Reply:
    """One stage's activation, and its checkpoint if it declares one: a rejected output is
    sent back to the stage with the reason, as often as allowed; then ``on_reject`` decides.
    ``step``: the stage transition that delivered its input."""
    refused = await refuse_input(
        run, name, name, context if context is not None else parse_or_text(incoming), 0, cause
    )
    if refused is not None:
        assert isinstance(refused.problem, ev.ValidationFailed)
        raise Failure(
            "invalid_input",
            f"{name!r} refused its input: {refused.problem.errors}",
            None,
            name,
            refused.problem.seq,
        )
    checkpoint = run.agents[name].checkpoint
    if context is not None:
        # What the stage's input validated to (``"6"`` read as the ``int`` 6), as a handoff
        # delivers its checked payload: what the inspector shows is what the model is sent.
        incoming = render_context(context)
    asked = incoming
    rejected = 0
    while True:
        result = await activate(
            run, branch, name, asked, context, reason, cause, expect=expect, expect_for=expect_for, step=step
        )
        step = None  # a rejected output asked again is no new transition
        reply = _stage_reply(name, result)
        if checkpoint is None:
            return reply
        why = await run_check(run, checkpoint.check, parse_or_text(reply.text))
        if why is not None and rejected >= checkpoint.max_rejections:
            # Held first under an error breakpoint; None: use_last; a failure: the operator
            # retried, so the rejection goes back to the stage once more.
            retried = await rejected_for_good_or_held(
                run, name, name, checkpoint.on_reject, "stage", "check", rejected, why, reply.seq, []
            )
            if retried is None:
                return reply  # use_last
            # The operator retried a rejection for good (its `limit` review is recorded): it
            # goes back to the stage once more.
            asked = _rejected_again(incoming, why, reply.text)
            reason, cause = "stage", retried.cause or reply.seq
            continue
        rejected += why is not None
        reviewed = run.emit(
            ev.CheckpointReviewed,
            agent=name,
            cause=reply.seq,
            worker=name,
            verdict="accept" if why is None else "reject",
            feedback=why or "",
            round=rejected + (why is None),
            boundary="stage",
            by="check",
        )
        if why is None:
            return Reply(reply.text, reviewed.seq)
        asked = _rejected_again(incoming, why, reply.text)
        reason, cause = "stage", reviewed.seq


def _rejected_again(incoming: str, why: str, output: str) -> str:
    """What a stage is asked when its checkpoint rejected its output: its input, and why."""
    return f"{incoming}\n\nYour last output was rejected at a checkpoint: {why}\nYour last output:\n{output}"


async def _group(
    run: Runtime,
    group: list[str],
    incoming: str,
    value: Any,
    previous: list[str],
    reason: str,
    cause: int,
    step: int | None = None,
) -> dict[str, Reply]:
    """Run the agents of a parallel group at once, each in a branch of its own. One that
    fails does not stop the others; the first failure (in the group's order) is raised once
    all have finished. An abort or the run's timeout cancels them all."""

    async def one(name: str, own: Branch) -> Reply:
        context = _received(run, name, value, previous, cause)
        return await _stage(run, own, name, incoming, context, reason, cause, None, None, step)

    replies = await in_branches([functools.partial(one, name) for name in group])
    return dict(zip(group, replies, strict=True))


def _received(
    run: Runtime, name: str, value: Any, previous: list[str] | None, cause: int
) -> dict[str, Any] | None:
    """The context stage ``name`` receives: the previous stage's reply (as JSON) or group
    object, checked against its ``input``. A value that does not fit fails the run where it
    came from."""
    schema = run.agents[name].input
    grouped = previous is not None and len(previous) > 1
    if schema is None:
        return value if grouped else None
    try:
        return schema.validate(value if grouped else parse_or_text(value))
    except ValidationError as exc:
        problem = format_validation_error(exc)
        origin = (previous or [name])[0]
        if grouped:
            assert previous is not None
            # A group's object: the field that does not fit names the agent that produced it.
            located = [str(e["loc"][0]) for e in exc.errors() if e["loc"] and str(e["loc"][0]) in previous]
            origin = located[0] if located else origin
        failed = run.emit(
            ev.ValidationFailed,
            agent=name,
            cause=cause,
            what="input",
            errors=problem,
            target=name,
        )
        raise Failure(
            "invalid_output",
            f"{origin!r} produced output that does not match {name!r}'s input: {problem}",
            origin,
            name,
            failed.seq,
        ) from None


def _stage_reply(name: str, result: ActivationOutcome) -> Reply:
    if isinstance(result, Handoff):
        raise Failure(
            "handoff_in_pipeline",
            f"stage {name!r} tried to hand off; a pipeline's stages pass their output on",
            name,
            name,
            result.cause,
        )
    return result


async def _escalated(run: Runtime, branch: Branch, escalation: Escalate) -> str:
    """A loop inside a stage (a delegation) escalates: the on_loop agent answers instead."""
    handoff = escalation.handoff
    result = await activate(
        run,
        branch,
        handoff.target,
        render_context(handoff.payload),
        handoff.payload,
        "escalation",
        handoff.cause,
    )
    return _stage_reply(handoff.target, result).text


async def drive_isolated(
    run: Runtime, branch: Branch, name: str, request: str, context: dict[str, Any] | None
) -> str:
    """Run only agent ``name``: it receives ``context`` (validated against its ``input``) or
    ``request``, and a handoff it makes ends the run."""
    if name not in run.agents:
        raise Failure("unknown_agent", f"{name!r} is not an agent of {run.spec.name!r}", None, None)
    schema = run.agents[name].input
    if context is not None and schema is not None:
        try:
            context = schema.validate(context)
        except ValidationError as exc:
            raise Failure(
                "invalid_input",
                f"the context given to {name!r} does not match its input: {format_validation_error(exc)}",
                None,
                name,
            ) from None
    incoming = render_context(context) if context is not None else request
    expect, expect_for = None, None
    stages = run.spec.stages
    for i, group in enumerate(stages[:-1]):
        if name in group and len(group) == 1 and len(stages[i + 1]) == 1:
            expect_for = stages[i + 1][0]
            expect = run.agents[expect_for].input
    try:
        result = await activate(run, branch, name, incoming, context, "entry", 1, expect=expect)
    except Escalate as escalation:
        result = escalation.handoff
    return result.text if isinstance(result, Reply) else ""
