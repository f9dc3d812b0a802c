"""Small helpers shared by the tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from playground.engine.clock import Clock
from playground.engine.events import Event, RunStarted
from playground.llm.base import LLM, ModelRequest, ModelResponse, OnDelta
from playground.spec import System, load_system
from playground.spec.models import AgentSpec

E = TypeVar("E", bound=Event)


def write_system(tmp_path: Path, text: str, name: str = "system.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def system_from(tmp_path: Path, text: str, name: str = "system.yaml") -> System:
    return load_system(write_system(tmp_path, text, name))


def kinds(events: Sequence[Event]) -> list[str]:
    return [e.kind for e in events]


def of_kind(events: Sequence[Event], kind: type[E]) -> list[E]:
    """The events of one class, typed as such."""
    return [e for e in events if isinstance(e, kind)]


def run_started(events: Sequence[Event]) -> RunStarted:
    """A session's first event, its :class:`RunStarted`."""
    first = events[0]
    assert isinstance(first, RunStarted)
    return first


ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "agents"


def example_copy(
    tmp_path: Path,
    example: str = "support_router",
    *,
    name: str | None = None,
    latency_ms: int = 0,
    extra: str = "",
) -> Path:
    """A bundled example and its tools.py copied into ``tmp_path``, the scripted model at
    ``latency_ms`` (instant by default) so tests do not wait on demo timing."""
    import re
    import shutil

    shutil.copy(EXAMPLES / "tools.py", tmp_path / "tools.py")
    text = (EXAMPLES / f"{example}.yaml").read_text(encoding="utf-8")
    text, count = re.subn(
        r"(?m)^scripted: \{latency_ms: \d+, tokens_per_s: \d+\}$",
        f"scripted: {{latency_ms: {latency_ms}, tokens_per_s: 0}}",
        text,
    )
    assert count == 1, f"{example}.yaml no longer sets its scripted latency on one line"
    path = tmp_path / (name or f"{example}.yaml")
    path.write_text(text + extra, encoding="utf-8")
    return path


def fixed_clock(*, tick_s: float = 0.0, ids: Callable[[int], str] | None = None) -> Clock:
    """A clock for snapshots: the wall clock moves ``tick_s`` each time an event reads it,
    latencies read the same instant, and ids are ``ids(n)`` (default: ``5e55`` repeated).

    It is passed in (``Runtime(clock=...)``, ``run_session(clock=...)``,
    ``PlaygroundApp(clock=...)``), not patched into modules.
    """
    now = [1_700_000_000.0]

    def wall() -> float:
        now[0] += tick_s
        return now[0]

    still = lambda: now[0]  # noqa: E731
    return Clock(wall=wall, perf=still, token_hex=ids or (lambda n: "5e55" * (n // 2)), now=still)


@contextmanager
def no_blocking() -> Iterator[None]:
    """Fail with ``BlockingError`` if anything inside blocks the event loop (a sync tool run on
    the loop's thread, a file read, ``time.sleep``): a blocked loop is a frozen screen, a timeout
    that never fires and a store writer that never flushes. pydantic-ai uses the same library.
    Set the test's files up before entering: writing them is blocking too."""
    from blockbuster import blockbuster_ctx

    with blockbuster_ctx():
        yield


def run_killed_when(system: Path, db: Path, kind: str, timeout_s: float = 60) -> tuple[str, list[str]]:
    """``playground run SYSTEM`` in a process of its own, ``kill -9``-ed as soon as an event of
    ``kind`` is committed to ``db``; then the store reopened: the session's status and the
    kinds of its events."""
    import asyncio
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from playground.store import Store

    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "run", str(system), "--input", "go", "--db", str(db), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline and not seen:
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=1) as conn:
                        seen = conn.execute("SELECT count(*) FROM events WHERE kind = ?", (kind,)).fetchone()[
                            0
                        ]
                except sqlite3.OperationalError:
                    seen = 0
            time.sleep(0.05)
        assert seen, f"the run never recorded a {kind} event"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)

    async def reopen() -> tuple[str, list[str]]:
        async with Store(db) as store:
            row = (await store.sessions())[0]
            return row.status, [e.kind for e in await store.events(row.session_id)]

    return asyncio.run(reopen())


class CountingFactory:
    """The default model factory, counting live model calls per agent: a test of a replay,
    fork or resume checks that nothing answered from the recording reached a model."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, agent: AgentSpec, model: str) -> LLM:
        from playground.engine.runtime import default_llm_factory

        inner = default_llm_factory(agent, model)
        calls = self.calls

        class Counting:
            async def complete(self, request: ModelRequest, on_delta: OnDelta | None = None) -> ModelResponse:
                calls.append(request.agent)
                return await inner.complete(request, on_delta)

        return Counting()
