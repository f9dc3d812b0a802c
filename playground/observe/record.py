"""Observed sessions into the store: each written whole, replacing what it held before.

An observed session is re-derived from its trace whenever spans arrive, out of order, so
its events can change (not only grow) until the trace ends: a session is written as its
row and all its events in one transaction, replacing the previous version. Recorded runs
are never touched: a session the store holds that is not observed is refused.

The row says where the session came from: ``system_path`` is ``observed:<framework>``
(there is no system file), and its first event, :class:`~playground.engine.events.RunStarted`,
carries ``observed``. Secrets are scrubbed as in everything the store writes.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from typing import Any

import orjson

from playground.errors import StoreError
from playground.observe.mapping import ObservedSession
from playground.redact import scrub
from playground.store import Store

OBSERVED_PREFIX = "observed:"
"""``system_path`` of an observed session: this, then the framework."""

_COLUMNS = (
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
    "created_at",
    "finished_at",
    "pid",
    "host",
)
_HOST = socket.gethostname()


def observed_framework(system_path: str) -> str | None:
    """The framework of an observed session's ``system_path``; None for a recorded run."""
    return system_path.removeprefix(OBSERVED_PREFIX) if system_path.startswith(OBSERVED_PREFIX) else None


def session_row(session: ObservedSession) -> tuple[Any, ...]:
    """The ``sessions`` row of an observed session, in :data:`_COLUMNS` order."""
    result = session.result.as_json()
    error = result["error"]
    finished = session.status != "running"
    return (
        session.session_id,
        session.system,
        OBSERVED_PREFIX + session.framework,
        session.trace_id,
        session.status,
        scrub(session.input),
        scrub(result["output"]),
        scrub(json.dumps(error)) if error else None,
        json.dumps(result["path"]),
        "{}",
        json.dumps(result["per_agent"]),
        result["cost_usd"],
        result["tokens"]["input"],
        result["tokens"]["output"],
        result["latency_ms"],
        session.created_at,
        session.events[-1].ts if finished else None,
        os.getpid(),  # a running session of an observer that died shows as interrupted
        _HOST,
    )


def _events_json(session: ObservedSession) -> str:
    return orjson.dumps([e.model_dump(mode="json") for e in session.events]).decode()


async def put_sessions(store: Store, sessions: Sequence[ObservedSession]) -> None:
    """Write each session whole (row and events), replacing its previous version, in one
    transaction.

    Raises:
        StoreError: One of the ids names a session this store recorded from a run (nothing
            is written), or the store cannot write.
    """
    if not sessions:
        return
    rows = [session_row(s) for s in sessions]
    chunks = []
    for session in sessions:
        data = scrub(_events_json(session))
        chunks.append((session.session_id, 1, len(session.events), len(session.events), data))
    ids = [(s.session_id,) for s in sessions]
    await store.flush()
    # The store's one write transaction (the lock its writer and import hold as well).
    async with store._transaction() as db:
        known = ",".join("?" * len(ids))
        async with db.execute(
            f"SELECT session_id, system_path FROM sessions WHERE session_id IN ({known})",
            [i for (i,) in ids],
        ) as cursor:
            clash = [r[0] for r in await cursor.fetchall() if observed_framework(r[1]) is None]
        if clash:
            raise StoreError(
                f"session {clash[0]} of an observed trace is already in {str(store.path)!r} as a recorded "
                "run; the trace was not recorded"
            )
        await db.executemany("DELETE FROM event_chunks WHERE session_id = ?", ids)
        columns, marks = ", ".join(_COLUMNS), ", ".join("?" * len(_COLUMNS))
        await db.executemany(f"INSERT OR REPLACE INTO sessions ({columns}) VALUES ({marks})", rows)
        await db.executemany(
            "INSERT INTO event_chunks (session_id, first_seq, last_seq, events, data) VALUES (?, ?, ?, ?, ?)",
            chunks,
        )
