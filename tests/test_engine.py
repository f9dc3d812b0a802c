"""The runtime, end to end with the scripted model: assert on the event sequence."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from playground.engine import RunResult, Runtime, StepController
from playground.engine import events as ev
from playground.engine.controller import Gate
from playground.spec import System, load_system
from playground.spec.models import AgentSpec
from tests.helpers import kinds, of_kind, run_started, system_from

ROOT = Path(__file__).resolve().parent.parent
ROUTER = ROOT / "agents" / "support_router.yaml"


def instant(system: System) -> dict[str, AgentSpec]:
    """The same system with the scripted model at zero latency."""
    agents = {
        n: a.model_copy(update={"latency_ms": 0, "tokens_per_s": 0}) for n, a in system.spec.agents.items()
    }
    return agents


async def run(system: System, text: str, **kw: Any) -> RunResult:
    return await Runtime(system, agents=instant(system), **kw).run(text)


async def test_router_sends_billing_questions_to_billing() -> None:
    system = load_system(ROUTER)
    result = await run(system, "I was charged twice on my last invoice")
    assert result.status == "completed"
    assert result.path == ["router", "billing"]
    assert "INV-1042" in result.output
    handoff = of_kind(result.events, ev.HandoffDelivered)[0]
    assert handoff.payload == {"customer_id": "C-1", "question": "I was charged twice on my last invoice"}
    assert handoff.payload_tokens > 0
    assert handoff.payload_schema == "{customer_id: str, question: str}"
    billing_start = of_kind(result.events, ev.AgentStarted)[1]
    assert billing_start.agent == "billing"
    # The target receives exactly the declared context, not the conversation.
    assert json.loads(billing_start.incoming) == handoff.payload
    assert billing_start.cause == handoff.seq
    assert kinds(result.events) == [
        "run_started",
        "agent_started",
        "model_requested",
        "model_responded",
        "guard_allowed",  # the router's redaction guard found nothing to redact
        "handoff_delivered",
        "agent_finished",
        "agent_started",
        "model_requested",
        "model_responded",
        "tool_called",
        "tool_returned",
        "model_requested",
        "model_responded",
        "agent_finished",
        "run_finished",
    ]
    assert [e.seq for e in result.events] == list(range(1, 17))
    per_agent = result.as_json()["per_agent"]
    assert per_agent["router"]["calls"] == 1 and per_agent["billing"]["calls"] == 2
    assert per_agent["billing"]["cost_usd"] > 0  # from the agent's price: override
    assert result.as_json()["tokens"]["input"] > 0


@pytest.mark.parametrize(
    ("text", "specialist"),
    [
        ("The API is down with error 500", "technical"),
        ("What are your opening hours?", "general"),
        ("help", "clarify"),
    ],
)
async def test_router_routes_each_kind(text: str, specialist: str) -> None:
    result = await run(load_system(ROUTER), text)
    assert result.path == ["router", specialist]
    assert result.status == "completed"


async def test_every_event_names_its_cause_and_version() -> None:
    result = await run(load_system(ROUTER), "refund please")
    seqs = {e.seq for e in result.events}
    for event in result.events[1:]:
        assert event.cause in seqs, event
        assert event.cause < event.seq
    for event in result.events:
        if event.agent:
            assert event.version == run_started(result.events).versions[event.agent]


TOOL_LOG = '''
import pathlib
LOG = pathlib.Path(__file__).with_name("calls.log")

def lookup(customer_id: str) -> str:
    """Look a customer up."""
    with LOG.open("a") as f:
        f.write(f"lookup {customer_id}\\n")
    return "found " + customer_id

def delete_account(customer_id: str) -> str:
    """Delete an account (dangerous)."""
    with LOG.open("a") as f:
        f.write(f"delete {customer_id}\\n")
    return "deleted"
'''


def single_agent(tmp_path: Path, script: str, extra: str = "") -> System:
    (tmp_path / "tools.py").write_text(TOOL_LOG)
    return system_from(
        tmp_path,
        f"""
        name: single
        pattern: router
        entry: front
        limits: {{max_validation_retries: 1, retries: 0, backoff_s: 0}}
        tools:
          lookup: tools.py:lookup
          delete_account: tools.py:delete_account
        agents:
          front:
            tools: [lookup]
            handoffs: [{{to: back, context: {{question: str}}}}]
            script:
{script}
          back:
            script:
              - reply: "back got {{question}}"
        {extra}
        """,
    )


async def test_forbidden_tool_is_refused_and_never_run(tmp_path: Path) -> None:
    system = single_agent(
        tmp_path,
        """
              - tool: delete_account
                args: {customer_id: "C-1"}
              - tool: lookup
                args: {customer_id: "C-1"}
              - reply: "done: {tool_result}"
""",
    )
    result = await run(system, "hello")
    assert result.status == "completed"
    denied = of_kind(result.events, ev.PermissionDenied)
    assert len(denied) == 1
    assert denied[0].tool == "delete_account" and denied[0].allowed == ["lookup", "transfer_to_back"]
    log = (tmp_path / "calls.log").read_text()
    assert "delete" not in log and "lookup C-1" in log
    # The refusal was answered to the model as an error.
    second_request = of_kind(result.events, ev.ModelRequested)[1]
    assert "not permitted" in second_request.messages[-1]["content"]
    assert [e.tool for e in of_kind(result.events, ev.ToolCalled)] == ["lookup"]


async def test_repeated_forbidden_tool_fails_the_run_with_origin(tmp_path: Path) -> None:
    system = single_agent(
        tmp_path,
        """
              - tool: delete_account
                args: {customer_id: "C-1"}
              - tool: delete_account
                args: {customer_id: "C-2"}
""",
    )
    result = await run(system, "hello")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["type"] == "permission_denied"
    assert result.error["origin"] == "front"
    assert not (tmp_path / "calls.log").exists()


async def test_unknown_handoff_target_is_fed_back_then_corrected(tmp_path: Path) -> None:
    system = single_agent(
        tmp_path,
        """
              - tool: transfer_to_ghost
                args: {question: "x"}
              - handoff: back
                context: {question: "{input}"}
""",
    )
    result = await run(system, "where to?")
    assert result.status == "completed"
    assert result.path == ["front", "back"]
    failed = of_kind(result.events, ev.ValidationFailed)[0]
    assert failed.what == "handoff_target" and failed.target == "ghost"
    assert "'ghost' is not a handoff target" in failed.errors


async def test_malformed_tool_arguments_fail_after_bounded_retries(tmp_path: Path) -> None:
    system = single_agent(
        tmp_path,
        """
              - tool: lookup
                raw_args: "{customer_id: C-1"
              - tool: lookup
                raw_args: "{\\"customer\\": 1}"
""",
    )
    result = await run(system, "hi")
    assert result.status == "failed"
    failures = of_kind(result.events, ev.ValidationFailed)
    assert [f.what for f in failures] == ["tool_args", "tool_args"]
    assert "not valid JSON" in failures[0].errors
    assert "customer_id: required field missing" in failures[1].errors
    assert result.error is not None
    assert result.error["type"] == "invalid_tool_args"
    assert result.error["origin"] == "front"
    assert of_kind(result.events, ev.RunFailed)[0].cause == failures[1].seq


async def test_invalid_handoff_payload_names_origin_and_manifestation(tmp_path: Path) -> None:
    system = system_from(
        tmp_path,
        """
        name: typed
        pattern: router
        entry: a
        limits: {max_validation_retries: 0}
        agents:
          a:
            handoffs: [{to: b, context: {n: int}}]
            script:
              - handoff: b
                context: {n: "not a number"}
          b:
            input: {n: int}
            script: [{reply: "{n}"}]
        """,
    )
    result = await run(system, "go")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["origin"] == "a"
    assert result.error["manifested"] == "b"
    assert "n: Input should be a valid integer" in result.error["message"]


async def test_history_policy_controls_what_the_target_sees(tmp_path: Path) -> None:
    text = """
        name: hist
        pattern: router
        entry: a
        agents:
          a:
            tools: [t]
            handoffs: [{to: b, context: {question: str}, history: POLICY}]
            script:
              - tool: t
                args: {x: "1"}
              - handoff: b
                context: {question: "{input}"}
          b:
            script: [{reply: ok}]
        tools: {t: tools.py:t}
        """
    (tmp_path / "tools.py").write_text('def t(x: str) -> str:\n    return "secret-internal-note"\n')
    seen = {}
    for policy in ("none", "full"):
        system = system_from(tmp_path, text.replace("POLICY", policy))
        result = await run(system, "question one")
        b_request = next(e for e in of_kind(result.events, ev.ModelRequested) if e.agent == "b")
        seen[policy] = b_request.messages[0]["content"]
        handoff = of_kind(result.events, ev.HandoffDelivered)[0]
        assert handoff.history == policy
        assert handoff.history_tokens > handoff.payload_tokens
    assert "secret-internal-note" not in seen["none"]
    assert "secret-internal-note" in seen["full"]


async def test_provider_error_retries_then_falls_back(tmp_path: Path) -> None:
    system = system_from(
        tmp_path,
        """
        name: flaky
        pattern: router
        entry: a
        limits: {retries: 2, backoff_s: 0}
        agents:
          a:
            model: scripted
            fallbacks: [scripted/backup]
            handoffs: [{to: b}]
            script:
              - fail: provider_error
                model: scripted
              - handoff: b
          b:
            script:
              - fail: rate_limited
                times: 1
              - reply: "b answered {question}"
        """,
    )
    result = await run(system, "hello")
    assert result.status == "completed", result.error
    assert result.output == "b answered hello"
    a_events = [e.kind for e in result.events if e.agent == "a"]
    assert a_events.count("model_failed") == 3  # first try + 2 retries
    assert a_events.count("retry_scheduled") == 2
    fallback = of_kind(result.events, ev.FallbackUsed)[0]
    assert (fallback.from_model, fallback.to_model) == ("scripted", "scripted/backup")
    b_failed = [e for e in of_kind(result.events, ev.ModelFailed) if e.agent == "b"]
    assert [e.error_type for e in b_failed] == ["rate_limited"]


async def test_every_model_failing_fails_the_run(tmp_path: Path) -> None:
    system = system_from(
        tmp_path,
        """
        name: down
        pattern: router
        entry: a
        limits: {retries: 1, backoff_s: 0}
        agents:
          a:
            handoffs: [{to: b}]
            script: [{fail: timeout}]
          b: {script: [{reply: x}]}
        """,
    )
    result = await run(system, "hello")
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == "timeout"
    assert result.error["origin"] == result.error["manifested"] == "a"
    assert "every model failed" in result.error["message"]


async def test_script_running_out_is_an_error_of_the_script(tmp_path: Path) -> None:
    system = system_from(
        tmp_path,
        """
        name: short
        pattern: router
        entry: a
        agents:
          a:
            handoffs: [{to: b}]
            script: [{match: "never", handoff: b}]
          b: {script: [{reply: x}]}
        """,
    )
    result = await run(system, "hello")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["type"] == "script_error"
    assert "no step left" in result.error["message"]


LOOP = """
name: pingpong
pattern: router
entry: a
on_loop: POLICY
limits: {max_hops: 10}
agents:
  a:
    handoffs: [{to: b}]
    script: [{handoff: b, context: {question: "same"}}]
  b:
    handoffs: [{to: a}]
    script: [{handoff: a, context: {question: "same"}}]
  help:
    input: {request: str, reason: str}
    script: [{reply: "escalated because {reason}"}]
"""


async def test_repeated_handoff_is_a_loop_and_stops(tmp_path: Path) -> None:
    result = await run(system_from(tmp_path, LOOP.replace("POLICY", "stop")), "go")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["type"] == "loop"
    loop = of_kind(result.events, ev.LoopDetected)[0]
    assert loop.edge == ["a", "b"] and "repeated" in loop.reason
    assert result.path == ["a", "b", "a"]


async def test_loop_escalates_to_on_loop_agent(tmp_path: Path) -> None:
    result = await run(system_from(tmp_path, LOOP.replace("POLICY", "help")), "go")
    assert result.status == "completed"
    assert result.path == ["a", "b", "a", "help"]
    assert result.output.startswith("escalated because a -> b repeated")
    escalated = of_kind(result.events, ev.Escalated)[0]
    assert escalated.target == "help"
    assert of_kind(result.events, ev.AgentStarted)[-1].reason == "escalation"


async def test_hop_limit_is_a_loop(tmp_path: Path) -> None:
    text = LOOP.replace("POLICY", "stop").replace("max_hops: 10", "max_hops: 2")
    text = text.replace('context: {question: "same"}', 'context: {question: "{input}!"}')
    result = await run(system_from(tmp_path, text), "go")
    assert result.error is not None
    assert result.error["type"] == "loop"
    assert "max_hops" in of_kind(result.events, ev.LoopDetected)[0].reason


async def test_run_timeout_fails_cleanly(tmp_path: Path) -> None:
    system = system_from(
        tmp_path,
        """
        name: slow
        pattern: router
        entry: a
        limits: {timeout_s: 0.05}
        agents:
          a:
            latency_ms: 2000
            handoffs: [{to: b}]
            script: [{handoff: b}]
          b: {script: [{reply: x}]}
        """,
    )
    result = await Runtime(system).run("hello")
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == "timeout"
    assert kinds(result.events)[-1] == "run_failed"


SUPERVISOR = """
name: team
pattern: supervisor
entry: boss
agents:
  boss:
    delegates: [writer]
    review: true
    max_reviews: 2
    script:
      - tool: writer
        args: {task: "write about {input}"}
      - reply: "final: {tool_result}"
      - review: reject
        match: "draft one"
        feedback: "needs more detail"
  writer:
    description: Writes drafts.
    script:
      - match: "needs more detail"
        reply: "draft two, detailed"
      - reply: "draft one"
"""


async def test_supervisor_delegates_and_reviews(tmp_path: Path) -> None:
    result = await run(system_from(tmp_path, SUPERVISOR), "agents")
    assert result.status == "completed", result.error
    assert result.output == "final: draft two, detailed"
    assert result.path == ["boss", "writer"]
    reviews = of_kind(result.events, ev.CheckpointReviewed)
    assert [(r.verdict, r.feedback) for r in reviews] == [("reject", "needs more detail"), ("accept", "")]
    workers = [e for e in of_kind(result.events, ev.AgentStarted) if e.agent == "writer"]
    assert len(workers) == 2
    boss_activation = of_kind(result.events, ev.AgentStarted)[0].seq
    assert all(w.parent_activation == boss_activation and w.reason == "delegation" for w in workers)
    assert json.loads(workers[1].incoming)["feedback"] == "needs more detail"
    assert "writer" in result.as_json()["per_agent"]


async def test_supervisor_review_is_bounded_and_fails_by_default(tmp_path: Path) -> None:
    """After the last allowed rejection the run fails (on_reject: fail, the default): it never
    completes silently with output its checkpoint rejected."""
    text = SUPERVISOR.replace('match: "draft one"', 'match: "draft"')
    result = await run(system_from(tmp_path, text), "agents")
    assert result.status == "failed"
    assert result.error is not None and result.error["type"] == "checkpoint_rejected"
    assert (result.error["origin"], result.error["manifested"]) == ("writer", "boss")
    reviews = of_kind(result.events, ev.CheckpointReviewed)
    # Every output is reviewed, the last one too: only then does on_reject decide.
    assert [r.verdict for r in reviews] == ["reject", "reject", "reject", "limit"]
    assert reviews[-1].on_reject == "fail"


async def test_supervisor_review_can_use_the_last_output_when_declared(tmp_path: Path) -> None:
    text = SUPERVISOR.replace('match: "draft one"', 'match: "draft"').replace(
        "    max_reviews: 2\n", "    max_reviews: 2\n    on_reject: use_last\n"
    )
    result = await run(system_from(tmp_path, text), "agents")
    assert result.status == "completed"
    assert result.output == "final: draft two, detailed"
    verdicts = [r.verdict for r in of_kind(result.events, ev.CheckpointReviewed)]
    assert verdicts == ["reject", "reject", "reject", "limit"]


PIPELINE = """
name: pipe
pattern: pipeline
pipeline: [extract, shout]
limits: {max_validation_retries: 1}
agents:
  extract:
    script:
      - match: "broken"
        reply: "not json at all"
      - match: "broken"
        reply: "still not json"
      - reply: {word: "{input}", count: "3"}
  shout:
    input: {word: str, count: int}
    script:
      - reply: "{word}!"
"""


async def test_pipeline_validates_each_stage_output(tmp_path: Path) -> None:
    result = await run(system_from(tmp_path, PIPELINE), "hello")
    assert result.status == "completed", result.error
    assert result.path == ["extract", "shout"]
    assert result.output == "hello!"
    shout = of_kind(result.events, ev.AgentStarted)[1]
    assert shout.context == {"word": "hello", "count": 3}


async def test_pipeline_bad_stage_output_fails_with_origin(tmp_path: Path) -> None:
    result = await run(system_from(tmp_path, PIPELINE), "broken")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["origin"] == "extract" and result.error["manifested"] == "shout"
    failures = of_kind(result.events, ev.ValidationFailed)
    assert len(failures) == 2 and all(f.what == "output" for f in failures)


# -- step gates ----------------------------------------------------------------------------


async def test_wait_paused_waits_past_a_gate_released_before_it_wakes() -> None:
    """An ``on_pause`` that decides at once releases its gate before a waiter runs: the
    waiter gets the next gate that holds, not an assertion error."""
    system = load_system(ROUTER)
    released: list[str] = []

    def on_pause(gate: Gate) -> None:
        if not released:  # the first gate goes on at once; the next one holds
            released.append(gate.kind)
            controller.step()

    controller = StepController(stepping=True, on_pause=on_pause)
    waiting = asyncio.ensure_future(controller.wait_paused())
    await asyncio.sleep(0)  # the waiter waits before the run reaches its first gate
    task = asyncio.create_task(run(system, "I was charged twice", controller=controller))
    gate = await asyncio.wait_for(waiting, 10)
    assert released == ["model_call"] and (gate.kind, gate.agent) == ("handoff", "router")
    controller.resume()
    assert (await task).status == "completed"


async def test_step_mode_pauses_at_every_gate_and_resumes() -> None:
    system = load_system(ROUTER)
    controller = StepController(stepping=True)
    task = asyncio.create_task(run(system, "I was charged twice", controller=controller))
    seen: list[tuple[str, str]] = []
    while len(seen) < 4:
        gate = await controller.wait_paused()
        seen.append((gate.kind, gate.agent))
        assert not task.done()
        controller.step()
    gate = await controller.wait_paused()
    seen.append((gate.kind, gate.agent))
    controller.resume()
    result = await task
    assert result.status == "completed"
    assert seen == [
        ("model_call", "router"),
        ("handoff", "router"),
        ("model_call", "billing"),
        ("tool_call", "billing"),
        ("model_call", "billing"),
    ]
    actions = [e.action for e in of_kind(result.events, ev.OperatorActed)]
    assert actions == ["step"] * 4 + ["continue"]


async def test_edit_a_pending_handoff_before_delivery() -> None:
    system = load_system(ROUTER)
    controller = StepController(breakpoints={"handoff:*"})
    task = asyncio.create_task(run(system, "I was charged twice", controller=controller))
    gate = await controller.wait_paused()
    assert gate.kind == "handoff" and gate.payload["target"] == "billing"
    # An invalid edit is refused and the run stays held.
    assert "required field missing" in (controller.edit({"context": {"question": "x"}}) or "")
    assert not task.done()
    assert controller.edit({"context": {"customer_id": "C-9", "question": "edited"}}) is None
    result = await task
    handoff = of_kind(result.events, ev.HandoffDelivered)[0]
    assert handoff.payload == {"customer_id": "C-9", "question": "edited"} and handoff.edited
    billing = of_kind(result.events, ev.AgentStarted)[1]
    assert billing.context == {"customer_id": "C-9", "question": "edited"}
    assert "INV-0977" in result.output  # C-9's invoice: the edit was really delivered
    edit = next(e for e in of_kind(result.events, ev.OperatorActed) if e.action == "edit")
    assert edit.detail["payload"]["context"]["customer_id"] == "C-9"


async def test_edit_tool_arguments() -> None:
    system = load_system(ROUTER)
    controller = StepController(breakpoints={"tool:lookup_invoice"})
    task = asyncio.create_task(run(system, "refund", controller=controller))
    gate = await controller.wait_paused()
    assert gate.payload == {"tool": "lookup_invoice", "args": {"customer_id": "C-1"}}
    assert controller.edit({"args": {"customer_id": "C-9"}}) is None
    result = await task
    assert of_kind(result.events, ev.ToolCalled)[0].args == {"customer_id": "C-9"}


async def test_retry_reruns_the_model_call_and_keeps_both() -> None:
    system = load_system(ROUTER)
    controller = StepController(breakpoints={"agent:billing"})
    task = asyncio.create_task(run(system, "refund", controller=controller))
    gate = await controller.wait_paused()
    assert gate.kind == "model_call" and not gate.can_retry
    assert controller.retry() is not None  # nothing to retry yet
    controller.step()
    gate = await controller.wait_paused()
    assert gate.kind == "tool_call" and gate.can_retry
    assert controller.retry() is None
    controller.breakpoints.clear()
    gate = await controller.wait_paused()
    controller.resume()
    result = await task
    assert result.status == "completed"
    responses = [e for e in of_kind(result.events, ev.ModelResponded) if e.agent == "billing"]
    assert len(responses) == 3
    assert responses[1].retry_of == responses[0].seq
    assert [e.tool for e in of_kind(result.events, ev.ToolCalled)] == ["lookup_invoice"]


async def test_abort_at_a_gate() -> None:
    system = load_system(ROUTER)
    controller = StepController(stepping=True)
    task = asyncio.create_task(run(system, "refund", controller=controller))
    await controller.wait_paused()
    controller.abort()
    result = await task
    assert result.status == "aborted"
    assert kinds(result.events)[-3:] == ["operator_acted", "agent_finished", "run_failed"]


async def test_time_held_at_a_gate_does_not_count_against_the_run_timeout(tmp_path: Path) -> None:
    system = system_from(
        tmp_path,
        """
        name: patient
        pattern: router
        entry: a
        limits: {timeout_s: 0.2}
        agents:
          a:
            handoffs: [{to: b}]
            script: [{handoff: b}]
          b: {script: [{reply: done}]}
        """,
    )
    controller = StepController(breakpoints={"handoff:*"})
    task = asyncio.create_task(run(system, "go", controller=controller))
    gate = await controller.wait_paused()
    assert gate.payload["schema"] == "{question: str}" and gate.payload["payload_tokens"] > 0
    await asyncio.sleep(0.4)  # the operator thinks for longer than the run may take
    controller.resume()
    result = await task
    assert result.status == "completed", result.error


async def test_an_error_breakpoint_stops_at_the_first_gate_after_an_error(tmp_path: Path) -> None:
    system = single_agent(
        tmp_path,
        """
              - tool: delete_account
                args: {customer_id: "C-1"}
              - handoff: back
                context: {question: "{input}"}
""",
    )
    controller = StepController(breakpoints={"error:*"})
    task = asyncio.create_task(run(system, "hello", controller=controller))
    gate = await controller.wait_paused()
    # The refused tool call was not a gate; the model call after it is, and it says why it stopped.
    assert (gate.kind, gate.agent, gate.errors) == ("model_call", "front", ["permission_denied"])
    controller.resume()
    result = await task
    assert result.status == "completed"


WORKER_FAILS_ONCE = """
name: worker-fails
pattern: supervisor
entry: boss
limits: {retries: 0}
agents:
  boss:
    model: scripted
    delegates: [worker]
    script:
      - tool: worker
        args: {task: "{input}"}
      - reply: "boss: {tool_result}"
  worker:
    model: scripted
    input: {task: str}
    script:
      - fail: provider_error
        times: 1
      - reply: "worker did {task}"
"""


async def test_an_error_breakpoint_holds_a_workers_fatal_model_error_before_the_run_fails(
    tmp_path: Path,
) -> None:
    system = system_from(tmp_path, WORKER_FAILS_ONCE)
    controller = StepController(breakpoints={"error:*"})
    task = asyncio.create_task(run(system, "sums", controller=controller))
    gate = await asyncio.wait_for(controller.wait_paused(), 10)
    # Held before the run fails, with the error to show and the call to retry.
    assert (gate.kind, gate.agent, gate.errors, gate.can_retry) == (
        "model_call",
        "worker",
        ["model_failed"],
        True,
    )
    assert gate.failure is not None and "injected provider_error" in gate.failure
    assert "worker failed calling scripted" in gate.describe()
    assert controller.retry() is None  # the fault has cleared (times: 1): the retry answers
    result = await task
    assert result.status == "completed", result.error
    assert result.output == "boss: worker did sums"
    acted = of_kind(result.events, ev.OperatorActed)
    assert [(a.agent, a.action) for a in acted] == [("worker", "retry")]
    # The retried call has the step number the gate showed.
    responded = [e for e in of_kind(result.events, ev.ModelResponded) if e.agent == "worker"]
    assert [e.step for e in responded] == [gate.step]


@pytest.mark.parametrize("let_go", ["resume", "step"])
async def test_going_on_from_a_held_fatal_error_fails_the_run_as_without_the_breakpoint(
    tmp_path: Path, let_go: str
) -> None:
    system = system_from(tmp_path, WORKER_FAILS_ONCE)
    headless = await run(system, "sums")
    controller = StepController(breakpoints={"error:*"})
    task = asyncio.create_task(run(system, "sums", controller=controller))
    await asyncio.wait_for(controller.wait_paused(), 10)
    getattr(controller, let_go)()
    held = await task
    assert headless.status == held.status == "failed"
    assert held.error == headless.error
    assert headless.error is not None and "worker 'worker' failed" in headless.error["message"]
    # The same events as the run nobody held, plus the operator's action.
    assert [k for k in kinds(held.events) if k != "operator_acted"] == kinds(headless.events)
    steps = [e.step for e in held.events if isinstance(e, ev.ModelRequested)]
    assert steps == [e.step for e in headless.events if isinstance(e, ev.ModelRequested)]


async def test_without_an_error_breakpoint_a_fatal_model_error_fails_at_once(tmp_path: Path) -> None:
    system = system_from(tmp_path, WORKER_FAILS_ONCE)
    controller = StepController(breakpoints={"agent:nobody"})
    result = await run(system, "sums", controller=controller)
    assert result.status == "failed"
    assert not of_kind(result.events, ev.OperatorActed)


async def test_time_held_at_a_gate_is_recorded_and_left_out_of_the_runs_latency() -> None:
    system = load_system(ROUTER)
    controller = StepController(stepping=True)
    task = asyncio.create_task(run(system, "What are your opening hours?", controller=controller))
    await asyncio.wait_for(controller.wait_paused(), 10)
    await asyncio.sleep(0.3)  # the operator thinks
    controller.resume()
    result = await task
    assert result.status == "completed"
    (acted,) = of_kind(result.events, ev.OperatorActed)
    assert acted.held_ms is not None and acted.held_ms >= 300
    final = of_kind(result.events, ev.RunFinished)[0]
    assert final.latency_ms is not None and final.latency_ms < 300
    assert result.latency_ms == final.latency_ms


async def test_a_fallback_on_another_provider_is_not_sent_to_the_primarys_server(tmp_path: Path) -> None:
    from playground.errors import ProviderError
    from playground.llm.base import ModelRequest, ModelResponse

    seen: dict[str, dict[str, object]] = {}

    class Down:
        async def complete(self, request: ModelRequest, on_delta: object = None) -> ModelResponse:
            seen[request.model] = request.settings
            if request.model != "other/z":
                raise ProviderError("down", model=request.model)
            return ModelResponse(text="fallback answered", model=request.model)

    system = system_from(
        tmp_path,
        """
        name: fallbacks
        pattern: pipeline
        pipeline: [a]
        limits: {retries: 0}
        agents:
          a:
            model: local/llama
            fallbacks: [local/other, openai/x, other/z]
            model_settings: {api_base: "http://127.0.0.1:11434", temperature: 0.2}
            fallback_settings: {other/z: {api_base: "http://127.0.0.1:9999"}}
        """,
    )
    result = await Runtime(system, llm_factory=lambda agent, model: Down()).run("hi")
    assert result.output == "fallback answered"
    assert seen["local/llama"] == {"api_base": "http://127.0.0.1:11434", "temperature": 0.2}
    assert seen["local/other"] == seen["local/llama"]  # same provider: same endpoint
    assert seen["openai/x"] == {"temperature": 0.2}  # another provider: not the primary's server
    assert seen["other/z"] == {"api_base": "http://127.0.0.1:9999"}


# -- what the hot path's shortcuts must not change ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"question": "hello", "n": 3, "x": 1.5, "ok": true, "none": null}',
        '{"big": 123456789012345678901234567890, "tiny": 5e-324, "inf": 1e400}',
        '{"a": 1, "a": 2}',
        '{"s": "caf\\u00e9 \\ud83d\\ude00 \\n\\t"}',
        '"\\ud800"',  # a lone surrogate: jiter refuses it, json takes it
        "NaN",
        "[1, 2",
        '{"a": 1} x',
        "",
        "{'single': 'quotes'}",
    ],
)
def test_parse_json_is_json_loads(text: str) -> None:
    from playground.llm.base import parse_json

    try:
        expected = json.loads(text)
    except ValueError as exc:
        with pytest.raises(ValueError) as raised:
            parse_json(text)
        assert str(raised.value) == str(exc)  # the message the engine feeds back to the model
    else:
        got = parse_json(text)
        assert got == expected or (got != got and expected != expected)  # NaN
        assert json.dumps(got) == json.dumps(expected)


async def test_scripted_templates_render_as_substitution_would(tmp_path: Path) -> None:
    system = system_from(
        tmp_path,
        """
        name: templates
        pattern: router
        entry: a
        agents:
          a:
            handoffs: [{to: b, context: {tags: "list[str]", meta: dict, n: int}}]
            script:
              - handoff: b
                context: {tags: ["x", "y"], meta: {k: "v"}, n: 2}
          b:
            handoffs: [{to: c, context: {whole: "list[str]", spliced: str, nested: dict}}]
            script:
              - handoff: c
                context:
                  whole: "{tags}"
                  spliced: "tags {tags}, meta {meta}, n {n}, {not a field}"
                  nested: {inner: ["{n}", "n={n}"], same: "as is"}
          c:
            script:
              - review: accept
                feedback: "{no_such_field}"
              - reply: {got: "{whole}", text: "{spliced}"}
        """,
    )
    result = await run(system, "go")
    assert result.status == "completed", result.error
    to_c = of_kind(result.events, ev.HandoffDelivered)[1]
    assert to_c.payload == {
        "whole": ["x", "y"],
        "spliced": 'tags x, y, meta {"k": "v"}, n 2, {not a field}',
        "nested": {"inner": [2, "n=2"], "same": "as is"},
    }
    assert json.loads(result.output) == {"got": ["x", "y"], "text": to_c.payload["spliced"]}


async def test_a_missing_template_field_is_a_script_error_naming_the_known_ones(tmp_path: Path) -> None:
    system = system_from(
        tmp_path,
        """
        name: missing
        pattern: router
        entry: a
        agents:
          a:
            handoffs: [{to: b, context: {question: str}}]
            script:
              - handoff: b
          b:
            script:
              - reply: "about {topic}"
        """,
    )
    result = await run(system, "hello")
    assert result.status == "failed"
    assert result.error is not None and result.error["type"] == "script_error"
    assert "template field {topic} of 'b' is not in its incoming context (input, question)" in str(
        result.error["message"]
    )


async def test_raw_args_are_sent_as_they_are_without_rendering_args(tmp_path: Path) -> None:
    system = single_agent(
        tmp_path,
        """
              - tool: lookup
                raw_args: '{"customer_id": "C-7"}'
              - reply: "done: {tool_result}"
""",
    )
    result = await run(system, "hello")
    assert result.status == "completed", result.error
    assert of_kind(result.events, ev.ToolCalled)[0].args == {"customer_id": "C-7"}
    assert result.output == "done: found C-7"


async def test_live_events_read_back_as_they_were(tmp_path: Path) -> None:
    from playground.engine.events import EVENT_ADAPTER

    result = await run(load_system(ROUTER), "I was charged twice on my last invoice")
    assert result.status == "completed"
    for event in result.events:
        back = EVENT_ADAPTER.validate_json(EVENT_ADAPTER.dump_json(event))
        assert back == event
        assert back.model_dump() == event.model_dump()
        assert back.model_fields_set == event.model_fields_set == set(type(event).model_fields)


async def test_per_agent_json_is_the_totals_of_the_last_event() -> None:
    result = await run(load_system(ROUTER), "I was charged twice on my last invoice")
    per_agent = result.as_json()["per_agent"]
    assert per_agent == {name: totals.as_json() for name, totals in result.per_agent.items()}
    assert list(per_agent) == ["router", "billing"]
    last = result.events[-1]
    assert isinstance(last, ev.RunFinished | ev.RunFailed)
    assert last.totals == {n: t for n, t in per_agent.items() if t["calls"]}


async def test_runs_with_other_specs_of_an_agent_use_their_own_tools_and_settings() -> None:
    from playground.llm.base import ModelRequest, ModelResponse

    system = load_system(ROUTER)
    seen: list[ModelRequest] = []

    class Echo:
        async def complete(self, request: ModelRequest, on_delta: object = None) -> ModelResponse:
            seen.append(request)
            return ModelResponse(text="ok", model=request.model)

    base = instant(system)
    router = base["router"]
    handoffs = [router.handoffs[0].model_copy(update={"description": "changed"}), *router.handoffs[1:]]
    changed = {
        **base,
        "router": router.model_copy(
            update={"model": "other/m", "model_settings": {"temperature": 0.5}, "handoffs": handoffs}
        ),
    }
    for agents in (base, changed, base):
        await Runtime(system, agents=agents, llm_factory=lambda agent, model: Echo()).run("hello")
    first, second, third = seen
    assert (first.model, second.model, third.model) == ("scripted", "other/m", "scripted")
    assert second.settings == {"temperature": 0.5}
    assert second.tools[0].description == "changed"
    assert first.tools == third.tools != second.tools


async def test_a_slow_model_call_times_out_and_the_next_one_runs(tmp_path: Path) -> None:
    from playground.llm.base import ModelRequest, ModelResponse

    calls: list[str] = []

    class SlowOnce:
        async def complete(self, request: ModelRequest, on_delta: object = None) -> ModelResponse:
            calls.append(request.model)
            if len(calls) == 1:
                await asyncio.sleep(5)
            return ModelResponse(text="answered", model=request.model)

    system = system_from(
        tmp_path,
        """
        name: slow
        pattern: pipeline
        pipeline: [a]
        limits: {retries: 1, backoff_s: 0, call_timeout_s: 0.05}
        agents:
          a: {model: local/x}
        """,
    )
    result = await Runtime(system, llm_factory=lambda agent, model: SlowOnce()).run("hi")
    assert result.status == "completed" and result.output == "answered"
    failed = of_kind(result.events, ev.ModelFailed)
    assert [(e.error_type, e.attempt) for e in failed] == [("timeout", 1)]
    assert kinds(result.events).count("model_requested") == 2
