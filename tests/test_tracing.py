"""Tracing: the real runtime's events become OpenTelemetry spans (in-memory exporter),
and the OTLP/HTTP exporter delivers them to a local receiver."""

from __future__ import annotations

import asyncio
import enum
import gzip
import http.server
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from playground.engine import events as ev
from playground.engine.runtime import RunResult, Runtime
from playground.spec import System, load_system
from playground.spec.load import load_system_text
from playground.tracing import EventTracer, configure_tracing, otlp_traces_url
from playground.tracing.otlp import EncodingSpanProcessor, FastOTLPSpanExporter, SpanEncoder
from playground.tracing.tracer import MOST_ATTRIBUTES
from tests.helpers import run_started

ROOT = Path(__file__).resolve().parent.parent
ROUTER_FILE = ROOT / "agents" / "support_router.yaml"
REQUEST = "My invoice INV-1042 was charged twice, please refund"


def router_example() -> System:
    """The bundled router example, without its demo latency."""
    text = ROUTER_FILE.read_text(encoding="utf-8")
    fast = re.sub(r"(?m)^scripted:.*$", "scripted: {latency_ms: 0, tokens_per_s: 0}", text)
    assert fast != text
    return load_system_text(fast, str(ROUTER_FILE), base=ROUTER_FILE.parent)


def system_from(tmp_path: Path, text: str) -> System:
    path = tmp_path / "system.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return load_system(path)


class Trace:
    """The finished spans of one run, with lookups."""

    def __init__(self, spans: tuple[ReadableSpan, ...]) -> None:
        self.spans = list(spans)
        self.by_id = {s.context.span_id: s for s in self.spans}

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, (name, [s.name for s in self.spans])
        return found[0]

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        return self.by_id[span.parent.span_id] if span.parent is not None else None

    def children(self, span: ReadableSpan) -> list[str]:
        return [
            s.name for s in self.spans if s.parent is not None and s.parent.span_id == span.context.span_id
        ]

    def root(self) -> ReadableSpan:
        roots = [s for s in self.spans if s.parent is None]
        assert len(roots) == 1
        return roots[0]

    def texts(self) -> str:
        """Everything a span carries as text: attributes, event attributes, statuses."""
        parts: list[str] = []
        for span in self.spans:
            parts.append(json.dumps(dict(span.attributes or {}), default=str))
            parts.extend(json.dumps(dict(e.attributes or {}), default=str) for e in span.events)
            parts.append(span.status.description or "")
        return "\n".join(parts)


def attrs(item: ReadableSpan | Event) -> Mapping[str, Any]:
    """A span's or span event's attributes (the SDK types them as optional, and the values
    as a union no test would narrow one by one)."""
    assert item.attributes is not None
    return item.attributes


def trace_root(spans: list[ReadableSpan]) -> ReadableSpan:
    return Trace(tuple(spans)).root()


@pytest.fixture
def memory() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def tracer_for(memory: InMemorySpanExporter, *, capture_content: bool = False) -> EventTracer:
    tracer = configure_tracing(exporter=memory, capture_content=capture_content)
    assert tracer is not None
    return tracer


async def traced(
    system: System, request: str, memory: InMemorySpanExporter, **options: Any
) -> tuple[RunResult, Trace]:
    tracer = tracer_for(memory, **options)
    result = await Runtime(system, sinks=[tracer]).run(request)
    tracer.shutdown()
    return result, Trace(memory.get_finished_spans())


# -- the router example ---------------------------------------------------------------------


async def test_router_trace_structure_and_ids(memory: InMemorySpanExporter) -> None:
    result, trace = await traced(router_example(), REQUEST, memory)
    assert result.status == "completed"
    assert {s.context.trace_id for s in trace.spans} == {int(result.correlation_id, 16)}

    root = trace.root()
    assert root.name == "invoke_workflow support-router"
    router, billing = trace.one("invoke_agent router"), trace.one("invoke_agent billing")
    assert trace.parent(router) is root and trace.parent(billing) is root
    assert trace.children(router) == ["chat scripted", "handoff router -> billing"]
    assert trace.children(billing) == [
        "chat scripted",
        "execute_tool lookup_invoice",
        "chat scripted",
    ]
    assert sorted(trace.children(root)) == ["invoke_agent billing", "invoke_agent router"]
    # billing was started by the handoff: a link says so.
    handoff = trace.one("handoff router -> billing")
    assert [link.context.span_id for link in billing.links] == [handoff.context.span_id]
    assert all(s.status.status_code is StatusCode.OK for s in trace.spans)  # a completed run


async def test_span_times_are_the_event_times(memory: InMemorySpanExporter) -> None:
    result, trace = await traced(router_example(), REQUEST, memory)
    by_kind = {e.kind: e for e in result.events}
    root = trace.root()
    assert root.start_time == int(by_kind["run_started"].ts * 1e9)
    assert root.end_time == int(by_kind["run_finished"].ts * 1e9)
    tool = trace.one("execute_tool lookup_invoice")
    assert tool.start_time == int(by_kind["tool_called"].ts * 1e9)
    assert tool.end_time == int(by_kind["tool_returned"].ts * 1e9)
    for span in trace.spans:
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time <= span.end_time
        parent = trace.parent(span)
        if parent is not None:
            assert parent.start_time is not None and parent.end_time is not None
            assert parent.start_time <= span.start_time and span.end_time <= parent.end_time


async def test_genai_attributes(memory: InMemorySpanExporter) -> None:
    result, trace = await traced(router_example(), REQUEST, memory)
    session = result.session_id
    versions = run_started(result.events).versions

    root = trace.root()
    assert attrs(root)["gen_ai.operation.name"] == "invoke_workflow"
    assert attrs(root)["gen_ai.conversation.id"] == session
    assert attrs(root)["playground.session_id"] == session
    assert attrs(root)["playground.status"] == "completed"
    assert list(attrs(root)["playground.path"]) == ["router", "billing"]
    assert attrs(root)["playground.cost_usd"] == pytest.approx(result.cost_usd)
    assert attrs(root)["playground.usage.input_tokens"] == result.tokens["input"]

    billing = trace.one("invoke_agent billing")
    assert attrs(billing)["gen_ai.operation.name"] == "invoke_agent"
    assert attrs(billing)["gen_ai.agent.name"] == "billing"
    assert attrs(billing)["playground.agent.version"] == versions["billing"]
    assert attrs(billing)["playground.agent.outcome"] == "reply"
    assert attrs(billing)["playground.cost_usd"] == pytest.approx(result.per_agent["billing"].cost_usd)
    router = trace.one("invoke_agent router")
    assert attrs(router)["playground.handoff.target"] == "billing"

    chats = [s for s in trace.named("chat scripted") if attrs(s)["gen_ai.agent.name"] == "billing"]
    responded = [e for e in result.events if isinstance(e, ev.ModelResponded) and e.agent == "billing"]
    for chat, event in zip(chats, responded, strict=True):
        assert attrs(chat)["gen_ai.operation.name"] == "chat"
        assert attrs(chat)["gen_ai.provider.name"] == "scripted"
        assert attrs(chat)["gen_ai.request.model"] == "scripted"
        assert attrs(chat)["gen_ai.response.model"] == "scripted"
        assert attrs(chat)["gen_ai.usage.input_tokens"] == event.input_tokens
        assert attrs(chat)["gen_ai.usage.output_tokens"] == event.output_tokens
        assert attrs(chat)["playground.cost_usd"] == pytest.approx(event.cost_usd)
        assert attrs(chat)["gen_ai.conversation.id"] == session
        assert attrs(chat)["playground.step"] == event.step
        assert attrs(chat)["playground.event_seq"] == event.cause

    tool = trace.one("execute_tool lookup_invoice")
    called = next(e for e in result.events if isinstance(e, ev.ToolCalled))
    assert attrs(tool)["gen_ai.operation.name"] == "execute_tool"
    assert attrs(tool)["gen_ai.tool.name"] == "lookup_invoice"
    assert attrs(tool)["gen_ai.tool.call.id"] == called.call_id
    assert attrs(tool)["playground.event_seq"] == called.seq

    handoff = trace.one("handoff router -> billing")
    delivered = next(e for e in result.events if isinstance(e, ev.HandoffDelivered))
    assert attrs(handoff)["playground.handoff.target"] == "billing"
    assert attrs(handoff)["playground.handoff.payload_tokens"] == delivered.payload_tokens


async def test_no_content_by_default(memory: InMemorySpanExporter) -> None:
    _, trace = await traced(router_example(), REQUEST, memory)
    text = trace.texts()
    assert "INV-1042" not in text and "charged twice" not in text  # request, payload, tool result
    assert "front desk" not in text  # the router's instructions
    assert "C-1" not in text  # tool arguments and handoff payload
    assert not any(
        key.startswith(
            (
                "gen_ai.input",
                "gen_ai.output",
                "gen_ai.system_instructions",
                "gen_ai.tool.call.arguments",
                "gen_ai.tool.call.result",
            )
        )
        for span in trace.spans
        for key in (span.attributes or {})
    )


async def test_content_when_asked(memory: InMemorySpanExporter) -> None:
    result, trace = await traced(router_example(), REQUEST, memory, capture_content=True)
    router_chat = trace.parent(trace.one("handoff router -> billing"))
    assert router_chat is not None
    chat = next(s for s in trace.named("chat scripted") if trace.parent(s) is router_chat)
    messages = json.loads(attrs(chat)["gen_ai.input.messages"])
    assert messages == [{"role": "user", "parts": [{"type": "text", "content": REQUEST}]}]
    assert "front desk" in json.loads(attrs(chat)["gen_ai.system_instructions"])[0]["content"]
    output = json.loads(attrs(chat)["gen_ai.output.messages"])[0]
    assert output["finish_reason"] == "tool_call"
    assert output["parts"][0]["name"] == "transfer_to_billing"
    assert output["parts"][0]["arguments"] == {"customer_id": "C-1", "question": REQUEST}

    payload = json.loads(attrs(trace.one("handoff router -> billing"))["playground.handoff.payload"])
    assert payload == {"customer_id": "C-1", "question": REQUEST}
    tool = trace.one("execute_tool lookup_invoice")
    assert json.loads(attrs(tool)["gen_ai.tool.call.arguments"]) == {"customer_id": "C-1"}
    assert "INV-1042" in attrs(tool)["gen_ai.tool.call.result"]
    assert attrs(trace.root())["playground.output"] == result.output
    last = trace.named("chat scripted")[-1]
    tool_turn = json.loads(attrs(last)["gen_ai.input.messages"])[-1]
    assert tool_turn["role"] == "tool" and tool_turn["parts"][0]["type"] == "tool_call_response"


async def test_model_settings_never_reach_spans(tmp_path: Path, memory: InMemorySpanExporter) -> None:
    system = system_from(
        tmp_path,
        """
        name: settings
        pattern: router
        entry: a
        agents:
          a:
            model_settings: {api_base: "http://secret-host.invalid", api_key_env: SECRET_VAR_NAME}
            handoffs: [{to: b}]
            script: [{handoff: b}]
          b: {script: [{reply: ok}]}
        """,
    )
    _, trace = await traced(system, "hello", memory, capture_content=True)
    text = trace.texts()
    assert "secret-host" not in text and "SECRET_VAR_NAME" not in text


# -- failures, retries and span events -------------------------------------------------------


FAILING = """
name: flaky
pattern: router
entry: desk
limits: {retries: 0}
agents:
  desk:
    handoffs: [{to: other}]
    script:
      - fail: provider_error
  other: {script: [{reply: never}]}
"""


RETRYING = """
name: flaky
pattern: router
entry: desk
limits: {retries: 1, backoff_s: 0}
agents:
  desk:
    fallbacks: [scripted/backup]
    handoffs: [{to: other}]
    script:
      - fail: rate_limited
        model: scripted
      - handoff: other
  other: {script: [{reply: done}]}
"""

GUARDED = """
name: guarded
pattern: router
entry: desk
tools: {secret: tools.py:secret}
agents:
  desk:
    handoffs: [{to: other}]
    script:
      - tool: secret
        args: {x: "hidden-argument"}
      - tool: transfer_to_nowhere
      - handoff: other
  other: {script: [{reply: done}]}
"""
SECRET_TOOL = "def secret(x: str) -> str:\n    return x\n"

PINGPONG = """
name: pingpong
pattern: router
entry: a
on_loop: help
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


async def test_failing_run_sets_error_status(tmp_path: Path, memory: InMemorySpanExporter) -> None:
    result, trace = await traced(system_from(tmp_path, FAILING), "hello", memory)
    assert result.status == "failed"
    assert {s.context.trace_id for s in trace.spans} == {int(result.correlation_id, 16)}
    chat = trace.one("chat scripted")
    assert chat.status.status_code is StatusCode.ERROR
    assert "provider_error" in (chat.status.description or "")
    assert attrs(chat)["error.type"] == "provider_error"
    desk = trace.one("invoke_agent desk")
    assert desk.status.status_code is StatusCode.ERROR
    root = trace.root()
    assert root.status.status_code is StatusCode.ERROR
    assert attrs(root)["playground.status"] == "failed"
    assert result.error is not None
    assert attrs(root)["error.type"] == result.error["type"]
    assert attrs(root)["playground.error.origin"] == "desk"
    assert attrs(root)["playground.error.manifested"] == "desk"
    # Messages may quote what was sent or said: without content capture a status
    # names the error type and the agent, never the message.
    assert root.status.description == f"{result.error['type']} (agent 'desk')"
    assert chat.status.description == "provider_error (agent 'desk', model 'scripted')"
    assert result.error["message"] not in trace.texts()


async def test_failure_messages_with_content(tmp_path: Path, memory: InMemorySpanExporter) -> None:
    result, trace = await traced(system_from(tmp_path, FAILING), "hello", memory, capture_content=True)
    assert result.status == "failed"
    root = trace.root()
    assert result.error is not None
    assert root.status.description == f"{result.error['type']}: {result.error['message']}"
    failed = next(e for e in result.events if isinstance(e, ev.ModelFailed))
    assert trace.one("chat scripted").status.description == f"provider_error: {failed.message}"


FAILING_TOOL = """
name: lookups
pattern: router
entry: desk
tools: {lookup: tools.py:lookup}
agents:
  desk:
    tools: [lookup]
    handoffs: [{to: other}]
    script:
      - tool: lookup
        args: {x: "hidden-argument"}
      - handoff: other
  other: {script: [{reply: done}]}
"""
FAILING_TOOL_CODE = "def lookup(x: str) -> str:\n    raise LookupError(f'no record for {x}')\n"


@pytest.mark.parametrize("capture_content", [False, True])
async def test_tool_error_message_only_with_content(
    tmp_path: Path, memory: InMemorySpanExporter, capture_content: bool
) -> None:
    (tmp_path / "tools.py").write_text(FAILING_TOOL_CODE, encoding="utf-8")
    result, trace = await traced(
        system_from(tmp_path, FAILING_TOOL), "hello", memory, capture_content=capture_content
    )
    assert result.status == "completed", result.error
    tool = trace.one("execute_tool lookup")
    assert tool.status.status_code is StatusCode.ERROR
    assert attrs(tool)["error.type"] == "LookupError"
    if capture_content:
        assert tool.status.description == "LookupError: no record for hidden-argument"
    else:
        assert tool.status.description == "LookupError (tool 'lookup', agent 'desk')"
        assert "hidden-argument" not in trace.texts()


async def test_retry_and_fallback_are_span_events(tmp_path: Path, memory: InMemorySpanExporter) -> None:
    system = system_from(tmp_path, RETRYING)
    result, trace = await traced(system, "hello", memory)
    assert result.status == "completed", result.error
    desk = trace.one("invoke_agent desk")
    names = [e.name for e in desk.events]
    assert names == ["playground.retry_scheduled", "playground.fallback_used"]
    retry = desk.events[0]
    assert attrs(retry)["playground.model.attempt"] == 2
    assert attrs(desk.events[1])["playground.fallback.to_model"] == "scripted/backup"
    chats = [s for s in trace.spans if s.name.startswith("chat ") and trace.parent(s) is desk]
    assert [s.status.status_code for s in chats] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.OK,
    ]
    assert chats[-1].name == "chat scripted/backup"
    assert desk.status.status_code is StatusCode.OK  # it recovered


async def test_permission_denied_and_validation_are_span_events(
    tmp_path: Path, memory: InMemorySpanExporter
) -> None:
    (tmp_path / "tools.py").write_text(SECRET_TOOL, encoding="utf-8")
    system = system_from(tmp_path, GUARDED)
    result, trace = await traced(system, "hello", memory)
    assert result.status == "completed", result.error
    desk = trace.one("invoke_agent desk")
    events = {e.name: e for e in desk.events}
    assert set(events) == {"playground.permission_denied", "playground.validation_failed"}
    assert attrs(events["playground.permission_denied"])["gen_ai.tool.name"] == "secret"
    assert attrs(events["playground.validation_failed"])["playground.validation.what"] == "handoff_target"
    assert "hidden-argument" not in trace.texts()


async def test_loop_escalation_events_and_link(tmp_path: Path, memory: InMemorySpanExporter) -> None:
    system = system_from(tmp_path, PINGPONG)
    result, trace = await traced(system, "go", memory)
    assert result.status == "completed", result.error
    looping = trace.named("invoke_agent a")[-1]
    assert [e.name for e in looping.events] == ["playground.loop_detected", "playground.escalated"]
    assert list(attrs(looping.events[0])["playground.loop.edge"]) == ["a", "b"]
    assert attrs(looping)["playground.handoff.target"] == "help"
    helper = trace.one("invoke_agent help")
    assert attrs(helper)["playground.agent.reason"] == "escalation"
    assert [link.context.span_id for link in helper.links] == [looping.context.span_id]


# -- supervisor and pipeline -----------------------------------------------------------------


SUPERVISOR = """
name: team
pattern: supervisor
entry: boss
agents:
  boss:
    delegates: [writer]
    review: true
    script:
      - tool: writer
        args: {task: "write about {input}"}
      - reply: "final: {tool_result}"
      - review: reject
        match: "draft one"
        feedback: "needs more detail"
  writer:
    script:
      - match: "needs more detail"
        reply: "draft two, detailed"
      - reply: "draft one"
"""


PIPELINE = """
name: pipe
pattern: pipeline
pipeline: [extract, shout]
agents:
  extract:
    script: [{reply: {word: "{input}"}}]
  shout:
    input: {word: str}
    script: [{reply: "{word}!"}]
"""


async def test_supervisor_workers_nest_under_the_supervisor(
    tmp_path: Path, memory: InMemorySpanExporter
) -> None:
    result, trace = await traced(system_from(tmp_path, SUPERVISOR), "agents", memory)
    assert result.status == "completed", result.error
    boss = trace.one("invoke_agent boss")
    assert trace.parent(boss) is trace.root()
    delegation = trace.one("execute_tool writer")
    assert trace.parent(delegation) is boss
    assert attrs(delegation)["playground.tool.delegation"] is True
    writers = trace.named("invoke_agent writer")
    assert len(writers) == 2  # first draft rejected, second accepted
    for writer in writers:
        assert trace.parent(writer) is delegation
        assert attrs(writer)["playground.agent.parent_activation"] == attrs(boss)["playground.event_seq"]
        assert trace.children(writer) == ["chat scripted"]
    reviews = [e for e in boss.events if e.name == "playground.checkpoint_reviewed"]
    assert [attrs(e)["playground.review.verdict"] for e in reviews] == ["reject", "accept"]
    assert all("playground.review.feedback" not in attrs(e) for e in reviews)


async def test_pipeline_stages_link_to_the_previous_stage(
    tmp_path: Path, memory: InMemorySpanExporter
) -> None:
    system = system_from(tmp_path, PIPELINE)
    result, trace = await traced(system, "hello", memory)
    assert result.status == "completed", result.error
    extract, shout = trace.one("invoke_agent extract"), trace.one("invoke_agent shout")
    assert trace.parent(shout) is trace.root()
    assert [link.context.span_id for link in shout.links] == [extract.context.span_id]


# -- the tracer as a component ---------------------------------------------------------------


async def test_concurrent_sessions_get_their_own_traces(memory: InMemorySpanExporter) -> None:
    tracer = tracer_for(memory)
    system = router_example()
    results = await asyncio.gather(*(Runtime(system, sinks=[tracer]).run(REQUEST) for _ in range(3)))
    tracer.shutdown()
    spans = memory.get_finished_spans()
    for result in results:
        mine = [s for s in spans if s.context.trace_id == int(result.correlation_id, 16)]
        assert len(mine) == 8
        assert attrs(trace_root(mine))["playground.session_id"] == result.session_id
        conversations = {attrs(s).get("gen_ai.conversation.id") for s in mine} - {None}
        assert conversations == {result.session_id}


async def test_caller_span_does_not_adopt_the_run(memory: InMemorySpanExporter) -> None:
    outer = TracerProvider().get_tracer("test")
    tracer = tracer_for(memory)
    with outer.start_as_current_span("caller"):
        result = await Runtime(router_example(), sinks=[tracer]).run(REQUEST)
    trace = Trace(memory.get_finished_spans())
    assert trace.root().name == "invoke_workflow support-router"
    assert trace.root().context.trace_id == int(result.correlation_id, 16)


def test_tracer_never_raises_and_ignores_unknown_sessions(memory: InMemorySpanExporter) -> None:
    tracer = tracer_for(memory)
    tracer(ev.AgentStarted(session_id="nope", seq=2, ts=1.0, agent="a", reason="entry", incoming="x"))
    tracer(ev.TokenDelta(session_id="nope", seq=0, ts=1.0, text="x"))
    tracer(object())  # type: ignore[arg-type]  # not an event: logged, never raised
    tracer(
        ev.RunStarted(session_id="s", seq=1, ts=1.0, system="sys", input="x", correlation_id="not-a-trace-id")
    )
    tracer(ev.ModelResponded(session_id="s", seq=3, ts=2.0, model="m", cause=99))
    tracer(ev.RunFinished(session_id="s", seq=4, ts=3.0, output="", path=[], totals={}))
    assert [s.name for s in memory.get_finished_spans()] == ["invoke_workflow sys"]


def test_shutdown_ends_open_sessions_as_interrupted(memory: InMemorySpanExporter) -> None:
    tracer = tracer_for(memory)
    correlation = "0af7651916cd43dd8448eb211c80319c"
    tracer(
        ev.RunStarted(session_id="s", seq=1, ts=100.0, system="sys", input="x", correlation_id=correlation)
    )
    tracer(
        ev.AgentStarted(
            session_id="s",
            seq=2,
            ts=100.5,
            agent="a",
            cause=1,
            reason="entry",
            incoming="x",
            model="openai/gpt-4o-mini",
        )
    )
    tracer(
        ev.ModelRequested(
            session_id="s",
            seq=3,
            ts=101.0,
            agent="a",
            step=1,
            activation=2,
            cause=1,
            model="openai/gpt-4o-mini",
            messages=[],
        )
    )
    assert tracer.open_sessions == ["s"]
    tracer.shutdown()
    trace = Trace(memory.get_finished_spans())
    assert [s.name for s in trace.spans] == [
        "chat openai/gpt-4o-mini",
        "invoke_agent a",
        "invoke_workflow sys",
    ]
    assert all(s.status.status_code is StatusCode.ERROR for s in trace.spans)
    assert all(s.end_time is not None for s in trace.spans)
    assert {s.context.trace_id for s in trace.spans} == {int(correlation, 16)}
    chat = trace.spans[0]
    assert attrs(chat)["gen_ai.provider.name"] == "openai"
    assert attrs(trace.spans[1])["playground.agent.outcome"] == "interrupted"
    assert attrs(trace.root())["playground.status"] == "interrupted"
    assert tracer.open_sessions == []
    tracer(ev.RunStarted(session_id="t", seq=1, ts=1.0, system="s", input="", correlation_id=""))
    tracer.shutdown()  # twice is fine; nothing is recorded after the first
    assert len(memory.get_finished_spans()) == 3


async def scenario_spans(tmp_path: Path, *, capture_content: bool) -> list[ReadableSpan]:
    """The spans of runs of every shape: router with a tool, supervisor with delegations
    and reviews, a failed run, retries and a fallback, denied and invalid calls, a loop
    and escalation (links), a pipeline, a failing tool."""
    (tmp_path / "tools.py").write_text(SECRET_TOOL + FAILING_TOOL_CODE, encoding="utf-8")
    runs = [
        (router_example(), REQUEST),
        (system_from(tmp_path, SUPERVISOR), "agents"),
        (system_from(tmp_path, FAILING), "hello"),
        (system_from(tmp_path, RETRYING), "hello"),
        (system_from(tmp_path, GUARDED), "hello"),
        (system_from(tmp_path, PINGPONG), "go"),
        (system_from(tmp_path, PIPELINE), "hello"),
        (system_from(tmp_path, FAILING_TOOL), "hello"),
    ]
    spans: list[ReadableSpan] = []
    for system, request in runs:
        memory = InMemorySpanExporter()
        await traced(system, request, memory, capture_content=capture_content)
        spans.extend(memory.get_finished_spans())
    assert any(s.links for s in spans) and any(s.events for s in spans)
    assert any(s.status.status_code is StatusCode.ERROR for s in spans)
    return spans


def assert_valid_attributes(attributes: Any) -> None:
    """What the SDK's ``BoundedAttributes`` would keep: every value, unchanged."""
    assert len(attributes or {}) <= MOST_ATTRIBUTES
    cleaned = BoundedAttributes(attributes=attributes)
    assert dict(cleaned) == dict(attributes or {}) and cleaned.dropped == 0


async def test_spans_hold_only_what_the_sdk_accepts(tmp_path: Path) -> None:
    # The tracer builds spans without BoundedAttributes: it must only ever write
    # values the SDK would have kept, and no more than the limits it does not enforce.
    for span in await scenario_spans(tmp_path, capture_content=True):
        assert_valid_attributes(span.attributes)
        assert (span.dropped_attributes, span.dropped_events, span.dropped_links) == (0, 0, 0)
        for event in span.events:
            assert_valid_attributes(event.attributes)
        for link in span.links:
            assert_valid_attributes(link.attributes)
        assert span.context.trace_flags == TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.name == "playground.tracing"


async def test_spans_are_whole_readable_spans(memory: InMemorySpanExporter) -> None:
    # The tracer's spans set ReadableSpan's fields themselves: all of them.
    _, trace = await traced(router_example(), REQUEST, memory)
    expected = set(vars(ReadableSpan("any")))
    assert all(expected <= set(vars(span)) for span in trace.spans)
    for span in trace.spans:
        copy = ReadableSpan(
            span.name,
            span.context,
            span.parent,
            span.resource,
            span.attributes,
            span.events,
            span.links,
            span.kind,
            None,
            span.status,
            span.start_time,
            span.end_time,
            span.instrumentation_scope,
        )
        assert copy.to_json() == span.to_json()


async def test_lower_span_limits_are_enforced(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3")
    clean_env.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "1")
    clean_env.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
    memory = InMemorySpanExporter()
    result, trace = await traced(system_from(tmp_path, RETRYING), "hello", memory)
    assert result.status == "completed", result.error
    desk = trace.one("invoke_agent desk")
    assert [e.name for e in desk.events] == ["playground.fallback_used"]  # the latest kept
    assert desk.dropped_events == 1
    for span in trace.spans:
        assert len(attrs(span)) <= 3 and span.dropped_attributes > 0
        assert all(len(v) <= 4 for v in attrs(span).values() if isinstance(v, str))
    assert SpanEncoder().encode(trace.spans) == encode_spans(trace.spans).SerializePartialToString()


@pytest.mark.parametrize(
    ("sampler", "argument", "kept"),
    [("always_off", "", 0), ("traceidratio", "0", 0), ("always_on", "", 8), ("parentbased_always_on", "", 8)],
)
async def test_sampler_from_environment(
    clean_env: pytest.MonkeyPatch, memory: InMemorySpanExporter, sampler: str, argument: str, kept: int
) -> None:
    clean_env.setenv("OTEL_TRACES_SAMPLER", sampler)
    if argument:
        clean_env.setenv("OTEL_TRACES_SAMPLER_ARG", argument)
    result, trace = await traced(router_example(), REQUEST, memory)
    assert result.status == "completed"
    assert len(trace.spans) == kept


# -- configuration ---------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_off_unless_asked(clean_env: pytest.MonkeyPatch) -> None:
    assert configure_tracing() is None
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    tracer = configure_tracing()
    assert tracer is not None
    tracer.shutdown()
    clean_env.setenv("OTEL_SDK_DISABLED", "true")
    assert configure_tracing(console=True) is None


def test_capture_content_from_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    tracer = configure_tracing(exporter=InMemorySpanExporter())
    assert tracer is not None and tracer.capture_content
    tracer.shutdown()


def test_service_name(clean_env: pytest.MonkeyPatch) -> None:
    tracer = configure_tracing(exporter=InMemorySpanExporter())
    assert tracer is not None
    assert tracer.resource.attributes["service.name"] == "agent-playground"
    tracer.shutdown()
    clean_env.setenv("OTEL_SERVICE_NAME", "my-team")
    tracer = configure_tracing(exporter=InMemorySpanExporter())
    assert tracer is not None
    assert tracer.resource.attributes["service.name"] == "my-team"
    tracer.shutdown()


def test_otlp_traces_url() -> None:
    assert otlp_traces_url("http://localhost:4318") == "http://localhost:4318/v1/traces"
    assert otlp_traces_url("http://localhost:4318/") == "http://localhost:4318/v1/traces"
    assert otlp_traces_url("https://x.example/otlp/v1/traces") == "https://x.example/otlp/v1/traces"
    assert otlp_traces_url("localhost:4318") == "http://localhost:4318/v1/traces"


def test_console_writes_json_lines_to_stderr(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tracer = configure_tracing(console=True)
    assert tracer is not None
    result = asyncio.run(Runtime(router_example(), sinks=[tracer]).run(REQUEST))
    tracer.shutdown()
    out, err = capsys.readouterr()
    assert out == ""
    lines = [json.loads(line) for line in err.splitlines()]
    assert len(lines) == 8
    assert {line["context"]["trace_id"] for line in lines} == {"0x" + result.correlation_id}


class _Collector(http.server.BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        type(self).requests.append((self.path, headers, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    """A receiver on 127.0.0.1 (its base URL) that keeps each request's path, headers
    (lower-cased names) and body."""
    requests: list[tuple[str, dict[str, str], bytes]] = []
    handler = type("Collector", (_Collector,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


async def test_otlp_http_export_reaches_a_collector(
    clean_env: pytest.MonkeyPatch, collector: tuple[str, list[tuple[str, dict[str, str], bytes]]]
) -> None:
    endpoint, posts = collector
    memory = InMemorySpanExporter()  # the same spans, kept here to compare
    tracer = configure_tracing(otlp_endpoint=endpoint, exporter=memory)
    assert tracer is not None
    result = await Runtime(router_example(), sinks=[tracer]).run(REQUEST)
    assert await tracer.flush_async(timeout_s=10)
    await tracer.shutdown_async()
    assert posts, "nothing reached the receiver"
    assert all(
        path == "/v1/traces" and headers["content-type"] == "application/x-protobuf" and body
        for path, headers, body in posts
    )
    spans = []
    for _, _, body in posts:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    assert len(spans) == 8
    assert {span.trace_id.hex() for span in spans} == {result.correlation_id}
    assert tracer.export_failures() == {}
    # What arrived is what the stock exporter would have sent, in however many requests.
    [stock] = encode_spans(memory.get_finished_spans()).resource_spans
    assert sorted(span.SerializeToString() for span in spans) == sorted(
        span.SerializeToString() for span in stock.scope_spans[0].spans
    )
    for _, _, body in posts:
        [resource_spans] = ExportTraceServiceRequest.FromString(body).resource_spans
        assert resource_spans.resource == stock.resource
        assert [s.scope for s in resource_spans.scope_spans] == [stock.scope_spans[0].scope]


async def test_export_failures_are_reported(clean_env: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.5")
    tracer = configure_tracing(otlp_endpoint=f"127.0.0.1:{port}")
    assert tracer is not None
    await Runtime(router_example(), sinks=[tracer]).run(REQUEST)
    await tracer.shutdown_async()
    assert tracer.export_failures() == {f"http://127.0.0.1:{port}/v1/traces": 8}


async def test_a_small_queue_from_the_environment_is_honoured(clean_env: pytest.MonkeyPatch) -> None:
    # Our export batches (2,048 spans) must not exceed a smaller OTEL_BSP_MAX_QUEUE_SIZE:
    # the SDK refuses a batch larger than the queue.
    clean_env.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
    tracer = configure_tracing(otlp_endpoint="127.0.0.1:9")
    assert tracer is not None
    tracer.shutdown()


async def test_otlp_endpoint_from_environment(
    clean_env: pytest.MonkeyPatch, collector: tuple[str, list[tuple[str, dict[str, str], bytes]]]
) -> None:
    endpoint, posts = collector
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    tracer = configure_tracing()
    assert tracer is not None
    await Runtime(router_example(), sinks=[tracer]).run(REQUEST)
    await tracer.shutdown_async()
    assert posts and all(path == "/v1/traces" for path, _, _ in posts)


# -- OTLP encoding and export ----------------------------------------------------------------


@pytest.mark.parametrize("capture_content", [False, True])
async def test_fast_encoder_writes_the_stock_request(tmp_path: Path, capture_content: bool) -> None:
    spans = await scenario_spans(tmp_path, capture_content=capture_content)
    encoder = SpanEncoder()
    for batch in (spans, spans[:1], spans[::-1], spans):  # the last one from the caches
        fast = encoder.encode(batch)
        stock = encode_spans(batch)
        assert ExportTraceServiceRequest.FromString(fast) == stock
        assert fast == stock.SerializePartialToString()
    assert encoder.fallbacks == 0


TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
RESOURCE = Resource({"service.name": "svc", "n": 3, "tags": ("a", "b")}, schema_url="https://example.com/r/1")
SCOPE = InstrumentationScope("lib", "1.0", "https://example.com/s/1", {"k": "v"})


def made_span(name: str, span_id: int = 0x1234, **fields: Any) -> ReadableSpan:
    options: dict[str, Any] = {
        "context": SpanContext(TRACE_ID, span_id, False, TraceFlags(TraceFlags.SAMPLED)),
        "resource": RESOURCE,
        "instrumentation_scope": SCOPE,
        "attributes": {"a": "b"},
        "start_time": 1_700_000_000_000_000_000,
        "end_time": 1_700_000_000_500_000_000,
    }
    options.update(fields)
    return ReadableSpan(name, **options)


def bounded_list(maxlen: int, items: list[Any]) -> BoundedList[Any]:
    bounded: BoundedList[Any] = BoundedList(maxlen)
    bounded.extend(items)
    return bounded


def test_fast_encoder_edge_cases() -> None:
    remote = SpanContext(TRACE_ID, 0x1111, True, TraceFlags(1), TraceState([("vendor", "v1"), ("b", "2")]))
    values = {
        "empty": "",
        "unicode": "h\u00e9llo \u2713",
        "long": "x" * 20_000,
        "true": True,
        "false": False,
        "zero": 0,
        "negative": -5,
        "min": -(2**63),
        "max": 2**63 - 1,
        "two bytes": 300,
        "double": 1.5,
        "negative zero": -0.0,
        "infinity": float("inf"),
        "bytes": b"\x00\xff",
        "none": None,
        "mixed": ("a", 1, 2.5, True, None),
        "nothing": (),
        "list": [1, 2],
        "nested": (("a",), ("b", "c")),
        "": "empty key",
    }
    spans = [
        made_span("plain", attributes={}),
        made_span("values", attributes=values),
        made_span(
            "remote parent",
            parent=remote,
            context=SpanContext(TRACE_ID, 0x2222, False, TraceFlags(1), TraceState([("vendor", "v1")])),
        ),
        *(made_span(f"kind {kind.name}", kind=kind) for kind in SpanKind),
        made_span("error", status=Status(StatusCode.ERROR, "boom \u2717")),
        made_span("ok", status=Status(StatusCode.OK)),
        made_span("no status", status=None),
        made_span("untimed", start_time=None, end_time=None),
        made_span("", span_id=0x99),
        made_span(
            "events",
            events=[
                Event("first", {"a": 1, "b": ("x",)}, 5),
                Event("", None, 0),
                Event("bounded", BoundedAttributes(1, {"a": 1, "b": 2}), 7),
            ],
        ),
        made_span(
            "links",
            links=[
                Link(remote, {"why": "x"}),
                Link(SpanContext(TRACE_ID, 0x3333, False), None),
                Link(SpanContext(TRACE_ID + 1, 0x4444, False), BoundedAttributes(1, {"a": 1, "b": 2})),
            ],
        ),
        made_span(
            "dropped",
            attributes=BoundedAttributes(1, {"a": 1, "b": 2}),
            events=bounded_list(1, [Event("x", None, 1), Event("y", None, 2)]),
            links=bounded_list(1, [Link(remote), Link(remote)]),
        ),
        made_span(
            "all dropped",
            attributes=BoundedAttributes(0, {"a": 1}),
            events=bounded_list(0, [Event("x", None, 1)]),
            links=bounded_list(0, [Link(remote)]),
        ),
        made_span("other resource", resource=Resource({"service.name": "other"})),
        made_span("equal resource", resource=Resource(dict(RESOURCE.attributes), RESOURCE.schema_url)),
        made_span("no scope", instrumentation_scope=None),
        made_span("bare scope", instrumentation_scope=InstrumentationScope("bare")),
        made_span(
            "equal scope", instrumentation_scope=InstrumentationScope("lib", "1.0", "https://example.com/s/1")
        ),
        made_span("another trace", context=SpanContext(TRACE_ID + 1, 0x5555, False)),
    ]
    encoder = SpanEncoder()
    for batch in (spans, spans[::-1], spans):
        fast = encoder.encode(batch)
        stock = encode_spans(batch)
        assert ExportTraceServiceRequest.FromString(fast) == stock
        assert fast == stock.SerializePartialToString()
    # NaN never equals itself as a parsed message; the bytes still must.
    nan = [made_span("nan", attributes={"nan": float("nan")})]
    assert encoder.encode(nan) == encode_spans(nan).SerializePartialToString()
    assert encoder.fallbacks == 0


class _Colour(enum.StrEnum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize("odd", [{"a": 1}, _Colour.RED, _Level.HIGH, 2**64, 1j, object()])
def test_fast_encoder_leaves_what_it_does_not_know_to_the_stock_one(odd: Any) -> None:
    spans = [made_span("fine"), made_span("odd", attributes={"odd": odd, "fine": "yes"})]
    encoder = SpanEncoder()
    assert encoder.encode(spans) == encode_spans(spans).SerializePartialToString()
    assert encoder.fallbacks == 1


async def test_fast_exporter_posts_the_stock_request(
    clean_env: pytest.MonkeyPatch,
    memory: InMemorySpanExporter,
    collector: tuple[str, list[tuple[str, dict[str, str], bytes]]],
) -> None:
    base, requests = collector
    url = base + "/v1/traces"
    await traced(router_example(), REQUEST, memory)
    spans = memory.get_finished_spans()
    # The base exporter's options still apply: headers, compression, size limit.
    exporter = FastOTLPSpanExporter(endpoint=url, headers={"x-team": "agents"}, compression=Compression.Gzip)
    assert exporter.direct  # the installed exporter is the one it was written against
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    [(path, headers, body)] = requests
    assert path == "/v1/traces"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["content-encoding"] == "gzip" and headers["x-team"] == "agents"
    assert gzip.decompress(body) == encode_spans(spans).SerializePartialToString()
    assert exporter.encoder.fallbacks == 0
    small = FastOTLPSpanExporter(endpoint=url, max_request_size=100)
    assert small.export(spans) is SpanExportResult.FAILURE
    exporter.shutdown()
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert len(requests) == 1


async def test_otlp_spans_are_encoded_as_they_end_and_posted_in_batches(
    clean_env: pytest.MonkeyPatch,
    memory: InMemorySpanExporter,
    collector: tuple[str, list[tuple[str, dict[str, str], bytes]]],
) -> None:
    url, requests = collector
    clean_env.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "3")
    tracer = configure_tracing(otlp_endpoint=url, exporter=memory)
    assert tracer is not None
    assert any(isinstance(p, EncodingSpanProcessor) for p in tracer._processors)
    await Runtime(router_example(), sinks=[tracer]).run(REQUEST)
    spans = memory.get_finished_spans()
    # A span the direct encoder leaves to the stock one (a mapping as a value) still goes out.
    odd = ReadableSpan(
        name="odd",
        context=SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)),
        attributes={"odd": {"a": 1}},
        resource=spans[0].resource,
        instrumentation_scope=spans[0].instrumentation_scope,
    )
    [processor] = [p for p in tracer._processors if isinstance(p, EncodingSpanProcessor)]
    processor.on_end(odd)
    assert await tracer.flush_async(timeout_s=10)
    posted = [ExportTraceServiceRequest.FromString(body) for _, _, body in requests]
    batches = [list(r.resource_spans[0].scope_spans[0].spans) for r in posted]
    assert sorted(len(batch) for batch in batches) == [1, 2, 3, 3]
    sent = [span for batch in batches for span in batch if span.name != "odd"]
    assert sent == list(encode_spans(spans).resource_spans[0].scope_spans[0].spans)
    assert [span.name for batch in batches for span in batch].count("odd") == 1
    assert tracer.export_failures() == {}
    await tracer.shutdown_async()


def test_import_does_not_load_the_sdk() -> None:
    code = (
        "import sys\n"
        "import playground.tracing\n"
        "from playground.tracing import configure_tracing\n"
        "assert configure_tracing() is None\n"
        "heavy = ('opentelemetry.sdk', 'opentelemetry.exporter', 'textual')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(heavy))\n"
        "print(loaded)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stdout
