"""``playground serve``: the TUI in a browser through textual-serve (the serve extra)."""

from __future__ import annotations

import argparse
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from playground.cli import build_parser
from playground.cli.serve import app_command

ROOT = Path(__file__).resolve().parent.parent


def test_each_connection_runs_the_tui_on_the_shared_store(tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve", "agents/support_router.yaml", "--db", str(tmp_path / "s.db")])
    command = shlex.split(app_command(args))
    assert command[:3] == [sys.executable, "-m", "playground.cli"]
    assert command[3:5] == ["--db", str((tmp_path / "s.db").resolve())]
    assert command[5:] == ["tui", str((ROOT / "agents" / "support_router.yaml").resolve())]
    home = build_parser().parse_args(["serve", "--db", str(tmp_path / "s.db")])
    assert "tui" not in shlex.split(app_command(home))  # the home screen


def test_serve_without_textual_serve_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    args = argparse.Namespace(system=None, host="127.0.0.1", port=8000, public_url=None, db=None)
    from playground.cli.serve import cmd_serve

    assert cmd_serve(args) == 2
    assert "pip install 'agent-playground[serve]'" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_answers_a_browser(tmp_path: Path) -> None:
    pytest.importorskip("textual_serve")
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "playground.cli", "serve", "agents/support_router.yaml"),
            *("--port", str(port), "--db", str(tmp_path / "s.db")),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page = ""
        for _ in range(300):  # until it listens (or gives up after a minute)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
                break
            except OSError:
                if server.poll() is not None:
                    break
                time.sleep(0.2)
        failed = server.stderr.read() if server.stderr is not None and server.poll() is not None else ""
        assert page, failed or "no answer"
        assert "Agent Playground" in page  # the title
        assert f"ws://127.0.0.1:{port}/ws" in page  # where the page connects its terminal
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_refuses_a_broken_system_before_serving(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nagents: 3\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "playground.cli", "serve", str(broken), "--db", str(tmp_path / "s.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
