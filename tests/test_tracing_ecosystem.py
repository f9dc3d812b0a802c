"""Tracing as other tools expect it: OpenInference attributes (Phoenix), the standard OTEL_*
variables, lost spans said once, every command traced, and the SDK's public API as the path
the fast ones fall back to."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from playground.engine.runtime import Runtime
from playground.errors import ConfigError
from playground.tracing import EventTracer, configure_tracing
from playground.tracing import otlp as otlp_module
from playground.tracing import tracer as tracer_module
from playground.tracing.otlp import FastOTLPSpanExporter, SpanEncoder
from tests.test_tracing import (
    FAILING,
    FAILING_TOOL,
    FAILING_TOOL_CODE,
    PINGPONG,
    PIPELINE,
    REQUEST,
    RETRYING,
    SECRET_TOOL,
    SUPERVISOR,
    Trace,
    collector,
    router_example,
    system_from,
)

__all__ = ["collector"]  # the fixture, shared with test_tracing

ROOT = Path(__file__).resolve().parent.parent
Posts = list[tuple[str, dict[str, str], bytes]]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("OTEL_") or name == "PLAYGROUND_TRACING_PUBLIC_API":
            monkeypatch.delenv(name)
    return monkeypatch


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def received(posts: Posts) -> list[Any]:
    """The spans of every OTLP request a collector received."""
    spans = []
    for _, _, body in posts:
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    return spans


async def traced_with(tracer: EventTracer, system: Any, request: str) -> None:
    await Runtime(system, sinks=[tracer]).run(request)
    tracer.shutdown()


# -- OpenInference ----------------------------------------------------------------------------


async def test_openinference_attributes_with_content(clean_env: pytest.MonkeyPatch) -> None:
    memory = InMemorySpanExporter()
    tracer = configure_tracing(exporter=memory, capture_content=True)
    assert tracer is not None
    result = await Runtime(router_example(), sinks=[tracer]).run(REQUEST)
    tracer.shutdown()
    trace = Trace(memory.get_finished_spans())
    kinds = {s.name: attributes(s).get("openinference.span.kind") for s in trace.spans}
    assert kinds == {
        "invoke_workflow support-router": "CHAIN",
        "invoke_agent router": "AGENT",
        "invoke_agent billing": "AGENT",
        "chat scripted": "LLM",
        "execute_tool lookup_invoice": "TOOL",
        "handoff router -> billing": "TOOL",
    }
    # The session on every span, handoffs included.
    assert {attributes(s).get("session.id") for s in trace.spans} == {result.session_id}
    assert {attributes(s).get("gen_ai.conversation.id") for s in trace.spans} == {result.session_id}
    root = trace.root()
    a = attributes(root)
    assert (a["input.value"], a["input.mime_type"]) == (REQUEST, "text/plain")
    assert (a["output.value"], a["output.mime_type"]) == (result.output, "text/plain")
    assert root.status.status_code is StatusCode.OK
    billing = trace.one("invoke_agent billing")
    b = attributes(billing)
    assert b["input.mime_type"] == "application/json"  # the handoff context
    assert json.loads(str(b["input.value"]))["customer_id"]
    assert b["output.value"] == result.output and b["agent.name"] == "billing"
    chats = [s for s in trace.spans if s.name.startswith("chat ")]
    for chat in chats:
        c = attributes(chat)
        assert c["input.mime_type"] == "application/json"
        assert isinstance(json.loads(str(c["input.value"])), list)  # the messages sent
        assert c["output.mime_type"] in ("text/plain", "application/json")
        assert "scripted" not in str(c["output.value"]) or result.output in str(c["output.value"])
        assert c["llm.token_count.prompt"] == c["gen_ai.usage.input_tokens"]
        assert c["llm.token_count.completion"] == c["gen_ai.usage.output_tokens"]
        assert c["llm.token_count.total"] == c["llm.token_count.prompt"] + c["llm.token_count.completion"]
        assert c["llm.cost.total"] == c["playground.cost_usd"]
        assert c["llm.model_name"] == "scripted" and c["gen_ai.provider.name"] == "scripted"
        assert chat.status.status_code is StatusCode.OK
    # Token counts live on chat spans only: a backend summing them over the trace is exact.
    total = sum(attributes(s).get("llm.token_count.total", 0) for s in trace.spans)
    assert total == result.tokens["input"] + result.tokens["output"]
    tool = attributes(trace.one("execute_tool lookup_invoice"))
    assert json.loads(tool["input.value"]) and tool["tool.name"] == "lookup_invoice"


async def test_no_content_values_without_capture(clean_env: pytest.MonkeyPatch) -> None:
    memory = InMemorySpanExporter()
    tracer = configure_tracing(exporter=memory)
    assert tracer is not None
    await traced_with(tracer, router_example(), REQUEST)
    for span in memory.get_finished_spans():
        names = set(span.attributes or {})
        assert not names & {"input.value", "output.value"}, span.name
        assert "openinference.span.kind" in names and "session.id" in names


async def test_a_failed_run_is_an_error_not_ok(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    tracer = configure_tracing(exporter=memory)
    assert tracer is not None
    await traced_with(tracer, system_from(tmp_path, FAILING), "hello")
    trace = Trace(memory.get_finished_spans())
    assert trace.root().status.status_code is StatusCode.ERROR


# -- the public API path ----------------------------------------------------------------------


def shape(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> list[Any]:
    """Spans without their random span ids: names, parents and links by name, kinds,
    attributes, events, statuses and times."""
    by_id = {s.context.span_id: s.name for s in spans}
    out = []
    for s in sorted(spans, key=lambda s: (s.start_time or 0, s.name)):
        out.append(
            (
                s.name,
                s.context.trace_id,
                by_id.get(s.parent.span_id) if s.parent else None,
                s.kind,
                dict(s.attributes or {}),
                [(e.name, dict(e.attributes or {}), e.timestamp) for e in s.events],
                [(by_id.get(link.context.span_id), dict(link.attributes or {})) for link in s.links],
                (s.status.status_code, s.status.description),
                (s.start_time, s.end_time),
                s.context.trace_flags,
                dict(s.resource.attributes),
                s.instrumentation_scope,
            )
        )
    return out


@pytest.mark.parametrize("capture_content", [False, True])
async def test_the_public_api_path_makes_the_same_spans(tmp_path: Path, capture_content: bool) -> None:
    (tmp_path / "tools.py").write_text(SECRET_TOOL + FAILING_TOOL_CODE, encoding="utf-8")
    systems = [
        (router_example(), REQUEST),
        (system_from(tmp_path, SUPERVISOR), "agents"),
        (system_from(tmp_path, FAILING), "hello"),
        (system_from(tmp_path, RETRYING), "hello"),
        (system_from(tmp_path, PINGPONG), "go"),
        (system_from(tmp_path, PIPELINE), "hello"),
        (system_from(tmp_path, FAILING_TOOL), "hello"),
    ]
    for system, request in systems:
        events: list[Any] = []
        await Runtime(system, sinks=[events.append]).run(request)
        shapes = []
        for fast in (True, False):
            memory = InMemorySpanExporter()
            tracer = EventTracer(
                [SimpleSpanProcessor(memory)], capture_content=capture_content, fast_spans=fast
            )
            assert tracer.fast_spans is fast
            for event in events:  # the same events both ways
                tracer(event)
            tracer.shutdown()
            spans = memory.get_finished_spans()
            assert spans
            assert fast or all(type(s) is not tracer_module._Span for s in spans)
            shapes.append(shape(spans))
        assert shapes[0] == shapes[1], system.name


def pinned(package: str) -> str | None:
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    return None


def test_the_fast_paths_pass_their_feature_tests_on_the_pinned_sdk() -> None:
    from importlib.metadata import version

    if version("opentelemetry-sdk") != pinned("opentelemetry-sdk"):
        pytest.skip("another OpenTelemetry than the pinned one: the fast paths may be off")
    # If one failed, tracing would still work (the public path) but slower: say so here.
    assert tracer_module.FAST_SPANS
    assert otlp_module.encoder_matches_stock()
    assert FastOTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces").direct


def test_a_readable_span_laid_out_otherwise_turns_the_fast_spans_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = ReadableSpan.__init__

    def init(self: ReadableSpan, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._new_field = 1  # type: ignore[attr-defined]  # a field _Span does not set

    monkeypatch.setattr(ReadableSpan, "__init__", init)
    assert not tracer_module._fast_spans_work()


async def test_an_exporter_laid_out_otherwise_exports_the_stock_way(
    clean_env: pytest.MonkeyPatch, collector: tuple[str, Posts]
) -> None:
    endpoint, posts = collector
    exporter = FastOTLPSpanExporter(endpoint=endpoint + "/v1/traces")
    assert exporter.direct
    exporter._client = object()  # type: ignore[assignment]  # not the client it knows
    assert not otlp_module.send_path_available(exporter)
    assert not FastOTLPSpanExporter(endpoint=endpoint + "/v1/traces", direct=False).direct
    # Then the stock exporter and the SDK's batch processor deliver the same trace.
    clean_env.setattr(otlp_module, "send_path_available", lambda exporter: False)
    tracer = configure_tracing(otlp_endpoint=endpoint)
    assert tracer is not None
    assert not any(isinstance(p, otlp_module.EncodingSpanProcessor) for p in tracer._processors)
    result = await Runtime(router_example(), sinks=[tracer]).run(REQUEST)
    assert tracer.finish(10) == []
    assert {s.trace_id.hex() for s in received(posts)} == {result.correlation_id}
    assert len(received(posts)) == 8


def test_an_encoder_that_differs_from_the_stock_one_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp_module, "_encoder_verdict", None)
    monkeypatch.setattr(SpanEncoder, "_encode", lambda self, spans: b"not the stock bytes")
    assert not otlp_module.encoder_matches_stock()
    assert not FastOTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces").direct


@pytest.mark.parametrize("public", [False, True])
async def test_both_paths_post_the_stock_request(
    clean_env: pytest.MonkeyPatch, collector: tuple[str, Posts], public: bool
) -> None:
    endpoint, posts = collector
    if public:
        clean_env.setenv("PLAYGROUND_TRACING_PUBLIC_API", "1")
    memory = InMemorySpanExporter()
    tracer = configure_tracing(otlp_endpoint=endpoint, exporter=memory, capture_content=True)
    assert tracer is not None
    assert tracer.fast_spans is not public
    result = await Runtime(router_example(), sinks=[tracer]).run(REQUEST)
    assert tracer.finish(10) == []
    spans = received(posts)
    assert len(spans) == 8 and {s.trace_id.hex() for s in spans} == {result.correlation_id}
    [stock] = encode_spans(memory.get_finished_spans()).resource_spans
    assert sorted(s.SerializeToString() for s in spans) == sorted(
        s.SerializeToString() for s in stock.scope_spans[0].spans
    )


# -- the OTEL_* variables --------------------------------------------------------------------


def test_traces_exporter_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    clean_env.setenv("OTEL_TRACES_EXPORTER", "none")
    assert configure_tracing() is None  # none wins over the endpoint
    tracer = configure_tracing(otlp_endpoint="http://127.0.0.1:9")  # an option wins over none
    assert tracer is not None and len(tracer._watches) == 1
    tracer.finish(0.1)
    clean_env.setenv("OTEL_TRACES_EXPORTER", "console")
    tracer = configure_tracing()
    assert tracer is not None and tracer._watches == []  # console only, no OTLP
    tracer.finish(0.1)
    clean_env.setenv("OTEL_TRACES_EXPORTER", "otlp,console")
    tracer = configure_tracing()
    assert tracer is not None and len(tracer._watches) == 1 and len(tracer._processors) == 2
    tracer.finish(0.1)
    clean_env.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    tracer = configure_tracing()  # otlp named, no endpoint: the standard default
    assert tracer is not None and tracer._watches[0].target == "http://localhost:4318/v1/traces"
    tracer.finish(0.1)
    clean_env.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ConfigError, match="zipkin"):
        configure_tracing()


def test_grpc_is_refused_clearly_without_the_grpc_exporter(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    clean_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert configure_tracing() is None  # nothing asks for OTLP: nothing to refuse
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    with pytest.raises(ConfigError, match=r"agent-playground\[grpc\].*4318"):
        configure_tracing()
    clean_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ConfigError, match="http/protobuf"):
        configure_tracing()
    clean_env.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")  # the traces one wins
    tracer = configure_tracing()
    assert tracer is not None
    tracer.finish(0.1)


def cli(*args: str, env: dict[str, str], db: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**clean, **env},
    )


def test_cli_protocol_grpc_without_the_extra_exits_2(tmp_path: Path) -> None:
    try:
        import opentelemetry.exporter.otlp.proto.grpc  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the grpc extra is installed here")
    proc = cli(
        "run",
        "agents/support_router.yaml",
        "--input",
        "hi",
        env={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"},
        db=tmp_path / "s.db",
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.startswith("error: OTEL_EXPORTER_OTLP_PROTOCOL=grpc") and "Traceback" not in proc.stderr
    )


def test_cli_honours_the_capture_content_variable(tmp_path: Path) -> None:
    def chat_attributes(env: dict[str, str], *flags: str) -> list[dict[str, Any]]:
        proc = cli(
            "run",
            "agents/support_router.yaml",
            "--input",
            REQUEST,
            "--json",
            "--trace-console",
            *flags,
            env=env,
            db=tmp_path / "s.db",
        )
        assert proc.returncode == 0, proc.stderr
        spans = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
        return [s["attributes"] for s in spans if s["name"].startswith("chat ")]

    on = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    assert all("gen_ai.input.messages" in a for a in chat_attributes(on))
    assert not any("gen_ai.input.messages" in a for a in chat_attributes({}))
    assert all("gen_ai.input.messages" in a for a in chat_attributes({}, "--capture-content"))


# -- lost spans --------------------------------------------------------------------------------


def dead_port() -> int:
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("public", [False, True])
async def test_finish_gives_up_on_a_dead_collector_and_says_why(
    clean_env: pytest.MonkeyPatch, public: bool
) -> None:
    if public:
        clean_env.setenv("PLAYGROUND_TRACING_PUBLIC_API", "1")
    # The exporter would retry for a minute: finish must not wait for that (if it did,
    # this test would run into pytest's timeout).
    clean_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "60")
    port = dead_port()
    tracer = configure_tracing(otlp_endpoint=f"127.0.0.1:{port}")
    assert tracer is not None
    await Runtime(router_example(), sinks=[tracer]).run(REQUEST)
    [loss] = tracer.finish(0.3)
    assert (loss.lost, loss.total, loss.reason) == (8, 8, "connection refused")
    assert loss.message() == (
        f"8 of 8 spans were not exported to http://127.0.0.1:{port}/v1/traces: connection refused"
    )


@pytest.fixture
def refusing() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers every POST with 405 (a wrong path)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_cli_says_once_how_many_spans_were_lost(tmp_path: Path, refusing: str) -> None:
    proc = cli(
        "run",
        *("agents/support_router.yaml", "--input", REQUEST, "--json", "--otlp", refusing),
        db=tmp_path / "s.db",
        env={},
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["status"] == "completed"
    # One line, and none of the exporter's own log lines (the other line: the new store).
    assert [line for line in proc.stderr.splitlines() if not line.startswith("note: created")] == [
        f"warning: 8 of 8 spans were not exported to {refusing}/v1/traces: HTTP 405 Method Not Allowed"
    ]
    proc = cli(
        "run",
        "agents/support_router.yaml",
        "--input",
        REQUEST,
        "--json",
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{dead_port()}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "60",
        },
        db=tmp_path / "s.db",
    )
    assert proc.returncode == 0
    [line] = proc.stderr.splitlines()  # the store exists by now: no note about it
    assert line.startswith("warning: 8 of 8 spans") and line.endswith(": connection refused")


# -- every command traces ----------------------------------------------------------------------


def test_every_command_that_runs_agents_traces(tmp_path: Path, collector: tuple[str, Posts]) -> None:
    endpoint, posts = collector
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    db = tmp_path / "s.db"

    def trace_ids() -> set[str]:
        return {s.trace_id.hex() for s in received(posts)}

    def roots() -> int:
        return sum(1 for s in received(posts) if not s.parent_span_id)

    run = cli("run", "agents/support_router.yaml", "--input", REQUEST, "--json", env={}, db=db)
    assert run.returncode == 0 and not posts  # not asked: nothing sent
    session = json.loads(run.stdout)
    commands: list[tuple[str, ...]] = [
        ("test", "agents/support_router.scenarios.yaml", "--json"),
        ("fork", session["session_id"], "--at", "2", "--json"),
        ("replay", session["session_id"], "--json"),
        (
            "compare",
            "agents/support_router.yaml",
            "--agent",
            "billing",
            "--a",
            "scripted",
            "--b",
            "scripted/b",
            "--input",
            REQUEST,
            "--json",
        ),
    ]
    for command in commands:
        before = roots()
        proc = cli(*command, env=env, db=db)
        assert proc.returncode == 0, (command, proc.stderr)
        assert roots() > before, f"{command[0]} sent no trace"
        assert "warning" not in proc.stderr
    listed = json.loads(cli("sessions", "--json", "--limit", "1000", env={}, db=db).stdout)
    traced = {row["correlation_id"] for row in listed if row["session_id"] != session["session_id"]}
    assert traced and traced <= trace_ids()  # each traced session is its own trace


async def test_grpc_export_reaches_a_grpc_collector(clean_env: pytest.MonkeyPatch) -> None:
    grpc = pytest.importorskip("grpc")  # the grpc extra
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
    from concurrent import futures

    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    got: list[Any] = []

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            got.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        clean_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        tracer = configure_tracing()
        assert tracer is not None
        result = await Runtime(router_example(), sinks=[tracer]).run(REQUEST)
        assert tracer.finish(10) == []
    finally:
        server.stop(0)
    spans = [s for r in got for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == 8 and {s.trace_id.hex() for s in spans} == {result.correlation_id}
