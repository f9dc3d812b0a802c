"""Guardrails a team declares: schemas that mean what they say, budgets."""

from __future__ import annotations

import json
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


BUDGET = """\
name: budgeted
pattern: supervisor
entry: boss
limits: {LIMITS}
ON_BUDGET
agents:
  boss:
    delegates: [worker]
    price: {input: 1000, output: 1000}
    BUDGET
    script:
      - {tool: worker, args: {task: "one {input}"}}
      - {tool: worker, args: {task: "two {input}"}}
      - {tool: worker, args: {task: "three {input}"}}
      - reply: "done"
  worker:
    input: {task: str}
    price: {input: 1000, output: 1000}
    script: [{reply: "did {task}"}]
  closer:
    input: {request: str, reason: str}
    script: [{reply: "wrapped up: {reason}"}]
"""


def budgeted(tmp_path: Path, limits: str = "", budget: str = "", on_budget: str = "") -> Runtime:
    text = BUDGET.replace("LIMITS", limits).replace("    BUDGET\n", f"    {budget}\n" if budget else "")
    text = text.replace("ON_BUDGET\n", f"{on_budget}\n" if on_budget else "")
    return Runtime(system_from(tmp_path, text))


def budget_events(events: list[ev.Event]) -> list[ev.BudgetExceeded]:
    return [e for e in events if isinstance(e, ev.BudgetExceeded)]


async def test_a_run_stops_before_the_call_that_would_pass_its_cost_limit(tmp_path: Path) -> None:
    result = await budgeted(tmp_path, limits="max_cost_usd: 0.03").run("x")
    assert result.status == "failed"
    assert result.error is not None and result.error["type"] == "budget_exceeded"
    [over] = budget_events(result.events)
    assert (over.scope, over.limit, over.allowed, over.policy) == ("run", "max_cost_usd", 0.03, "stop")
    assert over.spent <= 0.03 < over.spent + over.estimated
    assert result.cost_usd <= 0.03  # the call that would have passed it was never made


async def test_an_agent_budget_of_calls(tmp_path: Path) -> None:
    result = await budgeted(tmp_path, budget="budget: {max_calls: 2}").run("x")
    assert result.status == "failed"
    [over] = budget_events(result.events)
    assert (over.agent, over.scope, over.limit, over.allowed, over.spent) == (
        "boss",
        "agent",
        "max_calls",
        2,
        2,
    )
    assert result.per_agent["boss"].calls == 2


async def test_on_budget_escalates_and_the_escalation_target_may_finish(tmp_path: Path) -> None:
    runtime = budgeted(tmp_path, limits="max_tokens: 30", on_budget="on_budget: {escalate: closer}")
    result = await runtime.run("x")
    assert result.status == "completed", result.error
    assert result.path[-1] == "closer"
    assert result.output.startswith("wrapped up: the next model call of")
    [over] = budget_events(result.events)
    assert over.policy == "escalate:closer" and over.limit == "max_tokens"


async def test_on_budget_pause_holds_for_the_operator_who_may_continue(tmp_path: Path) -> None:
    import asyncio

    from playground.engine import StepController

    controller = StepController(breakpoints=set())
    system_text = BUDGET.replace("LIMITS", "max_cost_usd: 0.03").replace("ON_BUDGET", "on_budget: pause")
    system_text = system_text.replace("    BUDGET\n", "")
    runtime = Runtime(system_from(tmp_path, system_text), controller=controller)
    controller.breakpoints.add("agent:__none__")  # run freely; the budget pause holds by itself
    task = asyncio.create_task(runtime.run("x"))
    gate = await controller.wait_paused()
    assert gate.kind == "model_call" and gate.payload["budget"]["limit"] == "max_cost_usd"
    controller.resume()
    result = await task
    assert result.status == "completed", result.error
    assert result.cost_usd > 0.03  # the operator let it pass the budget
    assert len(budget_events(result.events)) == 1  # once waived, not asked again


def test_a_system_without_budgets_does_not_check_them(tmp_path: Path) -> None:
    runtime = budgeted(tmp_path)
    assert runtime.budgeted is False


GUARDS = """\
import re


def redact(payload, history):
    clean = {k: re.sub(r"4111[ 0-9]*", "[card]", v) for k, v in payload.items()}
    carried = [{**m, "content": re.sub(r"4111[ 0-9]*", "[card]", m["content"] or "")} for m in history]
    return None if clean == payload else (clean, carried)


def no_urgent(payload, history):
    if payload.get("question", "").lower().startswith("urgent"):
        return "do not escalate by shouting: drop 'urgent'"
    return None


def short_answer(output):
    if len(str(output)) > 20:
        raise ValueError("answer in 20 characters or fewer")


async def known_customer(value):
    return value.get("customer_id", "").startswith("C-") or "unknown customer id"
"""

GUARDED = """\
name: guarded
pattern: router
entry: router
limits: {max_validation_retries: 2}
agents:
  router:
    handoffs:
      - to: billing
        context: {customer_id: str, question: str}
        history: full
        guard: guards.py:GUARD
        from: FROM
    script:
      - match: "urgent"
        handoff: billing
        context: {customer_id: "C-999", question: "{input}"}
      - handoff: billing
        context: {customer_id: "C-999", question: "calm: {input}"}
  billing:
    input: {customer_id: str, question: str}
    validate: {input: guards.py:known_customer, output: guards.py:short_answer}
    script:
      - reply: "a long answer that goes on and on"
      - reply: "ok"
"""


def guarded(tmp_path: Path, guard: str = "redact", from_: str = "{}") -> Runtime:
    (tmp_path / "guards.py").write_text(GUARDS)
    return Runtime(system_from(tmp_path, GUARDED.replace("GUARD", guard).replace("FROM", from_)))


async def test_a_guard_redacts_the_payload_and_the_history_and_both_versions_are_kept(tmp_path: Path) -> None:
    result = await guarded(tmp_path).run("refund card 4111 1111 1111 1111")
    assert result.status == "completed", result.error
    [rewrote] = [e for e in result.events if isinstance(e, ev.GuardRewrote)]
    assert "4111" in rewrote.before["question"] and rewrote.after["question"] == "calm: refund card [card]"
    assert rewrote.changed == ["question"] and rewrote.history_changed
    billing_prompt = next(
        e for e in result.events if isinstance(e, ev.ModelRequested) and e.agent == "billing"
    )
    assert "4111" not in json.dumps(billing_prompt.messages)


async def test_a_guard_denial_goes_back_to_the_model(tmp_path: Path) -> None:
    result = await guarded(tmp_path, guard="no_urgent").run("urgent refund")
    assert result.status == "completed", result.error
    [denied] = [e for e in result.events if isinstance(e, ev.GuardDenied)]
    assert denied.reason == "do not escalate by shouting: drop 'urgent'"
    [delivered] = [e for e in result.events if isinstance(e, ev.HandoffDelivered)]
    assert delivered.payload["question"] == "calm: urgent refund"


async def test_from_request_takes_the_id_from_the_request_not_the_model(tmp_path: Path) -> None:
    runtime = guarded(tmp_path, from_="{customer_id: request}")
    result = await runtime.run('{"customer_id": "C-1", "question": "refund"}')
    [delivered] = [e for e in result.events if isinstance(e, ev.HandoffDelivered)]
    assert delivered.payload["customer_id"] == "C-1"  # the model wrote C-999
    assert delivered.filled == ["customer_id"]


async def test_validators_refuse_input_to_the_sender_and_output_to_the_agent(tmp_path: Path) -> None:
    (tmp_path / "guards.py").write_text(GUARDS)
    text = GUARDED.replace("GUARD", "redact").replace("FROM", "{}").replace('"C-999"', '"999"', 1)
    result = await Runtime(system_from(tmp_path, text)).run("urgent refund")
    assert result.status == "completed", result.error
    refused = [(e.what, e.target, e.errors) for e in result.events if isinstance(e, ev.ValidationFailed)]
    assert refused[0] == ("input", "billing", "unknown customer id")
    assert refused[1] == ("output", None, "ValueError: answer in 20 characters or fewer")
    assert result.output == "ok"


SIDE_EFFECTS = """\
name: mailer
pattern: router
entry: a
tools:
  send_mail: {function: tools.py:send_mail, side_effects: true}
agents:
  a:
    tools: [send_mail]
    handoffs: [{to: b}]
    script:
      - {tool: send_mail, args: {to: "ann"}}
      - reply: "sent: {tool_result}"
  b: {script: [{reply: done}]}
"""

MAILER = """\
from pathlib import Path


def send_mail(to: str) -> str:
    log = Path(__file__).with_name("sent.log")
    with log.open("a") as out:
        out.write(to + "\\n")
    return f"mail {len(log.read_text().splitlines())} to {to}"
"""


async def test_a_side_effect_tool_never_runs_twice_when_its_step_is_retried(tmp_path: Path) -> None:
    import asyncio

    from playground.engine import StepController

    (tmp_path / "tools.py").write_text(MAILER)
    controller = StepController(breakpoints={"agent:a"})
    task = asyncio.create_task(Runtime(system_from(tmp_path, SIDE_EFFECTS), controller=controller).run("go"))
    gate = await controller.wait_paused()
    while not (gate.kind == "model_call" and gate.can_retry):  # held before a's second call
        controller.resume()
        await asyncio.sleep(0)
        gate = await controller.wait_paused()
    assert controller.retry() is None  # run the first call again: it asks for send_mail again
    controller.breakpoints.clear()
    while not task.done():
        paused = asyncio.create_task(controller.wait_paused())
        await asyncio.wait({task, paused}, return_when=asyncio.FIRST_COMPLETED)
        if paused.done():
            controller.resume()
        else:
            paused.cancel()
    result = await task
    assert result.status == "completed", result.error
    assert (tmp_path / "sent.log").read_text().splitlines() == ["ann"]  # sent once
    returned = [e for e in result.events if isinstance(e, ev.ToolReturned)]
    assert [(e.result, e.side_effect_served) for e in returned] == [
        ("mail 1 to ann", False),
        ("mail 1 to ann", True),
    ]


async def test_a_fork_before_a_side_effect_serves_its_recorded_result(tmp_path: Path) -> None:
    from playground.replay import fork_session
    from playground.service import run_session
    from playground.store import Store

    (tmp_path / "tools.py").write_text(MAILER)
    system = system_from(tmp_path, SIDE_EFFECTS)
    async with Store(tmp_path / "s.db") as store:
        recorded = await run_session(system, "go", store=store)
        fork = await fork_session(store, recorded.session_id, 1)  # from a's first model call: all live
    assert fork.result.status == "completed", fork.result.error
    assert (tmp_path / "sent.log").read_text().splitlines() == ["ann"]
    [returned] = [e for e in fork.result.events if isinstance(e, ev.ToolReturned)]
    assert returned.side_effect_served and returned.result == "mail 1 to ann"


APPROVAL = """\
name: refunds
pattern: router
entry: a
tools:
  refund: {function: tools.py:refund, approval: required}
agents:
  a:
    tools: [refund]
    handoffs: [{to: b}]
    script:
      - {tool: refund, args: {amount: 40}}
      - reply: "{tool_result}"
  b: {script: [{reply: done}]}
"""

REFUND = "def refund(amount: int) -> str:\n    return f'refunded {amount}'\n"


def approval_system(tmp_path: Path) -> Runtime:
    (tmp_path / "tools.py").write_text(REFUND)
    return Runtime(system_from(tmp_path, APPROVAL))


async def test_headless_a_call_that_needs_approval_stops_the_run_waiting(tmp_path: Path) -> None:
    result = await approval_system(tmp_path).run("refund me")
    assert result.status == "waiting_approval"
    assert result.error is not None and result.error["type"] == "waiting_approval"
    assert f"playground approve {result.session_id}" in result.error["message"]
    kinds = [e.kind for e in result.events]
    assert kinds[-1] == "approval_requested" and "tool_called" not in kinds


async def test_an_operator_approves_edits_or_denies_a_held_call(tmp_path: Path) -> None:
    import asyncio

    from playground.engine import StepController

    for action, output in (("approve", "refunded 40"), ("edit", "refunded 25"), ("deny", "Error: a person")):
        controller = StepController()
        runtime = approval_system(tmp_path)
        runtime.controller = controller
        task = asyncio.create_task(runtime.run("refund me"))
        gate = await controller.wait_paused()  # held whatever the breakpoints
        assert gate.kind == "tool_call" and gate.payload["approval"] is True
        if action == "approve":
            controller.resume()
        elif action == "edit":
            assert controller.edit({"args": {"amount": 25}}) is None
        else:
            assert controller.deny("over the limit") is None
        result = await task
        assert result.status == "completed", result.error
        assert result.output.startswith(output)
        [decided] = [e for e in result.events if isinstance(e, ev.ApprovalDecided)]
        assert decided.verdict == ("denied" if action == "deny" else "approved")
        assert decided.edited == (action == "edit")
        ran = [e for e in result.events if isinstance(e, ev.ToolCalled)]
        assert len(ran) == (0 if action == "deny" else 1)


def test_cli_run_exits_4_waiting_for_approval(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text(REFUND)
    path = write_system(tmp_path, APPROVAL)
    out = subprocess.run(
        [*CLI, "run", str(path), "--input", "refund me", "--json", "--db", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 4, out.stderr
    assert json.loads(out.stdout)["status"] == "waiting_approval"
    sessions = subprocess.run(
        [*CLI, "sessions", "--json", "--db", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert [s["status"] for s in json.loads(sessions.stdout)] == ["waiting_approval"]


def test_from_naming_a_field_the_context_lacks_is_a_file_line_error(tmp_path: Path) -> None:
    (tmp_path / "guards.py").write_text(GUARDS)
    text = GUARDED.replace("GUARD", "redact").replace("FROM", "{customer: request}")
    try:
        system_from(tmp_path, text)
    except SpecError as exc:
        assert "agents.router.handoffs[0].from.customer" in str(exc)
        assert "'customer' is not a field of this handoff's context (customer_id, question)" in str(exc)
        assert exc.line == 12
    else:
        raise AssertionError("loaded a handoff taking an unknown field from the request")
