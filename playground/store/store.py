"""The session store: one SQLite file, through aiosqlite.

Schema version policy: ``PRAGMA user_version`` holds the schema version. A
store from an older version is migrated forward in place when opened; a store
from a newer version is refused with a clear message rather than misread.

Writes go through one batched writer: the runtime hands events to
:meth:`Store.sink` without waiting, and the writer commits whatever has
accumulated in one transaction. An awaited aiosqlite statement costs ~40 µs,
so one row per transaction would dominate a scripted run. Each batch is
committed as soon as the writer wakes, so a crash loses at most the step in
flight; a session left ``running`` by a dead process shows as ``interrupted``
the next time the store opens.

Events are stored in chunks: each batch writes one ``event_chunks`` row per session,
a JSON array of that session's events in the batch, in ``seq`` order. With a model
that answers at once a batch holds whole runs; with a real model it holds a step or
two. The ``events`` view shows them one row per event (``session_id, seq, kind,
agent, step, ts, data``) for anyone reading the file with plain SQL.

Secrets: values of environment variables whose names look like keys
(``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ...) are scrubbed from everything
written, in case a model or a tool echoes one.

Session export format (:meth:`Store.export_session`): JSON Lines. The first
line is a header, ``{"format": "playground-session", "format_version": N,
"exported_at": ISO-8601, "session_id": ..., "agent_versions": count,
"events": count}``; then one ``{"type": "session", "session": {...}}`` line
(the session row), one ``{"type": "agent_version", ...}`` line per agent
version the session ran with (its canonical spec, so another store can replay
it), and one ``{"type": "event", "event": {...}}`` line per stored event, in
order. Version policy: adding record types or optional fields keeps
``format_version``; anything an older reader would misread (a renamed or
re-typed field, a record it must not skip) bumps it. A reader refuses a file
with a newer ``format_version`` than :data:`EXPORT_FORMAT_VERSION` and reads
every older one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import orjson
from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json

from playground.engine.events import EVENT_ADAPTER, Event, TokenDelta
from playground.errors import StoreError

SCHEMA_VERSION = 4
"""1: sessions, events, versions, snapshots. 2: + comparisons. 3: + file_versions (the
version of each agent last loaded from its file). 4: events are stored in chunks
(``event_chunks``, one row per session per written batch) and ``events`` becomes a view
over them; opening an older store moves its events over."""

EXPORT_FORMAT = "playground-session"
EXPORT_FORMAT_VERSION = 1
"""The session export format this playground writes and the newest it reads."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    system TEXT NOT NULL,
    system_path TEXT NOT NULL DEFAULT '',
    correlation_id TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT NOT NULL DEFAULT '',
    error TEXT,
    path TEXT NOT NULL DEFAULT '[]',
    versions TEXT NOT NULL DEFAULT '{}',
    totals TEXT NOT NULL DEFAULT '{}',
    cost_usd REAL NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms REAL NOT NULL DEFAULT 0,
    parent_session_id TEXT,
    forked_from_step INTEGER,
    created_at REAL NOT NULL,
    finished_at REAL,
    pid INTEGER,
    host TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_system ON sessions (system, created_at);
CREATE TABLE IF NOT EXISTS event_chunks (
    session_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    events INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (session_id, first_seq)
);
CREATE TABLE IF NOT EXISTS agent_versions (
    system TEXT NOT NULL,
    agent TEXT NOT NULL,
    version_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    source TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    PRIMARY KEY (system, agent, version_id)
);
CREATE TABLE IF NOT EXISTS active_versions (
    system TEXT NOT NULL,
    agent TEXT NOT NULL,
    version_id TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (system, agent)
);
CREATE TABLE IF NOT EXISTS version_log (
    entry_id INTEGER PRIMARY KEY,
    system TEXT NOT NULL,
    agent TEXT NOT NULL,
    action TEXT NOT NULL,
    from_version TEXT,
    to_version TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    system TEXT NOT NULL,
    name TEXT NOT NULL,
    versions TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (system, name)
);
CREATE TABLE IF NOT EXISTS file_versions (
    system TEXT NOT NULL,
    agent TEXT NOT NULL,
    version_id TEXT NOT NULL,
    PRIMARY KEY (system, agent)
);
CREATE TABLE IF NOT EXISTS comparisons (
    comparison_id TEXT PRIMARY KEY,
    system TEXT NOT NULL,
    agent TEXT NOT NULL,
    created_at REAL NOT NULL,
    report TEXT NOT NULL
);
"""

_SECRET_NAME = re.compile(r"(API_?KEY|_KEY$|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of environment variables that look like credentials (8+ characters)."""
    env = os.environ if environ is None else environ
    return sorted(
        {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 8}, key=len, reverse=True
    )


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text


_INSERT_CHUNK = (
    "INSERT INTO event_chunks (session_id, first_seq, last_seq, events, data) VALUES (?, ?, ?, ?, ?)"
)

_EVENTS_VIEW = """
CREATE VIEW IF NOT EXISTS events AS
SELECT c.session_id AS session_id,
       json_extract(e.value, '$.seq') AS seq,
       json_extract(e.value, '$.kind') AS kind,
       json_extract(e.value, '$.agent') AS agent,
       json_extract(e.value, '$.step') AS step,
       json_extract(e.value, '$.ts') AS ts,
       e.value AS data
FROM event_chunks AS c, json_each(c.data) AS e
"""
"""One row per event, as stored before schema 4: for reading the store with plain SQL."""

_EVENT_LIST: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


def _json_text(value: Any) -> str:
    """JSON of plain data; what the fast path refuses (a lone surrogate from a tool, an
    object a custom controller put in an event) is kept, escaped or as its ``str``."""
    try:
        return to_json(value).decode()
    except ValueError:
        return json.dumps(value, ensure_ascii=True, default=str, separators=(",", ":"))


_PACK_EVERY = 64
"""Queued events are serialised in groups of this many."""


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Consecutive events of one session, serialised as one JSON array."""

    session_id: str
    first_seq: int
    last_seq: int
    count: int
    data: str

    @classmethod
    def of(cls, session_id: str, events: list[Event]) -> _Chunk:
        # Events hold plain JSON types: serialising their fields directly, many in one call,
        # reads back identically; orjson does it in 0.33 µs an event, pydantic-core's to_json
        # in 1.1 and model_dump_json in ~5, with the same bytes as to_json (measured).
        try:
            data = orjson.dumps([e.__dict__ for e in events]).decode()
        except TypeError:  # orjson.JSONEncodeError: e.g. a lone surrogate from a tool
            data = _json_text([e.__dict__ for e in events])
        return cls(session_id, events[0].seq, events[-1].seq, len(events), data)

    @staticmethod
    def row(parts: list[_Chunk], secrets: list[str]) -> tuple[Any, ...]:
        """One ``event_chunks`` row from consecutive chunks of one session."""
        data = parts[0].data if len(parts) == 1 else "[" + ",".join(p.data[1:-1] for p in parts) + "]"
        if secrets:
            data = scrub(data, secrets)
        first, last = parts[0], parts[-1]
        return (first.session_id, first.first_seq, last.last_seq, sum(p.count for p in parts), data)


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    params: tuple[Any, ...]


@dataclass(frozen=True)
class SessionRow:
    """One session as listed by the store."""

    session_id: str
    system: str
    system_path: str
    correlation_id: str
    status: str
    input: str
    output: str
    error: dict[str, Any] | None
    path: list[str]
    versions: dict[str, str]
    totals: dict[str, Any]
    cost_usd: float
    input_tokens: int
    output_tokens: int
    latency_ms: float
    parent_session_id: str | None
    forked_from_step: int | None
    created_at: float
    finished_at: float | None

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> SessionRow:
        return cls(
            session_id=row["session_id"],
            system=row["system"],
            system_path=row["system_path"],
            correlation_id=row["correlation_id"],
            status=row["status"],
            input=row["input"],
            output=row["output"],
            error=json.loads(row["error"]) if row["error"] else None,
            path=json.loads(row["path"]),
            versions=json.loads(row["versions"]),
            totals=json.loads(row["totals"]),
            cost_usd=row["cost_usd"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            latency_ms=row["latency_ms"],
            parent_session_id=row["parent_session_id"],
            forked_from_step=row["forked_from_step"],
            created_at=row["created_at"],
            finished_at=row["finished_at"],
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "system": self.system,
            "status": self.status,
            "input": self.input,
            "output": self.output,
            "path": self.path,
            "error": self.error,
            "cost_usd": self.cost_usd,
            "tokens": {"input": self.input_tokens, "output": self.output_tokens},
            "latency_ms": self.latency_ms,
            "correlation_id": self.correlation_id,
            "versions": self.versions,
            "parent_session_id": self.parent_session_id,
            "forked_from_step": self.forked_from_step,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "per_agent": self.totals,
        }


@dataclass(frozen=True)
class VersionRow:
    """One stored version of one agent."""

    version_id: str
    agent: str
    created_at: float
    source: str
    """``file`` (recorded when a system file was loaded) or ``operator`` (an edit)."""
    note: str
    active: bool
    """Whether the agent's active pointer is on this version."""

    def as_json(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "agent": self.agent,
            "created_at": self.created_at,
            "source": self.source,
            "note": self.note,
            "active": self.active,
        }


@dataclass(frozen=True)
class SnapshotRow:
    """A named set of versions, one per agent of a system."""

    name: str
    versions: dict[str, str]
    created_at: float

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "versions": self.versions, "created_at": self.created_at}


@dataclass(frozen=True)
class VersionLogEntry:
    """One move of an agent's active pointer."""

    entry_id: int
    agent: str
    action: str
    """``recorded`` (a new version became active), ``activated``, ``rollback`` or ``restore``."""
    from_version: str | None
    to_version: str
    note: str
    created_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "agent": self.agent,
            "action": self.action,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "note": self.note,
            "created_at": self.created_at,
        }


_MIN_PREFIX = 4
# Columns of a session row that travel in an export (pid and host belong to the machine).
_SESSION_EXPORT_COLUMNS = (
    "session_id",
    "system",
    "system_path",
    "correlation_id",
    "status",
    "input",
    "output",
    "error",
    "path",
    "versions",
    "totals",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "parent_session_id",
    "forked_from_step",
    "created_at",
    "finished_at",
)
_SESSION_JSON_COLUMNS = frozenset({"error", "path", "versions", "totals"})
_SESSION_REQUIRED = frozenset({"session_id", "system", "correlation_id", "status", "input", "created_at"})


def default_db_path() -> Path:
    """``PLAYGROUND_DB``, else ``sessions/playground.db`` in the current directory."""
    return Path(os.environ.get("PLAYGROUND_DB") or Path("sessions") / "playground.db")


class Store:
    """The SQLite store. Use as ``async with Store(path) as store:``.

    Args:
        path: The database file; its folder is created if missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._pending: list[_Statement | _Chunk] = []
        """Queued for the writer: statements, and events already packed into chunks."""
        self._events: list[Event] = []
        """Events not packed yet."""
        self._new_sessions: dict[str, dict[str, Any]] = {}
        """Session rows not written yet, by id: a run that ends before the writer's turn
        writes its row once, finished."""
        self._host = socket.gethostname()
        self._woken = False
        """Whether the writer was woken and has not yet taken the queue."""
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._secrets = secret_values()
        self._write_error: BaseException | None = None
        self._tx = asyncio.Lock()
        """Held by whoever has a transaction open on the one connection."""
        self.token = secrets.token_hex(8)
        """Identifies this store object in caches (``id()`` is reused after garbage collection)."""
        self.generation = 0
        """Bumped whenever this store changes agent versions (invalidates cached active specs)."""

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path)
        except (OSError, aiosqlite.Error) as exc:
            raise StoreError(f"cannot open the store {str(self.path)!r}: {exc}") from None
        db = self._db
        db.row_factory = aiosqlite.Row
        try:
            await db.execute("PRAGMA busy_timeout = 5000")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await self._migrate()
            await self._mark_interrupted()
        except aiosqlite.DatabaseError as exc:
            await db.close()
            self._db = None
            raise StoreError(f"{str(self.path)!r} is not a playground store: {exc}") from None
        except BaseException:  # a store from a newer playground: close it, or its thread outlives the loop
            await db.close()
            self._db = None
            raise
        self._writer = asyncio.create_task(self._write_loop(), name="playground-store-writer")

    async def _migrate(self) -> None:
        db = self.db
        async with db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{str(self.path)!r} was written by a newer playground (store schema {version}; "
                f"this one reads up to {SCHEMA_VERSION}). Upgrade the playground, or use another --db."
            )
        if version < SCHEMA_VERSION:
            await db.execute("BEGIN IMMEDIATE")
            for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                await db.execute(statement)
            async with db.execute("SELECT type FROM sqlite_master WHERE name = 'events'") as cursor:
                found = await cursor.fetchone()
            if found is not None and found[0] == "table":  # schema 1-3: one row per event
                await self._move_events_to_chunks()
            await db.execute(_EVENTS_VIEW)
            await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            await db.commit()

    async def _move_events_to_chunks(self) -> None:
        """Schema 3 -> 4: each session's events (one row each) become one chunk, in ``seq`` order."""
        db = self.db
        rows: list[tuple[Any, ...]] = []
        session: str | None = None
        seqs: list[int] = []
        parts: list[str] = []

        def close_chunk() -> None:
            if session is not None:
                rows.append((session, seqs[0], seqs[-1], len(seqs), "[" + ",".join(parts) + "]"))

        async with db.execute("SELECT session_id, seq, data FROM events ORDER BY session_id, seq") as cursor:
            async for session_id, seq, data in cursor:
                if session_id != session:
                    close_chunk()
                    session, seqs, parts = session_id, [], []
                seqs.append(seq)
                parts.append(data)
                if len(rows) >= 256:
                    await db.executemany(_INSERT_CHUNK, rows)
                    rows = []
        close_chunk()
        await db.executemany(_INSERT_CHUNK, rows)
        await db.execute("DROP TABLE events")

    async def _mark_interrupted(self) -> None:
        db = self.db
        host = socket.gethostname()
        async with db.execute("SELECT session_id, pid, host FROM sessions WHERE status = 'running'") as cur:
            rows = list(await cur.fetchall())
        dead = [r["session_id"] for r in rows if r["host"] != host or not _alive(r["pid"])]
        if dead:
            await db.executemany(
                "UPDATE sessions SET status = 'interrupted' WHERE session_id = ?", [(s,) for s in dead]
            )
            await db.commit()

    async def close(self) -> None:
        if self._db is None:
            return
        try:
            await self.flush()
        finally:
            self._closing = True
            self._wake.set()
            if self._writer is not None:
                await self._writer
            await self._db.close()
            self._db = None

    # -- writing events --------------------------------------------------------------------

    def sink(self, event: Event) -> None:
        """Queue one event for writing (never waits). Token deltas are not stored."""
        if type(event) is TokenDelta:  # the cheapest test: this runs for every event of every run
            return
        events = self._events
        if events and (event.session_id != events[0].session_id or len(events) >= _PACK_EVERY):
            try:
                self._pack()
            except Exception as exc:  # never into the run that emitted the event; flush() reports it
                self._write_error = exc
            events = self._events
        events.append(event)
        if not self._woken:
            self._wake_writer()

    async def flush(self) -> None:
        """Wait until every queued event is committed."""
        while self._has_work() or not self._idle.is_set():
            await self._idle.wait()
            if self._has_work() and self._idle.is_set():
                self._idle.clear()
                self._wake.set()
        if self._write_error is not None:
            error, self._write_error = self._write_error, None
            raise StoreError(f"writing to the store failed: {error}")

    async def _write_loop(self) -> None:
        db = self.db
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._woken = False
            try:
                self._pack()
                batch, self._pending = self._pending, []
                sessions, self._new_sessions = self._new_sessions, {}
                if batch or sessions:
                    async with self._tx:
                        try:
                            await self._write(db, batch, sessions)
                        except BaseException:
                            await db.rollback()
                            raise
            except Exception as exc:  # keep the run going and the writer alive; flush() reports it
                self._write_error = exc
            finally:
                if self._has_work():  # queued during the write, or left by a failed pack
                    self._wake.set()
                else:
                    self._idle.set()
            if self._closing and not self._has_work():
                return

    def _has_work(self) -> bool:
        return bool(self._pending or self._events or self._new_sessions)

    def _wake_writer(self) -> None:
        if not self._woken:
            self._woken = True
            self._idle.clear()
            self._wake.set()

    def _pack(self) -> None:
        """Serialise the queued events (consecutive events of one session) into a chunk.

        Done as events arrive (every :data:`_PACK_EVERY`, or when another session's event
        comes), not only when the writer gets a turn: a run with instant models never
        waits, and thousands of live event objects waiting for the writer cost more in
        garbage collection than writing them.
        """
        events, self._events = self._events, []
        if events:
            self._pending.append(_Chunk.of(events[0].session_id, events))

    async def _write(
        self, db: aiosqlite.Connection, batch: list[_Statement | _Chunk], sessions: dict[str, dict[str, Any]]
    ) -> None:
        """Write one batch in one transaction: new session rows, the statements in order (runs
        of the same statement in one call), then each session's events in the batch as one
        ``event_chunks`` row.

        Each awaited call waits for the connection's thread, and while a run keeps the
        event loop busy that thread gets the GIL only every few milliseconds: the fewer
        calls per batch, the more of the writing happens while the run goes on.

        A row per event cost ~4.5 µs in SQLite (~25 µs per agent hop); a chunk costs a
        fraction of that, and SQLite works on it with the GIL released, so the run goes on.
        Within one transaction the order of statements and chunks does not matter.
        """
        shapes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for row in sessions.values():
            shapes.setdefault(tuple(row), []).append(tuple(row.values()))
        for columns, rows in shapes.items():
            await db.executemany(
                f"INSERT INTO sessions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows
            )
        chunks: dict[str, list[_Chunk]] = {}
        run: list[_Statement] = []
        for item in [*batch, None]:
            if run and (not isinstance(item, _Statement) or item.sql != run[0].sql):
                await db.executemany(run[0].sql, [statement.params for statement in run])
                run = []
            if isinstance(item, _Statement):
                run.append(item)
            elif item is not None:
                chunks.setdefault(item.session_id, []).append(item)
        if chunks:
            secrets = self._secrets
            await db.executemany(_INSERT_CHUNK, [_Chunk.row(parts, secrets) for parts in chunks.values()])
        await db.commit()

    def _queue(self, sql: str, params: tuple[Any, ...]) -> None:
        self._pending.append(_Statement(sql, params))
        self._wake_writer()

    # -- sessions ----------------------------------------------------------------------------

    async def begin_session(
        self,
        *,
        session_id: str,
        system: str,
        system_path: str,
        correlation_id: str,
        input: str,
        versions: dict[str, str],
        parent_session_id: str | None = None,
        forked_from_step: int | None = None,
    ) -> None:
        """Queue the session row (status ``running``), written with its first events."""
        self._new_sessions[session_id] = {
            "session_id": session_id,
            "system": system,
            "system_path": system_path,
            "correlation_id": correlation_id,
            "status": "running",
            "input": scrub(input, self._secrets),
            "versions": to_json(versions).decode(),
            "parent_session_id": parent_session_id,
            "forked_from_step": forked_from_step,
            "created_at": time.time(),
            "pid": os.getpid(),
            "host": self._host,
        }
        self._wake_writer()

    async def finish_session(self, result: Any) -> None:
        """Queue a run's outcome (a :class:`playground.engine.RunResult`), written after its events.

        Does not wait for the disk: reads from this store flush first, and closing it flushes.
        """
        data = result.as_json()
        outcome = {
            "status": data["status"],
            "output": scrub(data["output"], self._secrets),
            "error": scrub(json.dumps(data["error"]), self._secrets) if data["error"] else None,
            "path": to_json(data["path"]).decode(),
            "totals": to_json(data["per_agent"]).decode(),
            "cost_usd": data["cost_usd"],
            "input_tokens": data["tokens"]["input"],
            "output_tokens": data["tokens"]["output"],
            "latency_ms": data["latency_ms"],
            "finished_at": time.time(),
        }
        new = self._new_sessions.get(result.session_id)
        if new is not None:  # not written yet: write it once, finished
            new.update(outcome)
            self._wake_writer()
            return
        self._queue(
            f"UPDATE sessions SET {', '.join(f'{column} = ?' for column in outcome)} WHERE session_id = ?",
            (*outcome.values(), result.session_id),
        )

    async def sessions(
        self,
        *,
        system: str | None = None,
        status: str | None = None,
        since: float | None = None,
        limit: int = 50,
    ) -> list[SessionRow]:
        """Sessions, newest first."""
        await self.flush()
        where: list[str] = []
        params: list[Any] = []
        if system:
            where.append("system = ?")
            params.append(system)
        if status:
            where.append("status = ?")
            params.append(status)
        if since:
            where.append("created_at >= ?")
            params.append(since)
        sql = "SELECT * FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC LIMIT ?"
        async with self.db.execute(sql, (*params, limit)) as cursor:
            return [SessionRow.from_row(r) for r in await cursor.fetchall()]

    async def session(self, session_id: str) -> SessionRow:
        """One session by id or unique id prefix."""
        await self.flush()
        async with self.db.execute(
            "SELECT * FROM sessions WHERE session_id LIKE ? ORDER BY created_at DESC LIMIT 2",
            (session_id.replace("%", "").replace("_", "") + "%",),
        ) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            raise StoreError(f"no session {session_id!r} in {str(self.path)!r}")
        if len(rows) > 1 and rows[0]["session_id"] != session_id:
            raise StoreError(f"{session_id!r} names more than one session; give more of its id")
        return SessionRow.from_row(rows[0])

    async def events(self, session_id: str) -> list[Event]:
        """A session's stored events, in order."""
        await self.flush()
        async with self.db.execute(
            "SELECT data FROM event_chunks WHERE session_id = ? ORDER BY first_seq", (session_id,)
        ) as cursor:
            rows = await cursor.fetchall()
        events: list[Event] = []
        for row in rows:
            try:
                events.extend(_EVENT_LIST.validate_json(row[0]))
            except ValidationError:  # pydantic's parser refuses a lone surrogate, json takes it
                events.extend(_EVENT_LIST.validate_python(json.loads(row[0])))
        return events

    # -- agent versions ----------------------------------------------------------------------

    async def record_versions(
        self,
        system: str,
        specs: dict[str, str],
        *,
        source: str = "file",
        note: str = "",
        activate: bool | None = None,
    ) -> dict[str, str]:
        """Record each agent spec (canonical JSON by agent name) whose content is new.

        Args:
            source: ``file`` (loaded from a system file) or ``operator`` (an edit).
            note: Kept with each new version and its log entry.
            activate: ``None`` (loading a file): a new version becomes active, a known one
                leaves the active pointer where an operator put it, so a rollback survives
                re-running the same file. ``True`` (an operator's edit): every given agent
                is pointed at its spec, new or known. ``False`` (a fork's variant): record
                only, move no pointer.

        Returns:
            Agent name to its active version id.
        """
        from playground.spec.identity import version_id_of_json

        db = self.db
        wanted = {agent: version_id_of_json(spec_json) for agent, spec_json in specs.items()}
        async with self._tx:  # read and decide inside the lock: concurrent loads must not race
            async with db.execute(
                "SELECT agent, version_id FROM agent_versions WHERE system = ?", (system,)
            ) as cursor:
                known = {(r[0], r[1]) for r in await cursor.fetchall()}
            active = await self.active_versions(system)
            last_file: dict[str, str] = {}
            if activate is None:
                async with db.execute(
                    "SELECT agent, version_id FROM file_versions WHERE system = ?", (system,)
                ) as cursor:
                    last_file = {r[0]: r[1] for r in await cursor.fetchall()}
            new = [a for a, vid in wanted.items() if (a, vid) not in known]
            if activate is False:
                moved: list[str] = []
            elif activate:
                moved = [a for a in wanted if a not in new and active.get(a) != wanted[a]]
            else:
                # The file's content changed since it was last loaded (edited, or reverted to an
                # older version): it becomes active. Unchanged: the pointer stays where an
                # operator put it, so a rollback survives re-running the same file.
                moved = [
                    a
                    for a in wanted
                    if a not in new and active.get(a) != wanted[a] and last_file.get(a) != wanted[a]
                ]
            file_changed = [a for a in wanted if last_file.get(a) != wanted[a]] if activate is None else []
            if not new and not moved and not file_changed:
                return active
            now = time.time()
            await self._record(
                db,
                system,
                wanted,
                specs,
                new,
                moved,
                active,
                source,
                note,
                now,
                activate is not False,
                file_changed,
            )
        self.generation += 1
        return await self.active_versions(system)

    async def _record(
        self,
        db: aiosqlite.Connection,
        system: str,
        wanted: dict[str, str],
        specs: dict[str, str],
        new: list[str],
        moved: list[str],
        active: dict[str, str],
        source: str,
        note: str,
        now: float,
        activate_new: bool,
        file_changed: list[str],
    ) -> None:
        await db.execute("BEGIN IMMEDIATE")
        try:
            for agent in file_changed:
                await db.execute(
                    "INSERT OR REPLACE INTO file_versions (system, agent, version_id) VALUES (?, ?, ?)",
                    (system, agent, wanted[agent]),
                )
            for agent in new:
                await db.execute(
                    "INSERT OR IGNORE INTO agent_versions (system, agent, version_id, spec, source, note,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (system, agent, wanted[agent], specs[agent], source, note, now),
                )
            for agent in [*(new if activate_new else ()), *moved]:
                await db.execute(
                    "INSERT OR REPLACE INTO active_versions (system, agent, version_id, updated_at)"
                    " VALUES (?, ?, ?, ?)",
                    (system, agent, wanted[agent], now),
                )
                await db.execute(
                    "INSERT INTO version_log (system, agent, action, from_version, to_version, note,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        system,
                        agent,
                        "recorded" if agent in new else "activated",
                        active.get(agent),
                        wanted[agent],
                        note,
                        now,
                    ),
                )
            await db.commit()
        except BaseException:
            await db.rollback()
            raise

    async def active_versions(self, system: str) -> dict[str, str]:
        async with self.db.execute(
            "SELECT agent, version_id FROM active_versions WHERE system = ?", (system,)
        ) as cursor:
            return {r[0]: r[1] for r in await cursor.fetchall()}

    async def version_spec(self, system: str, agent: str, version: str) -> str:
        """The canonical JSON of one version."""
        async with self.db.execute(
            "SELECT spec FROM agent_versions WHERE system = ? AND agent = ? AND version_id = ?",
            (system, agent, version),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise StoreError(f"no version {version!r} of agent {agent!r} of {system!r}")
        return str(row[0])

    # -- versions: listing, rollback, snapshots ---------------------------------------------

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction on the connection, holding the lock every transaction holds."""
        db = self.db
        async with self._tx:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.rollback()
                raise
            await db.commit()

    async def versions(self, system: str, agent: str | None = None) -> list[VersionRow]:
        """Stored versions of a system's agents (or of one agent), newest first."""
        sql = (
            "SELECT v.agent, v.version_id, v.source, v.note, v.created_at,"
            " a.version_id IS NOT NULL AS active FROM agent_versions v"
            " LEFT JOIN active_versions a"
            " ON a.system = v.system AND a.agent = v.agent AND a.version_id = v.version_id"
            " WHERE v.system = ?"
        )
        params: tuple[Any, ...] = (system,)
        if agent is not None:
            sql += " AND v.agent = ?"
            params = (system, agent)
        sql += " ORDER BY v.created_at DESC, v.agent, v.version_id"
        async with self.db.execute(sql, params) as cursor:
            return [
                VersionRow(
                    version_id=r["version_id"],
                    agent=r["agent"],
                    created_at=r["created_at"],
                    source=r["source"],
                    note=r["note"],
                    active=bool(r["active"]),
                )
                for r in await cursor.fetchall()
            ]

    async def resolve_version(self, system: str, agent: str, prefix: str) -> str:
        """The full id of the version of ``agent`` that ``prefix`` names, as git resolves a commit.

        ``prefix`` is a whole version id, a unique prefix of one (at least 4 characters), or
        ``active`` (the agent's active version).

        Raises:
            StoreError: No version, or more than one, matches.
        """
        name = prefix.strip()
        if name == "active":
            active = (await self.active_versions(system)).get(agent)
            if active is None:
                raise StoreError(f"agent {agent!r} of {system!r} has no active version in the store")
            return active
        rows = await self.versions(system, agent)
        if not rows:
            agents = sorted({r.agent for r in await self.versions(system)})
            known = f" (agents with versions: {', '.join(agents)})" if agents else ""
            raise StoreError(f"{system!r} has no versions of agent {agent!r} in {str(self.path)!r}{known}")
        exact = [r for r in rows if r.version_id == name]
        if exact:
            return exact[0].version_id
        if len(name) < _MIN_PREFIX:
            raise StoreError(f"give at least {_MIN_PREFIX} characters of a version id, not {prefix!r}")
        matches = [r for r in rows if r.version_id.startswith(name.lower())]
        if not matches:
            raise StoreError(
                f"agent {agent!r} of {system!r} has no version {prefix!r}; "
                f"list them with: playground versions SYSTEM.yaml --agent {agent}"
            )
        if len(matches) > 1:
            listed = ", ".join(
                f"{r.version_id} ({r.source}{', active' if r.active else ''})" for r in matches
            )
            raise StoreError(
                f"{prefix!r} names {len(matches)} versions of {agent!r}: {listed}; give more of its id"
            )
        return matches[0].version_id

    async def rollback(self, system: str, agent: str, version: str, note: str = "") -> tuple[str | None, str]:
        """Point ``agent`` at an earlier (or any stored) version. Nothing is deleted.

        Args:
            version: A version id, a unique prefix of one, or ``active``.

        Returns:
            The version it was on and the version it is on now (equal when nothing moved).
        """
        target = await self.resolve_version(system, agent, version)
        async with self._transaction() as db:
            async with db.execute(
                "SELECT version_id FROM active_versions WHERE system = ? AND agent = ?", (system, agent)
            ) as cursor:
                row = await cursor.fetchone()
            current: str | None = row[0] if row else None
            if current == target:
                return current, target
            await self._move(db, system, agent, "rollback", current, target, note, time.time())
        self.generation += 1
        return current, target

    async def _move(
        self,
        db: aiosqlite.Connection,
        system: str,
        agent: str,
        action: str,
        current: str | None,
        target: str,
        note: str,
        now: float,
    ) -> None:
        await db.execute(
            "INSERT OR REPLACE INTO active_versions (system, agent, version_id, updated_at)"
            " VALUES (?, ?, ?, ?)",
            (system, agent, target, now),
        )
        await db.execute(
            "INSERT INTO version_log (system, agent, action, from_version, to_version, note, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (system, agent, action, current, target, note, now),
        )

    async def snapshot(self, system: str, name: str, *, replace: bool = False) -> dict[str, str]:
        """Name the current active version of every agent of ``system``.

        Raises:
            StoreError: The system has no active versions, or the name is taken and
                ``replace`` is false.

        Returns:
            Agent name to version id, as recorded.
        """
        if not name.strip():
            raise StoreError("a snapshot needs a name")
        async with self._transaction() as db:
            async with db.execute(
                "SELECT agent, version_id FROM active_versions WHERE system = ? ORDER BY agent", (system,)
            ) as cursor:
                versions = {r[0]: r[1] for r in await cursor.fetchall()}
            if not versions:
                raise StoreError(
                    f"{system!r} has no agent versions in {str(self.path)!r}: load or run it first"
                )
            async with db.execute(
                "SELECT created_at FROM snapshots WHERE system = ? AND name = ?", (system, name)
            ) as cursor:
                taken = await cursor.fetchone()
            if taken is not None and not replace:
                raise StoreError(
                    f"{system!r} already has a snapshot {name!r} (taken {_when(taken[0])}); "
                    "choose another name, or replace it (--replace)"
                )
            await db.execute(
                "INSERT OR REPLACE INTO snapshots (system, name, versions, created_at) VALUES (?, ?, ?, ?)",
                (system, name, json.dumps(versions), time.time()),
            )
        return versions

    async def snapshots(self, system: str) -> list[SnapshotRow]:
        """A system's snapshots, newest first."""
        async with self.db.execute(
            "SELECT name, versions, created_at FROM snapshots WHERE system = ?"
            " ORDER BY created_at DESC, name",
            (system,),
        ) as cursor:
            return [
                SnapshotRow(name=r["name"], versions=json.loads(r["versions"]), created_at=r["created_at"])
                for r in await cursor.fetchall()
            ]

    async def restore_snapshot(self, system: str, name: str) -> dict[str, tuple[str | None, str]]:
        """Roll every agent of a snapshot back to its version, in one transaction.

        Agents added to the system after the snapshot keep their active version.

        Returns:
            Each agent that moved, with the version it was on and the one it is on now.
        """
        changes: dict[str, tuple[str | None, str]] = {}
        async with self._transaction() as db:
            async with db.execute(
                "SELECT versions FROM snapshots WHERE system = ? AND name = ?", (system, name)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                async with db.execute(
                    "SELECT name FROM snapshots WHERE system = ? ORDER BY created_at DESC", (system,)
                ) as cursor:
                    names = [r[0] for r in await cursor.fetchall()]
                known = f" (its snapshots: {', '.join(names)})" if names else " (it has none)"
                raise StoreError(f"{system!r} has no snapshot {name!r}{known}")
            wanted: dict[str, str] = json.loads(row[0])
            async with db.execute(
                "SELECT agent, version_id FROM active_versions WHERE system = ?", (system,)
            ) as cursor:
                active = {r[0]: r[1] for r in await cursor.fetchall()}
            now = time.time()
            for agent, target in sorted(wanted.items()):
                if active.get(agent) != target:
                    await self._move(
                        db, system, agent, "restore", active.get(agent), target, f"snapshot {name}", now
                    )
                    changes[agent] = (active.get(agent), target)
        if changes:
            self.generation += 1
        return changes

    async def version_log(self, system: str, agent: str | None = None) -> list[VersionLogEntry]:
        """The moves of a system's active pointers (or one agent's), newest first."""
        sql = "SELECT * FROM version_log WHERE system = ?"
        params: tuple[Any, ...] = (system,)
        if agent is not None:
            sql += " AND agent = ?"
            params = (system, agent)
        async with self.db.execute(sql + " ORDER BY entry_id DESC", params) as cursor:
            return [
                VersionLogEntry(
                    entry_id=r["entry_id"],
                    agent=r["agent"],
                    action=r["action"],
                    from_version=r["from_version"],
                    to_version=r["to_version"],
                    note=r["note"],
                    created_at=r["created_at"],
                )
                for r in await cursor.fetchall()
            ]

    # -- export and import -------------------------------------------------------------------

    async def export_session(self, session_id: str) -> list[str]:
        """A session as JSON Lines (the format is described at the top of this module).

        ``session_id`` may be a unique prefix. Secrets are scrubbed again on the way out.
        """
        found = await self.session(session_id)  # flushes, resolves a prefix
        async with self.db.execute(
            f"SELECT {', '.join(_SESSION_EXPORT_COLUMNS)} FROM sessions WHERE session_id = ?",
            (found.session_id,),
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        session = {
            column: (json.loads(row[column]) if row[column] else None)
            if column in _SESSION_JSON_COLUMNS
            else row[column]
            for column in _SESSION_EXPORT_COLUMNS
        }
        versions: list[str] = []
        for agent, vid in sorted(found.versions.items()):
            async with self.db.execute(
                "SELECT spec, source, note, created_at FROM agent_versions"
                " WHERE system = ? AND agent = ? AND version_id = ?",
                (found.system, agent, vid),
            ) as cursor:
                v = await cursor.fetchone()
            if v is not None:
                record = {
                    "type": "agent_version",
                    "system": found.system,
                    "agent": agent,
                    "version_id": vid,
                    "source": v["source"],
                    "note": v["note"],
                    "created_at": v["created_at"],
                    "spec": json.loads(v["spec"]),
                }
                versions.append(json.dumps(record, ensure_ascii=False))
        async with self.db.execute(
            "SELECT e.value FROM event_chunks AS c, json_each(c.data) AS e"
            " WHERE c.session_id = ? ORDER BY c.first_seq, e.key",
            (found.session_id,),
        ) as cursor:
            # The stored JSON of each event goes out byte for byte.
            events = ['{"type":"event","event":' + r[0] + "}" for r in await cursor.fetchall()]
        header = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "session_id": found.session_id,
            "agent_versions": len(versions),
            "events": len(events),
        }
        lines = [
            json.dumps(header),
            json.dumps({"type": "session", "session": session}, ensure_ascii=False),
            *versions,
            *events,
        ]
        secrets = self._secrets
        return [scrub(line, secrets) for line in lines] if secrets else lines

    async def import_session(self, lines: Iterable[str]) -> SessionRow:
        """Import a session exported by :meth:`export_session`, with its versions and events.

        Agent versions the store already has are kept as they are; active pointers do not
        move. A session that was still running when exported is imported as ``interrupted``.

        Raises:
            StoreError: The text is not a session export, is from a newer format version,
                is inconsistent, or its session is already in this store.
        """
        from playground.spec.identity import canonical_json, version_id_of_json

        header, records = _parse_export(lines)
        sessions = [r for n, r in records if r["type"] == "session"]
        if len(sessions) != 1:
            raise StoreError(f"a session export holds exactly one session record, this one {len(sessions)}")
        session = sessions[0].get("session")
        if not isinstance(session, dict):
            raise StoreError("the session record has no 'session' object")
        unknown = sorted(set(session) - set(_SESSION_EXPORT_COLUMNS))
        missing = sorted(_SESSION_REQUIRED - set(session))
        if unknown or missing:
            what = f"unknown fields {unknown}" if unknown else f"missing fields {missing}"
            raise StoreError(f"the session record has {what}")
        session_id = str(session["session_id"])
        columns = [c for c in _SESSION_EXPORT_COLUMNS if c in session]
        values: list[Any] = []
        for column in columns:
            value = session[column]
            if column in _SESSION_JSON_COLUMNS:
                value = json.dumps(value) if value is not None else (None if column == "error" else "{}")
            elif column == "status" and value == "running":
                value = "interrupted"  # nothing runs it here
            values.append(value)

        version_rows: list[tuple[Any, ...]] = []
        event_rows: list[tuple[Any, ...]] = []
        for n, record in records:
            kind = record["type"]
            if kind == "agent_version":
                try:
                    spec = canonical_json(record["spec"])
                    vid = str(record["version_id"])
                    row = (
                        str(record["system"]),
                        str(record["agent"]),
                        vid,
                        spec,
                        str(record.get("source", "file")),
                        str(record.get("note", "")),
                        float(record["created_at"]),
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    raise StoreError(f"line {n}: a malformed agent version ({exc!r})") from None
                if version_id_of_json(spec) != vid:
                    raise StoreError(
                        f"line {n}: the spec of version {vid} of {row[1]!r} does not hash to its id "
                        "(was the file edited?)"
                    )
                version_rows.append(row)
            elif kind == "event":
                try:
                    event = EVENT_ADAPTER.validate_python(record["event"])
                except (KeyError, ValueError) as exc:
                    raise StoreError(f"line {n}: not a valid event: {str(exc).splitlines()[0]}") from None
                if event.session_id != session_id:
                    raise StoreError(f"line {n}: an event of session {event.session_id}, not {session_id}")
                event_rows.append((event.seq, record["event"]))
        expected = header.get("events")
        if isinstance(expected, int) and expected != len(event_rows):
            raise StoreError(
                f"the file is incomplete: its header announces {expected} events, it holds {len(event_rows)}"
            )
        event_rows.sort(key=lambda row: row[0])
        repeated = sorted({a[0] for a, b in itertools.pairwise(event_rows) if a[0] == b[0]})
        if repeated:
            raise StoreError(f"the session export is inconsistent: events {repeated} appear more than once")

        await self.flush()
        try:
            async with self._transaction() as db:
                async with db.execute("SELECT 1 FROM sessions WHERE session_id = ?", (session_id,)) as cur:
                    if await cur.fetchone() is not None:
                        raise StoreError(
                            f"session {session_id} is already in {str(self.path)!r}; nothing was imported"
                        )
                await db.executemany(
                    "INSERT OR IGNORE INTO agent_versions (system, agent, version_id, spec, source, note,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    version_rows,
                )
                await db.execute(
                    f"INSERT INTO sessions ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                    tuple(values),
                )
                if event_rows:
                    await db.execute(
                        _INSERT_CHUNK,
                        (
                            session_id,
                            event_rows[0][0],
                            event_rows[-1][0],
                            len(event_rows),
                            _json_text([data for _, data in event_rows]),
                        ),
                    )
        except aiosqlite.IntegrityError as exc:
            raise StoreError(f"the session export is inconsistent: {exc}") from None
        if version_rows:
            self.generation += 1
        return await self.session(session_id)

    # -- comparisons ---------------------------------------------------------------------------

    async def save_comparison(
        self, system: str, agent: str, report: dict[str, Any], *, comparison_id: str | None = None
    ) -> str:
        """Store a comparison report; returns its id (a new random one unless given)."""
        comparison_id = comparison_id or "c" + secrets.token_hex(5)
        self._queue(
            "INSERT INTO comparisons (comparison_id, system, agent, created_at, report)"
            " VALUES (?, ?, ?, ?, ?)",
            (comparison_id, system, agent, time.time(), scrub(json.dumps(report), self._secrets)),
        )
        await self.flush()
        return comparison_id

    async def comparisons(self, system: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Stored comparisons, newest first: id, system, agent, created_at and the summary."""
        await self.flush()
        sql = "SELECT comparison_id, system, agent, created_at, report FROM comparisons"
        params: tuple[Any, ...] = ()
        if system:
            sql += " WHERE system = ?"
            params = (system,)
        async with self.db.execute(sql + " ORDER BY created_at DESC LIMIT ?", (*params, limit)) as cursor:
            rows = await cursor.fetchall()
        out = []
        for row in rows:
            report = json.loads(row["report"])
            out.append(
                {
                    "comparison_id": row["comparison_id"],
                    "system": row["system"],
                    "agent": row["agent"],
                    "created_at": row["created_at"],
                    "a": report["a"]["label"],
                    "b": report["b"]["label"],
                    "summary": report["summary"],
                }
            )
        return out

    async def comparison(self, comparison_id: str) -> dict[str, Any]:
        """One stored comparison report, by id or unique prefix."""
        await self.flush()
        async with self.db.execute(
            "SELECT comparison_id, report FROM comparisons WHERE comparison_id LIKE ? LIMIT 2",
            (comparison_id.replace("%", "").replace("_", "") + "%",),
        ) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            raise StoreError(f"no comparison {comparison_id!r} in {str(self.path)!r}")
        if len(rows) > 1:
            raise StoreError(f"{comparison_id!r} names more than one comparison; give more of its id")
        report: dict[str, Any] = json.loads(rows[0]["report"])
        report["comparison_id"] = rows[0]["comparison_id"]
        return report


def _parse_export(lines: Iterable[str]) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]:
    """The header and the records of a session export, each record with its line number."""
    header: dict[str, Any] | None = None
    records: list[tuple[int, dict[str, Any]]] = []
    not_ours = StoreError(
        "not a playground session export: its first line is not a "
        f'{{"format": "{EXPORT_FORMAT}", ...}} header'
    )
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            if header is None:
                raise not_ours from None
            raise StoreError(f"line {n}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            if header is None:
                raise not_ours
            raise StoreError(f"line {n}: a record is a JSON object")
        if header is None:
            if data.get("format") != EXPORT_FORMAT:
                raise not_ours
            version = data.get("format_version")
            if not isinstance(version, int) or version < 1:
                raise StoreError(f"the session export names no valid format_version ({version!r})")
            if version > EXPORT_FORMAT_VERSION:
                raise StoreError(
                    f"this session file is format version {version}, written by a newer playground; "
                    f"this one reads format version {EXPORT_FORMAT_VERSION} and older. "
                    "Upgrade the playground to import it."
                )
            header = data
            continue
        if data.get("type") not in ("session", "agent_version", "event"):
            raise StoreError(f"line {n}: unknown record type {data.get('type')!r}")
        records.append((n, data))
    if header is None:
        raise not_ours
    return header, records


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
