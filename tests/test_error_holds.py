"""The error breakpoint holds every fatal error of an activation before the run fails, with
the error on the gate (issue #14, item 8): invalid output after the last retry, calls refused
too often, limits.max_turns, a loop (on_loop: stop), a checkpoint's last rejection (on_reject:
fail) and a budget (on_budget: stop). Per kind: retry does what the gate says (a loop offers
none), continue fails the run exactly as a headless run fails, abort aborts, and without an
``error:*`` breakpoint nothing stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from playground.engine import RunResult, Runtime, StepController
from playground.engine import events as ev
from playground.engine.controller import Gate
from playground.spec import System
from tests.helpers import kinds, of_kind, system_from
from tests.test_checkpoints import CHECKS, SUPERVISOR
from tests.test_checkpoints import ROUTER as CHECKED_ROUTER
from tests.test_guardrails import BUDGET
from tests.test_loops import CYCLE

INVALID_OUTPUT = """\
name: bad-output
pattern: pipeline
pipeline: [sum]
limits: {max_validation_retries: 0, retries: 0}
agents:
  sum:
    output: {total: int}
    script:
      - reply: "three, I think"
      - reply: '{"total": 3}'
"""

INVALID_CALLS = """\
name: bad-calls
pattern: router
entry: front
limits: {max_validation_retries: 0, retries: 0}
agents:
  front:
    handoffs: [{to: back, context: {question: str}}]
    script:
      - {handoff: back, context: {wrong: "x"}}
      - {handoff: back, context: {question: "{input}"}}
  back:
    input: {question: str}
    script: [{reply: "back got {question}"}]
"""

MAX_TURNS = """\
name: many-turns
pattern: pipeline
pipeline: [a]
limits: {max_turns: 2, retries: 0}
tools: {lookup: tools.py:lookup}
agents:
  a:
    tools: [lookup]
    script:
      - {tool: lookup, args: {key: "one"}}
      - {tool: lookup, args: {key: "two"}}
      - reply: "found {tool_result}"
"""


def invalid_output(tmp_path: Path) -> System:
    return system_from(tmp_path, INVALID_OUTPUT)


def invalid_calls(tmp_path: Path) -> System:
    return system_from(tmp_path, INVALID_CALLS)


def max_turns(tmp_path: Path) -> System:
    (tmp_path / "tools.py").write_text("def lookup(key: str) -> str:\n    return key\n")
    return system_from(tmp_path, MAX_TURNS)


def loop(tmp_path: Path) -> System:
    return system_from(tmp_path, CYCLE.replace("ON_LOOP", "stop"))


def checkpoint(tmp_path: Path) -> System:
    (tmp_path / "checks.py").write_text(CHECKS)
    # Both payloads carry a card: rejected once (allowed), then for good; a third is clean.
    text = CHECKED_ROUTER.replace(
        '      - {handoff: shipping, context: {address: "1 Main St"}}\n',
        '      - {handoff: shipping, context: {address: "2 Elm St, card 4111"}}\n'
        '      - {handoff: shipping, context: {address: "1 Main St"}}\n',
    )
    return system_from(tmp_path, text)


def budget(tmp_path: Path) -> System:
    text = BUDGET.replace("LIMITS", "max_cost_usd: 0.03").replace("ON_BUDGET\n", "")
    return system_from(tmp_path, text.replace("    BUDGET\n", ""))


KINDS = {
    # what failed: (the system, its request, the error type, what a retry leads to)
    "invalid_output": (invalid_output, "sum 1 2", "invalid_output", '{"total": 3}'),
    "invalid_calls": (invalid_calls, "hi", "invalid_handoff_payload", "back got hi"),
    "max_turns": (max_turns, "go", "max_turns", "found two"),
    "loop": (loop, "policy", "loop", None),
    "checkpoint": (checkpoint, "send it", "checkpoint_rejected", "ships to 1 Main St"),
    "budget": (budget, "x", "budget_exceeded", "done"),
}


async def held(
    system: System, text: str, **controller: object
) -> tuple[StepController, Gate, asyncio.Task[RunResult]]:
    stepper = StepController(**controller)  # type: ignore[arg-type]
    task = asyncio.create_task(Runtime(system, controller=stepper).run(text))
    gate = await asyncio.wait_for(stepper.wait_paused(), 10)
    return stepper, gate, task


@pytest.mark.parametrize("failed", sorted(KINDS))
async def test_an_error_breakpoint_holds_the_fatal_error_with_the_error_shown(
    tmp_path: Path, failed: str
) -> None:
    make, text, error_type, _ = KINDS[failed]
    system = make(tmp_path)
    headless = await Runtime(system).run(text)
    assert headless.status == "failed" and headless.error is not None
    assert headless.error["type"] == error_type

    controller, gate, task = await held(system, text, breakpoints={"error:*"})
    # Held before the run fails: nothing says it failed yet, and the gate shows why it will.
    assert gate.payload["failed"] == failed
    assert gate.failure == headless.error["message"]
    assert gate.kind == "model_call" and gate.describe().endswith(headless.error["message"])
    assert task.done() is False
    controller.abort()
    assert (await task).status == "aborted"


@pytest.mark.parametrize("let_go", ["resume", "step"])
@pytest.mark.parametrize("failed", sorted(KINDS))
async def test_going_on_from_a_held_error_fails_the_run_as_a_headless_run_fails(
    tmp_path: Path, failed: str, let_go: str
) -> None:
    make, text, _, _ = KINDS[failed]
    system = make(tmp_path)
    headless = await Runtime(system).run(text)
    controller, _, task = await held(system, text, breakpoints={"error:*"})
    getattr(controller, let_go)()
    if let_go == "step":  # stepping on fails the run: nothing more is held
        while not task.done():
            await asyncio.sleep(0)
            if controller.pending is not None:
                controller.step()
    result = await task
    assert result.status == headless.status == "failed"
    assert result.error == headless.error
    # The same events as the run nobody held, plus the operator's one action, and the same steps.
    assert [k for k in kinds(result.events) if k != "operator_acted"] == kinds(headless.events)
    assert len(of_kind(result.events, ev.OperatorActed)) == 1
    steps = [getattr(e, "step", None) for e in result.events if not isinstance(e, ev.OperatorActed)]
    assert steps == [getattr(e, "step", None) for e in headless.events]


@pytest.mark.parametrize("failed", sorted(k for k in KINDS if KINDS[k][3] is not None))
async def test_retrying_a_held_error_runs_on_and_the_run_completes(tmp_path: Path, failed: str) -> None:
    make, text, _, output = KINDS[failed]
    controller, gate, task = await held(make(tmp_path), text, breakpoints={"error:*"})
    assert gate.can_retry and gate.payload["on_retry"]
    assert controller.retry() is None
    result = await task
    assert result.status == "completed", result.error
    assert result.output == output
    acted = of_kind(result.events, ev.OperatorActed)
    assert [a.action for a in acted] == ["retry"]


async def test_a_retried_invalid_output_asks_once_more_with_the_rejection(tmp_path: Path) -> None:
    controller, gate, task = await held(invalid_output(tmp_path), "sum 1 2", breakpoints={"error:*"})
    # The call a retry makes: the conversation with the invalid reply and why it was rejected.
    assert [m["role"] for m in gate.payload["messages"]] == ["system", "user", "assistant", "user"]
    assert gate.payload["messages"][-1]["content"].startswith("Your reply was rejected")
    controller.retry()
    result = await task
    assert result.status == "completed"
    requested = [e for e in of_kind(result.events, ev.ModelRequested) if e.agent == "sum"]
    assert [e.step for e in requested] == [1, gate.step]  # the retried call has the gate's step
    assert [e.attempt for e in of_kind(result.events, ev.ValidationFailed)] == [1]


async def test_a_retried_invalid_output_that_fails_again_is_held_again(tmp_path: Path) -> None:
    system = system_from(tmp_path, INVALID_OUTPUT.replace("""'{"total": 3}'""", '"still no number"'))
    controller, gate, task = await held(system, "sum 1 2", breakpoints={"error:*"})
    controller.retry()
    again = await asyncio.wait_for(controller.wait_paused(), 10)
    assert again.payload["failed"] == "invalid_output" and again.step == gate.step + 1
    controller.resume()
    result = await task
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == "invalid_output"


async def test_a_held_loop_offers_no_retry_and_says_why(tmp_path: Path) -> None:
    controller, gate, task = await held(loop(tmp_path), "policy", breakpoints={"error:*"})
    assert not gate.can_retry
    assert "loop would go round again" in gate.payload["no_retry"]
    assert controller.retry() == gate.payload["no_retry"]  # the run stays held
    assert controller.pending is gate
    controller.resume()
    assert (await task).status == "failed"


async def test_a_held_budget_retried_is_waived_from_then_on(tmp_path: Path) -> None:
    controller, gate, task = await held(budget(tmp_path), "x", breakpoints={"error:*"})
    assert gate.payload["budget"]["limit"] == "max_cost_usd"
    controller.retry()
    result = await task
    assert result.cost_usd > 0.03  # the operator let it pass the budget
    assert len(of_kind(result.events, ev.BudgetExceeded)) == 1  # and was not asked again


async def test_out_of_turns_retried_grants_one_more_model_call(tmp_path: Path) -> None:
    system = max_turns(tmp_path)
    controller, gate, task = await held(system, "go", breakpoints={"error:*"})
    assert "made 2 model calls" in (gate.failure or "")
    controller.retry()
    result = await task
    assert result.status == "completed"
    assert len(of_kind(result.events, ev.ModelResponded)) == 3


async def test_step_mode_holds_a_fatal_error_too(tmp_path: Path) -> None:
    controller, gate, task = await held(invalid_output(tmp_path), "sum 1 2", stepping=True)
    while gate.failure is None:
        controller.step()
        gate = await asyncio.wait_for(controller.wait_paused(), 10)
    assert gate.payload["failed"] == "invalid_output"
    controller.resume()
    assert (await task).status == "failed"


@pytest.mark.parametrize("failed", sorted(KINDS))
async def test_without_an_error_breakpoint_a_fatal_error_fails_at_once(tmp_path: Path, failed: str) -> None:
    make, text, error_type, _ = KINDS[failed]
    controller = StepController(breakpoints={"agent:nobody"})
    result = await Runtime(make(tmp_path), controller=controller).run(text)
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == error_type
    assert not of_kind(result.events, ev.OperatorActed)


WORKER_INVALID = """\
name: worker-invalid
pattern: supervisor
entry: boss
limits: {max_validation_retries: 0, retries: 0}
agents:
  boss:
    delegates: [worker]
    script:
      - {tool: worker, args: {task: "{input}"}}
      - reply: "boss: {tool_result}"
  worker:
    input: {task: str}
    output: {total: int}
    script:
      - reply: "no idea"
      - reply: '{"total": 3}'
"""


async def test_a_workers_error_is_held_once_in_the_worker_not_again_in_its_supervisor(
    tmp_path: Path,
) -> None:
    system = system_from(tmp_path, WORKER_INVALID)
    controller, gate, task = await held(system, "sum", breakpoints={"error:*"})
    assert (gate.agent, gate.payload["failed"]) == ("worker", "invalid_output")
    controller.resume()
    result = await task
    assert result.status == "failed"
    assert [a.agent for a in of_kind(result.events, ev.OperatorActed)] == ["worker"]

    controller, gate, task = await held(system, "sum", breakpoints={"error:*"})
    controller.retry()
    result = await task
    assert result.output == 'boss: {"total": 3}'


async def test_a_delegations_last_rejection_is_held_in_the_supervisor_and_retried_by_delegating_again(
    tmp_path: Path,
) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    text = SUPERVISOR.replace(", ON_REJECT", "").replace(
        '      - {match: "still a draft", reply: "clean text"}\n', ""
    )
    system = system_from(tmp_path, text)
    headless = await Runtime(system).run("notes")
    assert headless.error is not None and headless.error["type"] == "checkpoint_rejected"

    controller, gate, task = await held(system, "notes", breakpoints={"error:*"})
    assert (gate.agent, gate.payload["failed"]) == ("boss", "checkpoint")
    assert gate.payload["on_retry"] == "rerun the last call of boss"
    controller.retry()  # boss delegates again; the writer's drafts are rejected again: held again
    again = await asyncio.wait_for(controller.wait_paused(), 10)
    assert (again.agent, again.payload["failed"]) == ("boss", "checkpoint")
    controller.resume()
    result = await task
    assert result.status == "failed" and result.error == headless.error
    writers = [e for e in of_kind(result.events, ev.AgentStarted) if e.agent == "writer"]
    assert len(writers) == 4  # two rounds of the delegation, twice
    assert [a.action for a in of_kind(result.events, ev.OperatorActed)] == ["retry", "continue"]


async def test_a_stage_checkpoints_last_rejection_is_held_and_retried_by_asking_the_stage_again(
    tmp_path: Path,
) -> None:
    from tests.test_checkpoints import PIPELINE

    (tmp_path / "checks.py").write_text(CHECKS)
    system = system_from(tmp_path, PIPELINE.replace("MAX", "0"))  # the first rejection is the last
    headless = await Runtime(system).run("1 2")
    assert headless.status == "failed" and headless.error is not None
    assert headless.error["type"] == "checkpoint_rejected"

    controller, gate, task = await held(system, "1 2", breakpoints={"error:*"})
    assert gate.payload["failed"] == "checkpoint" and gate.agent == "sum"
    assert gate.failure == headless.error["message"] and not task.done()
    assert controller.retry() is None
    result = await task
    assert result.status == "completed", result.error
    assert result.output == 'report of {"total":3}'
    reviewed = [(e.boundary, e.verdict) for e in of_kind(result.events, ev.CheckpointReviewed)]
    assert reviewed == [("stage", "limit"), ("stage", "accept")]  # no second reject: the operator retried

    # Let go, it fails as the headless run did.
    controller, gate, task = await held(system, "1 2", breakpoints={"error:*"})
    controller.resume()
    failed = await task
    assert failed.status == "failed" and failed.error is not None
    assert failed.error["type"] == "checkpoint_rejected" and failed.error["origin"] == "sum"


FAILING_CALL = """\
name: failing-call
pattern: pipeline
pipeline: [a]
limits: {retries: 0}
agents:
  a:
    script:
      - fail: provider_error
"""


async def test_an_edit_a_held_failure_would_not_use_is_refused_and_the_run_stays_held(
    tmp_path: Path,
) -> None:
    """Before, any edit was accepted at a held failure: one the retry does not use (the
    instructions of a failed call, anything at a budget's hold) let the run fail as if the
    operator had let it go."""
    system = system_from(tmp_path, FAILING_CALL)
    controller, gate, task = await held(system, "hi", breakpoints={"error:*"})
    assert gate.payload["failed"] == "model_call"
    error = controller.edit({"instructions": "Answer anyway."})
    assert error is not None and "messages" in error
    assert controller.edit({"messages": "not a list"}) is not None
    await asyncio.sleep(0.05)
    assert not task.done() and controller.pending is gate
    # The messages are what a retry of a failed call is made with: that edit is taken (the
    # scripted model fails the same call again, and the run is held again, with them).
    messages = [*gate.payload["messages"][:-1], {"role": "user", "content": "hello"}]
    assert controller.edit({"messages": messages}) is None
    again = await asyncio.wait_for(controller.wait_paused(), 10)
    assert again is not gate and again.payload["messages"] == messages
    controller.abort()
    assert (await task).status == "aborted"

    controller, gate, task = await held(budget(tmp_path), "x", breakpoints={"error:*"})
    assert gate.payload["failed"] == "budget"
    assert controller.edit({"messages": gate.payload["messages"]}) is not None
    await asyncio.sleep(0.05)
    assert not task.done() and controller.pending is gate
    controller.abort()
    assert (await task).status == "aborted"
