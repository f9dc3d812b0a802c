"""Guardrails a team declares: schemas that mean what they say, budgets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playground.engine import Runtime
from playground.engine import events as ev
from playground.errors import SpecError
from tests.helpers import system_from, write_system

CLI = [sys.executable, "-m", "playground.cli"]

JSON_SCHEMA_ROUTER = """\
name: strict-router
pattern: router
entry: router
limits: {max_validation_retries: 1}
agents:
  router:
    handoffs:
      - to: billing
        context:
          type: object
          properties:
            customer_id: {type: string, pattern: "^C-[0-9]+$"}
            priority: {type: string, enum: [low, high]}
            lines:
              type: array
              items:
                type: object
                properties: {sku: {type: string}, qty: {type: integer, minimum: 1}}
                required: [sku]
          required: [customer_id, priority]
          additionalProperties: false
    script:
      - handoff: billing
        context: {customer_id: "not-an-id", priority: "URGENT"}
      - match: ".*"
        handoff: billing
        context: {customer_id: "C-7", priority: "high", lines: [{sku: "A", qty: 2}]}
  billing:
    script: [{reply: "ok {customer_id}"}]
"""


async def test_a_json_schema_is_enforced_in_full_and_fed_back(tmp_path: Path) -> None:
    result = await Runtime(system_from(tmp_path, JSON_SCHEMA_ROUTER)).run("refund")
    assert result.status == "completed", result.error
    [refused] = [e for e in result.events if isinstance(e, ev.ValidationFailed)]
    assert refused.what == "handoff_payload"
    assert "customer_id: 'not-an-id' does not match '^C-[0-9]+$'" in refused.errors
    assert "priority: 'URGENT' is not one of ['low', 'high']" in refused.errors
    delivered = [e.payload for e in result.events if isinstance(e, ev.HandoffDelivered)]
    assert delivered == [{"customer_id": "C-7", "priority": "high", "lines": [{"sku": "A", "qty": 2}]}]
    # The model was told what was wrong, field by field, and what the schema requires.
    second = [e for e in result.events if isinstance(e, ev.ModelRequested)][1]
    told = second.messages[-1]["content"]
    assert "does not match" in told and "one of low|high" in told


async def test_nested_items_are_checked_too(tmp_path: Path) -> None:
    text = JSON_SCHEMA_ROUTER.replace(
        '{customer_id: "not-an-id", priority: "URGENT"}',
        '{customer_id: "C-1", priority: "low", lines: [{qty: 0}]}',
    )
    result = await Runtime(system_from(tmp_path, text)).run("refund")
    refused = next(e for e in result.events if isinstance(e, ev.ValidationFailed))
    assert "lines.0: 'sku' is a required property" in refused.errors
    assert "lines.0.qty: 0 is less than the minimum of 1" in refused.errors


def test_the_model_is_offered_the_schema_as_written(tmp_path: Path) -> None:
    from playground.engine.plans import make_plan

    system = system_from(tmp_path, JSON_SCHEMA_ROUTER)
    plan = make_plan(system, dict(system.spec.agents), "router")
    [offered] = plan.tools
    assert offered.parameters["properties"]["customer_id"] == {"type": "string", "pattern": "^C-[0-9]+$"}
    assert offered.parameters["properties"]["lines"]["items"]["properties"]["qty"]["minimum"] == 1
    assert offered.parameters["additionalProperties"] is False


def test_an_invalid_json_schema_is_a_file_line_error(tmp_path: Path) -> None:
    text = JSON_SCHEMA_ROUTER.replace(
        "priority: {type: string, enum: [low, high]}", "priority: {type: strng}"
    )
    path = write_system(tmp_path, text)
    try:
        system_from(tmp_path, text)
    except SpecError as exc:
        assert exc.line == 9 and "agents.router.handoffs[0].context" in str(exc)
        assert "not a valid JSON Schema at properties/priority/type" in str(exc)
    else:
        raise AssertionError("an invalid JSON Schema loaded")
    out = subprocess.run([*CLI, "check", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and f"{path}:9:" in out.stderr
