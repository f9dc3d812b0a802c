"""playground diff: two recorded sessions compared without running anything."""

from __future__ import annotations

from pathlib import Path

from playground.diff import diff_sessions, steps_of
from playground.observe import build_session
from playground.observe.record import put_sessions
from playground.service import run_session
from playground.spec import load_system
from playground.store import Store
from tests.helpers import example_copy
from tests.test_observe import capture_spans


async def test_sessions_of_two_frameworks_side_by_side(tmp_path: Path) -> None:
    ok = build_session(capture_spans("openai-agents-openinference-handoff"))
    failed = build_session(capture_spans("langgraph-openinference-error"))
    async with Store(tmp_path / "s.db") as store:
        await put_sessions(store, [ok, failed])
        a, b = await store.session(ok.session_id), await store.session(failed.session_id)
        result = diff_sessions(a, await store.events(a.session_id), b, await store.events(b.session_id))
    assert result.same_path and not result.identical
    assert (result.a.observed, result.b.observed) == ("openai-agents", "langgraph")
    assert result.agents == ["triage", "billing"]
    assert result.a.agents["billing"].calls == 2 and result.b.agents["billing"].calls == 0
    assert result.a.agents["billing"].output.startswith("Your last invoice")
    # Both hand off to billing the same way; then billing's model answers in A and fails in B.
    a_step, b_step = result.difference()
    assert a_step is not None and b_step is not None
    assert (a_step.agent, a_step.what) == ("billing", "asked for")
    assert (b_step.agent, b_step.what, b_step.detail) == ("billing", "model call failed", "OpenAIAPIError")
    data = result.as_json()
    assert data["first_difference"]["step"] == result.first_difference + 1  # type: ignore[operator]
    assert data["delta"]["input_tokens"] == 120 - 460
    assert "first difference at step" in data["summary"]


async def test_the_same_request_twice_is_identical_but_for_costs(tmp_path: Path) -> None:
    system = load_system(example_copy(tmp_path))
    async with Store(tmp_path / "s.db") as store:
        one = await run_session(system, "Where is my invoice?", store=store)
        two = await run_session(system, "Where is my invoice?", store=store)
        other = await run_session(system, "How do I reset my password?", store=store)
        rows = [await store.session(r.session_id) for r in (one, two, other)]
        events = [await store.events(r.session_id) for r in (one, two, other)]
    same = diff_sessions(rows[0], events[0], rows[1], events[1])
    assert same.identical and same.first_difference is None and same.summary() == "same steps and outcome"
    different = diff_sessions(rows[0], events[0], rows[2], events[2])
    assert not different.same_path and different.first_difference is not None
    assert steps_of(events[0])[0].what == "started"
