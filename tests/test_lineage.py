"""Where a failure started: the failing field's lineage names the agent that lost it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from playground.engine import Runtime
from playground.engine import events as ev
from playground.spec import load_system
from tests.helpers import system_from

ROOT = Path(__file__).resolve().parent.parent
INVOICE = ROOT / "agents" / "invoice_pipeline.yaml"
REQUEST = '{"amount": 120, "currency": "EUR"}'
CLI = [sys.executable, "-m", "playground.cli"]


def instant(path: Path) -> Runtime:
    system = load_system(path)
    agents = {
        n: a.model_copy(update={"latency_ms": 0, "tokens_per_s": 0}) for n, a in system.spec.agents.items()
    }
    return Runtime(system, agents=agents)


async def test_a_dropped_field_is_traced_to_the_agent_that_dropped_it() -> None:
    result = await instant(INVOICE).run(REQUEST)
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error["origin"], result.error["manifested"]) == ("ingest", "convert")
    lineage = result.error["lineage"]
    assert lineage["field"] == "currency" and lineage["traced"] is True
    assert [(h["agent"], h["kind"], h["present"]) for h in lineage["hops"]] == [
        ("request", "request", True),
        ("ingest", "input", True),
        ("ingest", "output", False),
        ("normalize", "input", False),
        ("normalize", "output", False),
        ("convert", "input", False),
    ]
    assert lineage["hops"][0]["value"] == "EUR"
    failed = next(e for e in result.events if isinstance(e, ev.RunFailed))
    assert failed.lineage == lineage and failed.origin == "ingest"


async def test_a_field_never_present_is_reported_as_untraced_and_the_origin_kept() -> None:
    result = await instant(INVOICE).run('{"amount": 120}')
    assert result.status == "failed"
    assert result.error is not None
    lineage = result.error["lineage"]
    assert lineage["traced"] is False
    assert "never present" in lineage["reason"]
    assert result.error["origin"] == "convert"  # today's rule: the failing boundary


ROUTER = """\
name: wrong-value
pattern: router
entry: intake
limits: {max_validation_retries: 0}
agents:
  intake:
    handoffs: [{to: triage, context: {priority: str, question: str}}]
    script: [{handoff: triage, context: {priority: "URGENT", question: "{input}"}}]
  triage:
    input: {priority: str, question: str}
    handoffs: [{to: billing, context: {priority: int, question: str}}]
    script: [{handoff: billing, context: {priority: "{priority}", question: "{question}"}}]
  billing:
    input: {priority: int, question: str}
    script: [{reply: ok}]
"""


async def test_a_wrong_value_is_traced_to_the_agent_that_first_produced_it(tmp_path: Path) -> None:
    result = await Runtime(system_from(tmp_path, ROUTER)).run("refund?")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["manifested"] == "billing"
    lineage = result.error["lineage"]
    assert lineage["field"] == "priority"
    assert result.error["origin"] == "intake"
    assert "intake's handoff" in lineage["reason"] and "'URGENT'" in lineage["reason"]


def test_cli_json_carries_the_lineage(tmp_path: Path) -> None:
    out = subprocess.run(
        [*CLI, "run", str(INVOICE), "--input", REQUEST, "--json", "--db", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    error = json.loads(out.stdout)["error"]
    assert error["origin"] == "ingest" and error["manifested"] == "convert"
    assert error["lineage"]["field"] == "currency"


def test_sessions_show_prints_the_chain_from_origin_to_failure(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    subprocess.run(
        [*CLI, "run", str(INVOICE), "--input", REQUEST, "--db", db, "-q"], capture_output=True, timeout=60
    )
    listed = subprocess.run(
        [*CLI, "sessions", "--json", "--db", db], capture_output=True, text=True, timeout=60
    )
    session_id = json.loads(listed.stdout)[0]["session_id"]
    shown = subprocess.run(
        [*CLI, "sessions", "show", session_id, "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    lines = shown.stdout.splitlines()
    assert any(line.startswith("lineage of currency:") for line in lines)
    assert any("ingest output (absent)  ← origin" in line for line in lines)
    assert any("request request = 'EUR'" in line for line in lines)
