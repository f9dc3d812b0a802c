"""Parallel work: several calls of one response at once, pipeline groups, sync tools off the
event loop, and one step numbering across branches."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from playground.engine import Runtime, StepController
from playground.engine import events as ev
from playground.engine.controller import Gate
from playground.store import Store
from tests.helpers import kinds, no_blocking, run_killed_when, system_from, write_system

CLI = [sys.executable, "-m", "playground.cli"]
TOOLS = """\
import time


def slow(x: str) -> str:
    time.sleep(0.5)
    return f"slow {x}"


def very_slow(x: str) -> str:
    time.sleep(30)
    return x
"""

SUPERVISOR = """\
name: parallel-supervisor
pattern: supervisor
entry: boss
limits: {retries: 1, backoff_s: 0}
agents:
  boss:
    delegates: [prices, reviews]
    script:
      - calls:
          - {tool: prices, args: {task: "prices of {input}"}}
          - {tool: reviews, args: {task: "reviews of {input}"}}
      - reply: "report: {tool_result}"
  prices:
    latency_ms: 600
    input: {task: str}
    script: [{reply: "P({task})"}]
  reviews:
    latency_ms: 600
    input: {task: str}
    script: [{reply: "R({task})"}]
"""


def steps_of(events: list[ev.Event]) -> list[int]:
    """The step numbers the events give their steps (each step's first event)."""
    starts = (ev.ModelRequested, ev.ToolCalled, ev.HandoffDelivered)
    return [e.step for e in events if isinstance(e, starts) and e.step is not None]


async def test_two_delegations_in_one_response_run_at_once(tmp_path: Path) -> None:
    system = system_from(tmp_path, SUPERVISOR)
    started = time.perf_counter()
    with no_blocking():
        result = await Runtime(system).run("tea")
    elapsed = time.perf_counter() - started

    assert result.status == "completed", result.error
    assert elapsed < 1.0, f"two 0.6 s workers took {elapsed:.2f} s: they did not run at once"
    assert result.latency_ms < 1000 < result.agent_latency_ms
    order = [(e.kind, e.tool) for e in result.events if isinstance(e, ev.ToolCalled | ev.ToolReturned)]
    assert order[:2] == [("tool_called", "prices"), ("tool_called", "reviews")]
    # Results go back to the model in the order of its calls, each answering its own call.
    second = [e for e in result.events if isinstance(e, ev.ModelRequested) and e.agent == "boss"][1]
    calls = next(
        e for e in result.events if isinstance(e, ev.ModelResponded) and e.agent == "boss"
    ).tool_calls
    answers = [m for m in second.messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in answers] == [c["id"] for c in calls]
    assert [m["content"] for m in answers] == ["P(prices of tea)", "R(reviews of tea)"]
    assert result.output == "report: R(reviews of tea)"
    # One step numbering: unique, in order, the two calls numbered in the order they were made.
    steps = steps_of(result.events)
    assert sorted(steps) == list(range(1, len(steps) + 1))
    tool_steps = {e.tool: e.step for e in result.events if isinstance(e, ev.ToolCalled)}
    assert tool_steps == {"prices": 2, "reviews": 3}


async def test_a_failing_branch_does_not_stop_its_sibling(tmp_path: Path) -> None:
    text = SUPERVISOR.replace('script: [{reply: "P({task})"}]', "script: [{fail: provider_error}]")
    result = await Runtime(system_from(tmp_path, text)).run("tea")

    assert result.status == "failed"
    assert result.error is not None
    assert (result.error["origin"], result.error["manifested"]) == ("prices", "boss")
    # The sibling ran to its end and was recorded; the failing worker retried as declared.
    reviews = [e for e in result.events if isinstance(e, ev.AgentFinished) and e.agent == "reviews"]
    assert [e.outcome for e in reviews] == ["reply"]
    returned = {e.tool: e for e in result.events if isinstance(e, ev.ToolReturned)}
    assert returned["reviews"].result == "R(reviews of tea)"
    assert returned["prices"].error is not None
    prices_failures = [e for e in result.events if isinstance(e, ev.ModelFailed) and e.agent == "prices"]
    assert [e.attempt for e in prices_failures] == [1, 2]


async def test_retry_applies_per_branch(tmp_path: Path) -> None:
    text = SUPERVISOR.replace(
        'script: [{reply: "P({task})"}]', 'script: [{fail: rate_limited, times: 1}, {reply: "P({task})"}]'
    )
    result = await Runtime(system_from(tmp_path, text)).run("tea")
    assert result.status == "completed", result.error
    assert [e.agent for e in result.events if isinstance(e, ev.RetryScheduled)] == ["prices"]
    assert "R(reviews of tea)" in json.dumps([e.model_dump(mode="json") for e in result.events])


async def test_concurrent_gates_are_held_one_at_a_time_with_their_own_steps(tmp_path: Path) -> None:
    system = system_from(tmp_path, SUPERVISOR.replace("latency_ms: 600", "latency_ms: 20"))
    controller = StepController(stepping=True)
    task = asyncio.create_task(Runtime(system, controller=controller).run("tea"))
    gates: list[Gate] = []
    while not task.done():
        paused = asyncio.create_task(controller.wait_paused())
        await asyncio.wait({task, paused}, return_when=asyncio.FIRST_COMPLETED)
        if not paused.done():
            paused.cancel()
            break
        gate = paused.result()
        gates.append(gate)
        controller.step()
        await asyncio.sleep(0)
    result = await task

    assert result.status == "completed", result.error
    # Every gate had its own number, and it is the number its step got in the events.
    assert len({g.step for g in gates}) == len(gates)
    assert sorted(g.step for g in gates) == sorted(steps_of(result.events))
    assert [(g.kind, g.payload.get("tool")) for g in gates if g.kind == "tool_call"] == [
        ("tool_call", "prices"),
        ("tool_call", "reviews"),
    ]


PIPELINE = """\
name: parallel-pipeline
pattern: pipeline
pipeline: [extract, [prices, reviews], report]
agents:
  extract:
    output: {product: str}
    script: [{reply: {product: "{input}"}}]
  prices:
    latency_ms: 600
    input: {product: str}
    output: {amount: float}
    script: [{reply: {amount: 9.5}}]
  reviews:
    latency_ms: 600
    input: {product: str}
    script: [{reply: "liked: {product}"}]
  report:
    input: {prices: dict, reviews: REVIEWS}
    script: [{reply: "{reviews} at {prices}"}]
"""


async def test_a_parallel_group_runs_at_once_and_its_next_stage_gets_one_object(tmp_path: Path) -> None:
    system = system_from(tmp_path, PIPELINE.replace("REVIEWS", "str"))
    started = time.perf_counter()
    result = await Runtime(system).run("kettle")
    elapsed = time.perf_counter() - started

    assert result.status == "completed", result.error
    assert elapsed < 1.0, f"two 0.6 s stages took {elapsed:.2f} s"
    assert result.path[0] == "extract" and result.path[-1] == "report"
    assert set(result.path[1:3]) == {"prices", "reviews"}
    report = next(e for e in result.events if isinstance(e, ev.AgentStarted) and e.agent == "report")
    assert report.context == {"prices": {"amount": 9.5}, "reviews": "liked: kettle"}
    assert json.loads(report.incoming) == report.context
    group = [e for e in result.events if isinstance(e, ev.AgentStarted) and e.agent in ("prices", "reviews")]
    assert all(e.context == {"product": "kettle"} for e in group)


async def test_a_group_field_that_does_not_fit_names_the_agent_that_produced_it(tmp_path: Path) -> None:
    result = await Runtime(system_from(tmp_path, PIPELINE.replace("REVIEWS", "int"))).run("kettle")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["type"] == "invalid_output"
    assert (result.error["origin"], result.error["manifested"]) == ("reviews", "report")
    assert "report" not in [e.agent for e in result.events if isinstance(e, ev.AgentStarted)]


SYNC = """\
name: sync-tools
pattern: router
entry: a
limits: {timeout_s: TIMEOUT}
tools:
  slow: tools.py:slow
  very_slow: tools.py:very_slow
  bounded: {function: tools.py:very_slow, timeout_s: 0.3}
agents:
  a:
    tools: [slow, very_slow, bounded]
    handoffs: [{to: b}]
    script:
      - STEP
      - reply: "got {tool_result}"
  b: {script: [{reply: done}]}
"""


def sync_system(tmp_path: Path, step: str, timeout_s: float = 30) -> Any:
    (tmp_path / "tools.py").write_text(TOOLS)
    return system_from(tmp_path, SYNC.replace("STEP", step).replace("TIMEOUT", str(timeout_s)))


async def test_a_sync_tool_runs_off_the_event_loop(tmp_path: Path) -> None:
    system = sync_system(tmp_path, 'tool: slow\n        args: {x: "1"}')
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(ticker())
    with no_blocking():
        result = await Runtime(system).run("go")
    beat.cancel()
    assert result.status == "completed", result.error
    assert result.output == "got slow 1"
    assert ticks >= 20, f"the loop ticked {ticks} times during a 0.5 s sync tool"


async def test_two_sync_tools_in_one_response_run_at_once(tmp_path: Path) -> None:
    step = 'calls: [{tool: slow, args: {x: "1"}}, {tool: slow, args: {x: "2"}}]'
    system = sync_system(tmp_path, step)
    started = time.perf_counter()
    result = await Runtime(system).run("go")
    assert result.status == "completed", result.error
    assert time.perf_counter() - started < 0.9
    assert result.output == "got slow 2"


async def test_the_run_timeout_fires_while_a_sync_tool_sleeps(tmp_path: Path) -> None:
    system = sync_system(tmp_path, 'tool: very_slow\n        args: {x: "1"}', timeout_s=1)
    started = time.perf_counter()
    result = await Runtime(system).run("go")
    assert time.perf_counter() - started < 3
    assert result.status == "failed"
    assert result.error is not None and result.error["type"] == "timeout"
    assert result.error["manifested"] == "a"
    assert kinds(result.events)[-1] == "run_failed"


async def test_a_tool_past_its_own_timeout_is_an_error_the_model_sees(tmp_path: Path) -> None:
    system = sync_system(tmp_path, 'tool: bounded\n        args: {x: "1"}')
    started = time.perf_counter()
    result = await Runtime(system).run("go")
    assert time.perf_counter() - started < 2
    assert result.status == "completed", result.error
    returned = next(e for e in result.events if isinstance(e, ev.ToolReturned))
    assert returned.error == "TimeoutError: bounded did not return within its own timeout_s = 0.3 s"
    assert result.output == "got Error: " + returned.error


def test_cli_parallel_pipeline_reports_wall_and_agent_time(tmp_path: Path) -> None:
    path = write_system(tmp_path, PIPELINE.replace("REVIEWS", "str"))
    out = subprocess.run(
        [*CLI, "run", str(path), "--input", "kettle", "--json", "--db", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["status"] == "completed"
    assert report["latency_ms"] < 1000 < report["agent_latency_ms"]
    assert report["per_agent"]["prices"]["latency_ms"] >= 600
    assert report["per_agent"]["reviews"]["latency_ms"] >= 600


def test_cli_run_timeout_during_a_sync_tool(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text(TOOLS)
    path = write_system(
        tmp_path, SYNC.replace("STEP", 'tool: very_slow\n        args: {x: "1"}').replace("TIMEOUT", "3")
    )
    started = time.monotonic()
    out = subprocess.run(
        [*CLI, "run", str(path), "--input", "go", "--json", "--db", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 15, "the process waited for the abandoned tool thread"
    assert out.returncode != 0
    report = json.loads(out.stdout)
    assert report["status"] == "failed"
    assert report["error"]["type"] == "timeout"


def test_kill_9_during_a_sync_tool_keeps_the_session_and_its_events(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text(TOOLS)
    path = write_system(
        tmp_path, SYNC.replace("STEP", 'tool: very_slow\n        args: {x: "1"}').replace("TIMEOUT", "60")
    )
    status, recorded = run_killed_when(path, tmp_path / "s.db", "tool_called")
    assert status == "interrupted"
    assert recorded[:5] == [
        "run_started",
        "agent_started",
        "model_requested",
        "model_responded",
        "tool_called",
    ]


async def test_a_fork_of_a_parallel_session_replays_branches_that_answered_out_of_order(
    tmp_path: Path,
) -> None:
    from playground.replay import fork_session, replay_session
    from playground.service import run_session

    # reviews answers first though prices was asked first: recorded order != request order.
    text = SUPERVISOR.replace(
        'latency_ms: 600\n    input: {task: str}\n    script: [{reply: "R(',
        'latency_ms: 20\n    input: {task: str}\n    script: [{reply: "R(',
    )
    text = text.replace("latency_ms: 600", "latency_ms: 200")
    system = system_from(tmp_path, text)
    async with Store(tmp_path / "s.db") as store:
        recorded = await run_session(system, "tea", store=store)
        assert recorded.status == "completed", recorded.error
        finished = [e.agent for e in recorded.events if isinstance(e, ev.AgentFinished)]
        assert finished.index("reviews") < finished.index("prices")
        last_boss = [
            e.step for e in recorded.events if isinstance(e, ev.ModelRequested) and e.agent == "boss"
        ][-1]
        assert last_boss is not None
        fork = await fork_session(store, recorded.session_id, last_boss)
        replay = await replay_session(store, recorded.session_id)
    assert fork.result.status == "completed", fork.result.error
    assert fork.result.output == recorded.output
    assert fork.replayed_calls == 3  # boss's first call and both workers'
    assert replay.result.status == "completed"
    assert replay.first_divergence is None


async def test_a_huge_tool_result_is_cut_and_the_model_told(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text("def big(n: int) -> str:\n    return 'x' * n\n")
    system = system_from(
        tmp_path,
        """\
name: big-result
pattern: router
entry: a
limits: {max_tool_result_chars: 1000}
tools: {big: tools.py:big}
agents:
  a:
    tools: [big]
    handoffs: [{to: b}]
    script:
      - {tool: big, args: {n: 5000000}}
      - reply: "{tool_result}"
  b: {script: [{reply: done}]}
""",
    )
    result = await Runtime(system).run("go")
    assert result.status == "completed", result.error
    returned = next(e for e in result.events if isinstance(e, ev.ToolReturned))
    assert returned.truncated_from == 5_000_000 and len(returned.result) == 1000
    assert (
        result.output
        == "x" * 1000 + "\n[truncated: big returned 5000000 characters; the first 1000 are shown]"
    )


async def test_an_async_tool_raising_system_exit_is_a_tool_error(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text("async def bye(x: str) -> str:\n    raise SystemExit(5)\n")
    system = system_from(
        tmp_path,
        """\
name: bye
pattern: router
entry: a
tools: {bye: tools.py:bye}
agents:
  a:
    tools: [bye]
    handoffs: [{to: b}]
    script: [{tool: bye, args: {x: "1"}}, {reply: "{tool_result}"}]
  b: {script: [{reply: done}]}
""",
    )
    result = await Runtime(system).run("go")
    assert result.status == "completed"
    assert result.output == "Error: SystemExit: 5"


async def test_a_cancelled_run_records_its_abort(tmp_path: Path) -> None:
    system = sync_system(tmp_path, 'tool: very_slow\n        args: {x: "1"}')
    seen: list[ev.Event] = []
    runtime = Runtime(system, sinks=[seen.append])
    task = asyncio.create_task(runtime.run("go"))
    while not any(isinstance(e, ev.ToolCalled) for e in seen):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    failed = seen[-1]
    assert isinstance(failed, ev.RunFailed) and failed.status == "aborted"


async def test_a_stage_is_sent_its_input_as_validated_as_a_handoff_target_is(tmp_path: Path) -> None:
    """The next stage's model gets the previous output as its ``input`` read it ("6" is the
    int 6), which is what the TUI's stage edge shows, not the raw reply text."""
    from tests.helpers import system_from

    system = system_from(
        tmp_path,
        """
name: typed-stages
pattern: pipeline
pipeline: [count, report]
agents:
  count:
    script: [{reply: '{"words": "6", "title":  "T"}'}]
  report:
    input: {words: int, title: str}
    script: [{reply: "{words} words"}]
""",
    )
    result = await Runtime(system).run("go")
    assert result.status == "completed", result.error
    sent = [e for e in result.events if isinstance(e, ev.ModelRequested) and e.agent == "report"]
    assert sent[0].messages[-1]["content"] == '{"words":6,"title":"T"}'
