"""Agent versions, rollback, snapshots, diff, YAML export, session export and import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from playground.errors import StoreError
from playground.service import run_session
from playground.spec import load_system
from playground.spec.identity import canonical_spec, version_id
from playground.spec.models import AgentSpec
from playground.store import Store
from playground.store.store import EXPORT_FORMAT_VERSION
from playground.versions import NO_DIFFERENCES, diff_specs, spec_to_yaml
from tests.helpers import example_copy, write_system

ROOT = Path(__file__).resolve().parent.parent

THREE = """
name: three
pattern: router
entry: a
agents:
  a:
    instructions: Route it.
    handoffs: [{to: b}, {to: c}]
    script:
      - match: "(?i)bee"
        handoff: b
      - handoff: c
  b:
    instructions: You are b.
    script: [{reply: "b one: {question}"}]
  c:
    instructions: You are c.
    script: [{reply: "c one: {question}"}]
"""


async def _record(store: Store, path: Path) -> dict[str, str]:
    system = load_system(path)
    return await store.record_versions(
        system.name, {n: canonical_spec(a) for n, a in system.spec.agents.items()}
    )


async def test_rollback_of_one_agent_leaves_the_others_untouched(tmp_path: Path) -> None:
    path = write_system(tmp_path, THREE)
    async with Store(tmp_path / "s.db") as store:
        first = await _record(store, path)
        write_system(tmp_path, THREE.replace("b one", "b two").replace("c one", "c two"))
        second = await _record(store, path)
        assert second["a"] == first["a"] and second["b"] != first["b"] and second["c"] != first["c"]

        was, now = await store.rollback("three", "b", first["b"][:6], note="b two is rude")
        assert (was, now) == (second["b"], first["b"])
        active = await store.active_versions("three")
        assert active == {"a": first["a"], "b": first["b"], "c": second["c"]}

        # The run uses the rolled-back b; re-running the edited file does not undo the rollback.
        result = await run_session(load_system(path), "bee please", store=store)
        assert result.output == "b one: bee please"
        assert (await run_session(load_system(path), "see", store=store)).output == "c two: see"

        # Nothing was deleted, and the move is in the log.
        versions = await store.versions("three")
        assert len(versions) == 5
        assert [v.version_id for v in versions if v.active and v.agent == "b"] == [first["b"]]
        assert versions[0].created_at >= versions[-1].created_at  # newest first
        log = await store.version_log("three", "b")
        assert (log[0].action, log[0].from_version, log[0].to_version, log[0].note) == (
            "rollback",
            second["b"],
            first["b"],
            "b two is rude",
        )
        # Rolling back to where it already is moves nothing.
        assert await store.rollback("three", "b", first["b"]) == (first["b"], first["b"])
        assert len(await store.version_log("three", "b")) == len(log)


async def test_a_snapshot_restores_all_agents_after_two_are_changed(tmp_path: Path) -> None:
    path = write_system(tmp_path, THREE)
    async with Store(tmp_path / "s.db") as store:
        first = await _record(store, path)
        assert await store.snapshot("three", "base") == first
        write_system(tmp_path, THREE.replace("b one", "b two").replace("c one", "c two"))
        second = await _record(store, path)
        generation = store.generation

        changes = await store.restore_snapshot("three", "base")
        assert changes == {"b": (second["b"], first["b"]), "c": (second["c"], first["c"])}
        assert await store.active_versions("three") == first
        assert store.generation > generation  # cached active specs are stale now
        assert (await run_session(load_system(path), "bee", store=store)).output == "b one: bee"
        assert (await run_session(load_system(path), "see", store=store)).output == "c one: see"
        restores = [e for e in await store.version_log("three") if e.action == "restore"]
        assert {e.agent for e in restores} == {"b", "c"}
        assert all(e.note == "snapshot base" for e in restores)

        # A taken name is refused unless replaced; a missing one names the ones there are.
        with pytest.raises(StoreError, match="already has a snapshot 'base'"):
            await store.snapshot("three", "base")
        await store.rollback("three", "c", second["c"])
        assert (await store.snapshot("three", "base", replace=True))["c"] == second["c"]
        assert [s.name for s in await store.snapshots("three")] == ["base"]
        with pytest.raises(StoreError, match=r"no snapshot 'nope' \(its snapshots: base\)"):
            await store.restore_snapshot("three", "nope")
        assert await store.restore_snapshot("three", "base") == {}


async def test_a_failed_restore_changes_nothing(tmp_path: Path) -> None:
    path = write_system(tmp_path, THREE)
    async with Store(tmp_path / "s.db") as store:
        await _record(store, path)
        # A snapshot naming agents whose restore fails part way leaves every pointer as it was.
        await store.db.execute(
            "INSERT INTO snapshots (system, name, versions, created_at) VALUES ('three', 'bad', ?, 0)",
            (json.dumps({"a": "000000000000", "b": None}),),
        )
        await store.db.commit()
        before = await store.active_versions("three")
        with pytest.raises(Exception, match="NOT NULL"):
            await store.restore_snapshot("three", "bad")
        assert await store.active_versions("three") == before
        assert not [e for e in await store.version_log("three") if e.action == "restore"]


async def test_versions_are_named_by_unique_prefixes(tmp_path: Path) -> None:
    path = write_system(tmp_path, THREE)
    async with Store(tmp_path / "s.db") as store:
        active = await _record(store, path)
        for vid in ("abcd11111111", "abcd22222222"):
            await store.db.execute(
                "INSERT INTO agent_versions (system, agent, version_id, spec, source, created_at)"
                " VALUES ('three', 'b', ?, '{}', 'operator', 0)",
                (vid,),
            )
        await store.db.commit()
        assert await store.resolve_version("three", "b", active["b"]) == active["b"]
        assert await store.resolve_version("three", "b", active["b"][:5]) == active["b"]
        assert await store.resolve_version("three", "b", "abcd1") == "abcd11111111"
        assert await store.resolve_version("three", "b", "active") == active["b"]
        with pytest.raises(StoreError, match=r"'abcd' names 2 versions of 'b': abcd11111111 .*abcd22222222"):
            await store.resolve_version("three", "b", "abcd")
        with pytest.raises(StoreError, match="has no version 'ffff'"):
            await store.resolve_version("three", "b", "ffff")
        with pytest.raises(StoreError, match="at least 4 characters"):
            await store.resolve_version("three", "b", "ab")
        with pytest.raises(StoreError, match=r"no versions of agent 'zz'.*agents with versions: a, b, c"):
            await store.resolve_version("three", "zz", "abcd")


async def test_an_operator_edit_becomes_active_and_a_fork_variant_does_not(tmp_path: Path) -> None:
    path = write_system(tmp_path, THREE)
    system = load_system(path)
    async with Store(tmp_path / "s.db") as store:
        first = await _record(store, path)
        edited = system.spec.agents["b"].model_copy(update={"instructions": "Be terse."})
        active = await store.record_versions(
            "three", {"b": canonical_spec(edited)}, source="operator", note="terser", activate=True
        )
        assert active["b"] == version_id(edited)
        row = (await store.versions("three", "b"))[0]
        assert (row.version_id, row.source, row.note, row.active) == (
            version_id(edited),
            "operator",
            "terser",
            True,
        )
        # Pointing back at a version the store knows is an operator's choice too.
        active = await store.record_versions(
            "three", {"b": canonical_spec(system.spec.agents["b"])}, source="operator", activate=True
        )
        assert active["b"] == first["b"]
        assert (await store.version_log("three", "b"))[0].action == "activated"
        # A fork's variant is recorded but moves no pointer.
        variant = system.spec.agents["c"].model_copy(update={"model": "scripted/other"})
        active = await store.record_versions(
            "three", {"c": canonical_spec(variant)}, source="operator", activate=False
        )
        assert active["c"] == first["c"]
        assert version_id(variant) in {v.version_id for v in await store.versions("three", "c")}


def test_diff_shows_instructions_as_text_then_each_changed_field() -> None:
    a = AgentSpec.model_validate(
        {
            "name": "billing",
            "instructions": "You answer billing questions.\nLook up the invoice first.\n",
            "tools": ["lookup_invoice"],
            "handoffs": [{"to": "general", "context": {"question": "str"}}],
            "input": {"customer_id": "str", "question": "str"},
            "model_settings": {"temperature": 0.2},
            "script": [
                {"tool": "lookup_invoice", "args": {"customer_id": "{customer_id}"}},
                {"reply": "one"},
            ],
        }
    )
    b = a.model_copy(
        update={
            "instructions": "You answer billing questions.\nBe brief.\n",
            "model": "openai/gpt-4o-mini",
            "fallbacks": ["scripted"],
            "tools": ["lookup_invoice", "refund_payment"],
            "model_settings": {"temperature": 0.7, "max_tokens": 200},
        }
    )
    b = AgentSpec.model_validate(
        {
            **b.model_dump(mode="json"),
            "handoffs": [
                {"to": "general", "context": {"question": "str", "urgent": "bool?"}},
                {"to": "human"},
            ],
            "input": {"customer_id": "int", "question": "str"},
            "price": {"input": 0.15, "output": 0.6},
            "script": [
                {"tool": "lookup_invoice", "args": {"customer_id": "{customer_id}"}},
                {"reply": "two"},
            ],
        }
    )
    text = diff_specs(a, b, a_label="billing 111", b_label="billing 222")
    lines = text.splitlines()
    assert lines[:4] == ["instructions:", "--- billing 111", "+++ billing 222", "@@ -1,2 +1,2 @@"]
    assert " You answer billing questions." in lines
    assert "-Look up the invoice first." in lines and "+Be brief." in lines
    rest = lines[lines.index("+Be brief.") + 1 :]
    assert rest == [
        "model: scripted -> openai/gpt-4o-mini",
        'fallbacks: [] -> ["scripted"]',
        "tools: +refund_payment",
        "handoffs: +human (context -)",
        "handoffs: general: context: +urgent: bool?",
        "input: customer_id: str -> int",
        "model_settings: +max_tokens=200, temperature 0.2 -> 0.7",
        "price: - -> input 0.15 / output 0.6 USD per 1M tokens",
        'script[1]: {"reply": "one"} -> {"reply": "two"}',
    ]
    assert diff_specs(a, a) == NO_DIFFERENCES
    only_model = diff_specs(a, a.model_copy(update={"model": "ollama/llama3"}))
    assert only_model == "model: scripted -> ollama/llama3"


@pytest.mark.parametrize("example", ["support_router", "research_supervisor", "content_pipeline"])
def test_a_version_exported_as_yaml_loads_back_to_the_same_version(tmp_path: Path, example: str) -> None:
    source = ROOT / "agents" / f"{example}.yaml"
    system = load_system(source)
    raw = yaml.safe_load(source.read_text())
    shutil.copy(ROOT / "agents" / "tools.py", tmp_path / "tools.py")
    for name, agent in system.spec.agents.items():
        text = spec_to_yaml(agent)
        assert text.startswith(f"{name}:\n  model: ")
        block = yaml.safe_load(text)
        assert list(block) == [name]
        pasted = tmp_path / f"{example}.yaml"
        pasted.write_text(yaml.safe_dump({**raw, "agents": {**raw["agents"], **block}}, sort_keys=False))
        assert version_id(load_system(pasted).spec.agents[name]) == version_id(agent), text
    billing = spec_to_yaml(load_system(ROOT / "agents" / "support_router.yaml").spec.agents["billing"])
    assert "  instructions: |\n    You answer billing questions." in billing
    assert "  tools: [lookup_invoice]\n" in billing
    assert "max_reviews" not in billing and "fallbacks" not in billing  # defaults left out


async def _a_recorded_session(tmp_path: Path, db: Path) -> str:
    path = write_system(
        tmp_path,
        """
        name: invoices
        pattern: router
        entry: router
        tools: {lookup: tools.py:lookup}
        agents:
          router:
            handoffs: [{to: billing, context: {customer_id: str, question: str}}]
            script: [{handoff: billing, context: {customer_id: C-9, question: "{input}"}}]
          billing:
            tools: [lookup]
            input: {customer_id: str, question: str}
            price: {input: 0.15, output: 0.6}
            script:
              - tool: lookup
                args: {customer_id: "{customer_id}"}
              - reply: "ünïcode reply: {tool_result}"
        """,
    )
    (tmp_path / "tools.py").write_text(
        "def lookup(customer_id: str) -> str:\n    return 'INV-' + customer_id\n"
    )
    async with Store(db) as store:
        result = await run_session(load_system(path), "my key is sk-live-0123456789abcdef", store=store)
    assert result.status == "completed"
    return result.session_id


async def test_export_then_import_into_a_fresh_store_round_trips_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = await _a_recorded_session(tmp_path, tmp_path / "a.db")
    async with Store(tmp_path / "a.db") as a:
        lines = await a.export_session(session_id[:6])
        row_a = await a.session(session_id)
        events_a = await a.events(session_id)
        specs_a = {n: await a.version_spec("invoices", n, v) for n, v in row_a.versions.items()}
    header = json.loads(lines[0])
    assert header["format"] == "playground-session"
    assert header["format_version"] == EXPORT_FORMAT_VERSION
    assert header["exported_at"] and header["events"] == len(events_a)
    assert [json.loads(line)["type"] for line in lines[1:4]] == ["session", "agent_version", "agent_version"]

    async with Store(tmp_path / "b.db") as b:
        row_b = await b.import_session(lines)
        assert row_b == row_a
        assert [e.model_dump() for e in await b.events(session_id)] == [e.model_dump() for e in events_a]
        assert {n: await b.version_spec("invoices", n, v) for n, v in row_b.versions.items()} == specs_a
        assert await b.active_versions("invoices") == {}  # importing moves no pointer
        assert (await b.export_session(session_id))[1:] == lines[1:]
        with pytest.raises(StoreError, match=f"session {session_id} is already in .*nothing was imported"):
            await b.import_session(lines)

    # A secret the store did not know when the session was written is scrubbed on export.
    monkeypatch.setenv("BILLING_API_KEY", "sk-live-0123456789abcdef")
    async with Store(tmp_path / "a.db") as a:
        exported = "\n".join(await a.export_session(session_id))
    assert "sk-live-0123456789abcdef" not in exported and "[redacted]" in exported


async def test_a_session_file_from_a_newer_format_is_refused(tmp_path: Path) -> None:
    session_id = await _a_recorded_session(tmp_path, tmp_path / "a.db")
    async with Store(tmp_path / "a.db") as a:
        lines = await a.export_session(session_id)
    newer = json.dumps({**json.loads(lines[0]), "format_version": EXPORT_FORMAT_VERSION + 1})
    async with Store(tmp_path / "b.db") as b:
        with pytest.raises(StoreError) as refused:
            await b.import_session([newer, *lines[1:]])
        message = str(refused.value)
        assert f"format version {EXPORT_FORMAT_VERSION + 1}" in message
        assert f"reads format version {EXPORT_FORMAT_VERSION}" in message
        assert "newer playground" in message
        with pytest.raises(StoreError, match="not a playground session export"):
            await b.import_session(["name: support-router", "pattern: router"])
        with pytest.raises(StoreError, match="not a playground session export"):
            await b.import_session([])
        with pytest.raises(StoreError, match="incomplete: its header announces"):
            await b.import_session(lines[:-1])
        tampered = lines[2].replace("ünïcode reply", "evil reply")
        assert tampered != lines[2]
        with pytest.raises(StoreError, match="does not hash to its id"):
            await b.import_session([*lines[:2], tampered, *lines[3:]])
        assert await b.sessions() == []  # nothing half-imported


# -- the command line, as a new user would use it ----------------------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "playground.cli", *args, "--db", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _ok(tmp_path: Path, *args: str) -> str:
    proc = _cli(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _run(tmp_path: Path, request: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(_ok(tmp_path, "run", "router.yaml", "--input", request, "--json"))
    return data


def _active(tmp_path: Path) -> dict[str, str]:
    rows = json.loads(_ok(tmp_path, "versions", "router.yaml", "--json"))
    return {r["agent"]: r["version_id"] for r in rows if r["active"]}


@pytest.fixture
def router(tmp_path: Path) -> Path:
    """A copy of the router example that runs instantly."""
    return example_copy(tmp_path, name="router.yaml")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


BILLING_REPLY = "A refund for the duplicate charge is on its way."


def test_edit_roll_back_snapshot_and_restore_from_the_command_line(tmp_path: Path, router: Path) -> None:
    # 1. Run; edit billing's instructions and reply in the file; run again: a new version appears.
    first = _run(tmp_path, "I was charged twice on my invoice")
    assert BILLING_REPLY in str(first["output"])
    _edit(router, "You answer billing questions.", "You answer billing questions, curtly.")
    _edit(router, BILLING_REPLY, "Refund sent.")
    second = _run(tmp_path, "I was charged twice on my invoice")
    assert "Refund sent." in str(second["output"]) and BILLING_REPLY not in str(second["output"])
    billing = json.loads(_ok(tmp_path, "versions", "router.yaml", "--agent", "billing", "--json"))
    assert [(v["source"], v["active"]) for v in billing] == [("file", True), ("file", False)]
    new, old = billing[0]["version_id"], billing[1]["version_id"]
    listing = _ok(tmp_path, "versions", "router.yaml")
    assert new in listing and old in listing and "billing" in listing and "●" in listing
    diff = _ok(tmp_path, "versions", "diff", "router.yaml", "--agent", "billing", old[:6], new[:6])
    assert "-You answer billing questions. Look up" in diff
    assert "+You answer billing questions, curtly. Look up" in diff
    shown = _ok(tmp_path, "versions", "show", "router.yaml", "--agent", "billing", old[:6])
    assert BILLING_REPLY in shown and "tools: [lookup_invoice]" in shown

    # 2. Roll billing back and run again: the old instructions (and reply) are used.
    before = _active(tmp_path)
    out = _ok(tmp_path, "rollback", "router.yaml", "--agent", "billing", "--to", old[:6])
    assert f"{new} -> {old}" in out
    after = _active(tmp_path)
    assert after == {**before, "billing": old}
    third = _run(tmp_path, "I was charged twice on my invoice")
    assert BILLING_REPLY in str(third["output"])
    log = json.loads(_ok(tmp_path, "versions", "log", "router.yaml", "--agent", "billing", "--json"))
    assert (log[0]["action"], log[0]["from_version"], log[0]["to_version"]) == ("rollback", new, old)
    sessions = json.loads(_ok(tmp_path, "sessions", "--json"))
    assert [s["versions"]["billing"] for s in sessions] == [old, new, old]

    # 3. Snapshot, change two agents, restore the snapshot: both are back.
    assert "snapshot base" in _ok(tmp_path, "snapshot", "router.yaml", "--name", "base")
    snapped = _active(tmp_path)
    _edit(router, "Answer briefly and kindly.", "Answer in one word.")
    _edit(router, "If it persists, send us the request id.", "Try turning it off and on.")
    assert "Try turning it off and on." in str(_run(tmp_path, "The API is down")["output"])
    changed = _active(tmp_path)
    assert {a for a in snapped if snapped[a] != changed[a]} == {"general", "technical"}
    out = _ok(tmp_path, "rollback", "router.yaml", "--snapshot", "base")
    assert "general" in out and "technical" in out and "billing" not in out
    assert _active(tmp_path) == snapped
    assert "send us the request id" in str(_run(tmp_path, "The API is down")["output"])
    assert "base" in _ok(tmp_path, "snapshots", "router.yaml")
    assert [s["name"] for s in json.loads(_ok(tmp_path, "snapshots", "router.yaml", "--json"))] == ["base"]


def test_version_command_errors_are_one_line(tmp_path: Path, router: Path) -> None:
    _run(tmp_path, "hello there, how are you")
    for args, code, message in [
        (("rollback", "router.yaml", "--agent", "billing", "--to", "ffff"), 1, "has no version 'ffff'"),
        (("rollback", "router.yaml", "--agent", "nobody", "--to", "ffff"), 2, "'nobody' is not an agent"),
        (("rollback", "router.yaml", "--to", "ffff"), 2, "needs --agent NAME --to VERSION"),
        (("rollback", "router.yaml", "--snapshot", "nope"), 1, "no snapshot 'nope'"),
        (("versions", "missing.yaml"), 2, "missing.yaml"),
        (("export", "zzzz"), 1, "no session 'zzzz'"),
        (("import", "router.yaml"), 1, "not a playground session export"),
        (("sessions", "--since", "last week"), 2, "is not a date"),
    ]:
        proc = _cli(tmp_path, *args)
        assert proc.returncode == code, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
    _ok(tmp_path, "snapshot", "router.yaml", "--name", "x")
    proc = _cli(tmp_path, "snapshot", "router.yaml", "--name", "x")
    assert proc.returncode == 1 and "--replace" in proc.stderr
    _ok(tmp_path, "snapshot", "router.yaml", "--name", "x", "--replace")
    help_text = _ok(tmp_path, "versions", "--help")
    assert "versions SYSTEM.yaml [--agent NAME] [--json]" in help_text
    assert "versions diff SYSTEM.yaml --agent NAME A" in help_text


def test_export_and_import_from_the_command_line(tmp_path: Path, router: Path) -> None:
    session_id = str(_run(tmp_path, "refund my invoice please")["session_id"])
    _ok(tmp_path, "export", session_id[:6], "-o", "session.jsonl")
    text = (tmp_path / "session.jsonl").read_text()
    stdout = _ok(tmp_path, "export", session_id)  # stdout by default
    assert stdout.splitlines()[1:] == text.splitlines()[1:]  # all but the header's exported_at
    assert json.loads(text.splitlines()[0])["format"] == "playground-session"
    other = tmp_path / "other"
    other.mkdir()
    out = _ok(other, "import", str(tmp_path / "session.jsonl"))
    assert f"imported session {session_id}" in out
    mine = json.loads(_ok(tmp_path, "sessions", "show", session_id, "--json"))
    theirs = json.loads(_ok(other, "sessions", "show", session_id, "--json"))
    assert theirs == mine
    again = _cli(other, "import", str(tmp_path / "session.jsonl"))
    assert again.returncode == 1 and "already in" in again.stderr
    assert len(json.loads(_ok(tmp_path, "sessions", "--since", "2000-01-01", "--json"))) == 1
    assert json.loads(_ok(tmp_path, "sessions", "--since", "2999-01-01T00:00", "--json")) == []
