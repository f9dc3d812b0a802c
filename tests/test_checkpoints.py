"""Checkpoints at any boundary: a Python check on a supervisor's delegations, a pipeline
stage's output and a router's handoff; on_reject fail (default), use_last, escalate."""

from __future__ import annotations

from pathlib import Path

from playground.engine import Runtime
from playground.engine import events as ev
from playground.errors import SpecError
from tests.helpers import system_from

CHECKS = """\
import time


def no_draft(output) -> str | None:
    time.sleep(0.01)  # a sync check runs in a thread
    return "still a draft" if "DRAFT" in str(output) else None


async def has_total(output) -> bool:
    return isinstance(output, dict) and "total" in output


def no_card(payload: dict) -> str | None:
    if "4111" in str(payload):
        return "the payload carries a card number"
    return None
"""


def reviews(events: list[ev.Event]) -> list[tuple[str, str, str]]:
    return [(e.boundary, e.by, e.verdict) for e in events if isinstance(e, ev.CheckpointReviewed)]


SUPERVISOR = """\
name: checked-team
pattern: supervisor
entry: boss
agents:
  boss:
    delegates: [writer]
    checkpoint: {check: checks.py:no_draft, max_rejections: 1, ON_REJECT}
    script:
      - {tool: writer, args: {task: "write {input}"}}
      - reply: "final: {tool_result}"
  writer:
    input: {task: str, feedback: "str?"}
    script:
      - {match: "still a draft", reply: "clean text"}
      - reply: "DRAFT text"
  editor:
    input: {request: str, reason: str}
    script: [{reply: "editor: {reason}"}]
"""


async def test_a_python_check_on_delegations_sends_feedback_to_the_worker(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    result = await Runtime(system_from(tmp_path, SUPERVISOR.replace(", ON_REJECT", ""))).run("notes")
    assert result.status == "completed", result.error
    assert result.output == "final: clean text"
    assert reviews(result.events) == [("delegation", "check", "reject"), ("delegation", "check", "accept")]


async def test_on_reject_escalates_when_declared(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    text = SUPERVISOR.replace("ON_REJECT", "on_reject: {escalate: editor}").replace(
        '{match: "still a draft", reply: "clean text"}', '{match: "never", reply: "clean text"}'
    )
    result = await Runtime(system_from(tmp_path, text)).run("notes")
    assert result.status == "completed", result.error
    assert result.path[-1] == "editor"
    assert result.output.startswith(
        "editor: 'writer''s output was rejected 1 times at a checkpoint: still a draft"
    )
    assert [e.verdict for e in result.events if isinstance(e, ev.CheckpointReviewed)] == [
        "reject",
        "reject",
        "limit",
    ]
    assert any(isinstance(e, ev.Escalated) for e in result.events)


PIPELINE = """\
name: checked-pipe
pattern: pipeline
pipeline: [sum, report]
agents:
  sum:
    checkpoint: {check: checks.py:has_total, max_rejections: MAX}
    script:
      - {match: "rejected at a checkpoint", reply: {total: 3}}
      - reply: {count: 3}
  report:
    script: [{reply: "report of {input}"}]
"""


async def test_a_stage_checkpoint_asks_the_stage_again(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    result = await Runtime(system_from(tmp_path, PIPELINE.replace("MAX", "1"))).run("1 2")
    assert result.status == "completed", result.error
    assert reviews(result.events) == [("stage", "check", "reject"), ("stage", "check", "accept")]
    assert result.output == 'report of {"total":3}'


async def test_a_stage_checkpoint_fails_the_run_after_the_last_rejection(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    result = await Runtime(system_from(tmp_path, PIPELINE.replace("MAX", "0"))).run("1 2")
    assert result.status == "failed"
    assert result.error is not None and result.error["type"] == "checkpoint_rejected"
    assert result.error["origin"] == "sum"
    assert "report" not in result.path


ROUTER = """\
name: checked-router
pattern: router
entry: router
agents:
  router:
    handoffs:
      - to: shipping
        context: {address: str}
        checkpoint: {check: checks.py:no_card, max_rejections: 1}
    script:
      - {handoff: shipping, context: {address: "1 Main St, card 4111 1111"}}
      - {handoff: shipping, context: {address: "1 Main St"}}
  shipping:
    input: {address: str}
    script: [{reply: "ships to {address}"}]
"""


async def test_a_handoff_checkpoint_refuses_a_payload_before_delivery(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    system = system_from(tmp_path, ROUTER)
    result = await Runtime(system).run("send it")
    assert result.status == "completed", result.error
    delivered = [e.payload for e in result.events if isinstance(e, ev.HandoffDelivered)]
    assert delivered == [{"address": "1 Main St"}]
    assert reviews(result.events) == [("handoff", "check", "reject"), ("handoff", "check", "accept")]


async def test_a_handoff_checkpoint_fails_the_run_by_default(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    text = ROUTER.replace('context: {address: "1 Main St"}}', 'context: {address: "2 Elm St, card 4111"}}')
    result = await Runtime(system_from(tmp_path, text)).run("send it")
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error["type"], result.error["origin"], result.error["manifested"]) == (
        "checkpoint_rejected",
        "router",
        "shipping",
    )
    assert not [e for e in result.events if isinstance(e, ev.HandoffDelivered)]


def test_a_checkpoint_naming_a_missing_function_is_a_file_line_error(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    try:
        system_from(tmp_path, ROUTER.replace("checks.py:no_card", "checks.py:no_such"))
    except SpecError as exc:
        assert "agents.router.handoffs[0].checkpoint.check" in str(exc)
        assert exc.line == 9
    else:
        raise AssertionError("loaded a system whose checkpoint names no function")
