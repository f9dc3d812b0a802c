"""playground observe: decoding OTLP bodies, the receiver over HTTP, spans -> sessions.

The framework payloads under tests/data/observe were captured from the real packages by
scripts/capture_observe.py (see its docstring); the frameworks are not installed here.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import random
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from playground.engine import events as ev
from playground.errors import StoreError
from playground.observe import BodyError, Span, build_session, decode_request, session_id_of
from playground.observe.mapping import ObservedSession
from playground.observe.observer import Observer, litellm_price
from playground.observe.record import observed_framework, put_sessions
from playground.observe.server import OtlpReceiver
from playground.service import run_session
from playground.spec import load_system
from playground.store import Store
from playground.tracing import configure_tracing
from playground.tui.state import RunView
from tests.helpers import ROOT, example_copy, kinds, of_kind, run_started

DATA = ROOT / "tests" / "data" / "observe"
PROTOBUF = "application/x-protobuf"


# -- captured payloads -------------------------------------------------------------------------


def posts(capture: str) -> list[tuple[bytes, str, str]]:
    """The bodies a framework's exporter posted, with their content type and encoding, in order."""
    folder = DATA / capture
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return [
        ((folder / p["file"]).read_bytes(), p["content_type"], p["content_encoding"])
        for p in manifest["posts"]
    ]


def capture_spans(capture: str) -> list[Span]:
    return [span for body, kind, encoding in posts(capture) for span in decode_request(body, kind, encoding)]


def request_of(capture: str) -> ExportTraceServiceRequest:
    """Every span of a capture in one protobuf request."""
    merged = ExportTraceServiceRequest()
    for body, _, encoding in posts(capture):
        merged.MergeFromString(gzip.decompress(body) if encoding == "gzip" else body)
    return merged


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """A request in OTLP/JSON: protobuf's JSON mapping with the ids in hex, as the spec says."""
    data = json_format.MessageToDict(request)
    for resource in data.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(data).encode()


def session_of(capture: str, **kw: Any) -> ObservedSession:
    return build_session(capture_spans(capture), **kw)


def agents_started(session: ObservedSession) -> list[tuple[str, str]]:
    return [(e.agent or "", e.reason) for e in of_kind(session.events, ev.AgentStarted)]


def assert_well_formed(events: list[ev.Event]) -> None:
    """Numbered 1..n, a RunStarted first, each event's activation and cause point back, and
    the run screen's reducer takes them."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert isinstance(events[0], ev.RunStarted)
    for event in events:
        for ref in (event.activation, event.cause):
            assert ref is None or ref < event.seq
        if event.activation is not None:
            assert isinstance(events[event.activation - 1], ev.AgentStarted)
    view = RunView(observed_system(events))
    view.apply_all(events)


def observed_system(events: list[ev.Event]) -> Any:
    from playground.observe.system import observed_system

    return observed_system(events)


# -- decoding ---------------------------------------------------------------------------------


def test_protobuf_json_and_gzip_bodies_decode_to_the_same_spans() -> None:
    request = request_of("pydantic-ai-delegation")
    binary = request.SerializeToString()
    as_protobuf = decode_request(binary, PROTOBUF)
    as_json = decode_request(otlp_json(request), "application/json; charset=utf-8")
    as_gzip = decode_request(gzip.compress(binary), PROTOBUF, "gzip")
    assert as_protobuf == as_json == as_gzip
    assert len(as_protobuf) == 8
    span = next(s for s in as_protobuf if s.name == "chat gpt-4o-mini")
    assert len(span.trace_id) == 32 and len(span.span_id) == 16 and span.parent_id
    assert span.attributes["gen_ai.usage.input_tokens"] == 100
    assert span.attributes["gen_ai.response.finish_reasons"] == ["tool_call"]
    assert span.service == "capture-pydantic-ai-delegation" and span.scope == "pydantic-ai"


def test_json_ids_are_hex_not_base64() -> None:
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "chat m",
                                "kind": 3,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000001000000000",
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}
                                ],
                                "someFieldFromTheFuture": 1,
                            }
                        ]
                    }
                ]
            }
        ]
    }
    (span,) = decode_request(json.dumps(body).encode(), "application/json")
    assert (span.trace_id, span.span_id, span.kind) == (trace_id, span_id, 3)
    assert span.end_ns - span.start_ns == 1_000_000_000


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "status", "words"),
    [
        (b"\xff\x00garbage", PROTOBUF, "", 400, "not an OTLP"),
        (b"{not json", "application/json", "", 400, "not JSON"),
        (b"[]", "application/json", "", 400, "not an object"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
            "",
            400,
            "hex",
        ),
        (b"x", "text/plain", "", 415, "content type"),
        (b"x", PROTOBUF, "br", 415, "content encoding"),
        (b"not gzip", PROTOBUF, "gzip", 400, "gzip"),
        (gzip.compress(b"x" * 100)[:-8], PROTOBUF, "gzip", 400, "gzip"),
        (b"[" * 100 + b"]" * 100, "application/json", "", 413, "PLAYGROUND_MAX_JSON_DEPTH"),
    ],
)
def test_broken_bodies_are_refused_with_a_status(
    body: bytes, content_type: str, encoding: str, status: int, words: str
) -> None:
    with pytest.raises(BodyError) as caught:
        decode_request(body, content_type, encoding)
    assert caught.value.status == status
    assert words in str(caught.value)


def test_a_span_without_valid_ids_is_refused() -> None:
    request = request_of("pydantic-ai-delegation")
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x01\x02"
    with pytest.raises(BodyError, match="trace id"):
        decode_request(request.SerializeToString(), PROTOBUF)


def test_limits_are_checked_before_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    binary = request_of("pydantic-ai-delegation").SerializeToString()
    monkeypatch.setenv("PLAYGROUND_OBSERVE_MAX_BODY_BYTES", str(len(binary) - 1))
    with pytest.raises(BodyError, match="PLAYGROUND_OBSERVE_MAX_BODY_BYTES") as caught:
        decode_request(binary, PROTOBUF)
    assert caught.value.status == 413
    monkeypatch.delenv("PLAYGROUND_OBSERVE_MAX_BODY_BYTES")
    monkeypatch.setenv("PLAYGROUND_OBSERVE_MAX_REQUEST_SPANS", "7")
    with pytest.raises(BodyError, match="PLAYGROUND_OBSERVE_MAX_REQUEST_SPANS"):
        decode_request(binary, PROTOBUF)


def test_a_gzip_bomb_stops_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_OBSERVE_MAX_DECODED_BYTES", str(1 << 20))
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KB
    assert len(bomb) < 100_000
    with pytest.raises(BodyError, match="PLAYGROUND_OBSERVE_MAX_DECODED_BYTES") as caught:
        decode_request(bomb, PROTOBUF, "gzip")
    assert caught.value.status == 413


def test_deeply_nested_attribute_values_are_kept_as_text() -> None:
    request = request_of("pydantic-ai-delegation")
    span = request.resource_spans[0].scope_spans[0].spans[0]
    value = span.attributes.add(key="deep").value
    for _ in range(20):
        value = value.array_value.values.add()
    value.string_value = "bottom"
    decoded = decode_request(request.SerializeToString(), PROTOBUF)[0].attributes["deep"]
    depth = 0
    while isinstance(decoded, list):
        decoded, depth = decoded[0], depth + 1
    assert depth == 8 and isinstance(decoded, str) and "bottom" in decoded


# -- the mapping, on what real frameworks exported --------------------------------------------


@pytest.mark.parametrize(
    ("capture", "framework"),
    [
        ("openai-agents-openinference-handoff", "openai-agents"),
        ("openai-agents-genai-handoff", "openai-agents"),
        ("langgraph-openinference-handoff", "langgraph"),
    ],
)
def test_a_handoff_between_two_agents(capture: str, framework: str) -> None:
    session = session_of(capture)
    assert (session.framework, session.system, session.status) == (framework, "support-router", "completed")
    assert session.input == "Where is my last invoice? I am customer C-1."
    assert agents_started(session) == [("triage", "entry"), ("billing", "handoff")]
    (handoff,) = of_kind(session.events, ev.HandoffDelivered)
    assert (handoff.source, handoff.target, handoff.agent) == ("triage", "billing", "triage")
    billing = of_kind(session.events, ev.AgentStarted)[1]
    assert billing.cause == handoff.seq
    assert session.result.path == ["triage", "billing"]
    # The tokens the fake model server reported, per agent (scripts/capture_observe.py).
    per_agent = session.result.per_agent
    assert (
        per_agent["triage"].calls,
        per_agent["triage"].input_tokens,
        per_agent["triage"].output_tokens,
    ) == (
        1,
        120,
        12,
    )
    assert (
        per_agent["billing"].calls,
        per_agent["billing"].input_tokens,
        per_agent["billing"].output_tokens,
    ) == (
        2,
        340,
        38,
    )
    (tool,) = of_kind(session.events, ev.ToolCalled)
    assert (tool.agent, tool.tool) == ("billing", "lookup_invoice")
    (returned,) = of_kind(session.events, ev.ToolReturned)
    assert "INV-42" in returned.result and returned.error is None
    finished = session.events[-1]
    assert isinstance(finished, ev.RunFinished)
    assert finished.output == "Your last invoice is INV-42: $120.00, paid on 3 March."
    assert_well_formed(session.events)


@pytest.mark.parametrize(
    ("capture", "error_type"),
    [
        ("openai-agents-openinference-error", "error"),
        ("openai-agents-genai-error", "error"),
        ("langgraph-openinference-error", "OpenAIAPIError"),
    ],
)
def test_a_failure_after_a_handoff(capture: str, error_type: str) -> None:
    session = session_of(capture)
    assert session.status == "failed"
    error = session.result.error
    assert error is not None
    assert (error["type"], error["origin"], error["manifested"]) == (error_type, "billing", "billing")
    assert "the billing model is down" in error["message"]
    (failed_call,) = of_kind(session.events, ev.ModelFailed)
    assert failed_call.agent == "billing"
    failed = session.events[-1]
    assert isinstance(failed, ev.RunFailed) and failed.origin == "billing"
    outcomes = {e.agent: e.outcome for e in of_kind(session.events, ev.AgentFinished)}
    assert outcomes == {"triage": "handoff", "billing": "failed"}
    assert_well_formed(session.events)


def test_pydantic_ai_delegation_and_its_own_costs() -> None:
    session = session_of("pydantic-ai-delegation")
    assert (session.framework, session.status) == ("pydantic-ai", "completed")
    started = of_kind(session.events, ev.AgentStarted)
    assert [(e.agent, e.reason) for e in started] == [("triage", "entry"), ("billing", "delegation")]
    worker = started[1]
    assert worker.parent_activation == started[0].seq
    call = session.events[worker.cause - 1] if worker.cause else None
    assert isinstance(call, ev.ToolCalled) and call.tool == "ask_billing" and call.agent == "triage"
    # pydantic-ai prices its calls itself (operation.cost): those figures are kept.
    assert session.result.cost_usd == pytest.approx(2.4e-05 + 1.8e-05 + 2.37e-05 + 3.06e-05)
    assert session.result.tokens == {"input": 430, "output": 53}
    assert session.result.path == ["triage", "billing"]
    assert_well_formed(session.events)


def test_pydantic_ai_failure_origin_and_manifestation() -> None:
    session = session_of("pydantic-ai-error")
    error = session.result.error
    assert error is not None
    # The worker's model call failed; the supervisor's run is where it surfaced.
    assert (error["type"], error["origin"], error["manifested"]) == ("ModelServerError", "billing", "triage")
    (returned,) = of_kind(session.events, ev.ToolReturned)
    assert returned.error is not None and returned.error.startswith("ModelServerError")
    assert_well_formed(session.events)


def test_cost_comes_from_litellm_when_the_span_has_none() -> None:
    from playground.llm.litellm_model import cost_usd, load_litellm

    session = session_of("openai-agents-openinference-handoff", price=litellm_price)
    expected = sum(
        cost_usd(load_litellm(), "gpt-4o-mini", i, o) or 0.0 for i, o in ((120, 12), (150, 20), (190, 18))
    )
    assert expected > 0
    assert session.result.cost_usd == pytest.approx(expected)
    unpriced = session_of("openai-agents-openinference-handoff")
    assert unpriced.result.cost_usd == 0.0


def test_messages_are_kept_when_the_framework_captured_them() -> None:
    session = session_of("openai-agents-openinference-handoff")
    first = of_kind(session.events, ev.ModelRequested)[0]
    assert first.messages[0] == {"role": "system", "content": "Route the request."}
    assert first.messages[1]["content"] == "Where is my last invoice? I am customer C-1."
    answer = of_kind(session.events, ev.ModelResponded)[1]
    assert answer.tool_calls[0]["name"] == "lookup_invoice"
    assert json.loads(answer.tool_calls[0]["arguments"]) == {"customer_id": "C-1"}


@pytest.mark.parametrize("capture", sorted(p.name for p in DATA.iterdir() if p.is_dir()))
def test_any_order_of_spans_gives_the_same_session(capture: str) -> None:
    spans = capture_spans(capture)
    expected = build_session(spans)
    shuffled = list(spans)
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert build_session(shuffled).events == expected.events
    # Every prefix (a trace that has not all arrived) is a well-formed session, running
    # until its root span is in.
    root = next(s for s in spans if not s.parent_id)
    for n in range(1, len(shuffled) + 1):
        partial = build_session(shuffled[:n])
        assert_well_formed(partial.events)
        assert (partial.status == "running") == (root not in shuffled[:n])


def test_a_span_whose_parent_has_not_arrived_shows_under_a_provisional_agent() -> None:
    spans = [s for s in capture_spans("pydantic-ai-delegation") if s.name != "invoke_agent billing"]
    partial = build_session(spans)
    names = [e.agent for e in of_kind(partial.events, ev.AgentStarted)]
    # billing's calls carry gen_ai.agent.name, so the stand-in is named after it.
    assert names == ["triage", "billing"]
    assert partial.status == "completed"


# -- the receiver over HTTP -------------------------------------------------------------------


def http(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


async def post(
    url: str, body: bytes, content_type: str = PROTOBUF, encoding: str = ""
) -> tuple[int, bytes, str]:
    headers = {"Content-Type": content_type, **({"Content-Encoding": encoding} if encoding else {})}
    return await asyncio.to_thread(http, url, body, headers)


@pytest.fixture
async def observing(tmp_path: Path) -> AsyncIterator[tuple[Store, Observer, OtlpReceiver]]:
    async with (
        Store(tmp_path / "observed.db") as store,
        Observer(store, price=None) as observer,
        OtlpReceiver(observer, port=0) as receiver,
    ):
        yield store, observer, receiver


async def test_receiver_records_each_trace_as_a_session(
    observing: tuple[Store, Observer, OtlpReceiver],
) -> None:
    store, observer, receiver = observing
    assert receiver.url.startswith("http://127.0.0.1:") and receiver.url.endswith("/v1/traces")
    finished: list[str] = []
    observer.subscribe(on_finished=lambda s: finished.append(s.session_id))
    captures = sorted(p.name for p in DATA.iterdir() if p.is_dir())
    for capture in captures:
        for body, content_type, encoding in posts(capture):
            status, answer, kind = await post(receiver.url, body, content_type, encoding)
            assert (status, kind) == (200, PROTOBUF)
            assert not ExportTraceServiceResponse.FromString(answer).HasField("partial_success")
    await observer.settle()
    rows = {row.session_id: row for row in await store.sessions()}
    assert len(rows) == len(captures) == len(set(finished))
    for capture in captures:
        session = session_of(capture)
        row = rows[session.session_id]
        assert observed_framework(row.system_path) == session.framework
        assert (row.status, row.path, row.input_tokens) == (
            session.status,
            ["triage", "billing"],
            session.result.tokens["input"],
        )
        stored = await store.events(row.session_id)
        assert stored == session.events
        assert run_started(stored).observed == session.framework
    assert receiver.stats.errors == 0


async def test_json_requests_get_json_answers(observing: tuple[Store, Observer, OtlpReceiver]) -> None:
    store, observer, receiver = observing
    status, answer, kind = await post(
        receiver.url, otlp_json(request_of("langgraph-openinference-handoff")), "application/json"
    )
    assert (status, kind, json.loads(answer)) == (200, "application/json", {})
    await observer.settle()
    (row,) = await store.sessions()
    assert row.status == "completed"


async def test_spans_over_a_batch_come_in_any_order(observing: tuple[Store, Observer, OtlpReceiver]) -> None:
    store, observer, receiver = observing
    capture = "openai-agents-genai-handoff"
    bodies = posts(capture)
    expected = session_of(capture)
    seen: list[str] = []
    observer.subscribe(lambda s: seen.append(s.status))
    for body, content_type, encoding in reversed(bodies):  # the root first, the leaves last
        assert (await post(receiver.url, body, content_type, encoding))[0] == 200
        await observer.settle()
        row = await store.session(expected.session_id)
        assert row.status in ("running", "completed")
    assert seen[-1] == "completed"
    assert await store.events(expected.session_id) == expected.events


async def test_a_session_is_running_until_its_root_span_arrives(
    observing: tuple[Store, Observer, OtlpReceiver],
) -> None:
    store, observer, receiver = observing
    bodies = posts("pydantic-ai-delegation")  # the root span is in the last post
    await post(receiver.url, *bodies[0])
    await observer.settle()
    session = session_id_of(capture_spans("pydantic-ai-delegation")[0].trace_id)
    row = await store.session(session)
    assert row.status == "running" and row.finished_at is None
    await post(receiver.url, *bodies[1])
    await observer.settle()
    row = await store.session(session)
    assert row.status == "completed" and row.path == ["triage", "billing"]


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [("/v1/metrics", "POST", 404), ("/v1/traces", "GET", 405), ("/", "GET", 404)],
)
async def test_other_endpoints_and_methods(
    observing: tuple[Store, Observer, OtlpReceiver], path: str, method: str, status: int
) -> None:
    _, _, receiver = observing
    base = receiver.url.removesuffix("/v1/traces")
    body = b"" if method == "GET" else b"x"
    answer = await asyncio.to_thread(http, base + path, body if method == "POST" else None, {}, method)  # type: ignore[arg-type]
    assert answer[0] == status


async def test_hostile_requests_get_errors_and_the_receiver_goes_on(
    observing: tuple[Store, Observer, OtlpReceiver],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, observer, receiver = observing
    assert (await post(receiver.url, b"\x0a\xff\xff\xff\xff\x0f"))[0] == 400
    assert (await post(receiver.url, b"{}", "text/html"))[0] == 415
    status, answer, kind = await post(receiver.url, b"{", "application/json")
    assert status == 400 and kind == "application/json" and "not JSON" in json.loads(answer)["message"]
    monkeypatch.setenv("PLAYGROUND_OBSERVE_MAX_BODY_BYTES", "1000")
    assert (await post(receiver.url, b"\0" * 5000))[0] == 413
    monkeypatch.delenv("PLAYGROUND_OBSERVE_MAX_BODY_BYTES")
    # Headers over the limit, and a request line that is not HTTP, on raw sockets.
    for raw in (b"POST /v1/traces HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", b"HELLO\r\n\r\n"):
        reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
        writer.write(raw)
        await writer.drain()
        line = await reader.readline()
        assert line.split()[1] in (b"431", b"400")
        writer.close()
    assert "refused" in caplog.text
    # Still serving, and nothing half-written.
    for body, content_type, encoding in posts("langgraph-openinference-error"):
        assert (await post(receiver.url, body, content_type, encoding))[0] == 200
    await observer.settle()
    (row,) = await store.sessions()
    assert row.status == "failed"
    assert receiver.stats.errors == 6


async def test_keep_alive_and_chunked_bodies(observing: tuple[Store, Observer, OtlpReceiver]) -> None:
    store, observer, receiver = observing
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    for body, content_type, _ in posts("openai-agents-openinference-handoff"):
        chunks = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:10], body[10:]))
        writer.write(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            + f"Content-Type: {content_type}\r\n\r\n".encode()
            + chunks
            + b"0\r\n\r\n"
        )
        await writer.drain()
        assert (await reader.readline()).split()[1] == b"200"
        headers = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        length = int(headers.split("content-length:")[1].split("\r\n")[0])
        await reader.readexactly(length)
    writer.close()
    await observer.settle()
    (row,) = await store.sessions()
    assert row.status == "completed"


async def test_spans_over_the_trace_limit_are_reported_as_rejected(
    observing: tuple[Store, Observer, OtlpReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, observer, receiver = observing
    body, content_type, _ = posts("openai-agents-openinference-handoff")[0]
    count = len(decode_request(body, content_type))
    monkeypatch.setenv("PLAYGROUND_OBSERVE_MAX_TRACE_SPANS", str(count - 1))
    status, answer, _ = await post(receiver.url, body, content_type)
    assert status == 200
    partial = ExportTraceServiceResponse.FromString(answer).partial_success
    assert partial.rejected_spans == 1 and "PLAYGROUND_OBSERVE_MAX_TRACE_SPANS" in partial.error_message
    assert observer.spans_received == count - 1


# -- the store ---------------------------------------------------------------------------------


async def test_observed_sessions_export_and_import(tmp_path: Path) -> None:
    session = session_of("pydantic-ai-error")
    async with Store(tmp_path / "a.db") as store:
        await put_sessions(store, [session])
        await put_sessions(store, [session])  # written again whole: no duplicate events
        lines = await store.export_session(session.session_id)
        assert await store.events(session.session_id) == session.events
    async with Store(tmp_path / "b.db") as other:
        row = await other.import_session(lines)
        assert (row.status, row.path, observed_framework(row.system_path)) == (
            "failed",
            ["triage", "billing"],
            "pydantic-ai",
        )
        assert row.error is not None and row.error["origin"] == "billing"
        assert await other.events(row.session_id) == session.events


async def test_a_recorded_run_is_never_replaced(tmp_path: Path) -> None:
    system = load_system(example_copy(tmp_path))
    async with Store(tmp_path / "s.db") as store:
        result = await run_session(system, "Where is my invoice?", store=store)
        session = session_of("pydantic-ai-error")
        session.session_id = result.session_id
        with pytest.raises(StoreError, match="recorded run"):
            await put_sessions(store, [session])
        row = await store.session(result.session_id)
        assert observed_framework(row.system_path) is None and row.system == system.name


# -- the playground's own traces, received back -----------------------------------------------


async def test_the_playground_own_export_gives_back_its_session(tmp_path: Path) -> None:
    system = load_system(example_copy(tmp_path))
    async with Store(tmp_path / "observed.db") as observed, Observer(observed, price=None) as observer:
        async with OtlpReceiver(observer, port=0) as receiver:
            tracer = configure_tracing(receiver.url.removesuffix("/v1/traces"), capture_content=True)
            assert tracer is not None
            async with Store(tmp_path / "runs.db") as runs:
                result = await run_session(
                    system, "I was charged twice on my last invoice", store=runs, tracer=tracer
                )
                recorded = await runs.events(result.session_id)
            await asyncio.to_thread(tracer.shutdown)
            await observer.settle()
        session = observer.sessions[session_id_of(result.correlation_id)]
    assert session.framework == "playground" and session.system == system.name
    assert session.status == result.status == "completed"
    assert session.result.path == result.path
    assert session.result.tokens == result.tokens
    assert session.result.cost_usd == pytest.approx(result.cost_usd)
    assert session.result.output == result.output
    assert session.input == "I was charged twice on my last invoice"
    assert {
        n: (t.calls, t.input_tokens, t.output_tokens) for n, t in session.result.per_agent.items() if t.calls
    } == {n: (t.calls, t.input_tokens, t.output_tokens) for n, t in result.per_agent.items() if t.calls}
    started = [(e.agent, e.reason) for e in of_kind(recorded, ev.AgentStarted)]
    assert agents_started(session) == started
    handoffs = [(h.source, h.target, h.payload) for h in of_kind(recorded, ev.HandoffDelivered)]
    assert [(h.source, h.target, h.payload) for h in of_kind(session.events, ev.HandoffDelivered)] == handoffs
    tools = [(t.agent, t.tool, t.args) for t in of_kind(recorded, ev.ToolCalled)]
    assert [(t.agent, t.tool, t.args) for t in of_kind(session.events, ev.ToolCalled)] == tools
    assert kinds(session.events)[-1] == "run_finished"


# -- import hygiene ------------------------------------------------------------------------------


def test_observe_imports_neither_textual_nor_litellm() -> None:
    code = (
        "import sys\n"
        "import playground.observe, playground.observe.server, playground.observe.observer\n"
        "print([m for m in ('textual', 'litellm') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr
