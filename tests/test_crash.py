"""``kill -9`` at random points of a run, one of them during a synchronous tool (issue 16).

After each kill: SQLite's ``integrity_check`` passes, the store opens (and the next run
writes into it), the killed session shows as ``interrupted``, and every event that had
been committed before the kill (read from the file by another connection just before
the signal) is still there, byte for byte. The points are drawn from a seeded random
generator, so a failure names a point that can be replayed.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from playground.store import Store
from tests.helpers import write_system

SEED = 16
KILLS = 4
"""Random kill points, besides the one during the sync tool."""

TOOLS = """
import time


def slow_lookup(customer_id: str) -> str:
    time.sleep(0.15)
    return "invoice INV-1 for " + customer_id
"""

SYSTEM = """
name: crash
pattern: router
entry: router
scripted: {latency_ms: 20, tokens_per_s: 400}
tools:
  slow_lookup: tools.py:slow_lookup
agents:
  router:
    handoffs: [{to: billing, context: {customer_id: str}}]
    script:
      - handoff: billing
        context: {customer_id: "C-1"}
  billing:
    input: {customer_id: str}
    tools: [slow_lookup]
    script:
      - tool: slow_lookup
        args: {customer_id: "{customer_id}"}
      - tool: slow_lookup
        args: {customer_id: "C-2"}
      - tool: slow_lookup
        args: {customer_id: "C-3"}
      - reply: "Found {tool_result}."
"""


def committed(db: Path) -> tuple[str | None, list[tuple[int, str]]]:
    """The newest session and its committed events, as another process reads the file now."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT session_id FROM sessions ORDER BY created_at DESC LIMIT 1").fetchone()
            if row is None:
                return None, []
            events = conn.execute(
                "SELECT seq, data FROM events WHERE session_id = ? ORDER BY seq", (row[0],)
            ).fetchall()
            return row[0], [(int(seq), str(data)) for seq, data in events]
    except sqlite3.OperationalError:  # not created yet, or mid-checkpoint
        return None, []


def tool_in_flight(events: list[tuple[int, str]]) -> bool:
    called = sum('"kind":"tool_called"' in data for _, data in events)
    returned = sum('"kind":"tool_returned"' in data for _, data in events)
    return called > returned


def kill_at(path: Path, db: Path, delay_s: float | None) -> tuple[str | None, list[tuple[int, str]], bool]:
    """Start a run, wait until its session is recorded, then ``delay_s`` more (or, with None,
    until a sync tool is running), read what is committed, and SIGKILL it."""
    before, _ = committed(db)
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "run", str(path), "--input", "go", "--db", str(db), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: tuple[str | None, list[tuple[int, str]]] = (None, [])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            session, events = committed(db)
            if session is not None and session != before:
                seen = (session, events)
                break
            time.sleep(0.01)
        assert seen[0] is not None, "the run never recorded its session"
        if delay_s is None:
            while time.monotonic() < deadline and proc.poll() is None and not tool_in_flight(seen[1]):
                seen = committed(db)
                time.sleep(0.005)
            assert tool_in_flight(seen[1]), "never saw the sync tool running"
        else:
            time.sleep(delay_s)
            seen = committed(db)
        finished = proc.poll() is not None
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    return seen[0], seen[1], finished


def test_kill_9_at_random_points_keeps_every_committed_event(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text(TOOLS, encoding="utf-8")
    path = write_system(tmp_path, SYSTEM)
    db = tmp_path / "s.db"
    rnd = random.Random(SEED)
    points: list[float | None] = [None, *(round(rnd.uniform(0, 0.8), 3) for _ in range(KILLS))]
    for point in points:
        session, before, finished = kill_at(path, db, point)
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"kill at {point}"

        async def reopen(session_id: str | None = session) -> tuple[str, list[str]]:
            assert session_id is not None
            async with Store(db) as store:
                assert store.damaged is None
                row = await store.session(session_id)
                events = await store.events(session_id)
            return row.status, [e.model_dump_json() for e in events]

        status, after = asyncio.run(reopen())
        assert status == ("completed" if finished else "interrupted"), f"kill at {point}"
        _, stored = committed(db)
        assert stored[: len(before)] == before, f"kill at {point}: committed events changed or went missing"
        assert len(after) == len(stored)
