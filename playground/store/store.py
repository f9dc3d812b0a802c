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

Secrets: values of environment variables whose names look like keys
(``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ...) are scrubbed from everything
written, in case a model or a tool echoes one.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
from pydantic_core import to_json

from playground.engine.events import EVENT_ADAPTER
from playground.errors import StoreError

SCHEMA_VERSION = 1

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
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    agent TEXT,
    step INTEGER,
    ts REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
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


_INSERT_EVENT = (
    "INSERT OR REPLACE INTO events (session_id, seq, kind, agent, step, ts, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


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
        self._pending: list[Any] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._secrets = secret_values()
        self._write_error: BaseException | None = None
        self._tx = asyncio.Lock()
        """Held by whoever has a transaction open on the one connection."""
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
            await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            await db.commit()

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
        await self.flush()
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            await self._writer
        await self._db.close()
        self._db = None

    # -- writing events --------------------------------------------------------------------

    def sink(self, event: Any) -> None:
        """Queue one event for writing (never waits). Token deltas are not stored."""
        if event.kind == "token_delta":
            return
        self._pending.append(event)
        if not self._wake.is_set():
            self._idle.clear()
            self._wake.set()

    async def flush(self) -> None:
        """Wait until every queued event is committed."""
        while self._pending or not self._idle.is_set():
            await self._idle.wait()
            if self._pending and self._idle.is_set():
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
            batch, self._pending = self._pending, []
            if batch:
                try:
                    async with self._tx:
                        await self._write(db, batch)
                except aiosqlite.Error as exc:  # keep the run going; surface it at flush
                    self._write_error = exc
            if not self._pending:
                self._idle.set()
            if self._closing and not self._pending:
                return

    async def _write(self, db: aiosqlite.Connection, batch: list[Any]) -> None:
        """Write one batch (events and session statements, in order) in one transaction."""
        secrets = self._secrets
        rows: list[tuple[Any, ...]] = []
        for item in batch:
            if isinstance(item, _Statement):
                if rows:
                    await db.executemany(_INSERT_EVENT, rows)
                    rows = []
                await db.execute(item.sql, item.params)
                continue
            # Events hold plain JSON types; serialising their fields directly is ~4x
            # faster than model_dump_json and reads back identically.
            data = to_json(item.__dict__).decode()
            if secrets:
                data = scrub(data, secrets)
            rows.append((item.session_id, item.seq, item.kind, item.agent, item.step, item.ts, data))
        if rows:
            await db.executemany(_INSERT_EVENT, rows)
        await db.commit()

    def _queue(self, sql: str, params: tuple[Any, ...]) -> None:
        self._pending.append(_Statement(sql, params))
        if not self._wake.is_set():
            self._idle.clear()
            self._wake.set()

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
        """Queue the session row (status ``running``); the writer stores it before its events."""
        self._queue(
            "INSERT INTO sessions (session_id, system, system_path, correlation_id, status, input,"
            " versions, parent_session_id, forked_from_step, created_at, pid, host)"
            " VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
            (
                session_id,
                system,
                system_path,
                correlation_id,
                scrub(input, self._secrets),
                json.dumps(versions),
                parent_session_id,
                forked_from_step,
                time.time(),
                os.getpid(),
                socket.gethostname(),
            ),
        )

    async def finish_session(self, result: Any) -> None:
        """Queue a run's outcome (a :class:`playground.engine.RunResult`), written after its events.

        Does not wait for the disk: reads from this store flush first, and closing it flushes.
        """
        data = result.as_json()
        self._queue(
            "UPDATE sessions SET status = ?, output = ?, error = ?, path = ?, totals = ?, cost_usd = ?,"
            " input_tokens = ?, output_tokens = ?, latency_ms = ?, finished_at = ? WHERE session_id = ?",
            (
                data["status"],
                scrub(data["output"], self._secrets),
                scrub(json.dumps(data["error"]), self._secrets) if data["error"] else None,
                json.dumps(data["path"]),
                json.dumps(data["per_agent"]),
                data["cost_usd"],
                data["tokens"]["input"],
                data["tokens"]["output"],
                data["latency_ms"],
                time.time(),
                result.session_id,
            ),
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

    async def events(self, session_id: str) -> list[Any]:
        """A session's stored events, in order."""
        await self.flush()
        async with self.db.execute(
            "SELECT data FROM events WHERE session_id = ? ORDER BY seq", (session_id,)
        ) as cursor:
            rows = await cursor.fetchall()
        return [EVENT_ADAPTER.validate_json(r[0]) for r in rows]

    # -- agent versions ----------------------------------------------------------------------

    async def record_versions(
        self, system: str, specs: dict[str, str], *, source: str = "file", note: str = ""
    ) -> dict[str, str]:
        """Record each agent spec (canonical JSON by agent name) whose content is new.

        A new version becomes active; a known one leaves the active pointer where an
        operator put it (so a rollback survives re-running the same file).

        Returns:
            Agent name to its active version id.
        """
        from playground.engine.runtime import version_id_of_json

        db = self.db
        wanted = {agent: version_id_of_json(spec_json) for agent, spec_json in specs.items()}
        async with db.execute(
            "SELECT agent, version_id FROM agent_versions WHERE system = ?", (system,)
        ) as cursor:
            known = {(r[0], r[1]) for r in await cursor.fetchall()}
        active = await self.active_versions(system)
        new = [a for a, vid in wanted.items() if (a, vid) not in known]
        unset = [a for a in wanted if a not in active and a not in new]
        if not new and not unset:
            return active
        now = time.time()
        async with self._tx:
            await self._record(db, system, wanted, specs, new, unset, active, source, note, now)
        self.generation += 1
        return await self.active_versions(system)

    async def _record(
        self,
        db: aiosqlite.Connection,
        system: str,
        wanted: dict[str, str],
        specs: dict[str, str],
        new: list[str],
        unset: list[str],
        active: dict[str, str],
        source: str,
        note: str,
        now: float,
    ) -> None:
        await db.execute("BEGIN IMMEDIATE")
        try:
            for agent in new:
                await db.execute(
                    "INSERT OR IGNORE INTO agent_versions (system, agent, version_id, spec, source, note,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (system, agent, wanted[agent], specs[agent], source, note, now),
                )
            for agent in [*new, *unset]:
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
