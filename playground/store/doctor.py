"""``playground doctor``: check a store, and copy what can still be read into a new one.

A damaged store (a disk error, a file written over) is opened by :class:`Store` for
reading only. This module is the way out: :func:`check` runs SQLite's full
``PRAGMA integrity_check``; :func:`salvage` copies every row that can still be read,
table by table and, past a damaged page, row by row, into a new store, keeping only
session rows and event chunks that read back as valid. The damaged file is never
written.

Plain ``sqlite3``, no event loop: the command line calls these directly.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from playground.errors import StoreError
from playground.store.rows import session_record
from playground.store.schema import EVENTS_VIEW, SCHEMA, SCHEMA_VERSION

TABLES = (
    "sessions",
    "event_chunks",
    "agent_versions",
    "active_versions",
    "version_log",
    "snapshots",
    "file_versions",
    "comparisons",
)
"""Every table of the current schema, in the order a salvage copies them."""

_MOST_PROBLEMS = 20


@dataclass
class Health:
    """What :func:`check` found."""

    path: str
    problems: list[str]
    """``integrity_check``'s findings (empty when the store is sound)."""
    schema_version: int | None
    rows: dict[str, int | None] = field(default_factory=dict)
    """Rows per table, or None where counting failed."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Salvage:
    """What :func:`salvage` copied."""

    copied: dict[str, int] = field(default_factory=dict)
    """Rows copied, per table."""
    lost: dict[str, int] = field(default_factory=dict)
    """Rows that could not be read, or did not read back as valid, per table (where known)."""
    notes: list[str] = field(default_factory=list)


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise StoreError(f"no store at {str(path)!r}")
    uri = path.resolve().as_uri()
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StoreError(
                f"{str(path)!r} is not a SQLite database at all ({exc}): nothing to salvage"
            ) from None
    try:  # a WAL store whose -shm cannot be created here: read the main file as it is
        db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{str(path)!r} cannot be read: {exc}") from None


def check(path: str | Path) -> Health:
    """Run ``PRAGMA integrity_check`` on the store at ``path``, reading it only.

    Raises:
        StoreError: There is no such file, or it is not a SQLite database at all.
    """
    file = Path(path)
    db = _open_read_only(file)
    try:
        try:
            found = [str(r[0]) for r in db.execute(f"PRAGMA integrity_check({_MOST_PROBLEMS})")]
            problems = [] if found == ["ok"] else found
        except sqlite3.DatabaseError as exc:
            problems = [f"integrity_check could not finish: {exc}"]
        try:
            version: int | None = int(db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError:
            version = None
        rows: dict[str, int | None] = {}
        for table in TABLES:
            try:
                rows[table] = int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            except sqlite3.DatabaseError:
                rows[table] = None
        return Health(str(file), problems, version, rows)
    finally:
        db.close()


def salvage(source: str | Path, target: str | Path) -> Salvage:
    """Copy every row of ``source`` that can still be read into a new store at ``target``.

    Raises:
        StoreError: ``target`` exists, or ``source`` cannot be read at all.
    """
    src_path, dst_path = Path(source), Path(target)
    if dst_path.exists():
        raise StoreError(f"{str(dst_path)!r} exists; name a new file to copy into")
    if src_path.resolve() == dst_path.resolve():
        raise StoreError("copy into another file than the damaged store")
    src = _open_read_only(src_path)
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    dst = sqlite3.connect(dst_path)
    report = Salvage()
    try:
        for statement in filter(None, (s.strip() for s in SCHEMA.split(";"))):
            dst.execute(statement)
        dst.execute(EVENTS_VIEW)
        dst.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        for table in TABLES:
            columns = [str(r[1]) for r in dst.execute(f"PRAGMA table_info({table})")]
            copied, lost = _copy_table(src, dst, table, columns, report.notes)
            report.copied[table] = copied
            report.lost[table] = lost
        dst.commit()
        problems = [str(r[0]) for r in dst.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:  # cannot happen with a fresh file; say so if it does
            report.notes.append(f"the new store does not check out: {'; '.join(problems)}")
    finally:
        src.close()
        dst.close()
    return report


def _copy_table(
    src: sqlite3.Connection, dst: sqlite3.Connection, table: str, columns: list[str], notes: list[str]
) -> tuple[int, int]:
    """Copy a table's readable, valid rows; returns (copied, lost)."""
    select = f"SELECT rowid, {', '.join(columns)} FROM {table}"
    insert = f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    copied = lost = 0
    last = 0
    try:
        cursor = src.execute(select + " ORDER BY rowid")
        for row in cursor:
            last = row[0]
            if _valid(table, columns, row[1:]):
                dst.execute(insert, row[1:])
                copied += 1
            else:
                lost += 1
        return copied, lost
    except sqlite3.DatabaseError as exc:
        if "no such table" in str(exc) or "no such column" in str(exc):
            notes.append(f"{table}: not in this store ({exc})")
            return copied, lost
        notes.append(f"{table}: reading stopped after row {last} ({exc}); going on row by row")
    # Past a damaged page: probe each rowid, as far as the table's largest one (or a bound).
    try:
        top = src.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
        highest = int(top) if top is not None else last
    except sqlite3.DatabaseError:
        highest = last + 100_000
    for rowid in range(last + 1, highest + 1):
        try:
            row = src.execute(f"{select} WHERE rowid = ?", (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            lost += 1
            continue
        if row is None:
            continue
        if _valid(table, columns, row[1:]):
            dst.execute(insert, row[1:])
            copied += 1
        else:
            lost += 1
    return copied, lost


def _valid(table: str, columns: list[str], values: tuple[object, ...]) -> bool:
    """Whether a row reads back as what the store writes (sessions and event chunks are checked)."""
    if table == "sessions":
        try:
            session_record(dict(zip(columns, values, strict=True)))
        except ValueError:
            return False
        return True
    if table == "event_chunks":
        data = values[columns.index("data")]
        try:
            return isinstance(data, str) and isinstance(json.loads(data), list)
        except ValueError:
            return False
    return True
