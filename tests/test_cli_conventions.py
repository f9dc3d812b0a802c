"""Command-line conventions (issue 15 items 6 and 7): --version, --input from stdin or a file,
output that pipes well and reads at 80 columns, and the small things a new user hit."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from playground.engine.events import RunStarted
from playground.errors import StoreError
from playground.store import Store

ROOT = Path(__file__).resolve().parent.parent
REQUEST = "I was charged twice on my last invoice"


def cli(
    *args: str, db: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        input=stdin,
        env={**os.environ, **(env or {})},
    )


def test_version(tmp_path: Path) -> None:
    proc = cli("--version", db=tmp_path / "s.db")
    assert proc.returncode == 0
    assert re.fullmatch(r"playground \d+\.\d+\.\d+\S*\n", proc.stdout)


def test_input_from_stdin_a_file_or_literally(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    piped = json.loads(
        cli("run", "agents/support_router.yaml", "--input", "-", "--json", db=db, stdin=REQUEST).stdout
    )
    (tmp_path / "request.txt").write_text(REQUEST, encoding="utf-8")
    filed = json.loads(
        cli(
            "run", "agents/support_router.yaml", "--input", f"@{tmp_path / 'request.txt'}", "--json", db=db
        ).stdout
    )
    assert piped["path"] == filed["path"] == ["router", "billing"]
    shown = json.loads(cli("sessions", "show", piped["session_id"], "--json", db=db).stdout)
    assert shown["input"] == REQUEST
    literal = json.loads(
        cli("run", "agents/support_router.yaml", "--input", "@@home", "--json", db=db).stdout
    )
    assert (
        json.loads(cli("sessions", "show", literal["session_id"], "--json", db=db).stdout)["input"] == "@home"
    )
    missing = cli("run", "agents/support_router.yaml", "--input", "@nowhere.txt", db=db)
    assert missing.returncode == 2
    assert (
        missing.stderr.startswith("error: --input @nowhere.txt: cannot read it")
        and "Traceback" not in missing.stderr
    )


def test_piped_output_is_not_wrapped_or_cut(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    long_request = REQUEST + " and I would like the refund on the card I paid with, please"
    run = json.loads(
        cli("run", "agents/support_router.yaml", "--input", long_request, "--json", db=db).stdout
    )
    listing = cli("sessions", db=db, env={"COLUMNS": ""}).stdout
    [row] = [line for line in listing.splitlines() if run["session_id"] in line]  # the whole id
    assert "router → billing" in row and long_request[:40] in row  # one line, not wrapped at 80


def test_narrow_tables_become_lists() -> None:
    from rich.table import Table

    from playground.cli.output import console, print_table

    table = Table(title="sessions")
    for column in ("session", "when", "system", "status", "path", "cost (USD)", "input"):
        table.add_column(column)
    ids = ["0123456789ab", "ba9876543210"]
    for session_id in ids:
        table.add_row(
            session_id,
            "2026-12-06 02:18:16",
            "support-router",
            "completed",
            "router → billing",
            "0.000068",
            REQUEST,
        )
    out = console()
    out.file = io.StringIO()
    out.width = 80
    print_table(out, table)
    text = out.file.getvalue()
    assert "┃" not in text  # not a table squeezed into one-letter columns
    for session_id in ids:
        assert any(line.startswith(session_id) for line in text.splitlines())
    assert all(len(line) <= 80 for line in text.splitlines())
    wide = console()
    wide.file = io.StringIO()
    wide.width = 200
    print_table(wide, table)
    assert "┃" in wide.file.getvalue()  # it fits: a table


def test_check_accepts_the_scenario_files_it_globs(tmp_path: Path) -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "agents").glob("*.yaml"))
    proc = cli("check", *files, db=tmp_path / "s.db")
    assert proc.returncode == 0, proc.stderr
    assert "ok: agents/support_router.scenarios.yaml: 10 scenarios of support-router" in proc.stdout


@pytest.mark.parametrize("jobs", ["0", "-1", "x"])
def test_jobs_must_be_positive(tmp_path: Path, jobs: str) -> None:
    proc = cli("test", "agents/support_router.scenarios.yaml", "--jobs", jobs, db=tmp_path / "s.db")
    assert proc.returncode == 2 and "--jobs" in proc.stderr


def test_compare_refuses_the_same_side_twice(tmp_path: Path) -> None:
    proc = cli(
        "compare",
        "agents/support_router.yaml",
        "--agent",
        "billing",
        "--a",
        "scripted",
        "--b",
        "scripted",
        "--input",
        REQUEST,
        db=tmp_path / "s.db",
    )
    assert proc.returncode == 2
    assert proc.stderr == "error: --a and --b are both 'scripted': compare two different versions or models\n"


def test_comparison_ids_have_twelve_hex_digits(tmp_path: Path) -> None:
    proc = cli(
        "compare",
        "agents/support_router.yaml",
        "--agent",
        "billing",
        "--a",
        "scripted",
        "--b",
        "scripted/b",
        "--input",
        REQUEST,
        "--json",
        db=tmp_path / "s.db",
    )
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"[0-9a-f]{12}", json.loads(proc.stdout)["comparison_id"])


def test_a_directory_as_the_store_is_one_clear_line(tmp_path: Path) -> None:
    proc = cli("sessions", db=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: the store {str(tmp_path)!r} is a directory")
    assert "Traceback" not in proc.stderr


def test_a_new_default_store_says_where_it_is(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "PLAYGROUND_DB"}

    def sessions() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "playground.cli", "sessions"]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)

    first = sessions()
    assert first.returncode == 0, first.stderr
    assert first.stderr == f"note: created the session store {Path('sessions') / 'playground.db'}\n"
    assert (tmp_path / "sessions" / "playground.db").exists()
    assert sessions().stderr == ""  # only when it is new
    assert "created" not in cli("sessions", db=tmp_path / "named.db").stderr  # named: no note


async def test_an_ambiguous_prefix_lists_the_candidates(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db") as store:
        for session_id in ("abc111111111", "abc222222222"):
            store.sink(
                RunStarted(
                    session_id=session_id,
                    seq=1,
                    ts=1.0,
                    system="s",
                    system_path="s.yaml",
                    correlation_id="0" * 32,
                    input="hi",
                )
            )
        with pytest.raises(StoreError, match=r"'abc' names more than one session \(abc\w+, abc\w+\)"):
            await store.session("abc")
        assert (await store.session("abc1")).session_id == "abc111111111"


def test_a_fork_whose_edit_fails_the_schema_runs_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run = json.loads(cli("run", "agents/support_router.yaml", "--input", REQUEST, "--json", db=db).stdout)
    shown = json.loads(cli("sessions", "show", run["session_id"], "--json", db=db).stdout)
    [step] = [e["step"] for e in shown["events"] if e["kind"] == "handoff_delivered"]
    bad = cli("fork", run["session_id"], "--at", str(step), "--edit", '{"question": "no customer"}', db=db)
    assert bad.returncode == 1
    assert "does not validate" in bad.stderr and "nothing was run" in bad.stderr
    listed = json.loads(cli("sessions", "--json", db=db).stdout)
    assert [row["session_id"] for row in listed] == [run["session_id"]]  # no aborted fork left behind
    good = cli(
        "fork",
        *(run["session_id"], "--at", str(step), "--json"),
        *("--edit", '{"customer_id": "C-2", "question": "refund?"}'),
        db=db,
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["parent_session_id"] == run["session_id"]


def test_replay_force_goes_with_current(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run = json.loads(cli("run", "agents/support_router.yaml", "--input", REQUEST, "--json", db=db).stdout)
    alone = cli("replay", run["session_id"], "--force", db=db)
    assert alone.returncode == 2 and alone.stderr.startswith("error: --force goes with --current")
    both = cli("replay", run["session_id"], "--current", "--force", "--json", db=db)
    assert both.returncode == 0, both.stderr
    assert json.loads(both.stdout)["first_divergence"] is None  # nothing changed: all from the recording


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path: Path) -> None:
    """`playground run ... --json | head -c 10`: the pipe closes early; no traceback follows."""
    (tmp_path / "tools.py").write_text('def big() -> str:\n    return "x" * 200000\n')
    system = tmp_path / "big.yaml"
    system.write_text(
        "name: big\npattern: router\nentry: a\nlimits: {max_tool_result_chars: 200000}\n"
        "tools: {big: tools.py:big}\nagents:\n  a:\n    tools: [big]\n    handoffs: [{to: b}]\n"
        '    script: [{tool: big, args: {}}, {reply: "{tool_result}"}]\n  b: {script: [{reply: done}]}\n'
    )
    command = [sys.executable, "-m", "playground.cli", "run", str(system), "--input", "go", "--json"]
    proc = subprocess.Popen(
        [*command, "--db", str(tmp_path / "s.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10) == b'{"session_'
    proc.stdout.close()  # the reader goes away with most of the output unread
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err
