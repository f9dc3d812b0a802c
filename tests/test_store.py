"""The store: round-trips in tmp_path, crash safety, versions, secrets."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from playground.engine import events as ev
from playground.errors import StoreError
from playground.service import run_session
from playground.spec import load_system
from playground.store import SCHEMA_VERSION, Store
from tests.helpers import run_killed_when, run_started, system_from, write_system

ROOT = Path(__file__).resolve().parent.parent
ROUTER = ROOT / "agents" / "support_router.yaml"

FAST_ROUTER = """
name: fast
pattern: router
entry: a
agents:
  a:
    handoffs: [{to: b}]
    script: [{handoff: b}]
  b:
    script: [{reply: "b says {question}"}]
"""


async def test_a_run_and_all_its_events_are_stored(tmp_path: Path) -> None:
    system = system_from(tmp_path, FAST_ROUTER)
    async with Store(tmp_path / "s.db") as store:
        result = await run_session(system, "hello", store=store)
        row = await store.session(result.session_id)
        events = await store.events(result.session_id)
    assert row.status == "completed"
    assert row.path == ["a", "b"]
    assert row.output == "b says hello"
    assert row.correlation_id == result.correlation_id
    assert set(row.versions) == {"a", "b"}
    assert row.input_tokens == result.tokens["input"]
    assert [e.model_dump() for e in events] == [e.model_dump() for e in result.events]


async def test_session_prefix_lookup_and_filters(tmp_path: Path) -> None:
    system = system_from(tmp_path, FAST_ROUTER)
    async with Store(tmp_path / "s.db") as store:
        first = await run_session(system, "one", store=store)
        await run_session(system, "two", store=store)
        assert (await store.session(first.session_id[:8])).session_id == first.session_id
        assert len(await store.sessions(system="fast")) == 2
        assert await store.sessions(system="other") == []
        assert len(await store.sessions(status="completed")) == 2
        with pytest.raises(StoreError, match="no session"):
            await store.session("zzzz")


async def test_events_are_stored_in_chunks_and_read_one_by_one_through_the_view(tmp_path: Path) -> None:
    system = system_from(tmp_path, FAST_ROUTER)
    async with Store(tmp_path / "s.db") as store:
        results = [await run_session(system, f"q{i}", store=store) for i in range(3)]
    with sqlite3.connect(tmp_path / "s.db") as conn:
        chunks = conn.execute("SELECT session_id, first_seq, last_seq, events FROM event_chunks").fetchall()
        view = conn.execute("SELECT session_id, seq, kind, agent, step, ts FROM events").fetchall()
    stored = sum(len([e for e in r.events if e.kind != "token_delta"]) for r in results)
    assert sum(count for *_, count in chunks) == stored
    assert len(chunks) < stored  # events share rows
    expected = {
        (e.session_id, e.seq, e.kind, e.agent, e.step, e.ts) for r in results for e in r.events if e.seq
    }
    assert set(view) == expected


async def test_a_schema_3_store_with_one_row_per_event_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    system = system_from(tmp_path, FAST_ROUTER)
    async with Store(db) as store:
        results = [await run_session(system, f"q{i}", store=store) for i in range(3)]
        before = [[e.model_dump() for e in await store.events(r.session_id)] for r in results]
    # Turn it back into a schema 3 store: an events table, one row per event, written in
    # an order that is not the sessions' (rows of concurrent runs interleave).
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT session_id, seq, kind, agent, step, ts, data FROM events").fetchall()
        conn.execute("DROP VIEW events")
        conn.execute("DROP TABLE event_chunks")
        conn.execute(
            "CREATE TABLE events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,"
            " agent TEXT, step INTEGER, ts REAL NOT NULL, data TEXT NOT NULL)"
        )
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows[::-1])
        conn.execute("PRAGMA user_version = 3")
    async with Store(db) as store:
        after = [[e.model_dump() for e in await store.events(r.session_id)] for r in results]
        again = await run_session(system, "again", store=store)
        assert [e.kind for e in await store.events(again.session_id)][-1] == "run_finished"
    assert after == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        kinds = {row[0]: row[1] for row in conn.execute("SELECT name, type FROM sqlite_master")}
    assert kinds["events"] == "view" and kinds["event_chunks"] == "table"


async def test_a_schema_4_store_without_the_scenario_columns_opens_and_gets_them(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    system = system_from(tmp_path, FAST_ROUTER)
    async with Store(db) as store:
        old = await run_session(system, "before", store=store)
    # Turn it back into a schema 4 store: a sessions table without the scenario columns.
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE sessions DROP COLUMN scenario")
        conn.execute("ALTER TABLE sessions DROP COLUMN scenario_file")
        conn.execute("PRAGMA user_version = 4")
    async with Store(db) as store:
        row = await store.session(old.session_id)
        assert row.status == "completed" and row.scenario is None and row.scenario_file is None
        new = await run_session(
            system, "after", store=store, scenario="one case", scenario_file="cases.scenarios.yaml"
        )
        rows = {r.session_id: r for r in await store.sessions()}
    assert rows[new.session_id].scenario == "one case"
    assert rows[new.session_id].scenario_file == "cases.scenarios.yaml"
    assert rows[old.session_id].as_json()["scenario"] is None
    assert rows[new.session_id].as_json()["scenario"] == {"name": "one case", "file": "cases.scenarios.yaml"}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION

    # An export carries the scenario, and leaves the fields out for other runs (an older
    # playground, which does not know them, still imports those); an import keeps them.
    async with Store(db) as store:
        plain = await store.export_session(old.session_id)
        scenario = await store.export_session(new.session_id)
    assert json.loads(plain[1])["session"].keys().isdisjoint({"scenario", "scenario_file"}), plain[1]
    assert json.loads(scenario[1])["session"]["scenario"] == "one case"
    async with Store(tmp_path / "other.db") as other:
        await other.import_session(scenario)
        assert (await other.session(new.session_id)).scenario == "one case"


CONCURRENT = FAST_ROUTER.replace("entry: a\n", "entry: a\nscripted: {latency_ms: 5}\n")
"""The fast router with model latency, so sessions running at once interleave."""


async def test_sessions_running_at_once_read_back_each_in_order(tmp_path: Path) -> None:
    system = system_from(tmp_path, CONCURRENT)
    async with Store(tmp_path / "s.db") as store:
        results = await asyncio.gather(*(run_session(system, f"q{i}", store=store) for i in range(6)))
        for result in results:
            stored = await store.events(result.session_id)
            live = [e for e in result.events if e.kind != "token_delta"]
            assert [e.model_dump() for e in stored] == [e.model_dump() for e in live]
    with sqlite3.connect(tmp_path / "s.db") as conn:
        # The sessions' events interleaved in the batches, so a session has several chunks.
        assert conn.execute("SELECT count(*) FROM event_chunks").fetchone()[0] > len(results)


async def test_an_event_with_a_lone_surrogate_is_kept_and_exported(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text('def t(x: str) -> str:\n    return "broken \\ud800 text"\n')
    system = system_from(
        tmp_path,
        """
        name: odd
        pattern: router
        entry: a
        agents:
          a:
            tools: [t]
            handoffs: [{to: b}]
            script:
              - tool: t
                args: {x: "1"}
              - handoff: b
          b: {script: [{reply: done}]}
        tools: {t: tools.py:t}
        """,
    )
    async with Store(tmp_path / "a.db") as a, Store(tmp_path / "b.db") as b:
        result = await run_session(system, "go", store=a)
        lines = await a.export_session(result.session_id)
        assert any("\\ud800" in line for line in lines)
        await b.import_session(lines)
        assert (await b.export_session(result.session_id))[1:] == lines[1:]
        returned = [e for e in await b.events(result.session_id) if e.kind == "tool_returned"]
        assert returned[0].result == "broken \ud800 text"


async def test_the_writer_keeps_up_while_instant_sessions_run_back_to_back(tmp_path: Path) -> None:
    # Instant runs never wait, and a busy event loop starves the connection's thread of
    # the GIL (measured: a single statement waited seconds): without service.make_way
    # nothing would reach the disk until the flush.
    system = system_from(tmp_path, FAST_ROUTER)
    async with Store(tmp_path / "s.db") as store:
        for i in range(300):
            await run_session(system, f"q{i}", store=store)
        with sqlite3.connect(tmp_path / "s.db") as conn:
            written = conn.execute("SELECT count(*) FROM sessions WHERE status = 'completed'").fetchone()[0]
        assert written > 0, "nothing was written while the sessions ran"
        assert len(await store.sessions(limit=1000)) == 300


async def test_a_newer_store_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with Store(db):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer playground"):
        async with Store(db):
            pass


async def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    db.write_text("this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a playground store"):
        async with Store(db):
            pass


async def test_api_keys_never_reach_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-test-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    system = system_from(tmp_path, FAST_ROUTER.replace('"b says {question}"', '"leaked {question}"'))
    async with Store(tmp_path / "s.db") as store:
        result = await run_session(system, f"my key is {key}", store=store)
        assert key in result.output  # the model echoed it...
    raw = (tmp_path / "s.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("s.db-*"))
    assert key.encode() not in raw  # ...but the store never saw it
    async with Store(tmp_path / "s.db") as store:
        row = await store.session(result.session_id)
    assert "[redacted]" in row.output and "[redacted]" in row.input


async def test_versions_are_recorded_once_and_rollback_survives_rerun(tmp_path: Path) -> None:
    path = write_system(tmp_path, FAST_ROUTER)
    async with Store(tmp_path / "s.db") as store:
        v1 = run_started((await run_session(load_system(path), "x", store=store)).events).versions
        write_system(tmp_path, FAST_ROUTER.replace("b says", "b now says"))
        v2 = run_started((await run_session(load_system(path), "x", store=store)).events).versions
        assert v1["a"] == v2["a"] and v1["b"] != v2["b"]
        # Point b back at its first version, as a rollback does, and run the edited file again.
        await store.db.execute("UPDATE active_versions SET version_id = ? WHERE agent = 'b'", (v1["b"],))
        await store.db.commit()
        result = await run_session(load_system(path), "x", store=store)
    assert run_started(result.events).versions["b"] == v1["b"]
    assert result.output == "b says x"


SLOW = """
name: slow
pattern: router
entry: a
scripted: {latency_ms: 400}
agents:
  a:
    tools: [t]
    handoffs: [{to: b}]
    script:
      - tool: t
        args: {x: "1"}
      - tool: t
        args: {x: "2"}
      - tool: t
        args: {x: "3"}
      - handoff: b
  b: {script: [{reply: done}]}
tools: {t: tools.py:t}
"""


def test_kill_9_loses_at_most_the_step_in_flight(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text("def t(x: str) -> str:\n    return x\n")
    path = write_system(tmp_path, SLOW)
    status, kinds = run_killed_when(path, tmp_path / "s.db", "tool_returned")
    assert status == "interrupted"
    # Everything up to the first tool result was committed before the kill.
    assert kinds[:6] == [
        "run_started",
        "agent_started",
        "model_requested",
        "model_responded",
        "tool_called",
        "tool_returned",
    ]
    assert "run_finished" not in kinds


async def test_an_active_version_that_no_longer_fits_the_file_is_refused(tmp_path: Path) -> None:
    from playground.errors import PlaygroundError
    from playground.spec.identity import canonical_spec
    from playground.spec.models import HandoffSpec

    system = system_from(tmp_path, FAST_ROUTER)
    b = system.spec.agents["b"]
    stale = b.model_copy(update={"handoffs": [HandoffSpec(to="ghost")]})
    async with Store(tmp_path / "s.db") as store:
        await run_session(system, "x", store=store)
        await store.record_versions("fast", {"b": canonical_spec(stale)}, source="operator", activate=True)
        with pytest.raises(PlaygroundError, match="needs agents ghost that this system file no longer has"):
            await run_session(system, "x", store=store)


SLOW_TOOL = """
name: slow
pattern: router
entry: a
tools: {wait: tools.py:wait}
agents:
  a:
    tools: [wait]
    handoffs: [{to: b}]
    script:
      - tool: wait
        args: {seconds: 1.0}
      - handoff: b
  b:
    script: [{reply: "done"}]
"""


async def test_a_cancelled_run_leaves_its_row_aborted_with_its_events(tmp_path: Path) -> None:
    """Ctrl-C (the task cancelled) mid-run: the ``run_failed`` event the engine records on
    cancellation makes the row ``aborted`` itself, not ``running`` until the next open."""
    (tmp_path / "tools.py").write_text(
        "import time\n\ndef wait(seconds: float) -> str:\n    time.sleep(seconds)\n    return 'waited'\n"
    )
    system = system_from(tmp_path, SLOW_TOOL)
    called = asyncio.Event()

    def watch(event: ev.Event) -> None:
        if isinstance(event, ev.ToolCalled):
            called.set()

    async with Store(tmp_path / "s.db") as store:
        task = asyncio.create_task(run_session(system, "hello", store=store, live=[watch]))
        await asyncio.wait_for(called.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [row] = await store.sessions()
        events = await store.events(row.session_id)
    assert row.status == "aborted"
    assert row.error is not None and row.error["type"] == "aborted"
    assert row.path == ["a"] and row.finished_at is not None
    assert isinstance(events[0], ev.RunStarted)
    assert "tool_called" in [e.kind for e in events]
    failed = events[-1]
    assert isinstance(failed, ev.RunFailed) and failed.status == "aborted"
    assert row.latency_ms == round(failed.latency_ms or 0, 3) > 0
    async with Store(tmp_path / "s.db") as store:  # reopening does not call it interrupted
        assert (await store.session(row.session_id)).status == "aborted"


FAILING = """
name: failing
pattern: router
entry: a
agents:
  a:
    handoffs: [{to: b, context: {question: str}}]
    script:
      - handoff: b
        context: {nope: 1}
      - handoff: b
        context: {nope: 2}
      - handoff: b
        context: {nope: 3}
  b:
    script: [{reply: "b"}]
"""


@pytest.mark.parametrize("text", [FAST_ROUTER, FAILING], ids=["completed", "failed"])
async def test_the_session_row_says_what_the_run_events_say(tmp_path: Path, text: str) -> None:
    system = system_from(tmp_path, text)
    async with Store(tmp_path / "s.db") as store:
        result = await run_session(system, "hello", store=store)
        row = await store.session(result.session_id)
    started, last = result.events[0], result.events[-1]
    assert isinstance(started, ev.RunStarted) and isinstance(last, ev.RunFinished | ev.RunFailed)
    assert (row.system, row.system_path, row.correlation_id, row.input, row.versions) == (
        started.system,
        started.system_path,
        started.correlation_id,
        started.input,
        started.versions,
    )
    assert started.system_path == system.spec.path != ""
    assert (row.parent_session_id, row.forked_from_step) == (
        started.parent_session_id,
        started.forked_from_step,
    )
    assert (row.created_at, row.finished_at) == (started.ts, last.ts)
    assert row.path == last.path
    assert {name: t for name, t in row.totals.items() if t["calls"]} == last.totals
    assert row.input_tokens == sum(t["tokens"]["input"] for t in last.totals.values())
    assert row.output_tokens == sum(t["tokens"]["output"] for t in last.totals.values())
    assert row.cost_usd == pytest.approx(sum(t["cost_usd"] for t in last.totals.values()))
    assert last.latency_ms is not None and row.latency_ms == round(last.latency_ms, 3)
    if isinstance(last, ev.RunFinished):
        assert (row.status, row.output, row.error) == ("completed", last.output, None)
    else:
        assert row.status == last.status == "failed" and row.output == ""
        assert row.error is not None
        assert (row.error["type"], row.error["message"]) == (last.error_type, last.message)
        assert (row.error["origin"], row.error["manifested"]) == (last.origin, last.manifested)
    # and what ``run --json`` says agrees with both
    data = result.as_json()
    assert (data["status"], data["path"], data["latency_ms"]) == (row.status, row.path, row.latency_ms)
    assert data["per_agent"] == row.totals
