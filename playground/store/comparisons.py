"""Stored comparison reports (``playground compare``)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from playground import redact
from playground.errors import StoreError
from playground.store.base import sqlite_errors
from playground.store.writer import Writer


class Comparisons(Writer):
    """Comparison reports, written through the batched writer."""

    async def save_comparison(
        self, system: str, agent: str, report: dict[str, Any], *, comparison_id: str | None = None
    ) -> str:
        """Store a comparison report; returns its id (a new random one unless given)."""
        self.check_writable()
        comparison_id = comparison_id or secrets.token_hex(6)  # 12 hex digits, as session ids
        self._queue(
            "INSERT INTO comparisons (comparison_id, system, agent, created_at, report)"
            " VALUES (?, ?, ?, ?, ?)",
            (comparison_id, system, agent, time.time(), redact.scrub(json.dumps(report))),
        )
        await self.flush()
        return comparison_id

    @sqlite_errors("listing comparisons")
    async def comparisons(self, system: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Stored comparisons, newest first: id, system, agent, created_at and the summary."""
        await self.flush()
        sql = "SELECT comparison_id, system, agent, created_at, report FROM comparisons"
        params: tuple[Any, ...] = ()
        if system:
            sql += " WHERE system = ?"
            params = (system,)
        async with self.db.execute(sql + " ORDER BY created_at DESC LIMIT ?", (*params, limit)) as cursor:
            rows = await cursor.fetchall()
        out = []
        for row in rows:
            try:
                report = json.loads(row["report"])
                out.append(
                    {
                        "comparison_id": row["comparison_id"],
                        "system": row["system"],
                        "agent": row["agent"],
                        "created_at": row["created_at"],
                        "a": report["a"]["label"],
                        "b": report["b"]["label"],
                        "summary": report["summary"],
                    }
                )
            except (ValueError, TypeError, KeyError):
                raise StoreError(
                    f"comparison {row['comparison_id']} in {str(self.path)!r} cannot be read back"
                ) from None
        return out

    @sqlite_errors("reading a comparison")
    async def comparison(self, comparison_id: str) -> dict[str, Any]:
        """One stored comparison report, by id or unique prefix."""
        await self.flush()
        async with self.db.execute(
            "SELECT comparison_id, report FROM comparisons WHERE comparison_id LIKE ? LIMIT 6",
            (comparison_id.replace("%", "").replace("_", "") + "%",),
        ) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            raise StoreError(f"no comparison {comparison_id!r} in {str(self.path)!r}")
        exact = [row for row in rows if row["comparison_id"] == comparison_id]
        if len(rows) > 1 and not exact:
            listed = ", ".join(str(row["comparison_id"]) for row in rows[:5])
            more = ", ..." if len(rows) > 5 else ""
            raise StoreError(
                f"{comparison_id!r} names more than one comparison ({listed}{more}); give more of its id"
            )
        rows = exact or rows
        try:
            report: dict[str, Any] = json.loads(rows[0]["report"])
        except ValueError:
            raise StoreError(f"comparison {rows[0]['comparison_id']} cannot be read back") from None
        report["comparison_id"] = rows[0]["comparison_id"]
        return report
