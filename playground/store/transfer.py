"""Export and import of one session as JSON Lines.

Session export format (:meth:`Transfer.export_session`): JSON Lines. The first line is a
header, ``{"format": "playground-session", "format_version": N, "exported_at":
ISO-8601, "session_id": ..., "agent_versions": count, "events": count}``; then one
``{"type": "session", "session": {...}}`` line (the session row), one ``{"type":
"agent_version", ...}`` line per agent version the session ran with (its canonical spec,
so another store can replay it), and one ``{"type": "event", "event": {...}}`` line per
stored event, in order. Version policy: adding record types or optional fields keeps
``format_version``; anything an older reader would misread (a renamed or re-typed
field, a record it must not skip) bumps it. A reader refuses a file with a newer
``format_version`` than :data:`EXPORT_FORMAT_VERSION` and reads every older one.

An import is checked in full before anything is written, then written in one
transaction: all or nothing. Every record is validated against the models the store
reads with (:class:`playground.store.rows.SessionRecord`, the agent spec, the event
union), within the limits of :mod:`playground.bounds` (file size, record count and
size, nesting, id lengths, integers SQLite can hold).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiosqlite
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from playground import bounds, redact
from playground.engine.events import EVENT_ADAPTER
from playground.errors import StoreError
from playground.store.base import sqlite_errors
from playground.store.rows import (
    OPTIONAL_EXPORT_COLUMNS,
    SESSION_COLUMNS,
    SESSION_JSON_COLUMNS,
    Name,
    SessionRecord,
    SessionRow,
    Time,
    problem_of,
)
from playground.store.schema import INSERT_CHUNK
from playground.store.sessions import Sessions
from playground.store.writer import _json_text

EXPORT_FORMAT = "playground-session"
EXPORT_FORMAT_VERSION = 1
"""The session export format this playground writes and the newest it reads."""


class VersionRecord(BaseModel):
    """An ``agent_version`` record of an export."""

    model_config = ConfigDict(extra="ignore")

    system: Name
    agent: Name
    version_id: Name
    source: str = Field("file", max_length=32)
    note: str = Field("", max_length=4096)
    created_at: Time
    spec: dict[str, Any]


class Transfer(Sessions):
    """Export and import (see the module docstring)."""

    @sqlite_errors("exporting a session")
    async def export_session(self, session_id: str) -> list[str]:
        """A session as JSON Lines (the format is described at the top of this module).

        ``session_id`` may be a unique prefix. Secrets are scrubbed again on the way out.
        """
        found = await self.session(session_id)  # flushes, resolves a prefix
        async with self.db.execute(
            f"SELECT {', '.join(SESSION_COLUMNS)} FROM sessions WHERE session_id = ?",
            (found.session_id,),
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        session = {
            column: (json.loads(row[column]) if row[column] else None)
            if column in SESSION_JSON_COLUMNS
            else row[column]
            for column in SESSION_COLUMNS
            if column not in OPTIONAL_EXPORT_COLUMNS or row[column] is not None
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
        secrets = redact.current()
        return [redact.scrub(line, secrets) for line in lines] if secrets else lines

    async def import_session(self, lines: Iterable[str]) -> SessionRow:
        """Import a session exported by :meth:`export_session`, with its versions and events.

        Agent versions the store already has are kept as they are; active pointers do not
        move. A session that was still running when exported is imported as ``interrupted``.
        Nothing is written unless everything checks out.

        Raises:
            StoreError: The text is not a session export, is from a newer format version, is
                over a limit, holds a record that does not validate (naming its line), or its
                session is already in this store.
        """
        self.check_writable()
        session, version_rows, event_rows = _checked_import(lines)
        session_id = session.session_id
        columns = list(SESSION_COLUMNS)
        values: list[Any] = []
        data = session.model_dump()
        for column in columns:
            value = data[column]
            if column in SESSION_JSON_COLUMNS:
                value = json.dumps(value) if value is not None else None
            values.append(value)

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
                        INSERT_CHUNK,
                        (
                            session_id,
                            event_rows[0][0],
                            event_rows[-1][0],
                            len(event_rows),
                            redact.scrub(_json_text([event for _, event in event_rows])),
                        ),
                    )
        except aiosqlite.IntegrityError as exc:
            raise StoreError(f"the session export is inconsistent: {exc}; nothing was imported") from None
        except aiosqlite.Error as exc:
            raise self.translate(exc, "importing the session") from None
        if version_rows:
            self.generation += 1
        return await self.session(session_id)


def _checked_import(
    lines: Iterable[str],
) -> tuple[SessionRecord, list[tuple[Any, ...]], list[tuple[int, dict[str, Any]]]]:
    """Everything an import writes, checked: the session, version rows and events by ``seq``."""
    from playground.spec.identity import canonical_json, version_id_of_json
    from playground.spec.models import AgentSpec

    header, records = _parse_export(lines)
    sessions = [(n, r) for n, r in records if r["type"] == "session"]
    if len(sessions) != 1:
        raise StoreError(f"a session export holds exactly one session record, this one {len(sessions)}")
    n, record = sessions[0]
    raw = record.get("session")
    if not isinstance(raw, dict):
        raise StoreError(f"line {n}: the session record has no 'session' object")
    unknown = sorted(str(k)[:40] for k in set(raw) - set(SESSION_COLUMNS))
    if unknown:
        raise StoreError(f"line {n}: the session record has unknown fields {unknown}")
    try:
        session = SessionRecord.model_validate(raw)
    except ValidationError as exc:
        raise StoreError(f"line {n}: the session record does not fit: {problem_of(exc)}") from None
    if session.status == "running":
        session = session.model_copy(update={"status": "interrupted"})  # nothing runs it here
    session_id = session.session_id

    version_rows: list[tuple[Any, ...]] = []
    event_rows: list[tuple[int, dict[str, Any]]] = []
    for n, record in records:
        kind = record["type"]
        if kind == "agent_version":
            try:
                version = VersionRecord.model_validate(record)
            except ValidationError as exc:
                raise StoreError(f"line {n}: a malformed agent version: {problem_of(exc)}") from None
            try:
                AgentSpec.model_validate(version.spec)
            except ValidationError as exc:
                raise StoreError(
                    f"line {n}: the spec of version {version.version_id} is not a valid agent:"
                    f" {problem_of(exc)}"
                ) from None
            spec = canonical_json(version.spec)
            if version_id_of_json(spec) != version.version_id:
                raise StoreError(
                    f"line {n}: the spec of version {version.version_id} of {version.agent!r} does not"
                    " hash to its id (was the file edited?)"
                )
            version_rows.append(
                (
                    version.system,
                    version.agent,
                    version.version_id,
                    spec,
                    version.source,
                    version.note,
                    version.created_at,
                )
            )
        elif kind == "event":
            data = record.get("event")
            try:
                event = EVENT_ADAPTER.validate_python(data)
            except ValidationError as exc:
                raise StoreError(f"line {n}: not a valid event: {problem_of(exc)}") from None
            assert isinstance(data, dict)
            if event.session_id != session_id:
                raise StoreError(f"line {n}: an event of session {event.session_id[:40]!r}, not {session_id}")
            if not 0 <= event.seq <= bounds.INT_MAX:
                raise StoreError(f"line {n}: event seq {event.seq} is out of range")
            event_rows.append((event.seq, data))
    expected = header.get("events")
    if isinstance(expected, int) and expected != len(event_rows):
        raise StoreError(
            f"the file is incomplete: its header announces {expected} events, it holds {len(event_rows)}"
        )
    event_rows.sort(key=lambda row: row[0])
    repeated = sorted({a[0] for a, b in itertools.pairwise(event_rows) if a[0] == b[0]})
    if repeated:
        shown = ", ".join(str(seq) for seq in repeated[:10])
        raise StoreError(f"the session export is inconsistent: events {shown} appear more than once")
    return session, version_rows, event_rows


def read_export_file(path: str) -> list[str]:
    """The lines of a session export (``-``: standard input), read within the size limit.

    Raises:
        StoreError: The file cannot be read, is over :data:`playground.bounds.IMPORT_BYTES`,
            or is not UTF-8 (naming the line).
    """
    limit = bounds.IMPORT_BYTES
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit.value + 1)
        else:
            with Path(path).open("rb") as stream:
                data = stream.read(limit.value + 1)
    except OSError as exc:
        raise StoreError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    if len(data) > limit.value:
        raise StoreError(limit.message(f"{path!r}"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StoreError(f"line {line}: not UTF-8 text (byte {data[exc.start]:#04x})") from None
    return text.splitlines()


def _parse_export(lines: Iterable[str]) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]:
    """The header and the records of a session export, each record with its line number."""
    header: dict[str, Any] | None = None
    records: list[tuple[int, dict[str, Any]]] = []
    not_ours = StoreError(
        "not a playground session export: its first line is not a "
        f'{{"format": "{EXPORT_FORMAT}", ...}} header'
    )
    most_records = bounds.IMPORT_RECORDS.value
    line_limit = bounds.IMPORT_LINE_BYTES
    depth_limit = bounds.JSON_DEPTH.value
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if n > most_records:
            raise StoreError(bounds.IMPORT_RECORDS.message("the export", n))
        if len(line) * 4 > line_limit.value:  # may be over: count its bytes
            try:
                line_limit.check(len(line.encode("utf-8", "surrogatepass")), f"line {n}")
            except bounds.LimitExceeded as exc:
                raise StoreError(str(exc)) from None
        if line.count("[") + line.count("{") > depth_limit and bounds.json_depth(line) > depth_limit:
            raise StoreError(bounds.JSON_DEPTH.message(f"the nesting of line {n}"))
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as exc:
            if header is None:
                raise not_ours from None
            raise StoreError(f"line {n}: not JSON ({str(exc)[:200]})") from None
        if not isinstance(data, dict):
            if header is None:
                raise not_ours
            raise StoreError(f"line {n}: a record is a JSON object")
        big = _too_big(data)
        if big is not None:
            raise StoreError(f"line {n}: the number {big} is beyond what the store holds (at most 2**63 - 1)")
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
            raise StoreError(f"line {n}: unknown record type {str(data.get('type'))[:40]!r}")
        records.append((n, data))
    if header is None:
        raise not_ours
    return header, records


def _too_big(value: Any) -> str | None:
    """An integer in ``value`` that SQLite cannot hold, shortened for a message, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif (
            isinstance(item, int)
            and not isinstance(item, bool)
            and not -bounds.INT_MAX - 1 <= item <= bounds.INT_MAX
        ):
            text = str(item) if item.bit_length() < 200 else f"of {item.bit_length()} bits"
            return text[:40]
    return None
