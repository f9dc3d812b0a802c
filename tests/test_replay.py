"""Fork and replay: recorded steps cost nothing, live steps are live, divergence is reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from playground.engine import events as ev
from playground.errors import PlaygroundError
from playground.replay import Variant, fork_session, replay_session
from playground.service import run_session
from playground.spec import load_system
from playground.store import Store
from tests.helpers import CountingFactory, example_copy, of_kind, run_started

ROOT = Path(__file__).resolve().parent.parent

COUNTING_TOOLS = '''
import pathlib
LOG = pathlib.Path(__file__).with_name("tool_calls.log")

def lookup_invoice(customer_id: str) -> str:
    """Look up an invoice."""
    with LOG.open("a") as f:
        f.write(customer_id + "\\n")
    return {"C-1": "INV-1042, 49 USD", "C-9": "INV-0977, 19 USD"}.get(customer_id, "none")
'''

SYSTEM = """
name: replayed-router
pattern: router
entry: router
tools: {lookup_invoice: tools.py:lookup_invoice}
agents:
  router:
    handoffs:
      - to: billing
        context: {customer_id: str, question: str}
      - to: general
    script:
      - match: "(?i)invoice|refund"
        handoff: billing
        context: {customer_id: "C-1", question: "{input}"}
      - handoff: general
  billing:
    tools: [lookup_invoice]
    input: {customer_id: str, question: str}
    script:
      - tool: lookup_invoice
        args: {customer_id: "{customer_id}"}
      - reply: "billing: {tool_result}"
  general:
    script: [{reply: "general: {question}"}]
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "tools.py").write_text(COUNTING_TOOLS)
    (tmp_path / "system.yaml").write_text(SYSTEM)
    return tmp_path


async def record(workspace: Path, store: Store, text: str = "refund my invoice") -> str:
    result = await run_session(load_system(workspace / "system.yaml"), text, store=store)
    assert result.status == "completed"
    (workspace / "tool_calls.log").unlink()
    return result.session_id


def tool_log(workspace: Path) -> list[str]:
    log = workspace / "tool_calls.log"
    return log.read_text().split() if log.exists() else []


async def test_fork_replays_everything_before_its_step(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        parent = await record(workspace, store)
        counting = CountingFactory()
        # Steps: 1 router call, 2 handoff, 3 billing call, 4 tool, 5 billing call.
        outcome = await fork_session(store, parent, 5, base=counting)
        parent_row = await store.session(parent)
        child_row = await store.session(outcome.result.session_id)
    assert counting.calls == ["billing"]  # only step 5 was live
    assert tool_log(workspace) == []  # the tool at step 4 was not run again
    assert outcome.replayed_calls == 2 and outcome.replayed_tools == 1
    events = outcome.result.events
    assert [e.replayed for e in of_kind(events, ev.ModelResponded)] == [True, True, False]
    assert of_kind(events, ev.ToolReturned)[0].replayed
    assert outcome.result.output == parent_row.output
    assert child_row.parent_session_id == parent and child_row.forked_from_step == 5
    assert run_started(events).parent_session_id == parent


async def test_fork_with_an_edited_handoff(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        parent = await record(workspace, store)
        counting = CountingFactory()
        outcome = await fork_session(
            store, parent, 2, edit={"customer_id": "C-9", "question": "edited"}, base=counting
        )
    handoff = of_kind(outcome.result.events, ev.HandoffDelivered)[0]
    assert handoff.payload == {"customer_id": "C-9", "question": "edited"} and handoff.edited
    assert counting.calls == ["billing", "billing"]  # the router's call came from the recording
    assert tool_log(workspace) == ["C-9"]  # after the fork, tools run live
    assert outcome.result.output == "billing: INV-0977, 19 USD"


async def test_fork_with_another_model_does_not_move_active_versions(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        parent = await record(workspace, store)
        before = await store.active_versions("replayed-router")
        counting = CountingFactory()
        outcome = await fork_session(
            store, parent, 3, variant=Variant("billing", model="scripted/b"), base=counting
        )
        after = await store.active_versions("replayed-router")
    assert before == after
    assert counting.calls == ["billing", "billing"]
    requested = [e for e in of_kind(outcome.result.events, ev.ModelRequested) if e.agent == "billing"]
    assert {e.model for e in requested} == {"scripted/b"}


async def test_fork_at_a_step_that_does_not_exist(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        parent = await record(workspace, store)
        with pytest.raises(PlaygroundError, match="has no step 99"):
            await fork_session(store, parent, 99)


async def test_replay_unchanged_makes_no_model_call(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        parent = await record(workspace, store)
        counting = CountingFactory()
        outcome = await replay_session(store, parent, base=counting)
    assert counting.calls == []
    assert tool_log(workspace) == []
    assert outcome.first_divergence is None
    assert outcome.replayed_calls == 3


async def test_counterfactual_replay_calls_only_the_changed_agent(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        parent = await record(workspace, store)
        counting = CountingFactory()
        outcome = await replay_session(
            store, parent, variant=Variant("billing", model="scripted/v2"), base=counting
        )
    assert counting.calls == ["billing", "billing"]
    data = outcome.as_json()
    assert data["parent_session_id"] == parent
    divergence = data["first_divergence"]
    assert divergence["agent"] == "billing"
    assert divergence["reason"] == "model scripted -> scripted/v2"
    assert divergence["step"] == 3


async def test_replay_onto_other_active_versions_is_refused(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        parent = await record(workspace, store)
        edited = (
            (workspace / "system.yaml").read_text().replace("general: {question}", "general v2: {question}")
        )
        (workspace / "system.yaml").write_text(edited)
        load_system(workspace / "system.yaml")
        await run_session(load_system(workspace / "system.yaml"), "hello", store=store)  # records v2
        with pytest.raises(PlaygroundError, match="active versions differ"):
            await replay_session(store, parent, current=True)
        counting = CountingFactory()
        outcome = await replay_session(store, parent, current=True, force=True, base=counting)
    # The router and billing are unchanged, so their calls still match the recording.
    assert counting.calls == [] and outcome.result.status == "completed"


def test_cli_fork_and_replay_print_the_run_contract(tmp_path: Path) -> None:
    example_copy(tmp_path, name="router.yaml")
    db = str(tmp_path / "s.db")

    def playground(*args: str) -> dict[str, Any]:
        proc = subprocess.run(
            [sys.executable, "-m", "playground.cli", *args, "--db", db, "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    first = playground("run", "router.yaml", "--input", "I was charged twice on my last invoice")
    fork = playground("fork", first["session_id"], "--at", "3", "--agent", "billing", "--model", "scripted/b")
    assert fork["parent_session_id"] == first["session_id"] and fork["forked_from_step"] == 3
    assert fork["path"] == ["router", "billing"] and fork["status"] == "completed"
    replay = playground("replay", first["session_id"], "--agent", "billing", "--model", "scripted/c")
    assert replay["first_divergence"]["agent"] == "billing"
    assert replay["replayed"] == {"model_calls": 1, "tool_calls": 0}
    assert replay["live"]["model_calls"] == 2  # billing's two calls
    assert 0 < replay["live"]["cost_usd"] < replay["cost_usd"]  # the router's call was not paid again
    assert set(first) <= set(replay)


async def test_a_fork_with_an_invalid_edit_is_refused_not_run_on_the_original(workspace: Path) -> None:
    async with Store(workspace / "s.db") as store:
        parent = await record(workspace, store)
        with pytest.raises(PlaygroundError, match="does not validate: customer_id: required field missing"):
            await fork_session(store, parent, 2, edit={"question": "no customer"})
        forks = [s for s in await store.sessions() if s.parent_session_id == parent]
    assert forks == []  # checked before the fork started: no aborted session left behind
    assert tool_log(workspace) == []
