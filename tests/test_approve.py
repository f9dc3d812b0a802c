"""``playground approve``: a session waiting for approval resumes in place, from the store,
without calling a model again for the steps it had taken."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from playground.engine import events as ev
from playground.resume import CannotResume, NotWaiting, Verdict, resume_session
from playground.service import run_session
from playground.spec import load_system
from playground.store import Store
from tests.helpers import CountingFactory, kinds, of_kind

CLI = [sys.executable, "-m", "playground.cli"]

TOOLS = """
import pathlib

LOG = pathlib.Path(__file__).with_name("ran.log")


def lookup(order_id: str) -> str:
    with LOG.open("a") as f:
        f.write(f"lookup {order_id}\\n")
    return f"order {order_id}: 40 USD"


def refund(order_id: str, amount: int) -> str:
    with LOG.open("a") as f:
        f.write(f"refund {order_id} {amount}\\n")
    return f"refunded {amount} on {order_id}"
"""

SYSTEM = """
name: refunds
pattern: router
entry: support
limits: {backoff_s: 0}
tools:
  lookup: tools.py:lookup
  refund: {function: tools.py:refund, approval: required}
agents:
  support:
    tools: [lookup, refund]
    handoffs: [{to: notify, context: {message: str}}]
    script:
      - {fail: provider_error, times: 1}
      - {tool: lookup, args: {order_id: "A-1"}}
      - {tool: refund, args: {order_id: "A-1", amount: 40}}
      - handoff: notify
        context: {message: "{tool_result}"}
  notify:
    input: {message: str}
    script: [{reply: "told them: {message}"}]
"""

TWICE = """
name: twice
pattern: router
entry: support
tools:
  refund: {function: tools.py:refund, approval: required}
agents:
  support:
    tools: [refund]
    handoffs: [{to: done}]
    script:
      - {tool: refund, args: {order_id: "A-1", amount: 40}}
      - {tool: refund, args: {order_id: "A-1", amount: 40}}
      - reply: "last: {tool_result}"
  done: {script: [{reply: done}]}
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "tools.py").write_text(TOOLS)
    (tmp_path / "system.yaml").write_text(SYSTEM)
    (tmp_path / "twice.yaml").write_text(TWICE)
    return tmp_path


def ran(workspace: Path) -> list[str]:
    log = workspace / "ran.log"
    return log.read_text().splitlines() if log.exists() else []


async def waiting(workspace: Path, store: Store, system: str = "system.yaml") -> str:
    result = await run_session(load_system(workspace / system), "refund A-1", store=store)
    assert result.status == "waiting_approval", result.error
    return result.session_id


async def test_approve_resumes_the_same_session_without_calling_a_model_again(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        session_id = await waiting(workspace, store)
        before = await store.events(session_id)
        assert ran(workspace) == ["lookup A-1"]
        counting = CountingFactory()
        seen: list[ev.Event] = []
        outcome = await resume_session(store, session_id, Verdict(), live=[seen.append], base=counting)
        row = await store.session(session_id)
        stored = await store.events(session_id)
        assert len(await store.sessions()) == 1  # no new session
    assert outcome.result.status == "completed" and outcome.result.session_id == session_id
    assert outcome.result.output == "told them: refunded 40 on A-1"
    # The failed call, its retry, the lookup and the refund call came from the recording.
    assert counting.calls == ["support", "notify"]
    assert outcome.replayed_calls == 2 and outcome.replayed_tools == 1
    assert ran(workspace) == ["lookup A-1", "refund A-1 40"]
    # The stored events: the old ones untouched, the new ones appended, numbered on.
    assert stored[: len(before)] == before
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    assert kinds(stored).count("run_started") == 1 and kinds(stored).count("model_failed") == 1
    new = stored[len(before) :]
    assert kinds(new)[:3] == ["approval_decided", "tool_called", "tool_returned"]
    assert kinds(new)[-1] == "run_finished"
    assert of_kind(new, ev.ApprovalDecided)[0].verdict == "approved"
    assert [e.seq for e in seen if not isinstance(e, ev.TokenDelta)] == [e.seq for e in new]
    # The row: completed, with the whole session's totals.
    assert row.status == "completed" and row.output == outcome.result.output and row.error is None
    assert row.path == ["support", "notify"]
    assert row.totals["support"]["calls"] == 3 and row.totals["notify"]["calls"] == 1
    assert outcome.as_json()["approval"]["verdict"] == "approved"


async def test_deny_tells_the_model_and_never_runs_the_tool(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        session_id = await waiting(workspace, store)
        outcome = await resume_session(store, session_id, Verdict(approve=False, reason="over the limit"))
    assert outcome.result.status == "completed"
    assert outcome.result.output == "told them: Error: a person denied this call of refund: over the limit"
    [decided] = of_kind(outcome.result.events, ev.ApprovalDecided)
    assert decided.verdict == "denied" and decided.reason == "over the limit"
    assert ran(workspace) == ["lookup A-1"]


async def test_edit_runs_the_call_with_other_arguments_and_a_bad_edit_is_refused(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        session_id = await waiting(workspace, store)
        before = await store.events(session_id)
        with pytest.raises(NotWaiting, match="amount"):
            await resume_session(store, session_id, Verdict(args={"order_id": "A-1", "amount": "lots"}))
        assert await store.events(session_id) == before
        assert (await store.session(session_id)).status == "waiting_approval"
        outcome = await resume_session(store, session_id, Verdict(args={"order_id": "A-1", "amount": 25}))
    assert outcome.result.output == "told them: refunded 25 on A-1"
    [decided] = of_kind(outcome.result.events, ev.ApprovalDecided)
    assert decided.edited and decided.args == {"order_id": "A-1", "amount": 25}
    assert ran(workspace) == ["lookup A-1", "refund A-1 25"]


async def test_a_second_approval_waits_again_and_earlier_decisions_replay_in_order(
    workspace: Path,
) -> None:
    async with Store(workspace / "s.db") as store:
        session_id = await waiting(workspace, store, "twice.yaml")
        denied = await resume_session(store, session_id, Verdict(approve=False, reason="not yet"))
        # The model asks for the very same call again: it waits again.
        assert denied.result.status == "waiting_approval"
        assert (await store.session(session_id)).status == "waiting_approval"
        assert ran(workspace) == []
        approved = await resume_session(store, session_id, Verdict())
        stored = await store.events(session_id)
    assert approved.result.status == "completed", approved.result.error
    assert approved.result.output == "last: refunded 40 on A-1"
    assert [d.verdict for d in of_kind(stored, ev.ApprovalDecided)] == ["denied", "approved"]
    assert ran(workspace) == ["refund A-1 40"]


async def test_a_session_that_is_not_waiting_is_refused(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        session_id = await waiting(workspace, store)
        await resume_session(store, session_id, Verdict())
        with pytest.raises(NotWaiting, match="is completed, not waiting for approval"):
            await resume_session(store, session_id, Verdict())
    assert ran(workspace) == ["lookup A-1", "refund A-1 40"]


async def test_two_approvals_at_once_run_the_call_once(workspace: Path) -> None:
    import asyncio

    async with Store(workspace / "s.db") as store:
        session_id = await waiting(workspace, store)
        outcomes = await asyncio.gather(
            resume_session(store, session_id, Verdict()),
            resume_session(store, session_id, Verdict()),
            return_exceptions=True,
        )
    refused = [o for o in outcomes if isinstance(o, NotWaiting)]
    async with Store(workspace / "s.db") as store:  # the claim itself is taken once
        session_id = await waiting(workspace, store)
        assert await store.claim_waiting(session_id) is True
        assert await store.claim_waiting(session_id) is False
        assert (await store.session(session_id)).status == "running"
        await store.unclaim(session_id)
        assert (await store.session(session_id)).status == "waiting_approval"
    assert len(refused) == 1 and "not waiting for approval" in str(refused[0])
    assert ran(workspace) == ["lookup A-1", "refund A-1 40", "lookup A-1"]


async def test_a_resume_that_no_longer_follows_the_recording_writes_nothing(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        session_id = await waiting(workspace, store)
        before = await store.events(session_id)
        # The tool no longer needs approval: the replay would run it where it waited.
        (workspace / "system.yaml").write_text(
            SYSTEM.replace("{function: tools.py:refund, approval: required}", "tools.py:refund")
        )
        with pytest.raises(CannotResume, match="was approval_requested refund of support"):
            await resume_session(store, session_id, Verdict())
        assert await store.events(session_id) == before
        assert (await store.session(session_id)).status == "waiting_approval"
    assert ran(workspace) == ["lookup A-1"]  # the refund did not run


async def test_a_call_cut_off_when_the_run_stopped_runs_when_it_resumes(workspace: Path) -> None:
    (workspace / "both.yaml").write_text(
        TWICE.replace("name: twice", "name: both")
        .replace("tools:\n  refund:", "tools:\n  lookup: tools.py:lookup\n  refund:")
        .replace("tools: [refund]", "tools: [lookup, refund]")
        .replace(
            '- {tool: refund, args: {order_id: "A-1", amount: 40}}\n'
            '      - {tool: refund, args: {order_id: "A-1", amount: 40}}',
            '- calls: [{tool: lookup, args: {order_id: "A-1"}}, '
            '{tool: refund, args: {order_id: "A-1", amount: 40}}]',
        )
    )
    async with Store(workspace / "s.db") as store:
        session_id = await waiting(workspace, store, "both.yaml")
        # The lookup ran at the same time, and was cut off before it returned.
        assert kinds(await store.events(session_id))[-2:] == ["tool_called", "approval_requested"]
        outcome = await resume_session(store, session_id, Verdict())
    assert outcome.result.status == "completed", outcome.result.error
    returned = {e.tool: e.result for e in of_kind(outcome.result.events, ev.ToolReturned)}
    assert returned == {"lookup": "order A-1: 40 USD", "refund": "refunded 40 on A-1"}


def test_cli_a_waiting_session_survives_the_process_and_approve_resumes_it(workspace: Path) -> None:
    db = str(workspace / "s.db")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args, "--db", db], capture_output=True, text=True, timeout=60)

    run = cli("run", str(workspace / "system.yaml"), "--input", "refund A-1", "--json")
    assert run.returncode == 4, run.stderr
    session_id = json.loads(run.stdout)["session_id"]
    listed = cli("sessions", "--status", "waiting_approval", "--json")
    assert [s["session_id"] for s in json.loads(listed.stdout)] == [session_id]
    bad = cli("approve", session_id, "--edit", "[1]")
    assert bad.returncode == 2 and "--edit must be a JSON object" in bad.stderr
    approved = cli("approve", session_id[:6], "--json")
    assert approved.returncode == 0, approved.stderr
    data = json.loads(approved.stdout)
    assert data["session_id"] == session_id and data["status"] == "completed"
    assert data["approval"] == {
        "agent": "support",
        "tool": "refund",
        "args": {"order_id": "A-1", "amount": 40},
        "verdict": "approved",
        "reason": "",
        "edited_args": None,
    }
    assert data["replayed"] == {"model_calls": 2, "tool_calls": 1} and data["live"]["model_calls"] == 2
    again = cli("approve", session_id)
    assert again.returncode == 2 and "is completed, not waiting for approval" in again.stderr
    assert ran(workspace) == ["lookup A-1", "refund A-1 40"]


def test_cli_approve_deny_and_waiting_again_exit_codes(workspace: Path) -> None:
    db = str(workspace / "s.db")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args, "--db", db], capture_output=True, text=True, timeout=60)

    run = cli("run", str(workspace / "twice.yaml"), "--input", "refund", "--json")
    assert run.returncode == 4, run.stderr
    session_id = json.loads(run.stdout)["session_id"]
    assert cli("approve", session_id, "--reason", "why").returncode == 2  # --reason needs --deny
    denied = cli("approve", session_id, "--deny", "--reason", "not yet")
    assert denied.returncode == 4, denied.stderr  # the model asked again: waiting again
    assert "refund denied: not yet" in denied.stderr  # the new step lines
    assert f"playground approve {session_id}" in " ".join(denied.stdout.split())
    approved = cli("approve", session_id, "-q")
    assert approved.returncode == 0, approved.stderr
    assert "last: refunded 40 on A-1" in approved.stdout


# -- tracing ----------------------------------------------------------------------------------


def _spans(memory: Any) -> list[Any]:
    return list(memory.get_finished_spans())


@pytest.mark.parametrize("fast", [True, False], ids=["fast-spans", "sdk-tracer"])
async def test_an_approved_session_carries_on_the_trace_of_the_run_that_stopped(
    workspace: Path, fast: bool
) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    from playground.tracing.tracer import EventTracer

    def configure_tracing(exporter: InMemorySpanExporter) -> EventTracer:
        return EventTracer([SimpleSpanProcessor(exporter)], fast_spans=fast)

    async with Store(workspace / "s.db") as store:
        before = InMemorySpanExporter()
        tracer = configure_tracing(exporter=before)
        assert tracer is not None
        result = await run_session(
            load_system(workspace / "system.yaml"), "refund A-1", store=store, tracer=tracer
        )
        assert result.status == "waiting_approval"
        tracer.shutdown()
        stopped = _spans(before)
        [root] = [s for s in stopped if s.parent is None]
        # Ended as waiting, not as an interrupted or failed run.
        assert root.attributes["playground.status"] == "waiting_approval"
        assert root.status.status_code is not StatusCode.ERROR
        assert "execute_tool refund" not in {s.name for s in stopped}  # asked for, never run

        # `playground approve` is another process: another tracer.
        after = InMemorySpanExporter()
        tracer = configure_tracing(exporter=after)
        assert tracer is not None
        outcome = await resume_session(store, result.session_id, Verdict(approve=True), tracer=tracer)
        assert outcome.result.status == "completed"
        tracer.shutdown()
    resumed = _spans(after)
    by_name = {s.name: s for s in resumed}
    # One trace: the resumed root is a child of the stopped run's root.
    assert {s.context.trace_id for s in resumed} == {root.context.trace_id}
    [new_root] = [s for s in resumed if s.attributes.get("playground.resumed_after_seq") is not None]
    assert new_root.parent is not None and new_root.parent.span_id == root.context.span_id
    assert new_root.attributes["playground.resumed_after_seq"] == result.events[-1].seq
    assert new_root.status.status_code is StatusCode.OK
    # The agent that was waiting is opened again under it, and the approved call runs in it.
    support = by_name["invoke_agent support"]
    assert support.attributes["playground.resumed"] is True
    assert support.parent is not None and support.parent.span_id == new_root.context.span_id
    refund = by_name["execute_tool refund"]
    assert refund.parent is not None and refund.parent.span_id == support.context.span_id
    assert "invoke_agent notify" in by_name
    # Nothing that happened before the stop is exported again.
    assert "execute_tool lookup" not in by_name
    assert len([s for s in resumed if s.name == "execute_tool refund"]) == 1
    # Every span has a parent that was exported, in one run or the other.
    ids = {s.context.span_id for s in (*stopped, *resumed)}
    assert all(s.parent is None or s.parent.span_id in ids for s in (*stopped, *resumed))
    # Token counts live on chat spans: the two runs' add up to the session's.
    total = sum(s.attributes.get("llm.token_count.total", 0) for s in (*stopped, *resumed))
    assert total == outcome.result.tokens["input"] + outcome.result.tokens["output"]


def test_approve_traces_like_run(workspace: Path) -> None:
    db = workspace / "s.db"
    run = subprocess.run(
        [*CLI, "run", str(workspace / "system.yaml"), "--input", "refund A-1", "--json", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    session = json.loads(run.stdout)["session_id"]
    proc = subprocess.run(
        [*CLI, "approve", session, "--json", "--trace-console", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "completed"
    assert '"name": "invoke_agent notify"' in proc.stderr
    assert '"playground.resumed_after_seq"' in proc.stderr
