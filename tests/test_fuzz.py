"""Fuzzing what the outside world hands the command line (issue 16): system files,
scenario files, ``fork --edit`` payloads and session imports, mutated by hypothesis.

For every input: the command exits with one of its documented codes, prints no
traceback, and a broken file is named with its line; imports never poison the store
(``sessions`` still lists it). Memory is bounded for the whole module (an address-space
limit a few GB above what the process holds; a blow-up is a ``MemoryError`` and fails
the test) and each example has a generous deadline against hangs. The budget
(``FUZZ_EXAMPLES``, derandomised so CI runs the same cases) keeps the module to a
few seconds; raise it locally to search harder: ``PLAYGROUND_FUZZ_EXAMPLES=2000``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import resource
import shutil
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from playground.cli import main
from playground.errors import PlaygroundError
from playground.spec import load_system
from tests.helpers import EXAMPLES, example_copy

FUZZ_EXAMPLES = int(os.environ.get("PLAYGROUND_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=20),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Documented exit codes (each command's --help).
CHECK_CODES = {0, 2}
RUN_CODES = {0, 1, 2, 3, 4}
TEST_CODES = {0, 1, 2}
IMPORT_CODES = {0, 1, 2}


@pytest.fixture(scope="module", autouse=True)
def bounded_memory() -> Iterator[None]:
    """Cap the address space a few GB above what the process holds now (threads reserve
    stacks, so the cap is generous): an input that makes memory grow without bound fails
    with MemoryError instead of taking the machine down."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as status:
        held_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    cap = held_kb * 1024 + (3 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def cli(*argv: str) -> tuple[int, str, str]:
    """Run the command line in this process; returns (code, stdout, stderr).

    Anything escaping ``main`` other than ``SystemExit`` is a crash and fails the test.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own exit on bad usage
            code = exc.code if isinstance(exc.code, int) else 2
    text = err.getvalue()
    assert "Traceback" not in text and "Traceback" not in out.getvalue(), text
    return code, out.getvalue(), text


# -- mutations of a file ----------------------------------------------------------------

SNIPPETS = [
    b"x-bomb-0: &b0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + b"".join(f"x-bomb-{n}: &b{n} [{', '.join([f'*b{n - 1}'] * 9)}]\n".encode() for n in range(1, 9)),
    b"x-loop: &loop [*loop]",
    b"x-deep: " + b"[" * 3000 + b"]" * 3000,
    b"x-big: " + b"9" * 5000,
    b"\xff\xfe\xfd",
    b"\x00",
    b"\t",
    b"  - ",
    b": ",
    b"&a ",
    b"*a",
    b"<<: *a",
    b"!!python/object/apply:os.system ['true']",
    b"!!binary aGVsbG8=",
    b"{",
    b"[",
    b"'",
    b'"',
    b"? [a, b]\n: c",
    b"? {a: 1}\n: c",
    b"    api_key: sk-fuzz-0123456789",
    b'    model_settings: {extra_headers: {X-Api-Key: "k"}}',
    b"limits: {max_hops: -1}",
    b"limits: {max_hops: 99999999999999999999999}",
    b"    latency_ms: .nan",
    b"    script: [{fail: timeout}]",
    b"    script: [{handoff: nobody}]",
    b"    tools: [nothing]",
    b"tools: {t: ../../../etc/passwd:f}",
    b"tools: {t: tools.py:no_such_function}",
    "\u2028\u202e\ufeff".encode(),
    b"%YAML 1.1\n---",
    b"---\n...\n---",
    b"pipeline: [[a, [b, [c]]]]",
    b"entry: " + b"x" * 10_000,
    b"    input: {a: " + b"{" * 200 + b"}" * 200 + b"}",
    b'    input: {"type": "object", "properties": {"a": {"$ref": "#"}}}',
]


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few line-level and byte-level mutations."""
    data = seed
    for _ in range(draw(st.integers(1, 4))):
        lines = data.split(b"\n")
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "splice", "truncate", "indent", "swap"]))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "insert":
            lines.insert(i, draw(st.sampled_from(SNIPPETS)))
        elif op == "splice":
            line = lines[i]
            at = draw(st.integers(0, len(line)))
            noise = draw(st.one_of(st.sampled_from(SNIPPETS), st.binary(max_size=12)))
            lines[i] = line[:at] + noise + line[at + draw(st.integers(0, 6)) :]
        elif op == "truncate":
            joined = b"\n".join(lines)
            lines = joined[: draw(st.integers(0, len(joined)))].split(b"\n")
        elif op == "indent":
            lines[i] = b" " * draw(st.integers(0, 9)) + lines[i].lstrip(b" ")
        elif op == "swap" and len(lines) > 1:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        data = b"\n".join(lines)
    return data


def assert_names_file_and_line(stderr: str, path: Path) -> None:
    found = re.search(re.escape(str(path)) + r":(\d+)", stderr)
    assert found, f"no {path}:LINE in {stderr!r}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled examples with their tools, instant, in one folder."""
    folder = tmp_path_factory.mktemp("fuzz")
    for example_name in ("support_router", "content_pipeline"):
        example_copy(folder, example_name)
    text = (EXAMPLES / "support_router.scenarios.yaml").read_text(encoding="utf-8")
    (folder / "support_router.scenarios.yaml").write_text(text, encoding="utf-8")
    return folder


SEEDS = ["support_router.yaml", "content_pipeline.yaml"]


def runnable(path: Path) -> bool:
    """Whether ``run`` may be fuzzed on a file that loads: offline models only, no declared
    waiting (a slow system is legitimate, not hostile, and would only spend the budget)."""
    try:
        system = load_system(path)
    except PlaygroundError:
        return True  # run must refuse it with exit 2: cheap
    spec = system.spec
    return spec.limits.timeout_s <= 60 and all(
        agent.model.startswith("scripted")
        and all(m.startswith("scripted") for m in agent.fallbacks)
        and not agent.latency_ms
        and not agent.tokens_per_s
        for agent in spec.agents.values()
    )


@FUZZ
@given(data=st.data())
@example(data=None)
def test_fuzzed_system_files(workspace: Path, data: Any) -> None:
    seed_name = SEEDS[0] if data is None else data.draw(st.sampled_from(SEEDS))
    seed = (workspace / seed_name).read_bytes()
    text = seed + b"\n" + SNIPPETS[0] if data is None else data.draw(mutated(seed))
    path = workspace / "fuzzed.yaml"
    path.write_bytes(text)
    code, _, err = cli("check", str(path))
    assert code in CHECK_CODES, err
    if code == 2:
        assert_names_file_and_line(err, path)
    if runnable(path):
        code, _, err = cli(
            "run", str(path), "--input", "I was charged twice", "--db", str(workspace / "run.db"), "-q"
        )
        assert code in RUN_CODES, err
        if code == 2 and "--input" not in err:
            assert_names_file_and_line(err, path)


@settings(FUZZ, max_examples=max(1, FUZZ_EXAMPLES // 3))  # each runs a whole scenario file
@given(data=st.data())
def test_fuzzed_scenario_files(workspace: Path, data: Any) -> None:
    seed = (workspace / "support_router.scenarios.yaml").read_bytes()
    path = workspace / "fuzzed.scenarios.yaml"
    path.write_bytes(data.draw(mutated(seed)))
    code, _, err = cli("test", str(path), "--db", str(workspace / "test.db"))
    assert code in TEST_CODES, err
    if code == 2:
        assert re.search(r"\.yaml:\d+", err), err


@pytest.fixture(scope="module")
def recorded(workspace: Path) -> tuple[Path, str, int]:
    """A recorded session of the router and the step of its handoff: what --edit changes."""
    db = workspace / "edit.db"
    code, out, err = cli(
        "run",
        str(workspace / "support_router.yaml"),
        "--input",
        "I was charged twice",
        "--db",
        str(db),
        "--json",
    )
    assert code == 0, err
    session_id = json.loads(out)["session_id"]

    async def handoff_step() -> int:
        from playground.store import Store

        async with Store(db) as store:
            events = await store.events(session_id)
        return next(e.step for e in events if e.kind == "handoff_delivered" and e.step is not None)

    return db, session_id, asyncio.run(handoff_step())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
EDITS = st.one_of(
    JSON.map(json.dumps),
    st.dictionaries(st.sampled_from(["customer_id", "question", "x"]), JSON, max_size=3).map(json.dumps),
    st.text(max_size=40),
    st.integers(1, 40_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 40_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.just('{"customer_id": ' + "9" * 5000 + "}"),
    st.just('{"question": "' + "\ud800" + '"}'),
)


@settings(FUZZ, max_examples=max(1, FUZZ_EXAMPLES * 3 // 4))
@given(edit=EDITS)
@example(edit="[" * 30_000 + "]" * 30_000)
def test_fuzzed_edit_payloads(recorded: tuple[Path, str, int], edit: str) -> None:
    db, session_id, step = recorded
    code, _, err = cli("fork", session_id, "--at", str(step), "--edit", edit, "--db", str(db), "-q")
    assert code in RUN_CODES, err


@pytest.fixture(scope="module")
def export_lines(recorded: tuple[Path, str, int]) -> list[str]:
    db, session_id, _ = recorded
    code, out, err = cli("export", session_id, "--db", str(db))
    assert code == 0, err
    return out.splitlines()


@st.composite
def mutated_export(draw: st.DrawFn, lines: list[str]) -> bytes:
    lines = list(lines)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["field", "drop_field", "delete", "duplicate", "bytes", "deep"]))
        if op in ("field", "drop_field"):
            try:
                record = json.loads(lines[i])
            except (ValueError, RecursionError):  # a line an earlier mutation broke
                continue
            target = record.get("session") or record.get("event") or record
            if isinstance(target, dict) and target:
                key = draw(st.sampled_from(sorted(target)))
                if op == "field":
                    target[key] = draw(
                        st.one_of(JSON, st.just(2**70), st.just("x" * 100_000), st.just("yesterday"))
                    )
                else:
                    del target[key]
            lines[i] = json.dumps(record)
        elif op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "deep":
            lines.insert(i, '{"type": "event", "event": ' + "[" * 50_000 + "]" * 50_000 + "}")
        elif op == "bytes":
            raw = lines[i].encode()
            at = draw(st.integers(0, len(raw)))
            return "\n".join(lines[:i]).encode() + raw[:at] + draw(st.binary(max_size=8)) + raw[at:]
    return "\n".join(lines).encode()


@settings(FUZZ, max_examples=max(1, FUZZ_EXAMPLES * 2 // 3))
@given(data=st.data())
def test_fuzzed_imports(workspace: Path, export_lines: list[str], data: Any) -> None:
    path = workspace / "fuzzed.jsonl"
    path.write_bytes(data.draw(mutated_export(export_lines)))
    db = workspace / "import.db"
    for stale in workspace.glob("import.db*"):
        stale.unlink()
    code, _, err = cli("import", str(path), "--db", str(db))
    assert code in IMPORT_CODES, err
    if code != 0:
        assert str(path) in err, err
    code, out, err = cli("sessions", "--db", str(db), "--json")
    assert code == 0, err
    for row in json.loads(out):
        code, _, err = cli("sessions", "show", row["session_id"], "--db", str(db))
        assert code in (0, 1), err


def test_the_bundled_examples_still_pass_check(tmp_path: Path) -> None:
    """The fuzz seeds are sound: every bundled system file loads."""
    shutil.copytree(EXAMPLES, tmp_path / "agents")
    for path in sorted((tmp_path / "agents").glob("*.yaml")):
        if not path.name.endswith(".scenarios.yaml"):
            code, _, err = cli("check", str(path))
            assert code == 0, textwrap.shorten(err, 300)
