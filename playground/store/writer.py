"""The batched writer: events and statements queued without waiting, committed in batches.

The runtime hands events to :meth:`Writer.sink` without waiting, and one writer task
commits whatever has accumulated in one transaction. An awaited aiosqlite statement
costs ~40 µs, so one row per transaction would dominate a scripted run. Each batch is
committed as soon as the writer wakes, so a crash loses at most the step in flight.

Events are stored in chunks: each batch writes one ``event_chunks`` row per session, a
JSON array of that session's events in the batch, in ``seq`` order. With a model that
answers at once a batch holds whole runs; with a real model it holds a step or two.

Secrets (:mod:`playground.redact`) are scrubbed from every chunk as it is written.

The session row is derived from the run's events, in the same batches: ``run_started``
inserts it (status ``running``, with this process's pid and host, so a row whose process
is gone is found ``interrupted`` when a store opens), ``run_finished`` and ``run_failed``
write the outcome (status, output, error, path, totals, cost, tokens, latency). A run that
ends before the writer's turn writes its row once, finished. The one outcome without a
final event, a headless run stopping ``waiting_approval``, is written by
:meth:`~playground.store.sessions.Sessions.record_waiting`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite
import orjson
from pydantic_core import to_json

from playground import redact
from playground.engine.events import Event, RunFailed, RunFinished, RunStarted, TokenDelta
from playground.engine.results import AgentTotals, recorded_totals, run_time_ms
from playground.errors import StoreError
from playground.store.base import StoreBase
from playground.store.schema import INSERT_CHUNK


def _json_text(value: Any) -> str:
    """JSON of plain data; what the fast path refuses (a lone surrogate from a tool, an
    object a custom controller put in an event) is kept, escaped or as its ``str``."""
    try:
        return to_json(value).decode()
    except ValueError:
        return json.dumps(value, ensure_ascii=True, default=str, separators=(",", ":"))


_PACK_EVERY = 64
"""Queued events are serialised in groups of this many."""

_RUN_EVENTS = frozenset({RunStarted, RunFinished, RunFailed})
"""The events the session row is derived from."""


def storable(text: str) -> str:
    """``text`` as SQLite can store it: a lone surrogate (a tool's bytes that were not UTF-8)
    is kept as its escape, ``\\ud800``, rather than failing the whole write."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def started_row(event: RunStarted, host: str) -> dict[str, Any]:
    """The session row a ``run_started`` event begins (status ``running``, owned by this process)."""
    return {
        "session_id": event.session_id,
        "system": event.system,
        "system_path": event.system_path,
        "correlation_id": event.correlation_id,
        "status": "running",
        "input": storable(redact.scrub(event.input)),
        "versions": to_json(event.versions).decode(),
        "parent_session_id": event.parent_session_id,
        "forked_from_step": event.forked_from_step,
        "created_at": event.ts,
        "pid": os.getpid(),
        "host": host,
        "scenario": event.scenario,
        "scenario_file": event.scenario_file,
    }


def outcome_of(event: RunFinished | RunFailed) -> dict[str, Any]:
    """The columns a run's final event sets (all but ``latency_ms``: see :meth:`Writer._track`).

    ``totals`` are the event's (the agents with a model call), then each agent on the path
    without one, at zero, as ``run --json``'s ``per_agent`` has them.
    """
    if isinstance(event, RunFinished):
        status, output, error = "completed", storable(redact.scrub(event.output)), None
    else:
        failure: dict[str, Any] = {
            "type": event.error_type,
            "message": event.message,
            "origin": event.origin,
            "manifested": event.manifested,
        }
        if event.lineage is not None:
            failure["lineage"] = event.lineage
        status, output, error = event.status, "", redact.scrub(json.dumps(failure))
    return {
        "status": status,
        "output": output,
        "error": error,
        **_figures(event.path, dict(event.totals)),
        "finished_at": event.ts,
    }


def interrupted_outcome(events: Sequence[Event]) -> dict[str, Any]:
    """The columns of a session killed mid-run (no final event), rebuilt from what it recorded:
    its path, each agent's totals, cost and tokens as its final event would have had them, and
    its time as :func:`~playground.engine.results.run_time_ms` defines it."""
    path, totals = recorded_totals(events)
    figures = {name: agent.as_json() for name, agent in totals.items() if agent.calls}
    return {**_figures(path, figures), "latency_ms": round(run_time_ms(events), 3)}


def _figures(path: list[str], totals: dict[str, Any]) -> dict[str, Any]:
    """The path, totals (each agent on the path without a model call at zero, as ``run
    --json``'s ``per_agent`` has them), cost and tokens columns."""
    for name in path:
        if name not in totals:
            totals[name] = AgentTotals().as_json()
    cost = input_tokens = output_tokens = 0
    for agent in totals.values():
        cost += agent.get("cost_usd") or 0
        tokens = agent.get("tokens") or {}
        input_tokens += tokens.get("input") or 0
        output_tokens += tokens.get("output") or 0
    return {
        "path": to_json(path).decode(),
        "totals": to_json(totals).decode(),
        "cost_usd": round(cost, 8),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
    }


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
    def row(parts: list[_Chunk], secrets: tuple[tuple[str, str], ...]) -> tuple[Any, ...]:
        """One ``event_chunks`` row from consecutive chunks of one session."""
        data = parts[0].data if len(parts) == 1 else "[" + ",".join(p.data[1:-1] for p in parts) + "]"
        if secrets:
            data = redact.scrub(data, secrets)
        first, last = parts[0], parts[-1]
        return (first.session_id, first.first_seq, last.last_seq, sum(p.count for p in parts), data)


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    params: tuple[Any, ...]


class Writer(StoreBase):
    """The store's batched writer (see the module docstring)."""

    _pending: list[_Statement | _Chunk]
    """Queued for the writer: statements, and events already packed into chunks."""
    _events: list[Event]
    """Events not packed yet."""
    _new_sessions: dict[str, dict[str, Any]]
    """Session rows not written yet, by id: a run that ends before the writer's turn
    writes its row once, finished."""
    _woken: bool
    """Whether the writer was woken and has not yet taken the queue."""
    _host: str
    """This machine's name, in the rows of the sessions this process runs."""
    _wake: asyncio.Event
    _idle: asyncio.Event
    _writer: asyncio.Task[None] | None
    _closing: bool
    _write_error: BaseException | None

    def _init_writer(self) -> None:
        self._pending = []
        self._events = []
        self._new_sessions = {}
        self._woken = False
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer = None
        self._closing = False
        self._write_error = None

    def sink(self, event: Event) -> None:
        """Queue one event for writing (never waits). Token deltas are not stored."""
        if type(event) is TokenDelta:  # the cheapest test: this runs for every event of every run
            return
        if type(event) in _RUN_EVENTS:
            try:
                self._track(event)  # type: ignore[arg-type]
            except Exception as exc:  # never into the run that emitted the event; flush() reports it
                self._write_error = exc
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

    def _track(self, event: RunStarted | RunFinished | RunFailed) -> None:
        """Queue the session row's part of a run event (see the module docstring)."""
        session_id = event.session_id
        if isinstance(event, RunStarted):
            self._new_sessions[session_id] = started_row(event, self._host)
            return
        outcome = outcome_of(event)
        latency = round(event.latency_ms or 0.0, 3)
        new = self._new_sessions.get(session_id)
        if new is not None:  # not written yet: write it once, finished
            new.update(outcome, latency_ms=latency)
            return
        # Added, not set: a session resumed after waiting for approval ran before the stop
        # too (its row holds that time; a fresh row holds 0).
        self._queue(
            f"UPDATE sessions SET {', '.join(f'{column} = ?' for column in outcome)}, "
            "latency_ms = latency_ms + ? WHERE session_id = ?",
            (*outcome.values(), latency, session_id),
        )

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
            secrets = redact.current()
            await db.executemany(INSERT_CHUNK, [_Chunk.row(parts, secrets) for parts in chunks.values()])
        await db.commit()

    def _queue(self, sql: str, params: tuple[Any, ...]) -> None:
        self._pending.append(_Statement(sql, params))
        self._wake_writer()
