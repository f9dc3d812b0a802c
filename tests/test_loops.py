"""Loops found as what they are: cycles, repeated calls, no progress, and the hop limit
as the last resort; an operator's retry never counts as a repeat."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playground.engine import Runtime, StepController
from playground.engine import events as ev
from tests.helpers import system_from

CYCLE = """\
name: review-cycle
pattern: router
entry: drafter
limits: {max_hops: 30}
on_loop: ON_LOOP
agents:
  drafter:
    handoffs: [{to: legal, context: {draft: str}}]
    script: [{handoff: legal, context: {draft: "{input} +"}}]
  legal:
    input: {draft: str}
    handoffs: [{to: compliance, context: {draft: str}}]
    script: [{handoff: compliance, context: {draft: "{draft}"}}]
  compliance:
    input: {draft: str}
    handoffs: [{to: drafter, context: {draft: str}}]
    script: [{handoff: drafter, context: {draft: "{draft}"}}]
  editor:
    input: {request: str, reason: str}
    script: [{reply: "escalated: {reason}"}]
"""


def loops_of(events: list[ev.Event]) -> list[ev.LoopDetected]:
    return [e for e in events if isinstance(e, ev.LoopDetected)]


async def test_a_cycle_whose_context_changes_is_named_as_a_cycle(tmp_path: Path) -> None:
    result = await Runtime(system_from(tmp_path, CYCLE.replace("ON_LOOP", "stop"))).run("policy")
    assert result.status == "failed"
    [loop] = loops_of(result.events)
    assert loop.loop == "cycle"
    assert loop.cycle == ["drafter", "legal", "compliance", "drafter"]
    assert "drafter → legal → compliance → drafter closed 3 times" in loop.reason
    # Caught by the cycle rule long before the hop budget (30) ran out.
    assert sum(isinstance(e, ev.HandoffDelivered) for e in result.events) < 12
    assert result.error is not None and result.error["type"] == "loop"


async def test_a_cycle_escalates_as_declared(tmp_path: Path) -> None:
    result = await Runtime(system_from(tmp_path, CYCLE.replace("ON_LOOP", "editor"))).run("policy")
    assert result.status == "completed", result.error
    assert result.path[-1] == "editor"
    assert result.output.startswith("escalated: the cycle drafter → legal → compliance → drafter")


REPEAT = """\
name: repeat-tool
pattern: router
entry: a
loops: {max_repeats: 2}
tools: {lookup: tools.py:lookup}
agents:
  a:
    tools: [lookup]
    handoffs: [{to: b}]
    script:
      - {tool: lookup, args: {key: "k"}}
      - {tool: lookup, args: {key: "k"}}
      - {tool: lookup, args: {key: "k"}}
      - reply: done
  b: {script: [{reply: done}]}
"""


async def test_the_same_tool_with_the_same_arguments_too_often_is_a_repeat(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text("def lookup(key: str) -> str:\n    return key\n")
    result = await Runtime(system_from(tmp_path, REPEAT)).run("go")
    assert result.status == "failed"
    [loop] = loops_of(result.events)
    assert loop.loop == "repeat"
    assert "a called lookup with the same arguments 3 times" in loop.reason
    # The third call was refused before it ran.
    assert sum(isinstance(e, ev.ToolCalled) for e in result.events) == 2


NO_PROGRESS = """\
name: no-progress
pattern: router
entry: a
agents:
  a:
    handoffs: [{to: b}, {to: c}]
    script: [{handoff: b, context: {question: "{input}"}}]
  b:
    handoffs: [{to: c}]
    script: [{handoff: c, context: {question: "{question}"}}]
  c:
    handoffs: [{to: b}]
    script: [{handoff: b, context: {question: "{question}"}}]
"""


async def test_an_agent_handed_the_same_context_with_nothing_new_is_no_progress(tmp_path: Path) -> None:
    result = await Runtime(system_from(tmp_path, NO_PROGRESS)).run("why?")
    assert result.status == "failed"
    [loop] = loops_of(result.events)
    assert loop.loop == "no_progress"
    assert loop.edge == ["c", "b"]


SUPERVISOR = """\
name: retried
pattern: supervisor
entry: boss
agents:
  boss:
    delegates: [worker]
    script:
      - {tool: worker, args: {task: "do {input}"}}
      - reply: "done: {tool_result}"
  worker:
    input: {task: str}
    script: [{reply: "did {task}"}]
"""


async def test_an_operator_retry_never_counts_as_a_repeat(tmp_path: Path) -> None:
    """Held before the supervisor's second model call, the operator retries the first: the
    retried response re-issues the same delegation, which is not a loop."""
    system = system_from(tmp_path, SUPERVISOR)
    controller = StepController(breakpoints={"agent:boss"})
    task = asyncio.create_task(Runtime(system, controller=controller).run("it"))
    gate = await controller.wait_paused()
    assert gate.kind == "model_call" and not gate.can_retry  # the first call: nothing to retry
    controller.resume()
    await asyncio.sleep(0)
    gate = await controller.wait_paused()
    while gate.kind != "model_call" or not gate.can_retry:
        controller.resume()
        await asyncio.sleep(0)
        gate = await controller.wait_paused()
    assert controller.retry() is None
    await asyncio.sleep(0)
    controller.breakpoints.clear()
    while not task.done():
        paused = asyncio.create_task(controller.wait_paused())
        await asyncio.wait({task, paused}, return_when=asyncio.FIRST_COMPLETED)
        if paused.done():
            controller.resume()
        else:
            paused.cancel()
    result = await task
    assert result.status == "completed", result.error
    assert not loops_of(result.events)
    delegations = [e for e in result.events if isinstance(e, ev.ToolCalled) and e.tool == "worker"]
    assert len(delegations) == 2  # the retried response delegated again; both are recorded


async def test_a_cycle_escalated_under_a_debugger_numbers_its_steps_as_a_headless_run(
    tmp_path: Path,
) -> None:
    """The handoff that closes the cycle is never delivered: under a controller that stops
    nowhere, its gate's step number is given back, so the editor's call is the same step as
    headless (it was one more: the step taken for the gate was lost)."""
    system = system_from(tmp_path, CYCLE.replace("ON_LOOP", "editor"))
    headless = await Runtime(system).run("policy")
    debugged = await Runtime(system, controller=StepController()).run("policy")
    assert debugged.status == headless.status == "completed"

    def steps(events: list[ev.Event]) -> list[tuple[str, str | None, int | None]]:
        return [(e.kind, e.agent, getattr(e, "step", None)) for e in events if e.kind != "token_delta"]

    assert steps(debugged.events) == steps(headless.events)
