"""playground observe, diff and tui --observe as a user runs them: subprocesses, exit codes, --json."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import IO

from playground.observe import build_session
from playground.observe.record import put_sessions
from playground.store import Store
from tests.helpers import ROOT
from tests.test_observe import capture_spans, posts

WAIT_S = 30


def playground(*args: str, db: Path, columns: int = 80) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": str(columns)},
    )


def lines_of(stream: IO[str]) -> queue.Queue[str]:
    """Lines of a subprocess's stream as they come, read in a thread (a pipe read blocks)."""
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            found.put(line)

    threading.Thread(target=read, daemon=True).start()
    return found


def post_capture(url: str, capture: str) -> None:
    for body, content_type, encoding in posts(capture):
        headers = {"Content-Type": content_type, **({"Content-Encoding": encoding} if encoding else {})}
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200


def test_observe_records_what_a_framework_posts(tmp_path: Path) -> None:
    db = tmp_path / "observed.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "observe", "--port", "0", "--json", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        out, err = lines_of(proc.stdout), lines_of(proc.stderr)
        announced = err.get(timeout=WAIT_S)
        assert announced.startswith("observing OTLP/HTTP traces on http://127.0.0.1:"), announced
        url = announced.split(" on ", 1)[1].strip()
        assert url.endswith("/v1/traces")
        assert "OTEL_EXPORTER_OTLP_ENDPOINT=" + url.removesuffix("/v1/traces") in err.get(timeout=WAIT_S)
        post_capture(url, "openai-agents-openinference-handoff")
        finished = json.loads(out.get(timeout=WAIT_S))
        assert finished["framework"] == "openai-agents"
        assert (finished["status"], finished["path"]) == ("completed", ["triage", "billing"])
        assert finished["tokens"] == {"input": 460, "output": 50}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=WAIT_S) == 0
        while not (last := err.get(timeout=WAIT_S)).startswith("observed "):
            pass
        assert last == "observed 1 session from 12 spans\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    listed = playground("sessions", "--json", db=db)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["session_id"] == finished["session_id"]
    assert (row["observed"], row["status"], row["path"]) == (
        "openai-agents",
        "completed",
        ["triage", "billing"],
    )
    # 80 columns: a block per session (issue 15 item 6), its whole id first, then what it is.
    narrow = playground("sessions", db=db).stdout
    assert narrow.startswith(f"{finished['session_id']} observed  when ")
    assert "system support-router openai-agents" in " ".join(narrow.split())
    wide = playground("sessions", db=db, columns=120).stdout.splitlines()
    assert "│ support-router " in wide[2] and "│ openai-agents " in wide[3]
    shown = playground("sessions", "show", finished["session_id"][:6], db=db)
    assert shown.returncode == 0, shown.stderr
    assert f"{finished['session_id']} support-router (observed: openai-agents) completed" in shown.stdout


def test_observe_says_when_the_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = playground("observe", "--port", str(port), db=tmp_path / "s.db")
    assert proc.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_diff_of_two_observed_sessions(tmp_path: Path) -> None:
    import asyncio

    db = tmp_path / "s.db"
    ok = build_session(capture_spans("openai-agents-openinference-handoff"))
    failed = build_session(capture_spans("langgraph-openinference-error"))

    async def record() -> None:
        async with Store(db) as store:
            await put_sessions(store, [ok, failed])

    asyncio.run(record())
    proc = playground("diff", ok.session_id, failed.session_id[:8], "--json", db=db)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) >= {"a", "b", "same_path", "identical", "first_difference", "delta", "summary"}
    assert (data["a"]["observed"], data["b"]["observed"]) == ("openai-agents", "langgraph")
    assert data["same_path"] is True and data["identical"] is False
    assert data["delta"]["input_tokens"] == 120 - 460
    human = playground("diff", ok.session_id, failed.session_id, db=db)
    assert human.returncode == 0, human.stderr
    text = human.stdout
    assert "(observed: openai-agents)" in text and "(observed: langgraph)" in text
    assert "same path" in text and "first difference at step" in text
    # Every number whole at 80 columns: one row per agent and side.
    assert "│ A │     2 │ 340+38 │" in text and "│ B │     0 │    0+0 │" in text
    assert "B - A: cost +0.000000 USD, tokens -340 in / -38 out" in text
    missing = playground("diff", ok.session_id, "nosuchsession", db=db)
    assert missing.returncode == 1
    assert "no session 'nosuchsession'" in missing.stderr


def test_tui_takes_a_system_or_observe(tmp_path: Path) -> None:
    neither = playground("tui", db=tmp_path / "s.db")
    assert neither.returncode == 2 and "--observe" in neither.stderr
    # Said once, on one line: where the home screen is instead.
    assert "'playground' alone opens the home screen" in neither.stderr
    assert neither.stderr.count("\n") == 1
    both = playground("tui", "agents/support_router.yaml", "--observe", db=tmp_path / "s.db")
    assert both.returncode == 2 and "not both" in both.stderr
