"""aiosqlite store: sessions, events, agent versions, snapshots (see :mod:`playground.store.store`)."""

from playground.store.store import SCHEMA_VERSION, SessionRow, Store, default_db_path, read_export_file

__all__ = ["SCHEMA_VERSION", "SessionRow", "Store", "default_db_path", "read_export_file"]
