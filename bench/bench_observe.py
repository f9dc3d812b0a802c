"""How fast ``playground observe`` takes a burst of spans: spans/s from the first request to
every session recorded in the store.

Two bursts of 10,000 GenAI-convention spans (``invoke_agent``, ``chat``, ``execute_tool``,
as the OpenAI Agents SDK's and pydantic-ai's instrumentations write them), posted as
OTLP/HTTP protobuf in requests of 500 spans (an SDK batch processor sends 512) over one
keep-alive connection from a client thread:

- ``many traces``: 200 traces of 50 spans (a router and four agents each),
- ``one trace``: one trace of 10,000 spans (a long session rebuilt as it grows).

Prints figures only::

    python bench/bench_observe.py [--spans 10000] [--batch 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import statistics
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from playground.observe.observer import Observer
from playground.observe.server import OtlpReceiver
from playground.store import Store


def _attr(key: str, value: str | int) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.string_value = value
    return kv


def make_spans(traces: int, per_trace: int) -> list[Span]:
    """``traces`` traces of ``per_trace`` spans: a root, agents, each with chats and a tool."""
    spans: list[Span] = []
    t0 = 1_700_000_000_000_000_000
    for t in range(traces):
        trace_id = os.urandom(16)
        root_id = os.urandom(8)
        count = 1
        agent_index = 0
        body: list[Span] = []
        while count < per_trace:
            agent_id = os.urandom(8)
            agent_start = t0 + count * 1_000_000
            children: list[Span] = []
            for _ in range(min(5, per_trace - count - 1)):
                kind = "chat" if len(children) % 3 != 2 else "execute_tool"
                start = agent_start + (len(children) + 1) * 1_000_000
                child = Span(
                    trace_id=trace_id,
                    span_id=os.urandom(8),
                    parent_span_id=agent_id,
                    name=f"{kind} gpt-4o-mini" if kind == "chat" else "execute_tool lookup",
                    kind=Span.SPAN_KIND_CLIENT if kind == "chat" else Span.SPAN_KIND_INTERNAL,
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + 900_000,
                )
                child.attributes.extend([_attr("gen_ai.operation.name", kind)])
                if kind == "chat":
                    child.attributes.extend(
                        [
                            _attr("gen_ai.request.model", "gpt-4o-mini"),
                            _attr("gen_ai.usage.input_tokens", 120),
                            _attr("gen_ai.usage.output_tokens", 12),
                            _attr("operation.cost", 1),
                        ]
                    )
                else:
                    child.attributes.extend([_attr("gen_ai.tool.name", "lookup")])
                children.append(child)
            agent = Span(
                trace_id=trace_id,
                span_id=agent_id,
                parent_span_id=root_id,
                name=f"invoke_agent agent{agent_index % 4}",
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=agent_start,
                end_time_unix_nano=agent_start + (len(children) + 2) * 1_000_000,
            )
            agent.attributes.extend(
                [
                    _attr("gen_ai.operation.name", "invoke_agent"),
                    _attr("gen_ai.agent.name", f"agent{agent_index % 4}"),
                ]
            )
            body += [*children, agent]  # children end (and are exported) first
            count += len(children) + 1
            agent_index += 1
        root = Span(
            trace_id=trace_id,
            span_id=root_id,
            name=f"workflow {t}",
            kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=t0,
            end_time_unix_nano=t0 + (count + 2) * 1_000_000,
        )
        spans += [*body, root]
    return spans


def requests_of(spans: list[Span], batch: int) -> list[bytes]:
    bodies = []
    for i in range(0, len(spans), batch):
        request = ExportTraceServiceRequest()
        scope = request.resource_spans.add().scope_spans.add()
        scope.scope.name = "bench"
        scope.spans.extend(spans[i : i + batch])
        bodies.append(request.SerializeToString())
    return bodies


def send_all(port: int, bodies: list[bytes]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for body in bodies:
        connection.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
    connection.close()


async def burst(bodies: list[bytes], spans: int, folder: Path) -> tuple[float, float, int]:
    """Seconds to accept every request, seconds until every session is in the store, sessions."""
    async with (
        Store(folder / f"bench-{time.perf_counter_ns()}.db") as store,
        Observer(store, price=None) as observer,
        OtlpReceiver(observer, port=0) as receiver,
    ):
        started = time.perf_counter()
        await asyncio.to_thread(send_all, receiver.port, bodies)
        accepted = time.perf_counter() - started
        await observer.settle()
        recorded = time.perf_counter() - started
        assert observer.spans_received == spans, observer.spans_received
        sessions = len(await store.sessions(limit=100_000))
    return accepted, recorded, sessions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for label, traces, per_trace in (
            ("many traces", args.spans // 50, 50),
            ("one trace", 1, args.spans),
        ):
            spans = make_spans(traces, per_trace)
            bodies = requests_of(spans, args.batch)
            results = [asyncio.run(burst(bodies, len(spans), Path(tmp))) for _ in range(args.runs)]
            accepted = statistics.median(r[0] for r in results)
            recorded = statistics.median(r[1] for r in results)
            print(
                f"{label}: {len(spans)} spans in {len(bodies)} requests, {results[0][2]} sessions; "
                f"accepted in {accepted:.2f} s ({len(spans) / accepted:,.0f} spans/s), "
                f"all recorded in {recorded:.2f} s ({len(spans) / recorded:,.0f} spans/s) "
                f"(median of {args.runs})"
            )


if __name__ == "__main__":
    main()
