"""Turning tracing on: exporters from options and the standard environment variables.

Nothing here imports the OpenTelemetry SDK at module level: with tracing off,
:func:`configure_tracing` returns None without importing it, and the runtime
gets no sink at all.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

    from playground.tracing.tracer import EventTracer, ExportWatch

TRACES_PATH = "/v1/traces"
"""The OTLP/HTTP traces path, appended to a base endpoint."""
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""The GenAI instrumentations' switch for recording prompts and replies."""
PUBLIC_API_ENV = "PLAYGROUND_TRACING_PUBLIC_API"
"""Set to ``1`` to build spans through the SDK's ``Tracer`` and encode OTLP with the
stock encoder, whatever the feature tests say (the fast paths' escape hatch)."""
EXPORTERS = ("otlp", "console", "none")
"""The ``OTEL_TRACES_EXPORTER`` values the playground knows."""
GRPC_HINT = (
    "install the gRPC exporter (pip install 'agent-playground[grpc]'), or use OTLP/HTTP: "
    "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf and the collector's HTTP port (usually 4318)"
)

# Batch sizing (ours and the SDK's batch processor). The SDK default queue (2,048 spans) drops spans
# without a word when export falls behind (shared/FACTS.md: 11.8k of 50k kept in a
# burst); a run of thousands of scenario sessions makes tens of thousands of spans.
QUEUE_SIZE = 65_536
SCHEDULE_DELAY_MS = 1_000
"""Export at least every second, so a trace shows up in the backend while one watches."""
BATCH_SIZE = 2_048
"""Spans per OTLP request without content capture (the SDK's default is 512).

A request costs about 1.2 ms of this process's CPU besides encoding (HTTP client,
thread hand-off), 2.4 us per span at 512 and 0.6 us at 2,048; a span without
content is about 300 bytes, so a request stays under 1 MB. With content capture a
chat span carries the conversation so far and the SDK's default is kept, to stay
well under collectors' request size limits (the OpenTelemetry Collector's default
is 20 MiB)."""
_SDK_BATCH_SIZE = 512


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def env_endpoint() -> str | None:
    """The OTLP endpoint the environment names: the traces one, or the base one."""
    return (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or None
    )


def _env_traces_url() -> str:
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or "http://localhost:4318"
    return traces or otlp_traces_url(base)


def otlp_traces_url(endpoint: str) -> str:
    """The traces URL for a base endpoint, as the OTLP spec does for
    ``OTEL_EXPORTER_OTLP_ENDPOINT``: ``http://host:4318`` -> ``http://host:4318/v1/traces``.

    A URL already ending in ``/v1/traces`` is kept; one without a scheme gets ``http://``.
    """
    url = endpoint.strip()
    if "://" not in url:
        url = "http://" + url
    url = url.rstrip("/")
    return url if url.endswith(TRACES_PATH) else url + TRACES_PATH


def _console_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, ""))
    except ValueError:
        return default


def _batch(exporter: SpanExporter, *, large_batches: bool) -> SpanProcessor:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    options: dict[str, Any] = {}
    # The OTEL_BSP_* variables win over our defaults when set.
    if "OTEL_BSP_MAX_QUEUE_SIZE" not in os.environ:
        options["max_queue_size"] = QUEUE_SIZE
    if "OTEL_BSP_SCHEDULE_DELAY" not in os.environ:
        options["schedule_delay_millis"] = SCHEDULE_DELAY_MS
    if large_batches and "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" not in os.environ:
        # Never above the queue size in effect (a smaller OTEL_BSP_MAX_QUEUE_SIZE wins).
        queue = options.get("max_queue_size") or _env_int("OTEL_BSP_MAX_QUEUE_SIZE", BATCH_SIZE)
        options["max_export_batch_size"] = min(BATCH_SIZE, queue)
    return BatchSpanProcessor(exporter, **options)


def _otlp_processor(watch: ExportWatch, *, large_batches: bool) -> SpanProcessor:
    """The OTLP exporter's processor: spans encoded as they end when the exporter can
    take encoded requests (see :class:`~playground.tracing.otlp.EncodingSpanProcessor`),
    else the SDK's batch processor. The ``OTEL_BSP_*`` variables size both."""
    from playground.tracing.otlp import EncodingSpanProcessor, FastOTLPSpanExporter

    exporter = watch.exporter
    if not (isinstance(exporter, FastOTLPSpanExporter) and exporter.direct):
        return _batch(watch, large_batches=large_batches)
    max_queue = _env_int("OTEL_BSP_MAX_QUEUE_SIZE", QUEUE_SIZE)
    batch = BATCH_SIZE if large_batches else _SDK_BATCH_SIZE
    return EncodingSpanProcessor(
        exporter,
        watch,
        max_batch=_env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", batch),
        max_queue=max_queue,
        delay_s=_env_int("OTEL_BSP_SCHEDULE_DELAY", SCHEDULE_DELAY_MS) / 1000,
    )


def traces_exporters() -> set[str]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (empty when it is not set).

    Raises:
        ConfigError: A name the playground does not export to (``zipkin``, ``jaeger``...).
    """
    from playground.errors import ConfigError

    value = os.environ.get("OTEL_TRACES_EXPORTER", "")
    names = {name.strip().lower() for name in value.split(",") if name.strip()}
    unknown = sorted(names - set(EXPORTERS))
    if unknown:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={value!r}: the playground exports to "
            f"{', '.join(EXPORTERS)} (unknown: {', '.join(unknown)}); Jaeger and Zipkin take OTLP"
        )
    return names


def otlp_protocol() -> str:
    """``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` or ``OTEL_EXPORTER_OTLP_PROTOCOL``; default ``http/protobuf``.

    Raises:
        ConfigError: ``http/json`` (no Python exporter writes it) or an unknown protocol.
    """
    from playground.errors import ConfigError

    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = os.environ.get(name, "").strip().lower()
        if value:
            break
    else:
        return "http/protobuf"
    if value in ("http/protobuf", "grpc"):
        return value
    raise ConfigError(
        f"{name}={value!r}: the playground exports OTLP as http/protobuf (or grpc with the "
        "gRPC exporter installed); set it to http/protobuf"
    )


def _grpc_exporter(endpoint: str | None) -> SpanExporter:
    """The standard OTLP/gRPC span exporter (the ``grpc`` extra).

    Raises:
        ConfigError: It is not installed.
    """
    from playground.errors import ConfigError

    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )
    except ImportError:
        raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL=grpc: {GRPC_HINT}") from None
    exporter: SpanExporter = GrpcSpanExporter(endpoint=endpoint)
    return exporter


def public_api_forced() -> bool:
    """Whether ``PLAYGROUND_TRACING_PUBLIC_API`` turns the fast paths off."""
    return _flag(PUBLIC_API_ENV)


def configure_tracing(
    otlp_endpoint: str | None = None,
    console: bool = False,
    exporter: SpanExporter | None = None,
    *,
    capture_content: bool | None = None,
    service_name: str | None = None,
) -> EventTracer | None:
    """An :class:`~playground.tracing.tracer.EventTracer` for what is asked, or None.

    Tracing is off unless something asks for it: ``otlp_endpoint`` (``--otlp``), the
    environment (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
    or ``OTEL_TRACES_EXPORTER`` naming ``otlp`` and/or ``console``; ``none`` turns the
    environment's exporters off), ``console`` or an ``exporter``. When it is off this
    returns None without importing the SDK; pass no sink to the runtime then.
    ``OTEL_SDK_DISABLED=true`` turns it off whatever is asked. OTLP goes over HTTP
    (protobuf) unless ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL=grpc``, which uses the standard
    gRPC exporter (the ``grpc`` extra).

    Raises:
        ConfigError: ``OTEL_TRACES_EXPORTER`` names an exporter the playground does not
            have, the protocol is ``http/json`` or unknown, or ``grpc`` without the gRPC
            exporter installed.

    Args:
        otlp_endpoint: Base URL of an OTLP/HTTP collector (``http://localhost:4318``);
            spans go to its ``/v1/traces``. Without it, the environment variables are
            used the standard way (headers, timeout and compression too:
            ``OTEL_EXPORTER_OTLP_*``). Exported in batches in a background thread.
        console: Print each span as one JSON line to stderr (stdout stays clean for
            ``--json``).
        exporter: Any span exporter, exported synchronously as each span ends (tests
            pass an ``InMemorySpanExporter``).
        capture_content: Record prompts, replies, tool arguments and results and
            handoff payloads. Default: the ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
            variable, else off.
        service_name: ``service.name``; default ``OTEL_SERVICE_NAME``, else
            ``agent-playground``.

    Returns:
        The tracer to pass to ``Runtime(sinks=[...])``, or None when tracing is off.
        Spans export in the background (at least every second); call its
        ``flush()`` (or ``await flush_async()``) to wait for them, and ``shutdown()``
        before exit; ``export_failures()`` then says whether any spans did not
        reach the collector.
    """
    if _flag("OTEL_SDK_DISABLED"):
        return None
    # Options win over the environment; OTEL_TRACES_EXPORTER picks what the environment
    # asks for (without it, an OTLP endpoint in the environment means OTLP).
    named = traces_exporters()
    from_env = False
    if not otlp_endpoint and "none" not in named:
        from_env = "otlp" in named or (not named and env_endpoint() is not None)
    console = console or ("console" in named and "none" not in named)
    if not otlp_endpoint and not from_env and not console and exporter is None:
        return None
    protocol = otlp_protocol() if (otlp_endpoint or from_env) else "http/protobuf"

    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    from playground.tracing.tracer import EventTracer, ExportWatch, default_resource

    if capture_content is None:
        capture_content = _flag(CAPTURE_CONTENT_ENV)
    processors: list[SpanProcessor] = []
    watches: list[ExportWatch] = []
    if exporter is not None:
        processors.append(SimpleSpanProcessor(exporter))
    if console:
        processors.append(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr, formatter=_console_line)))
    public = public_api_forced()
    if (otlp_endpoint or from_env) and protocol == "grpc":
        # The standard exporter as it is: the endpoint is host:port (usually 4317).
        grpc_target = otlp_endpoint or env_endpoint() or "http://localhost:4317"
        watch = ExportWatch(_grpc_exporter(otlp_endpoint), grpc_target)
        watches.append(watch)
        processors.append(_batch(watch, large_batches=not capture_content))
    elif otlp_endpoint or from_env:
        from playground.tracing.otlp import FastOTLPSpanExporter

        # With endpoint=None the exporter resolves the environment itself (base
        # endpoint + /v1/traces, or the traces endpoint as is).
        url = otlp_traces_url(otlp_endpoint) if otlp_endpoint else None
        fast = FastOTLPSpanExporter(endpoint=url, direct=False if public else None)
        watch = ExportWatch(fast, url or _env_traces_url())
        watches.append(watch)
        processors.append(_otlp_processor(watch, large_batches=not capture_content))
    return EventTracer(
        processors,
        capture_content=capture_content,
        resource=default_resource(service_name),
        watches=watches,
        fast_spans=False if public else None,
    )
