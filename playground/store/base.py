"""What every part of the store shares: the connection, its lock, and whether it may write.

:class:`playground.store.Store` is one object made of parts, one per job (the batched
writer, sessions, agent versions, export and import, comparisons), each in its own
module; this is the state they share.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import aiosqlite

from playground.errors import StoreError

P = ParamSpec("P")
R = TypeVar("R")


def doctor_hint(path: Path) -> str:
    return f"check it, and copy what can be read into a new store, with: playground doctor --db {path}"


class StoreBase:
    """State shared by the store's parts (see the module docstring)."""

    path: Path
    _db: aiosqlite.Connection | None
    _tx: asyncio.Lock
    """Held by whoever has a transaction open on the one connection."""
    damaged: str | None
    """Why the store may not be written (a failed integrity check), or None."""
    read_only: str | None
    """Why the store can only be read (no write permission), or None."""
    generation: int

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db

    async def flush(self) -> None:
        raise NotImplementedError

    def check_writable(self) -> None:
        """Refuse to write into a damaged or read-only store.

        Raises:
            StoreError: saying why, and (for a damaged store) how to recover.
        """
        if self.damaged is not None:
            raise StoreError(
                f"the store {str(self.path)!r} is damaged ({self.damaged}); nothing more is written to it: "
                + doctor_hint(self.path)
            )
        if self.read_only is not None:
            raise StoreError(
                f"the store {str(self.path)!r} is read-only ({self.read_only}); it can be read, not written"
            )

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction on the connection, holding the lock every transaction holds."""
        self.check_writable()
        db = self.db
        async with self._tx:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.rollback()
                raise
            await db.commit()

    def translate(self, exc: sqlite3.Error, doing: str) -> StoreError:
        """An SQLite error as one of ours, saying what failed and what to do."""
        text = str(exc)
        if isinstance(exc, sqlite3.DatabaseError) and (
            "malformed" in text or "not a database" in text or "corrupt" in text
        ):
            return StoreError(
                f"{doing} failed: the store {str(self.path)!r} is damaged ({text}); " + doctor_hint(self.path)
            )
        return StoreError(f"{doing} failed: {text}")


def sqlite_errors(doing: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate a store method so that SQLite's errors leave it as :class:`StoreError`."""

    def wrap(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(method)
        async def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await method(*args, **kwargs)
            except sqlite3.Error as exc:
                store: Any = args[0]
                raise store.translate(exc, doing) from None

        return wrapped

    return wrap
