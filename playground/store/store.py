"""The session store: one SQLite file, through aiosqlite.

:class:`Store` is made of parts, one per job, each in its own module:

- :mod:`~playground.store.schema`: the tables, ``PRAGMA user_version`` and migrations;
- :mod:`~playground.store.writer`: the batched writer (events and statements queued
  without waiting, committed in batches);
- :mod:`~playground.store.sessions`: session rows and events, read back checked;
- :mod:`~playground.store.versions`: agent versions, rollbacks, snapshots;
- :mod:`~playground.store.transfer`: session export and import (the format is described
  there);
- :mod:`~playground.store.comparisons`: stored comparison reports;
- :mod:`~playground.store.rows`: the rows, as validated models;
- :mod:`~playground.store.doctor`: checking a store and copying out what can be read.

A crash loses at most the step in flight: each batch is committed as soon as the
writer wakes, and a session left ``running`` by a dead process shows as
``interrupted`` the next time the store opens.

Integrity: when a store opens, ``PRAGMA quick_check`` reads it once. A damaged store
is opened for reading only: what can be read is listed, and every write (a new run, an
import, a rollback) is refused with a message naming ``playground doctor``. A store
whose file or folder is not writable opens read-only, so reading commands still work.

Secrets (:mod:`playground.redact`) are scrubbed from everything written, in case a
model or a tool echoes one.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sqlite3
from pathlib import Path

import aiosqlite

from playground import redact
from playground.errors import StoreError
from playground.store.base import doctor_hint
from playground.store.comparisons import Comparisons
from playground.store.rows import SessionRow, SnapshotRow, VersionLogEntry, VersionRow
from playground.store.schema import SCHEMA_VERSION, migrate, quick_check, schema_version
from playground.store.transfer import EXPORT_FORMAT, EXPORT_FORMAT_VERSION, Transfer, read_export_file
from playground.store.versions import Versions

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_FORMAT_VERSION",
    "SCHEMA_VERSION",
    "SessionRow",
    "SnapshotRow",
    "Store",
    "VersionLogEntry",
    "VersionRow",
    "default_db_path",
    "read_export_file",
]


def default_db_path() -> Path:
    """``PLAYGROUND_DB``, else ``sessions/playground.db`` in the current directory."""
    return Path(os.environ.get("PLAYGROUND_DB") or Path("sessions") / "playground.db")


class Store(Transfer, Comparisons, Versions):
    """The SQLite store. Use as ``async with Store(path) as store:``.

    Args:
        path: The database file; its folder is created if missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = None
        self._init_writer()
        self._host = socket.gethostname()
        self._tx = asyncio.Lock()
        self.damaged = None
        self.read_only = None
        self.token = secrets.token_hex(8)
        """Identifies this store object in caches (``id()`` is reused after garbage collection)."""
        self.generation = 0
        """Bumped whenever this store changes agent versions (invalidates cached active specs)."""

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open (creating or migrating) the store, and check its integrity.

        Raises:
            StoreError: It cannot be opened, is not a SQLite file, or is from a newer playground.
        """
        redact.refresh()  # the environment may have changed since the last store opened
        shown = str(self.path)
        read_only = _why_read_only(self.path)
        try:
            if read_only is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = await aiosqlite.connect(self.path)
            else:
                self._db = await _connect_read_only(self.path)
        except (OSError, aiosqlite.Error) as exc:
            raise StoreError(f"cannot open the store {shown!r}: {exc}") from None
        self.read_only = read_only
        db = self._db
        db.row_factory = aiosqlite.Row
        try:
            await db.execute("PRAGMA busy_timeout = 5000")
            if read_only is None:
                await db.execute("PRAGMA journal_mode = WAL")
                await db.execute("PRAGMA synchronous = NORMAL")
            try:
                self.damaged = await quick_check(db)
            except sqlite3.DatabaseError as exc:
                if "not a database" in str(exc):
                    raise
                self.damaged = " ".join(str(exc).split())
            if self.damaged is None and read_only is None:
                await migrate(db, shown)
                await self._mark_interrupted()
            elif (version := await schema_version(db)) != SCHEMA_VERSION and self.damaged is None:
                await db.close()
                self._db = None
                raise StoreError(
                    f"{shown!r} is read-only ({read_only}) and has store schema {version}, not"
                    f" {SCHEMA_VERSION}: it must be opened once with write access to be"
                    + (" migrated" if version < SCHEMA_VERSION else " read by a newer playground")
                )
        except sqlite3.DatabaseError as exc:
            await db.close()
            self._db = None
            if "not a database" in str(exc) or "file is encrypted" in str(exc):
                raise StoreError(
                    f"{shown!r} is not a playground store (not a SQLite database: {exc}); if it was"
                    f" one, it is damaged: {doctor_hint(self.path)}"
                ) from None
            raise StoreError(f"{shown!r} cannot be opened as a playground store: {exc}") from None
        except BaseException:  # a store from a newer playground: close it, or its thread outlives the loop
            if self._db is not None:
                await db.close()
                self._db = None
            raise
        self._writer = asyncio.create_task(self._write_loop(), name="playground-store-writer")

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


def _why_read_only(path: Path) -> str | None:
    """Why the store at ``path`` can only be read (no permission to write it or its folder)."""
    if not path.exists():
        return None
    if not os.access(path, os.W_OK):
        return "the file is not writable"
    folder = path.parent
    if not os.access(folder, os.W_OK):
        # WAL needs its -wal and -shm files next to the store.
        wal = [folder / (path.name + suffix) for suffix in ("-wal", "-shm")]
        if not all(f.exists() and os.access(f, os.W_OK) for f in wal):
            return "its folder is not writable"
    return None


async def _connect_read_only(path: Path) -> aiosqlite.Connection:
    """A read-only connection; a WAL store without its -shm file opens as immutable."""
    uri = path.resolve().as_uri()
    db = await aiosqlite.connect(f"{uri}?mode=ro", uri=True)
    try:
        await db.execute("SELECT count(*) FROM sqlite_master")
        return db
    except sqlite3.OperationalError:
        await db.close()
    return await aiosqlite.connect(f"{uri}?mode=ro&immutable=1", uri=True)
