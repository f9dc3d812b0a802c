"""The command line, as a user runs it: subprocesses, exit codes, the --json contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def playground(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_run_json_contract(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    proc = playground(
        "run",
        "agents/support_router.yaml",
        "--input",
        "I was charged twice on my last invoice",
        "--json",
        db=db,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "completed"
    assert data["path"] == ["router", "billing"]
    assert set(data) >= {
        "session_id",
        "status",
        "path",
        "output",
        "cost_usd",
        "tokens",
        "latency_ms",
        "per_agent",
        "error",
    }
    assert set(data["tokens"]) == {"input", "output"}
    for name in ("router", "billing"):
        assert set(data["per_agent"][name]) == {"calls", "tokens", "cost_usd", "latency_ms"}
    assert data["per_agent"]["billing"]["cost_usd"] > 0
    assert data["error"] is None
    shown = playground("sessions", "show", data["session_id"], "--json", db=db)
    stored = json.loads(shown.stdout)
    assert stored["status"] == "completed"
    assert [e["kind"] for e in stored["events"]][-1] == "run_finished"
    listed = json.loads(playground("sessions", "--json", db=db).stdout)
    assert [s["session_id"] for s in listed] == [data["session_id"]]


def test_failed_run_exits_non_zero_with_origin(tmp_path: Path) -> None:
    system = tmp_path / "s.yaml"
    system.write_text("""
name: broken-model
pattern: router
entry: a
limits: {retries: 0}
agents:
  a:
    handoffs: [{to: b}]
    script: [{fail: provider_error}]
  b: {script: [{reply: x}]}
""")
    proc = playground("run", str(system), "--input", "hi", "--json", db=tmp_path / "s.db")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["status"] == "failed"
    assert data["error"]["origin"] == "a" and data["error"]["manifested"] == "a"
    assert data["error"]["type"] == "provider_error"
    human = playground("run", str(system), "--input", "hi", db=tmp_path / "s.db")
    assert human.returncode == 1
    assert "origin: a" in human.stdout and "manifested: a" in human.stdout
    assert "Traceback" not in human.stderr + human.stdout


def test_readable_summary(tmp_path: Path) -> None:
    proc = playground("run", "agents/support_router.yaml", "--input", "The API is down", db=tmp_path / "s.db")
    assert proc.returncode == 0, proc.stderr
    assert "router → technical" in proc.stdout
    assert "technical" in proc.stdout and "total" in proc.stdout
    assert "handoff -> technical" in proc.stderr  # live step lines


def test_check_command(tmp_path: Path) -> None:
    proc = playground(
        "check",
        "agents/support_router.yaml",
        "agents/content_pipeline.yaml",
        "agents/research_supervisor.yaml",
        db=tmp_path / "s.db",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("ok:") == 3


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from playground.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help']) if False else None\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('litellm', 'textual', 'rich', 'opentelemetry.sdk', 'aiosqlite', 'pydantic')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_core_packages_import_without_textual_or_litellm() -> None:
    code = (
        "import sys\n"
        "import playground.engine, playground.spec, playground.llm.scripted, playground.store, "
        "playground.tracing, playground.service\n"
        "print([m for m in ('textual', 'litellm', 'opentelemetry.sdk') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr
