"""Hostile imports, rows that do not read back, damaged and read-only stores (issue 16,
items 2, 5 and 8): nothing half-imported, no listing crashed by one bad row, no write
into a damaged file, and a way to copy out what can still be read."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from playground import bounds
from playground.errors import StoreError
from playground.service import run_session
from playground.spec import System
from playground.store import Store, doctor
from playground.store import store as store_module
from playground.store.transfer import read_export_file
from tests.helpers import system_from

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


@pytest.fixture
def system(tmp_path: Path) -> System:
    return system_from(tmp_path, FAST_ROUTER)


async def exported(system: System, db: Path) -> list[str]:
    async with Store(db) as store:
        result = await run_session(system, "hello", store=store)
        return await store.export_session(result.session_id)


async def counts(db: Path) -> tuple[int, ...]:
    with sqlite3.connect(db) as conn:
        return tuple(
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("sessions", "event_chunks", "agent_versions")
        )


def edit_session(lines: list[str], **fields: Any) -> list[str]:
    record = json.loads(lines[1])
    record["session"].update(fields)
    return [lines[0], json.dumps(record), *lines[2:]]


def edit_event(lines: list[str], index: int, **fields: Any) -> list[str]:
    events = [i for i, line in enumerate(lines) if json.loads(line).get("type") == "event"]
    at = events[index]
    record = json.loads(lines[at])
    record["event"].update(fields)
    return [*lines[:at], json.dumps(record), *lines[at + 1 :]]


HOSTILE: list[tuple[str, Callable[[list[str]], list[str]], str]] = [
    ("created_at is a word", lambda ls: edit_session(ls, created_at="yesterday"), "created_at"),
    ("cost is a word", lambda ls: edit_session(ls, cost_usd="free"), "cost_usd"),
    ("error is malformed", lambda ls: edit_session(ls, error={"oops": 1}), "error"),
    ("error is a string", lambda ls: edit_session(ls, error="boom"), "error"),
    ("a 100k-character id", lambda ls: edit_session(ls, session_id="x" * 100_000), "session_id"),
    ("input is an object", lambda ls: edit_session(ls, input={"a": 1}), "input"),
    ("a negative cost", lambda ls: edit_session(ls, cost_usd=-1), "cost_usd"),
    ("tokens beyond SQLite", lambda ls: edit_session(ls, input_tokens=2**70), "beyond what the store holds"),
    ("a seq of 2**70", lambda ls: edit_event(ls, -1, seq=2**70), "beyond what the store holds"),
    ("an event of another session", lambda ls: edit_event(ls, 0, session_id="other"), "an event of session"),
    ("an event of unknown kind", lambda ls: edit_event(ls, -1, kind="teleported"), "not a valid event"),
    ("a control character in an id", lambda ls: edit_session(ls, system="a\x00b"), "system"),
    (
        "100k-deep JSON",
        lambda ls: [*ls, '{"type": "event", "event": ' + "[" * 100_000 + "]" * 100_000 + "}"],
        bounds.JSON_DEPTH.env,
    ),
    ("a line that is not JSON", lambda ls: [*ls[:2], "{not json", *ls[2:]], "line 3: not JSON"),
    ("an unknown record type", lambda ls: [*ls, json.dumps({"type": "virus"})], "unknown record type"),
    (
        "a version whose spec is not an agent",
        lambda ls: [
            json.dumps({**json.loads(line), "spec": {"model": 5}})
            if json.loads(line).get("type") == "agent_version"
            else line
            for line in ls
        ],
        "not a valid agent",
    ),
]


@pytest.mark.parametrize(("what", "mutate", "expected"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_a_hostile_import_is_refused_whole_and_the_store_stays_readable(
    tmp_path: Path, system: System, what: str, mutate: Callable[[list[str]], list[str]], expected: str
) -> None:
    lines = await exported(system, tmp_path / "a.db")
    target = tmp_path / "b.db"
    async with Store(target) as store:
        await run_session(system, "already here", store=store)
    before = await counts(target)
    async with Store(target) as store:
        with pytest.raises(StoreError) as caught:
            await store.import_session(mutate(lines))
        assert expected in str(caught.value)
        assert len(str(caught.value)) < 1000
        rows = await store.sessions()
    assert [r.input for r in rows] == ["already here"]
    assert await counts(target) == before


async def test_an_import_that_fails_at_its_last_line_writes_nothing(tmp_path: Path, system: System) -> None:
    lines = await exported(system, tmp_path / "a.db")
    target = tmp_path / "b.db"
    async with Store(target) as store:
        with pytest.raises(StoreError):
            await store.import_session(edit_event(lines, -1, kind="teleported"))
    assert await counts(target) == (0, 0, 0)
    async with Store(target) as store:
        row = await store.import_session(lines)
        assert row.status == "completed" and row.input == "hello"


def test_an_import_file_is_read_no_further_than_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StoreError, match=bounds.IMPORT_BYTES.env):
        read_export_file("/dev/zero")
    big = tmp_path / "big.jsonl"
    big.write_text("x" * 5000)
    monkeypatch.setenv(bounds.IMPORT_BYTES.env, "4096")
    with pytest.raises(StoreError, match="4,096 bytes"):
        read_export_file(str(big))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"format": "x"}\n\xff\n')
    with pytest.raises(StoreError, match="line 2: not UTF-8"):
        read_export_file(str(bad))


BAD_ROWS = {
    "created_at": "'yesterday'",
    "cost_usd": "'free'",
    "error": "'{not json'",
    "path": "'[1, 2'",
    "totals": '\'{"a": {"calls": "many"}}\'',
}


@pytest.mark.parametrize("column", sorted(BAD_ROWS))
async def test_a_stored_row_that_does_not_read_back_is_listed_as_unreadable(
    tmp_path: Path, system: System, column: str
) -> None:
    db = tmp_path / "s.db"
    async with Store(db) as store:
        good = await run_session(system, "good", store=store)
        bad = await run_session(system, "bad", store=store)
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"UPDATE sessions SET {column} = {BAD_ROWS[column]} WHERE session_id = ?", (bad.session_id,)
        )
    async with Store(db) as store:
        rows = {r.session_id: r for r in await store.sessions()}
        assert rows[good.session_id].status == "completed"
        unreadable = rows[bad.session_id]
        assert unreadable.status == "unreadable" and unreadable.problem is not None
        assert column in unreadable.problem
        with pytest.raises(StoreError, match=f"session {bad.session_id} .* cannot be read: {column}"):
            await store.session(bad.session_id)
        assert (await store.session(good.session_id)).input == "good"


async def test_an_event_of_an_unknown_kind_is_a_clear_error_not_a_crash(
    tmp_path: Path, system: System
) -> None:
    db = tmp_path / "s.db"
    async with Store(db) as store:
        result = await run_session(system, "hello", store=store)
    with sqlite3.connect(db) as conn:
        (data,) = conn.execute(
            "SELECT data FROM event_chunks WHERE session_id = ?", (result.session_id,)
        ).fetchone()
        events = json.loads(data)
        events[2]["kind"] = "teleported"
        conn.execute(
            "UPDATE event_chunks SET data = ? WHERE session_id = ?", (json.dumps(events), result.session_id)
        )
    async with Store(db) as store:
        with pytest.raises(StoreError, match="event 3 is of kind 'teleported'"):
            await store.events(result.session_id)
        readable, problems = await store.readable_events(result.session_id)
    assert len(readable) == len(events) - 1 and len(problems) == 1


def damage(db: Path, seed: int = 1) -> None:
    """4 KB of random bytes written into the middle of the file, as the issue measured."""
    data = bytearray(db.read_bytes())
    middle = len(data) // 2
    rnd = random.Random(seed)
    data[middle : middle + 4096] = bytes(rnd.getrandbits(8) for _ in range(4096))
    db.write_bytes(bytes(data))


async def damaged_store(tmp_path: Path, system: System) -> tuple[Path, set[str]]:
    db = tmp_path / "s.db"
    async with Store(db) as store:
        ids = {
            (await run_session(system, f"request {i} " + "x" * 400, store=store)).session_id
            for i in range(200)
        }
    damage(db)
    return db, ids


async def test_a_damaged_store_is_read_but_never_written(tmp_path: Path, system: System) -> None:
    db, ids = await damaged_store(tmp_path, system)
    lines = await exported(system, tmp_path / "other.db")
    async with Store(db) as store:
        assert store.damaged is not None
        rows = await store.sessions(limit=1000)
        assert 0 < len(rows) <= len(ids) and {r.session_id for r in rows} <= ids
        with pytest.raises(StoreError, match=r"is damaged .* playground doctor --db"):
            await run_session(system, "one more", store=store)
        with pytest.raises(StoreError, match="is damaged"):
            await store.import_session(lines)
        with pytest.raises(StoreError, match="is damaged"):
            await store.snapshot("fast", "s1")
    assert doctor.check(db).problems


async def test_doctor_copies_what_can_be_read_into_a_sound_store(tmp_path: Path, system: System) -> None:
    db, ids = await damaged_store(tmp_path, system)
    health = doctor.check(db)
    assert not health.ok
    saved = doctor.salvage(db, tmp_path / "saved.db")
    assert 0 < saved.copied["sessions"] <= len(ids)
    assert saved.copied["sessions"] + saved.lost["sessions"] <= len(ids)
    assert doctor.check(tmp_path / "saved.db").ok
    async with Store(tmp_path / "saved.db") as store:
        assert store.damaged is None
        rows = await store.sessions(limit=1000)
        assert len(rows) == saved.copied["sessions"] and {r.session_id for r in rows} <= ids
        assert all(r.problem is None for r in rows)
        await run_session(system, "writes again", store=store)
    with pytest.raises(StoreError, match="exists"):
        doctor.salvage(db, tmp_path / "saved.db")


async def test_doctor_on_a_sound_store(tmp_path: Path, system: System) -> None:
    db = tmp_path / "s.db"
    async with Store(db) as store:
        await run_session(system, "hello", store=store)
    health = doctor.check(db)
    assert health.ok and health.rows["sessions"] == 1 and health.schema_version == store_module.SCHEMA_VERSION
    with pytest.raises(StoreError, match="not a SQLite database"):
        (tmp_path / "junk.db").write_text("junk" * 1000)
        doctor.check(tmp_path / "junk.db")


async def test_a_read_only_store_is_read_and_writes_are_refused(
    tmp_path: Path, system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "s.db"
    async with Store(db) as store:
        result = await run_session(system, "hello", store=store)
    # Tests run as root here, where no permission bit stops a write: ask the store to open
    # read-only as it would for a file it may not write.
    monkeypatch.setattr(store_module, "_why_read_only", lambda path: "the file is not writable")
    async with Store(db) as store:
        assert store.read_only == "the file is not writable"
        assert [r.session_id for r in await store.sessions()] == [result.session_id]
        assert len(await store.events(result.session_id)) == len(result.events)
        assert (await store.export_session(result.session_id))[0].startswith("{")
        with pytest.raises(StoreError, match="read-only"):
            await run_session(system, "more", store=store)
