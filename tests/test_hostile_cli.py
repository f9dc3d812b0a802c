"""The command line's side of issue 16: doctor, check's notes, bytes that are not text,
and the documented exit codes when the store or the input is hostile."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from playground.service import run_session
from playground.spec import load_system
from playground.store import Store
from tests.helpers import write_system
from tests.test_fuzz import cli
from tests.test_hostile_store import FAST_ROUTER, damage


async def record(db: Path, system_path: Path, count: int) -> None:
    system = load_system(system_path)
    async with Store(db) as store:
        for i in range(count):
            await run_session(system, f"request {i} " + "x" * 400, store=store)


def test_doctor_finds_damage_and_copies_what_can_be_read(tmp_path: Path) -> None:
    path = write_system(tmp_path, FAST_ROUTER)
    db = tmp_path / "s.db"
    asyncio.run(record(db, path, 200))
    code, out, _ = cli("doctor", "--db", str(db))
    assert code == 0 and out.startswith(f"ok: {db} is sound")
    damage(db)
    code, _, err = cli("doctor", "--db", str(db))
    assert code == 1 and "fails its integrity check" in err and "--copy-to NEW.db" in err
    code, _, err = cli("run", str(path), "--input", "more", "--db", str(db))
    assert code == 1 and "is damaged" in err and "playground doctor" in err
    code, out, _ = cli("sessions", "--db", str(db), "--json", "--limit", "1000")
    assert code == 0
    copy = tmp_path / "copy.db"
    code, out, _ = cli("doctor", "--db", str(db), "--copy-to", str(copy))
    assert code == 0 and f"copied into {copy}: sessions " in out
    code, out, _ = cli("doctor", "--db", str(copy))
    assert code == 0
    code, _, err = cli("run", str(path), "--input", "more", "--db", str(copy), "-q")
    assert code == 0, err


def test_check_notes_a_tools_file_outside_the_systems_folder(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "tools.py").write_text("def f() -> str:\n    return ''\n", encoding="utf-8")
    (tmp_path / "systems").mkdir()
    path = write_system(
        tmp_path / "systems",
        FAST_ROUTER.replace("entry: a\n", "entry: a\ntools: {f: ../shared/tools.py:f}\n"),
    )
    code, out, _ = cli("check", str(path))
    assert code == 0
    assert "note:" in out and "outside the system file's folder" in out


@pytest.mark.parametrize(
    "body", ["import sys\nsys.exit(7)", "import os\nos._exit(9)", "raise ValueError('x')"]
)
def test_check_and_run_exit_2_whatever_a_tools_module_does_at_import(tmp_path: Path, body: str) -> None:
    (tmp_path / "tools.py").write_text(body + "\n", encoding="utf-8")
    path = write_system(tmp_path, FAST_ROUTER.replace("entry: a\n", "entry: a\ntools: {f: tools.py:f}\n"))
    code, _, err = cli("check", str(path))
    assert code == 2 and f"{path}:" in err
    code, _, err = cli("run", str(path), "--input", "hi", "--db", str(tmp_path / "s.db"))
    assert code == 2 and f"{path}:" in err
    assert not (tmp_path / "s.db").exists()


def test_input_that_is_not_utf8_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    path = write_system(tmp_path, FAST_ROUTER)
    db = tmp_path / "s.db"
    # Bytes that are not UTF-8 reach Python's argv as lone surrogates.
    code, _, err = cli("run", str(path), "--input", "caf\udce9", "--db", str(db))
    assert code == 2 and "--input is not UTF-8" in err
    assert not db.exists()


def test_import_of_an_endless_file_is_refused(tmp_path: Path) -> None:
    code, _, err = cli("import", "/dev/zero", "--db", str(tmp_path / "s.db"))
    assert code == 1 and "/dev/zero" in err and "PLAYGROUND_MAX_IMPORT_BYTES" in err


def test_a_tools_lone_surrogate_is_stored_and_printed_as_its_escape(tmp_path: Path) -> None:
    """A tool's bytes that were not UTF-8 (a lone surrogate) reach the output: the session
    row keeps its escape, and the terminal prints it instead of failing after the run."""
    import subprocess
    import sys

    (tmp_path / "tools.py").write_text('def bad() -> str:\n    return "x\\ud800y"\n', encoding="utf-8")
    path = write_system(
        tmp_path,
        """
        name: t
        pattern: router
        entry: a
        tools: {bad: tools.py:bad}
        agents:
          a:
            tools: [bad]
            handoffs: [{to: b}]
            script:
              - tool: bad
                args: {}
              - reply: "got {tool_result}"
          b: {}
        """,
    )
    db = tmp_path / "s.db"
    for extra in ([], ["--json"]):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "playground.cli",
                "run",
                str(path),
                "--input",
                "hi",
                "--db",
                str(db),
                *extra,
            ],
            capture_output=True,
            timeout=60,
        )
        assert out.returncode == 0 and b"Traceback" not in out.stderr, out.stderr.decode()
        assert b"x\\ud800y" in out.stdout
    code, out_text, _ = cli("sessions", "--db", str(db), "--json")
    assert code == 0
    rows = json.loads(out_text)
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert rows[0]["output"] == "got x\\ud800y"
