"""Checkpoints: a check of a value crossing a boundary before it is used.

A checkpoint sits on a supervisor's delegations (a model review, ``review: true``, or
a Python check, ``checkpoint:``), on a pipeline stage's output, or on a handoff's
payload. A rejection goes back to the agent that produced the value, as feedback, up
to the allowed number of times; after that ``on_reject`` decides: ``fail`` the run
(the default: never complete silently with output a checkpoint rejected),
``use_last`` output as it is, or ``escalate`` to an agent.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from playground.engine import events as ev
from playground.engine.controller import hold_failure
from playground.engine.outcomes import Escalate, Failure
from playground.engine.threads import in_thread
from playground.spec.models import OnReject

if TYPE_CHECKING:
    from playground.engine.runtime import Runtime

Boundary = Literal["delegation", "stage", "handoff"]


async def run_check(run: Runtime, ref: str, value: Any) -> str | None:
    """Call the check ``ref`` (``file.py:function``) on ``value``: None to accept, else why not.

    The function returns None or True to accept, False or a reason to reject; what it
    raises rejects with the error. A synchronous one runs in a thread; both are bounded by
    ``limits.tool_timeout_s``.
    """
    check = run.system.checks[ref]
    try:
        async with asyncio.timeout(run.spec.limits.tool_timeout_s):
            if check.is_async:
                verdict = await check.func(value)
            else:
                verdict = await in_thread(lambda: check.func(value), f"check-{ref}")
    except TimeoutError:
        return f"the check {ref} did not answer within limits.tool_timeout_s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    if verdict is None or verdict is True:
        return None
    if verdict is False:
        return f"rejected by {ref}"
    return str(verdict)


def policy_name(on_reject: OnReject) -> str:
    return on_reject if isinstance(on_reject, str) else f"escalate:{on_reject.escalate}"


def rejected_for_good(
    run: Runtime,
    checker: str,
    producer: str,
    on_reject: OnReject,
    boundary: Boundary,
    by: Literal["model", "check"],
    rejections: int,
    feedback: str,
    cause: int,
) -> None:
    """The last allowed rejection has passed: record it, then fail, escalate, or return
    (``use_last``)."""
    policy = policy_name(on_reject)
    what = {"delegation": "output", "stage": "output", "handoff": "handoff payload"}[boundary]
    limit = run.emit(
        ev.CheckpointReviewed,
        agent=checker,
        cause=cause,
        worker=producer,
        verdict="limit",
        round=rejections + 1,
        feedback=f"rejected {rejections} times ({feedback}); on_reject: {policy}",
        boundary=boundary,
        by=by,
        on_reject=policy,
    )
    reason = f"{producer!r}'s {what} was rejected {rejections} times at a checkpoint: {feedback}"
    if on_reject == "use_last":
        return
    if on_reject == "fail":
        raise Failure("checkpoint_rejected", reason, producer, checker, limit.seq)
    escalated = run.emit(
        ev.Escalated, agent=checker, cause=limit.seq, target=on_reject.escalate, reason=reason
    )
    raise Escalate(on_reject.escalate, {"request": run.input, "reason": reason}, escalated.seq)


async def rejected_for_good_or_held(
    run: Runtime,
    checker: str,
    producer: str,
    on_reject: OnReject,
    boundary: Boundary,
    by: Literal["model", "check"],
    rejections: int,
    feedback: str,
    cause: int,
    messages: list[dict[str, Any]],
) -> Failure | None:
    """:func:`rejected_for_good`, with ``on_reject: fail`` held first under a debugger (an
    ``error:*`` breakpoint stops there). Returns None for ``use_last``; the failure, when the
    operator retried: the rejection then goes back to ``producer`` once more, past the
    allowed rejections. ``messages``: what ``producer`` would be asked with (shown).
    Raises as :func:`rejected_for_good` does when the operator lets the run fail.

    A handoff's checkpoint and a pipeline stage's call this."""
    try:
        rejected_for_good(run, checker, producer, on_reject, boundary, by, rejections, feedback, cause)
    except Failure as failure:
        if run.controller is None:
            raise
        await hold_failure(
            run,
            producer,
            failure,
            "checkpoint",
            {"model": run.agents[producer].model, "messages": messages},
            on_retry=f"ask {producer} again, told why",
            editable=False,  # the rejection goes back as it is: the caller asks the producer
        )
        return failure
    return None
