"""Hostile system and scenario files: each is refused with one message naming the file and
line, within the limits of playground.bounds, and nothing the file's tools module does at
import ends or hangs the process (issue 16, items 1 and 4)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from playground import bounds
from playground.errors import SpecError
from playground.scenarios import load_scenarios
from playground.spec import load_system

ROUTER = """\
name: t
pattern: router
entry: a
agents:
  a:
    handoffs: [{to: b}]
    script: [{reply: hi}]
  b:
    script: [{reply: hi}]
"""

WITH_TOOL = """\
name: t
pattern: router
entry: a
tools:
  f: tools.py:f
agents:
  a:
    tools: [f]
    handoffs: [{to: b}]
    script: [{reply: hi}]
  b:
    script: [{reply: hi}]
"""


def refused(path: Path) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_system(path)
    error = caught.value
    assert error.path == str(path)
    return error


def write(tmp_path: Path, text: str | bytes, name: str = "system.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def billion_laughs(levels: int = 9) -> str:
    lines = ['x-l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        lines.append(f"x-l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]")
    return ROUTER + "\n".join(lines) + "\n"


def test_an_alias_bomb_under_an_ignored_key_is_refused_at_its_line(tmp_path: Path) -> None:
    text = billion_laughs()
    assert len(text.encode()) < 1000
    error = refused(write(tmp_path, text))
    assert error.line is not None and error.line > ROUTER.count("\n")
    assert "aliases expanded" in error.problem and bounds.SPEC_NODES.env in error.problem


def test_an_anchor_used_inside_itself_is_refused(tmp_path: Path) -> None:
    error = refused(write(tmp_path, ROUTER + "x-loop: &a [1, *a]\n"))
    assert error.line == ROUTER.count("\n") + 1
    assert "inside its own anchor" in error.problem


def test_ordinary_aliases_and_merge_keys_still_load(tmp_path: Path) -> None:
    text = ROUTER.replace("  a:\n", "  a:\n    <<: *common\n") + "x-common: &common {description: shared}\n"
    # An anchor must come before its alias: put the x- key first.
    text = "x-common: &common {description: shared}\n" + text.replace(
        "x-common: &common {description: shared}\n", ""
    )
    system = load_system(write(tmp_path, text))
    assert system.spec.agents["a"].description == "shared"


def test_nesting_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    error = refused(write(tmp_path, ROUTER + f"x-deep: {deep}\n"))
    assert error.line == ROUTER.count("\n") + 1
    assert bounds.SPEC_DEPTH.env in error.problem


def test_block_nesting_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    block = "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "v\n"
    error = refused(write(tmp_path, "x-deep:\n" + textwrap.indent(block, "  ") + ROUTER))
    assert error.line is not None
    assert "nesting" in error.problem


def test_nesting_grown_through_aliases_is_refused(tmp_path: Path) -> None:
    lines = ["x-d0: &d0 [1]"] + [f"x-d{n}: &d{n} [*d{n - 1}]" for n in range(1, 80)]
    error = refused(write(tmp_path, "\n".join(lines) + "\n" + ROUTER))
    assert "nesting" in error.problem and error.line is not None


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(bounds.SPEC_FILE_BYTES.env, "1000")
    error = refused(write(tmp_path, ROUTER + "# " + "x" * 2000 + "\n"))
    assert bounds.SPEC_FILE_BYTES.env in error.problem and "1,000 bytes" in error.problem
    monkeypatch.setenv(bounds.SPEC_FILE_BYTES.env, "100000")
    load_system(tmp_path / "system.yaml")


def test_a_huge_integer_is_refused_with_its_line(tmp_path: Path) -> None:
    error = refused(write(tmp_path, ROUTER + "x-n: " + "9" * 5000 + "\n"))
    assert error.line == ROUTER.count("\n") + 1
    assert "digits" in error.problem


def test_bytes_that_are_not_utf8_are_refused_with_their_line(tmp_path: Path) -> None:
    error = refused(write(tmp_path, ROUTER.encode() + b"x-bad: caf\xe9\n"))
    assert error.line == ROUTER.count("\n") + 1
    assert "not UTF-8" in error.problem and "0xe9" in error.problem


def test_a_control_character_is_refused_with_its_line(tmp_path: Path) -> None:
    error = refused(write(tmp_path, ROUTER + "x-c: a\x00b\n"))
    assert error.line == ROUTER.count("\n") + 1
    assert "0x0000" in error.problem


@pytest.mark.parametrize("key", ["[a, b]", "{a: 1}"])
def test_a_key_that_is_a_collection_is_refused(tmp_path: Path, key: str) -> None:
    error = refused(write(tmp_path, ROUTER + f"? {key}\n: v\n"))
    assert error.line == ROUTER.count("\n") + 1
    assert "plain value" in error.problem


def test_an_unreadable_path_is_one_message(tmp_path: Path) -> None:
    assert "cannot read" in refused(tmp_path).problem
    assert "cannot read" in refused(tmp_path / "missing.yaml").problem


def test_dev_zero_is_read_no_further_than_the_limit() -> None:
    error = refused(Path("/dev/zero"))
    assert bounds.SPEC_FILE_BYTES.env in error.problem


def test_a_scenario_file_is_bounded_like_a_system_file(tmp_path: Path) -> None:
    write(tmp_path, ROUTER)
    scenarios = write(
        tmp_path,
        "system: system.yaml\nscenarios:\n  - {name: s, input: hi}\n" + billion_laughs()[len(ROUTER) :],
        "t.scenarios.yaml",
    )
    with pytest.raises(SpecError) as caught:
        load_scenarios(scenarios)
    assert caught.value.path == str(scenarios) and caught.value.line is not None
    bad = write(tmp_path, b"system: system.yaml\nscenarios: [\xff]\n", "bad.scenarios.yaml")
    with pytest.raises(SpecError) as caught:
        load_scenarios(bad)
    assert caught.value.line == 2


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ('raise RuntimeError("boom")', "failed at line 1: RuntimeError: boom"),
        ("import sys\nsys.exit(7)", "called sys.exit(7) at line 2"),
        ("import os\nos._exit(9)", "called os._exit(9) at line 2"),
        ("raise SystemExit", "called sys.exit(None)"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("def g(: pass", "SyntaxError"),
        ("def f(x: 'NoSuchType') -> str:\n    return ''", "cannot be described"),
    ],
)
def test_what_a_tools_module_does_at_import_is_reported(tmp_path: Path, module: str, expected: str) -> None:
    (tmp_path / "tools.py").write_text(module + "\n", encoding="utf-8")
    error = refused(write(tmp_path, WITH_TOOL))
    assert error.line == 5 and error.field == "tools.f"
    assert expected in error.problem


def test_a_tools_module_that_never_finishes_importing_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(bounds.TOOL_IMPORT_S.env, "1")
    # Waits on an event nobody sets, released when the test ends (no busy loop left behind).
    (tmp_path / "tools.py").write_text(
        "import threading\nrelease = threading.Event()\nimport builtins\nbuiltins._pg_release = release\n"
        "release.wait(60)\ndef f() -> str:\n    return ''\n",
        encoding="utf-8",
    )
    try:
        error = refused(write(tmp_path, WITH_TOOL))
        assert "did not finish within 1 s" in error.problem and bounds.TOOL_IMPORT_S.env in error.problem
    finally:
        import builtins

        release = getattr(builtins, "_pg_release", None)
        if release is not None:
            release.set()
            delattr(builtins, "_pg_release")


def test_a_tools_file_outside_the_folder_loads_with_a_note(tmp_path: Path) -> None:
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "tools.py").write_text("def f() -> str:\n    return ''\n", encoding="utf-8")
    inner = tmp_path / "systems"
    inner.mkdir()
    system = load_system(write(inner, WITH_TOOL.replace("tools.py:f", "../shared/tools.py:f")))
    assert len(system.notes) == 1
    assert "outside the system file's folder" in system.notes[0] and ":5:" in system.notes[0]
    (inner / "tools.py").write_text("def f() -> str:\n    return ''\n", encoding="utf-8")
    assert load_system(write(inner, WITH_TOOL, "other.yaml")).notes == ()
