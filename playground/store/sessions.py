"""Sessions: their rows and their events, written through the writer and read back checked.

A row or an event that does not read back (written by a newer playground, edited by
hand, on a damaged page) is reported as such, never a crash of whatever lists it: a
listing shows the row as ``unreadable`` with the reason, and reading one session or
its events raises :class:`StoreError` naming the row.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json

from playground import redact
from playground.engine.events import EVENT_ADAPTER, Event
from playground.errors import StoreError
from playground.store.base import doctor_hint, sqlite_errors
from playground.store.rows import SESSION_COLUMNS, SessionRow
from playground.store.schema import INSERT_CHUNK
from playground.store.writer import Writer, _Chunk, interrupted_outcome, storable

_EVENT_LIST: TypeAdapter[list[Event]] = TypeAdapter(list[Event])
_ROW_COLUMNS = frozenset({*SESSION_COLUMNS, "pid", "host"})


class Sessions(Writer):
    """Session rows and events (see the module docstring)."""

    _host: str

    async def record_waiting(self, result: Any) -> None:
        """Queue the outcome of a run that stopped ``waiting_approval`` (a
        :class:`playground.engine.RunResult`): the one outcome no final event carries.
        Every other outcome is derived from the run's events as they are written.

        Does not wait for the disk: reads from this store flush first, and closing it flushes.
        """
        data = result.as_json()
        outcome = {
            "status": data["status"],
            "output": storable(redact.scrub(data["output"])),
            "error": redact.scrub(json.dumps(data["error"])) if data["error"] else None,
            "path": to_json(data["path"]).decode(),
            "totals": to_json(data["per_agent"]).decode(),
            "cost_usd": data["cost_usd"],
            "input_tokens": data["tokens"]["input"],
            "output_tokens": data["tokens"]["output"],
            "latency_ms": data["latency_ms"],
            "finished_at": time.time(),
        }
        new = self._new_sessions.get(result.session_id)
        if new is not None:  # not written yet: write it once, waiting
            new.update(outcome)
            self._wake_writer()
            return
        self._queue(
            f"UPDATE sessions SET {', '.join(f'{column} = ?' for column in outcome)} WHERE session_id = ?",
            (*outcome.values(), result.session_id),
        )

    @sqlite_errors("writing sessions")
    async def replace_sessions(
        self, sessions: Sequence[tuple[Mapping[str, Any], Sequence[Event]]], *, replaces: str
    ) -> None:
        """Write each session whole, its row and all its events, replacing what the store held
        of it, in one transaction: for sessions rebuilt from elsewhere (an observed trace),
        whose events can change, not only grow, until they end.

        Args:
            sessions: Each session's row (column to stored value, with ``session_id``) and
                its events in ``seq`` order.
            replaces: Only a stored session whose ``system_path`` starts with this may be
                replaced (``"observed:"``): a recorded run is never overwritten.

        Raises:
            StoreError: An id names a stored session whose ``system_path`` does not start
                with ``replaces`` (nothing is written), or the store cannot write.
        """
        if not sessions:
            return
        await self.flush()
        ids = [str(row["session_id"]) for row, _ in sessions]
        shapes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for row, _ in sessions:
            unknown = set(row) - _ROW_COLUMNS
            if unknown:
                raise StoreError(f"a session row has no column {sorted(unknown)[0]!r}")
            shapes.setdefault(tuple(row), []).append(tuple(row.values()))
        secrets = redact.current()
        chunks = [
            _Chunk.row([_Chunk.of(i, list(e))], secrets) for i, (_, e) in zip(ids, sessions, strict=True) if e
        ]
        marks = ", ".join("?" * len(ids))
        async with self._transaction() as db:
            async with db.execute(
                f"SELECT session_id, system_path FROM sessions WHERE session_id IN ({marks})", ids
            ) as cursor:
                clash = [r[0] for r in await cursor.fetchall() if not str(r[1]).startswith(replaces)]
            if clash:
                raise StoreError(
                    f"session {clash[0]} is already in {str(self.path)!r} as a recorded run; "
                    "it was not replaced"
                )
            await db.executemany("DELETE FROM event_chunks WHERE session_id = ?", [(i,) for i in ids])
            for columns, values in shapes.items():
                await db.executemany(
                    f"INSERT OR REPLACE INTO sessions ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})",
                    values,
                )
            await db.executemany(INSERT_CHUNK, chunks)

    @sqlite_errors("resuming a session")
    async def claim_waiting(self, session_id: str) -> bool:
        """Take a session ``waiting_approval`` to resume it: it becomes ``running``, owned by
        this process (a crash while resuming leaves it ``interrupted``, never resumed twice).
        False if it is not waiting (any more: another ``playground approve`` took it)."""
        await self.flush()
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE sessions SET status = 'running', pid = ?, host = ? "
                "WHERE session_id = ? AND status = 'waiting_approval'",
                (os.getpid(), self._host, session_id),
            )
            taken = cursor.rowcount
            await cursor.close()
        return taken == 1

    @sqlite_errors("resuming a session")
    async def unclaim(self, session_id: str) -> None:
        """Give back a session :meth:`claim_waiting` took, nothing written: waiting again."""
        await self.flush()
        async with self._transaction() as db:
            await db.execute(
                "UPDATE sessions SET status = 'waiting_approval' "
                "WHERE session_id = ? AND status = 'running' AND pid = ?",
                (session_id, os.getpid()),
            )

    async def _mark_interrupted(self) -> None:
        """Sessions whose process is gone are ``interrupted``; with no final event to carry
        their path, totals and time, those are rebuilt from the events they recorded (also for
        sessions marked before this was done: still at no path and no time)."""
        db = self.db
        host = socket.gethostname()
        async with db.execute("SELECT session_id, pid, host FROM sessions WHERE status = 'running'") as cur:
            rows = list(await cur.fetchall())
        dead = [r["session_id"] for r in rows if r["host"] != host or not _alive(r["pid"])]
        async with db.execute(
            "SELECT session_id FROM sessions WHERE status = 'interrupted' AND path = '[]' AND latency_ms = 0"
        ) as cur:
            dead += [r["session_id"] for r in await cur.fetchall()]
        if not dead:
            return
        for session_id in dead:
            events, _ = await self.readable_events(session_id)  # what reads back; doctor says the rest
            outcome = interrupted_outcome(events)
            await db.execute(
                f"UPDATE sessions SET status = 'interrupted', {', '.join(f'{c} = ?' for c in outcome)} "
                "WHERE session_id = ?",
                (*outcome.values(), session_id),
            )
        await db.commit()

    async def sessions(
        self,
        *,
        system: str | None = None,
        status: str | None = None,
        since: float | None = None,
        limit: int = 50,
    ) -> list[SessionRow]:
        """Sessions, newest first. A row that cannot be read back is listed as ``unreadable``;
        on a damaged store, the rows that can still be read."""
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
        try:
            async with self.db.execute(sql, (*params, limit)) as cursor:
                return [SessionRow.from_row(r) for r in await cursor.fetchall()]
        except sqlite3.DatabaseError:
            if self.damaged is None:
                raise
        rows = await self._readable_sessions()
        rows = [
            r
            for r in rows
            if (not system or r.system == system)
            and (not status or r.status == status)
            and (not since or r.created_at >= since)
        ]
        return sorted(rows, key=lambda r: r.created_at, reverse=True)[:limit]

    async def _readable_sessions(self) -> list[SessionRow]:
        """Each session row that can still be read from a damaged store, one by one."""
        db = self.db
        try:
            async with db.execute("SELECT max(rowid) FROM sessions") as cursor:
                found = await cursor.fetchone()
            last = int(found[0]) if found and found[0] is not None else 0
        except sqlite3.DatabaseError:
            last = 1 << 16
        rows: list[SessionRow] = []
        for rowid in range(1, last + 1):
            try:
                async with db.execute("SELECT * FROM sessions WHERE rowid = ?", (rowid,)) as cursor:
                    row = await cursor.fetchone()
            except sqlite3.DatabaseError:
                continue
            if row is not None:
                rows.append(SessionRow.from_row(row))
        return rows

    @sqlite_errors("reading a session")
    async def session(self, session_id: str) -> SessionRow:
        """One session by id or unique id prefix.

        Raises:
            StoreError: No such session, more than one, or its row cannot be read back.
        """
        await self.flush()
        async with self.db.execute(
            "SELECT * FROM sessions WHERE session_id LIKE ? ORDER BY created_at DESC LIMIT 6",
            (session_id.replace("%", "").replace("_", "") + "%",),
        ) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            raise StoreError(f"no session {session_id!r} in {str(self.path)!r}")
        exact = [row for row in rows if row["session_id"] == session_id]
        if len(rows) > 1 and not exact:
            listed = ", ".join(str(row["session_id"]) for row in rows[:5])
            more = ", ..." if len(rows) > 5 else ""
            raise StoreError(
                f"{session_id!r} names more than one session ({listed}{more}); give more of its id"
            )
        rows = exact or rows
        found = SessionRow.from_row(rows[0])
        if found.problem is not None:
            raise StoreError(
                f"session {found.session_id} in {str(self.path)!r} cannot be read: {found.problem}"
            )
        return found

    async def events(self, session_id: str) -> list[Event]:
        """A session's stored events, in order.

        Raises:
            StoreError: An event cannot be read back (an unknown kind, a damaged chunk).
        """
        events, problems = await self.readable_events(session_id)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise StoreError(f"session {session_id} cannot be read in full: {problems[0]}{more}")
        return events

    async def readable_events(self, session_id: str) -> tuple[list[Event], list[str]]:
        """A session's events that read back, in order, and what could not be read, one line each."""
        await self.flush()
        problems: list[str] = []
        try:
            async with self.db.execute(
                "SELECT first_seq, last_seq, data FROM event_chunks WHERE session_id = ? ORDER BY first_seq",
                (session_id,),
            ) as cursor:
                rows = list(await cursor.fetchall())
        except sqlite3.DatabaseError as exc:
            return [], [f"its events cannot be read ({exc}); " + doctor_hint(self.path)]
        events: list[Event] = []
        for first, last, data in rows:
            try:
                events.extend(_EVENT_LIST.validate_json(data))
                continue
            except (ValidationError, ValueError, TypeError):
                pass  # one by one below: keep what reads, say what does not
            try:
                items = json.loads(data)  # takes a lone surrogate, which pydantic's parser refuses
            except (ValueError, TypeError):
                problems.append(f"events {first} to {last} are not valid JSON")
                continue
            if not isinstance(items, list):
                problems.append(f"events {first} to {last} are not a list")
                continue
            for item in items:
                try:
                    events.append(EVENT_ADAPTER.validate_python(item))
                except ValidationError as exc:
                    problems.append(_event_problem(item, exc))
        return events, problems


def _event_problem(item: Any, exc: ValidationError) -> str:
    seq = item.get("seq") if isinstance(item, dict) else None
    kind = item.get("kind") if isinstance(item, dict) else None
    first = exc.errors()[0]
    if first["type"] == "union_tag_invalid":
        return (
            f"event {seq} is of kind {str(kind)[:40]!r}, which this playground does not know"
            " (a newer one wrote it?)"
        )
    where = ".".join(str(p) for p in first["loc"][1:]) or "the event"
    return f"event {seq} ({str(kind)[:40]}): {where}: {first['msg']}"


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
    except (OverflowError, ValueError):  # not a pid at all (an imported or damaged row)
        return False
    return True
