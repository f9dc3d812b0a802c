"""The store's schema: its tables, its version, and moving an older store forward.

Schema version policy: ``PRAGMA user_version`` holds the schema version. A store from
an older version is migrated forward in place when opened; a store from a newer version
is refused with a clear message rather than misread.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from playground.errors import StoreError

SCHEMA_VERSION = 5
"""1: sessions, events, versions, snapshots. 2: + comparisons. 3: + file_versions (the
version of each agent last loaded from its file). 4: events are stored in chunks
(``event_chunks``, one row per session per written batch) and ``events`` becomes a view
over them; opening an older store moves its events over. 5: + ``sessions.scenario`` and
``sessions.scenario_file`` (the scenario a run was, NULL for other runs); an older store
gets the columns, NULL in its rows."""

EXPORT_FORMAT = "playground-session"
EXPORT_FORMAT_VERSION = 1
"""The session export format this playground writes and the newest it reads."""

SCHEMA = """
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
    host TEXT,
    scenario TEXT,
    scenario_file TEXT
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

INSERT_CHUNK = (
    "INSERT INTO event_chunks (session_id, first_seq, last_seq, events, data) VALUES (?, ?, ?, ?, ?)"
)

EVENTS_VIEW = """
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


async def migrate(db: aiosqlite.Connection, shown: str) -> None:
    """Bring the store's schema to :data:`SCHEMA_VERSION`, or refuse a newer one."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{shown!r} was written by a newer playground (store schema {version}; "
            f"this one reads up to {SCHEMA_VERSION}). Upgrade the playground, or use another --db."
        )
    if version < SCHEMA_VERSION:
        await db.execute("BEGIN IMMEDIATE")
        for statement in filter(None, (s.strip() for s in SCHEMA.split(";"))):
            await db.execute(statement)
        async with db.execute("SELECT type FROM sqlite_master WHERE name = 'events'") as cursor:
            found = await cursor.fetchone()
        if found is not None and found[0] == "table":  # schema 1-3: one row per event
            await _move_events_to_chunks(db)
        await db.execute(EVENTS_VIEW)
        await _add_columns(db, "sessions", ADDED_SESSION_COLUMNS)
        await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        await db.commit()


ADDED_SESSION_COLUMNS = {"scenario": "TEXT", "scenario_file": "TEXT"}
"""Columns of ``sessions`` added after schema 4 (``CREATE TABLE IF NOT EXISTS`` leaves an
older table as it is): name to type."""


async def _add_columns(db: aiosqlite.Connection, table: str, columns: dict[str, str]) -> None:
    """Add each of ``columns`` that ``table`` does not have yet (NULL in its rows)."""
    async with db.execute(f"PRAGMA table_info({table})") as cursor:
        have = {str(row[1]) for row in await cursor.fetchall()}
    for name, kind in columns.items():
        if name not in have:
            await db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


async def schema_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def quick_check(db: aiosqlite.Connection) -> str | None:
    """``PRAGMA quick_check``: None when the file is sound, else its first problems in one line.

    It reads every page once (no index cross-checks), about as long as reading the file.
    """
    async with db.execute("PRAGMA quick_check(5)") as cursor:
        rows = [str(r[0]) for r in await cursor.fetchall()]
    if rows == ["ok"]:
        return None
    return " ".join("; ".join(rows).split()) or "quick_check returned nothing"


async def _move_events_to_chunks(db: aiosqlite.Connection) -> None:
    """Schema 3 -> 4: each session's events (one row each) become one chunk, in ``seq`` order."""
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
                await db.executemany(INSERT_CHUNK, rows)
                rows = []
    close_chunk()
    await db.executemany(INSERT_CHUNK, rows)
    await db.execute("DROP TABLE events")
