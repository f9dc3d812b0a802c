"""Agent versions: recording them, the active pointer, rollbacks, snapshots and their log.

Every agent spec is stored as an immutable version named by the hash of its content;
each agent of a system has an active version, and rolling back moves that pointer.
Nothing is ever deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import aiosqlite

from playground.errors import StoreError
from playground.store.base import StoreBase
from playground.store.rows import SnapshotRow, VersionLogEntry, VersionRow

_MIN_PREFIX = 4


class Versions(StoreBase):
    """Agent versions (see the module docstring)."""

    async def record_versions(
        self,
        system: str,
        specs: dict[str, str],
        *,
        source: str = "file",
        note: str = "",
        activate: bool | None = None,
    ) -> dict[str, str]:
        """Record each agent spec (canonical JSON by agent name) whose content is new.

        Args:
            source: ``file`` (loaded from a system file) or ``operator`` (an edit).
            note: Kept with each new version and its log entry.
            activate: ``None`` (loading a file): a new version becomes active, a known one
                leaves the active pointer where an operator put it, so a rollback survives
                re-running the same file. ``True`` (an operator's edit): every given agent
                is pointed at its spec, new or known. ``False`` (a fork's variant): record
                only, move no pointer.

        Returns:
            Agent name to its active version id.
        """
        from playground.spec.identity import version_id_of_json

        db = self.db
        wanted = {agent: version_id_of_json(spec_json) for agent, spec_json in specs.items()}
        async with self._tx:  # read and decide inside the lock: concurrent loads must not race
            async with db.execute(
                "SELECT agent, version_id FROM agent_versions WHERE system = ?", (system,)
            ) as cursor:
                known = {(r[0], r[1]) for r in await cursor.fetchall()}
            active = await self.active_versions(system)
            last_file: dict[str, str] = {}
            if activate is None:
                async with db.execute(
                    "SELECT agent, version_id FROM file_versions WHERE system = ?", (system,)
                ) as cursor:
                    last_file = {r[0]: r[1] for r in await cursor.fetchall()}
            new = [a for a, vid in wanted.items() if (a, vid) not in known]
            if activate is False:
                moved: list[str] = []
            elif activate:
                moved = [a for a in wanted if a not in new and active.get(a) != wanted[a]]
            else:
                # The file's content changed since it was last loaded (edited, or reverted to an
                # older version): it becomes active. Unchanged: the pointer stays where an
                # operator put it, so a rollback survives re-running the same file.
                moved = [
                    a
                    for a in wanted
                    if a not in new and active.get(a) != wanted[a] and last_file.get(a) != wanted[a]
                ]
            file_changed = [a for a in wanted if last_file.get(a) != wanted[a]] if activate is None else []
            if not new and not moved and not file_changed:
                return active
            now = time.time()
            await self._record(
                db,
                system,
                wanted,
                specs,
                new,
                moved,
                active,
                source,
                note,
                now,
                activate is not False,
                file_changed,
            )
        self.generation += 1
        return await self.active_versions(system)

    async def _record(
        self,
        db: aiosqlite.Connection,
        system: str,
        wanted: dict[str, str],
        specs: dict[str, str],
        new: list[str],
        moved: list[str],
        active: dict[str, str],
        source: str,
        note: str,
        now: float,
        activate_new: bool,
        file_changed: list[str],
    ) -> None:
        self.check_writable()
        # One executemany a table, not one awaited statement a row: each awaited call is a
        # thread hand-off (~35-40 µs), and a fresh store records every agent of the system
        # (the pytest plugin opens one per scenario). Same rows, each table's in the same order.
        activated = [*(new if activate_new else ()), *moved]
        writes: list[tuple[str, list[tuple[Any, ...]]]] = [
            (
                "INSERT OR REPLACE INTO file_versions (system, agent, version_id) VALUES (?, ?, ?)",
                [(system, agent, wanted[agent]) for agent in file_changed],
            ),
            (
                "INSERT OR IGNORE INTO agent_versions (system, agent, version_id, spec, source, note,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(system, agent, wanted[agent], specs[agent], source, note, now) for agent in new],
            ),
            (
                "INSERT OR REPLACE INTO active_versions (system, agent, version_id, updated_at)"
                " VALUES (?, ?, ?, ?)",
                [(system, agent, wanted[agent], now) for agent in activated],
            ),
            (
                "INSERT INTO version_log (system, agent, action, from_version, to_version, note,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        system,
                        agent,
                        "recorded" if agent in new else "activated",
                        active.get(agent),
                        wanted[agent],
                        note,
                        now,
                    )
                    for agent in activated
                ],
            ),
        ]
        await db.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in writes:
                if rows:
                    await db.executemany(sql, rows)
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

    async def versions(self, system: str, agent: str | None = None) -> list[VersionRow]:
        """Stored versions of a system's agents (or of one agent), newest first."""
        sql = (
            "SELECT v.agent, v.version_id, v.source, v.note, v.created_at,"
            " a.version_id IS NOT NULL AS active FROM agent_versions v"
            " LEFT JOIN active_versions a"
            " ON a.system = v.system AND a.agent = v.agent AND a.version_id = v.version_id"
            " WHERE v.system = ?"
        )
        params: tuple[Any, ...] = (system,)
        if agent is not None:
            sql += " AND v.agent = ?"
            params = (system, agent)
        sql += " ORDER BY v.created_at DESC, v.agent, v.version_id"
        async with self.db.execute(sql, params) as cursor:
            return [
                VersionRow(
                    version_id=r["version_id"],
                    agent=r["agent"],
                    created_at=r["created_at"],
                    source=r["source"],
                    note=r["note"],
                    active=bool(r["active"]),
                )
                for r in await cursor.fetchall()
            ]

    async def resolve_version(self, system: str, agent: str, prefix: str) -> str:
        """The full id of the version of ``agent`` that ``prefix`` names, as git resolves a commit.

        ``prefix`` is a whole version id, a unique prefix of one (at least 4 characters), or
        ``active`` (the agent's active version).

        Raises:
            StoreError: No version, or more than one, matches.
        """
        name = prefix.strip()
        if name == "active":
            active = (await self.active_versions(system)).get(agent)
            if active is None:
                raise StoreError(f"agent {agent!r} of {system!r} has no active version in the store")
            return active
        rows = await self.versions(system, agent)
        if not rows:
            agents = sorted({r.agent for r in await self.versions(system)})
            known = f" (agents with versions: {', '.join(agents)})" if agents else ""
            raise StoreError(f"{system!r} has no versions of agent {agent!r} in {str(self.path)!r}{known}")
        exact = [r for r in rows if r.version_id == name]
        if exact:
            return exact[0].version_id
        if len(name) < _MIN_PREFIX:
            raise StoreError(f"give at least {_MIN_PREFIX} characters of a version id, not {prefix!r}")
        matches = [r for r in rows if r.version_id.startswith(name.lower())]
        if not matches:
            raise StoreError(
                f"agent {agent!r} of {system!r} has no version {prefix!r}; "
                f"list them with: playground versions SYSTEM.yaml --agent {agent}"
            )
        if len(matches) > 1:
            listed = ", ".join(
                f"{r.version_id} ({r.source}{', active' if r.active else ''})" for r in matches
            )
            raise StoreError(
                f"{prefix!r} names {len(matches)} versions of {agent!r}: {listed}; give more of its id"
            )
        return matches[0].version_id

    async def rollback(self, system: str, agent: str, version: str, note: str = "") -> tuple[str | None, str]:
        """Point ``agent`` at an earlier (or any stored) version. Nothing is deleted.

        Args:
            version: A version id, a unique prefix of one, or ``active``.

        Returns:
            The version it was on and the version it is on now (equal when nothing moved).
        """
        target = await self.resolve_version(system, agent, version)
        async with self._transaction() as db:
            async with db.execute(
                "SELECT version_id FROM active_versions WHERE system = ? AND agent = ?", (system, agent)
            ) as cursor:
                row = await cursor.fetchone()
            current: str | None = row[0] if row else None
            if current == target:
                return current, target
            await self._move(db, system, agent, "rollback", current, target, note, time.time())
        self.generation += 1
        return current, target

    async def _move(
        self,
        db: aiosqlite.Connection,
        system: str,
        agent: str,
        action: str,
        current: str | None,
        target: str,
        note: str,
        now: float,
    ) -> None:
        await db.execute(
            "INSERT OR REPLACE INTO active_versions (system, agent, version_id, updated_at)"
            " VALUES (?, ?, ?, ?)",
            (system, agent, target, now),
        )
        await db.execute(
            "INSERT INTO version_log (system, agent, action, from_version, to_version, note, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (system, agent, action, current, target, note, now),
        )

    async def snapshot(self, system: str, name: str, *, replace: bool = False) -> dict[str, str]:
        """Name the current active version of every agent of ``system``.

        Raises:
            StoreError: The system has no active versions, or the name is taken and
                ``replace`` is false.

        Returns:
            Agent name to version id, as recorded.
        """
        if not name.strip():
            raise StoreError("a snapshot needs a name")
        async with self._transaction() as db:
            async with db.execute(
                "SELECT agent, version_id FROM active_versions WHERE system = ? ORDER BY agent", (system,)
            ) as cursor:
                versions = {r[0]: r[1] for r in await cursor.fetchall()}
            if not versions:
                raise StoreError(
                    f"{system!r} has no agent versions in {str(self.path)!r}: load or run it first"
                )
            async with db.execute(
                "SELECT created_at FROM snapshots WHERE system = ? AND name = ?", (system, name)
            ) as cursor:
                taken = await cursor.fetchone()
            if taken is not None and not replace:
                raise StoreError(
                    f"{system!r} already has a snapshot {name!r} (taken {_when(taken[0])}); "
                    "choose another name, or replace it (--replace)"
                )
            await db.execute(
                "INSERT OR REPLACE INTO snapshots (system, name, versions, created_at) VALUES (?, ?, ?, ?)",
                (system, name, json.dumps(versions), time.time()),
            )
        return versions

    async def snapshots(self, system: str) -> list[SnapshotRow]:
        """A system's snapshots, newest first."""
        async with self.db.execute(
            "SELECT name, versions, created_at FROM snapshots WHERE system = ?"
            " ORDER BY created_at DESC, name",
            (system,),
        ) as cursor:
            return [
                SnapshotRow(name=r["name"], versions=json.loads(r["versions"]), created_at=r["created_at"])
                for r in await cursor.fetchall()
            ]

    async def restore_snapshot(self, system: str, name: str) -> dict[str, tuple[str | None, str]]:
        """Roll every agent of a snapshot back to its version, in one transaction.

        Agents added to the system after the snapshot keep their active version.

        Returns:
            Each agent that moved, with the version it was on and the one it is on now.
        """
        changes: dict[str, tuple[str | None, str]] = {}
        async with self._transaction() as db:
            async with db.execute(
                "SELECT versions FROM snapshots WHERE system = ? AND name = ?", (system, name)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                async with db.execute(
                    "SELECT name FROM snapshots WHERE system = ? ORDER BY created_at DESC", (system,)
                ) as cursor:
                    names = [r[0] for r in await cursor.fetchall()]
                known = f" (its snapshots: {', '.join(names)})" if names else " (it has none)"
                raise StoreError(f"{system!r} has no snapshot {name!r}{known}")
            wanted: dict[str, str] = json.loads(row[0])
            async with db.execute(
                "SELECT agent, version_id FROM active_versions WHERE system = ?", (system,)
            ) as cursor:
                active = {r[0]: r[1] for r in await cursor.fetchall()}
            now = time.time()
            for agent, target in sorted(wanted.items()):
                if active.get(agent) != target:
                    await self._move(
                        db, system, agent, "restore", active.get(agent), target, f"snapshot {name}", now
                    )
                    changes[agent] = (active.get(agent), target)
        if changes:
            self.generation += 1
        return changes

    async def version_log(self, system: str, agent: str | None = None) -> list[VersionLogEntry]:
        """The moves of a system's active pointers (or one agent's), newest first."""
        sql = "SELECT * FROM version_log WHERE system = ?"
        params: tuple[Any, ...] = (system,)
        if agent is not None:
            sql += " AND agent = ?"
            params = (system, agent)
        async with self.db.execute(sql + " ORDER BY entry_id DESC", params) as cursor:
            return [
                VersionLogEntry(
                    entry_id=r["entry_id"],
                    agent=r["agent"],
                    action=r["action"],
                    from_version=r["from_version"],
                    to_version=r["to_version"],
                    note=r["note"],
                    created_at=r["created_at"],
                )
                for r in await cursor.fetchall()
            ]


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
