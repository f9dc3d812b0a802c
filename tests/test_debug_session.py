"""The headless debug session (playground/debug.py), driven without a terminal.

One :class:`DebugSession` runs one request (a scenario, a fork, a replay) on the scripted
model under its step controller; the tests drive it as an operator would (hold, step,
continue, retry, edit, approve, deny, abort) and wait on it, never on the wall clock.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from playground.compare import Case
from playground.debug import DebugSession, step_together
from playground.engine import events as ev
from playground.errors import PlaygroundError
from playground.scenarios import load_scenarios
from playground.spec import System, load_system
from playground.store.store import Store
from tests.helpers import EXAMPLES, ROOT, example_copy, kinds, of_kind

REQUEST = "I was charged twice on my last invoice"


@pytest.fixture
def system(tmp_path: Path) -> System:
    return load_system(example_copy(tmp_path))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "store.db") as opened:
        yield opened


async def test_hold_then_step_through_every_gate(system: System, store: Store) -> None:
    session = DebugSession(system, store)
    statuses = [session.status]
    session.hold()  # before it starts: it stops at its first gate
    task = asyncio.create_task(session.run(REQUEST))
    seen: list[tuple[str, str]] = []
    for _ in range(4):
        gate = await session.wait_paused()
        assert gate is not None and session.pending is gate
        statuses.append(session.status)
        seen.append((gate.kind, gate.agent))
        assert session.step()
    gate = await session.wait_paused()
    assert gate is not None
    seen.append((gate.kind, gate.agent))
    assert session.resume()
    result = await session.wait_finished()
    assert await task is result
    statuses.append(session.status)
    assert statuses == ["ready", *["held"] * 4, "finished"]
    assert seen == [
        ("model_call", "router"),
        ("handoff", "router"),
        ("model_call", "billing"),
        ("tool_call", "billing"),
        ("model_call", "billing"),
    ]
    assert result.status == "completed" and result.path == ["router", "billing"]
    assert [e.action for e in of_kind(result.events, ev.OperatorActed)] == ["step"] * 4 + ["continue"]
    assert (await store.session(result.session_id)).status == "completed"  # recorded


async def test_the_operator_hears_of_each_pause_and_the_events(system: System, store: Store) -> None:
    gates: list[str] = []
    events: list[ev.Event] = []
    session = DebugSession(system, store, breakpoints={"handoff:*"})
    session.subscribe(events.append, lambda gate: gates.append(gate.kind))
    task = asyncio.create_task(session.run(REQUEST))
    assert await session.wait_paused() is not None
    assert gates == ["handoff"]
    assert "agent_started" in kinds(events)  # the live sink got the events so far
    session.resume()
    await task
    assert kinds(events)[-1] == "run_finished"


async def test_wait_paused_returns_none_once_the_run_ends(system: System, store: Store) -> None:
    session = DebugSession(system, store)
    task = asyncio.create_task(session.run(REQUEST))
    assert await session.wait_paused() is None  # no breakpoint: it never stopped
    assert session.done and (await task).status == "completed"
    assert not session.step()  # nothing held: nothing released


async def test_retry_the_held_model_call(system: System, store: Store) -> None:
    session = DebugSession(system, store, breakpoints={"agent:billing"})
    task = asyncio.create_task(session.run("refund"))
    gate = await session.wait_paused()
    assert gate is not None and gate.kind == "model_call" and gate.agent == "billing"
    assert session.retry() is not None  # no call of billing to retry yet; still held
    assert session.pending is gate
    session.step()
    gate = await session.wait_paused()
    assert gate is not None and gate.kind == "tool_call"
    assert session.retry() is None
    session.controller.breakpoints.clear()
    assert await session.wait_paused() is not None  # step mode: held again at the retried call
    session.resume()
    result = await task
    assert result.status == "completed"
    responses = [e for e in of_kind(result.events, ev.ModelResponded) if e.agent == "billing"]
    assert len(responses) == 3 and responses[1].retry_of == responses[0].seq


async def test_edit_the_held_handoff(system: System, store: Store) -> None:
    session = DebugSession(system, store, breakpoints={"handoff:*"})
    task = asyncio.create_task(session.run(REQUEST))
    gate = await session.wait_paused()
    assert gate is not None and gate.payload["target"] == "billing"
    assert "required field missing" in (session.edit({"context": {"question": "x"}}) or "")
    assert session.pending is gate and not task.done()  # a refused edit leaves it held
    assert session.edit({"context": {"customer_id": "C-9", "question": "edited"}}) is None
    result = await task
    (handoff,) = of_kind(result.events, ev.HandoffDelivered)
    assert handoff.payload == {"customer_id": "C-9", "question": "edited"} and handoff.edited
    assert "INV-0977" in result.output  # C-9's invoice: the edit was delivered


async def test_abort_the_held_run(system: System, store: Store) -> None:
    session = DebugSession(system, store, stepping=True)
    task = asyncio.create_task(session.run(REQUEST))
    assert await session.wait_paused() is not None
    assert session.abort()
    result = await task
    assert result.status == "aborted"
    assert (await store.session(result.session_id)).status == "aborted"


async def test_abort_a_running_session_stops_it_at_its_next_gate(system: System, store: Store) -> None:
    session = DebugSession(system, store)
    task = asyncio.create_task(session.run(REQUEST))
    await asyncio.sleep(0)  # started, not held
    assert not session.abort()
    assert (await task).status == "aborted"


APPROVAL_TOOLS = """
def refund(order_id: str, amount: int) -> str:
    return f"refunded {amount} on {order_id}"
"""

APPROVAL_SYSTEM = """
name: refunds
pattern: router
entry: support
tools:
  refund: {function: tools.py:refund, approval: required}
agents:
  support:
    tools: [refund]
    handoffs: [{to: notify, context: {message: str}}]
    script:
      - {tool: refund, args: {order_id: "A-17", amount: 40}}
      - handoff: notify
        context: {message: "{tool_result}"}
  notify:
    input: {message: str}
    script: [{reply: "told them: {message}"}]
"""


@pytest.fixture
def refunds(tmp_path: Path) -> System:
    (tmp_path / "tools.py").write_text(APPROVAL_TOOLS)
    (tmp_path / "refunds.yaml").write_text(APPROVAL_SYSTEM)
    return load_system(tmp_path / "refunds.yaml")


async def test_approve_and_deny_a_call_that_needs_approval(refunds: System, store: Store) -> None:
    approved = DebugSession(refunds, store)
    task = asyncio.create_task(approved.run("refund A-17"))
    gate = await approved.wait_paused()  # held whatever the breakpoints
    assert gate is not None and gate.payload.get("approval")
    assert approved.approve() is None
    result = await task
    assert result.status == "completed" and "refunded 40 on A-17" in result.output

    denied = DebugSession(refunds, store)
    task = asyncio.create_task(denied.run("refund A-17"))
    assert await denied.wait_paused() is not None
    assert denied.deny("not this one") is None
    result = await task
    assert [e.action for e in of_kind(result.events, ev.OperatorActed)] == ["deny"]
    assert "refunded" not in result.output


async def test_unattended_a_call_that_needs_approval_ends_the_run_waiting(
    refunds: System, store: Store
) -> None:
    """As `playground run` and `compare` run (no one answers a gate): no controller at all."""
    session = DebugSession(refunds, store, attended=False)
    result = await session.run("refund A-17")
    assert result.status == "waiting_approval"
    assert (await store.session(result.session_id)).status == "waiting_approval"


async def test_a_scenarios_faults_hit_each_session(tmp_path: Path, store: Store) -> None:
    """Two sessions of one scenario (a comparison's A and B) each meet its faults: a fault's
    ``times`` counts one run's calls, not both runs' (the compare screen's false regressions)."""
    example_copy(tmp_path)
    (tmp_path / "s.scenarios.yaml").write_text(
        (EXAMPLES / "support_router.scenarios.yaml").read_text(), encoding="utf-8"
    )
    suite = load_scenarios(tmp_path / "s.scenarios.yaml")
    scenario = next(s for s in suite.scenarios if "rate limit" in s.name)
    case = Case(scenario.name, scenario.input or "", scenario)
    sessions = [DebugSession(suite.system, store), DebugSession(suite.system, store)]
    a, b = await asyncio.gather(*(case.run_in(s) for s in sessions))
    for result in (a, b):
        assert result.status == "completed"
        assert {"model_failed", "retry_scheduled"} <= set(kinds(result.events))
    assert case.checks(a, b) == ([], [])


async def test_a_session_runs_once(system: System, store: Store) -> None:
    session = DebugSession(system, store)
    await session.run(REQUEST)
    with pytest.raises(PlaygroundError, match="runs once"):
        await session.run(REQUEST)


async def test_fork_a_recorded_run_under_the_debugger(system: System, store: Store) -> None:
    recorded = await DebugSession(system, store).run(REQUEST)
    handoff = of_kind(recorded.events, ev.HandoffDelivered)[0]
    assert handoff.step is not None
    session = DebugSession(system, store, stepping=True)
    task = asyncio.create_task(session.fork(recorded.session_id, handoff.step))
    gate = await session.wait_paused()
    assert gate is not None
    session.resume()
    outcome = await task
    assert session.outcome is outcome and session.result is outcome.result
    assert outcome.parent_session_id == recorded.session_id and outcome.replayed_calls >= 1
    assert outcome.result.status == "completed"


async def test_two_sessions_step_in_lockstep(system: System, store: Store) -> None:
    a, b = DebugSession(system, store, stepping=True), DebugSession(system, store, stepping=True)
    assert step_together([a, b]).action == "holding"  # neither is held yet: both will stop
    task_a = asyncio.create_task(a.run(REQUEST))
    assert await a.wait_paused() is not None
    together = step_together([a, b])
    assert together.action == "waiting" and together.sessions == (b,)  # B has not started
    task_b = asyncio.create_task(b.run(REQUEST))
    steps = 0
    while not (a.done and b.done):
        await a.wait_paused()
        await b.wait_paused()
        if step_together([a, b]).action == "stepped":
            steps += 1
        assert steps < 50
    ra, rb = await task_a, await task_b
    assert ra.status == rb.status == "completed"
    acted = [sum(1 for e in r.events if isinstance(e, ev.OperatorActed)) for r in (ra, rb)]
    assert acted == [steps, steps]
    assert step_together([a, b]).action == "idle"


def test_the_debug_session_runs_without_a_terminal() -> None:
    code = (
        "import sys\n"
        "import playground.debug, playground.compare\n"
        "print([m for m in ('textual', 'litellm') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr
