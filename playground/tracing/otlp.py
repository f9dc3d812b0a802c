"""OTLP/HTTP span export with a direct protobuf encoder.

Why: the stock encoder (``opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans``)
builds an ``ExportTraceServiceRequest`` out of protobuf objects, about 42 us per span
of ours: about 1.4 us per attribute for its ``KeyValue``/``AnyValue`` objects, a
``json.dumps`` of the resource attributes per span (``Resource.__hash__``, to group
spans by resource), and copies of every submessage handed to a constructor.
Serialising the finished message is the cheap part (0.5 us). A run makes three
spans per agent hop, so that alone was over 120 us per hop of the process's CPU
(the batch processor encodes in a background thread of the same process).

:class:`SpanEncoder` writes the protobuf wire format of the same request directly:
varints, length-delimited fields and fixed64 times, fields in field-number order as
the protobuf runtime writes them, so the bytes are the stock encoder's. What repeats
is encoded once and cached: the resource and instrumentation-scope header of each
(resource, scope), each span name, and each string or int attribute as a whole
``KeyValue`` by ``(key, value)`` (agent names, models, operation names, session ids,
steps and token counts repeat from span to span; the caches are bounded and long
values are not cached). It reads the ``ReadableSpan``'s fields rather than its
properties, which copy. About 4 us per span of a run, against 42.

It handles every span :class:`~playground.tracing.tracer.EventTracer` makes (strings,
bools, ints, floats, bytes, None and sequences of them as values, links, span
events, statuses, remote parents, trace state, dropped counts); a batch holding
anything else (a mapping value, a ``str`` or ``int`` subclass, an int beyond 64 bits,
an object that is not a ``ReadableSpan``) goes to the stock encoder instead, so the
request is always the one the stock exporter would send.

Verified against the stock encoder: ``tests/test_tracing.py`` encodes the spans of
real runs (router, supervisor with delegations and reviews, failures with statuses,
retries and fallbacks as span events, links, content capture on and off) and
hand-made spans with every field and value type both ways, and checks that
``ExportTraceServiceRequest.FromString(fast)`` equals ``encode_spans(spans)`` and that
the bytes are equal too; and that what it does not handle goes to the stock encoder.

:class:`FastOTLPSpanExporter` is the real ``OTLPSpanExporter`` with only the encoding
replaced: its HTTP client, retries, headers, compression, timeout, size limit,
metrics and ``OTEL_EXPORTER_OTLP_*`` handling are inherited. Posting pre-encoded bytes
uses the exporter's own (private) HTTP client and metrics, so it is done only when two
feature tests pass, whatever the version: :func:`send_path_available` (those members are
there, shaped as expected) and :func:`encoder_matches_stock` (the direct encoder writes
the stock encoder's bytes for probe spans of every shape, made by the installed SDK's
public constructor). Otherwise ``export`` is the stock exporter's, behind the SDK's batch
processor (``bench/bench_engine.py`` prints what each path costs per hop).
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import SpanKind, Status

from playground.tracing.failures import EXPORT_LOG, describe_failure, short_error

log = logging.getLogger("playground.tracing")

CACHE_ENTRIES = 8192
"""Most entries of each cache (string and int attributes, span names); a full cache
starts over."""
CACHED_VALUE_CHARS = 200
"""Longer string values (content) are encoded each time, not cached."""

_KIND = {
    SpanKind.INTERNAL: b"\x30\x01",
    SpanKind.SERVER: b"\x30\x02",
    SpanKind.CLIENT: b"\x30\x03",
    SpanKind.PRODUCER: b"\x30\x04",
    SpanKind.CONSUMER: b"\x30\x05",
}
# Span.flags (field 16, fixed32): SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, plus
# SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK when the parent (or linked span) is remote.
_INTERNAL, _CLIENT = _KIND[SpanKind.INTERNAL], _KIND[SpanKind.CLIENT]
_FLAGS_LOCAL = b"\x85\x01" + (0x100).to_bytes(4, "little")
_FLAGS_REMOTE = b"\x85\x01" + (0x300).to_bytes(4, "little")
_LINK_FLAGS_LOCAL = b"\x35" + (0x100).to_bytes(4, "little")
_LINK_FLAGS_REMOTE = b"\x35" + (0x300).to_bytes(4, "little")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_UINT64 = (1 << 64) - 1
_fixed64 = struct.Struct("<Q").pack
# Span.span_id (2) and parent_span_id (4): tag and length 8 (as one big-endian
# short), then the id as 8 big-endian bytes.
_SPAN_ID, _PARENT_SPAN_ID = 0x1208, 0x2208
_id = struct.Struct(">HQ").pack
_two_ids = struct.Struct(">HQHQ").pack
# Span.start_time_unix_nano (7) and end_time_unix_nano (8): tag, fixed64.
_START, _END = 0x39, 0x41
_times = struct.Struct("<BQBQ").pack
_double = struct.Struct("<d").pack

# Field tags (field number << 3 | wire type) of the messages written here.
_SPAN_ATTRIBUTE = b"\x4a"  # Span.attributes = 9
_EVENT_ATTRIBUTE = b"\x1a"  # Span.Event.attributes = 3
_LINK_ATTRIBUTE = b"\x22"  # Span.Link.attributes = 4
_RESOURCE_ATTRIBUTE = b"\x0a"  # Resource.attributes = 1
_SCOPE_ATTRIBUTE = b"\x1a"  # InstrumentationScope.attributes = 3


class _Unsupported(Exception):
    """A value the direct encoder does not write; the stock encoder takes the batch."""


_SMALL = [bytes((n,)) for n in range(128)]


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    if n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes:
    """``AnyValue`` fields (the oneof member), as the stock ``_encode_value`` chooses them."""
    kind = type(value)
    if kind is str:
        data: bytes = value.encode()
        return b"\x0a" + _varint(len(data)) + data
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _Unsupported(value)  # the stock encoder drops such an attribute
        return b"\x18" + _varint(value & _UINT64)
    if kind is float:
        return b"\x21" + _double(value)
    if kind is tuple or kind is list:
        values = b"".join([_delimited(b"\x0a", _any_value(v)) for v in value])
        return _delimited(b"\x2a", values)
    if value is None:
        return b""
    if kind is bytes:
        return _delimited(b"\x3a", value)
    raise _Unsupported(value)


def _key_value(key: str, value: Any) -> bytes:
    """One ``KeyValue`` message, length prefix included (its field tag is the caller's)."""
    if type(key) is not str:
        raise _Unsupported(key)
    data = key.encode()
    body = (b"\x0a" + _varint(len(data)) + data if data else b"") + _delimited(b"\x12", _any_value(value))
    return _varint(len(body)) + body


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    return b"".join([tag + _key_value(key, value) for key, value in attributes.items()])


def _status(status: Status | None) -> bytes:
    if status is None:
        return b""
    description = status.description
    body = _delimited(b"\x12", description.encode()) if description else b""
    code = status.status_code.value
    if code:
        body += b"\x18" + _varint(code)
    return _delimited(b"\x7a", body)


def _trace_state(state: Any) -> str:
    return ",".join([f"{key}={value}" for key, value in state.items()]) if state else ""


class SpanEncoder:
    """Encodes finished spans as the bytes of an OTLP ``ExportTraceServiceRequest``.

    One encoder keeps its caches across batches; it may be called from any thread.

    Attributes:
        fallbacks: Batches handed to the stock encoder because they held something
            the direct encoder does not write.
    """

    def __init__(self) -> None:
        self.fallbacks = 0
        self._strings: dict[tuple[str, str], bytes] = {}
        self._ints: dict[tuple[str, int], bytes] = {}
        self._keys: dict[str, bytes] = {}
        self._names: dict[str, bytes] = {}
        self._headers: dict[int, tuple[Any, bytes]] = {}
        self._last_trace: tuple[int, bytes] = (-1, b"")
        self._last_status: tuple[Status | None, bytes] = (None, _status(None))

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialised request for ``spans``: the stock encoder's, byte for byte."""
        try:
            return self._encode(spans)
        except Exception as error:  # anything unusual: the stock encoder knows best
            if not isinstance(error, _Unsupported):
                log.debug("direct OTLP encoding failed, using the stock encoder", exc_info=True)
            self.fallbacks += 1
            return bytes(encode_spans(spans).SerializePartialToString())

    # -- the request --------------------------------------------------------------------

    def _encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        # Group as the stock encoder does (by resource, then scope, in order of first
        # appearance), by identity first: Resource.__hash__ is a json.dumps.
        groups: dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[bytes]]]]] = {}
        resource_of: dict[int, int] = {}
        scope_of: dict[tuple[int, int], int] = {}
        encode_span = self._span
        last_resource: Any = None
        last_scope: Any = None
        encoded: list[bytes] = []
        for span in spans:
            resource = span._resource
            scope = span._instrumentation_scope or None
            if resource is not last_resource or scope is not last_scope:
                # Another group than the previous span's (rare: one tracer, one of each).
                rkey = resource_of.get(id(resource))
                if rkey is None:
                    rkey = next((k for k, (r, _) in groups.items() if r == resource), id(resource))
                    resource_of[id(resource)] = rkey
                    if rkey not in groups:
                        groups[rkey] = (resource, {})
                scopes = groups[rkey][1]
                skey = scope_of.get((rkey, id(scope)))
                if skey is None:
                    skey = next((k for k, (s, _) in scopes.items() if s == scope), id(scope))
                    scope_of[(rkey, id(scope))] = skey
                    if skey not in scopes:
                        scopes[skey] = (scope, [])
                encoded = scopes[skey][1]
                last_resource, last_scope = resource, scope
            encoded.append(encode_span(span))
        return b"".join(
            self._resource_spans(resource, list(scopes.values())) for resource, scopes in groups.values()
        )

    def request(self, resource: Resource, scope: InstrumentationScope | None, spans: list[bytes]) -> bytes:
        """The request for spans of one resource and scope, already encoded by :meth:`_span`."""
        return self._resource_spans(resource, [(scope, spans)])

    def _resource_spans(
        self, resource: Resource, scopes: list[tuple[InstrumentationScope | None, list[bytes]]]
    ) -> bytes:
        """``ExportTraceServiceRequest.resource_spans`` (field 1) entry, tag and length included."""
        body = [self._header(resource, self._resource)]
        for scope, spans_bytes in scopes:
            scope_spans = [self._header(scope, self._scope), *spans_bytes]
            schema_url = scope.schema_url if scope is not None else None
            if schema_url:
                scope_spans.append(_delimited(b"\x1a", schema_url.encode()))
            body.append(_delimited(b"\x12", b"".join(scope_spans)))
        if resource.schema_url:
            body.append(_delimited(b"\x1a", resource.schema_url.encode()))
        return _delimited(b"\x0a", b"".join(body))

    def _header(self, owner: Any, encode: Callable[[Any], bytes]) -> bytes:
        cached = self._headers.get(id(owner))
        if cached is not None and cached[0] is owner:
            return cached[1]
        header = encode(owner)
        if len(self._headers) >= 64:
            self._headers.clear()
        self._headers[id(owner)] = (owner, header)  # holding owner keeps its id unique
        return header

    @staticmethod
    def _resource(resource: Resource) -> bytes:
        # ResourceSpans.resource = 1
        return _delimited(b"\x0a", _attributes(_RESOURCE_ATTRIBUTE, resource.attributes))

    @staticmethod
    def _scope(scope: InstrumentationScope | None) -> bytes:
        # ScopeSpans.scope = 1
        if scope is None:
            return b"\x0a\x00"
        body = b""
        if scope.name:
            body += _delimited(b"\x0a", scope.name.encode())
        if scope.version:
            body += _delimited(b"\x12", scope.version.encode())
        body += _attributes(_SCOPE_ATTRIBUTE, scope.attributes)
        return _delimited(b"\x0a", body)

    # -- one span ------------------------------------------------------------------------

    def _span(self, span: ReadableSpan) -> bytes:
        """``ScopeSpans.spans`` (field 2) entry of one span, tag and length included.

        Reads the ``ReadableSpan``'s fields rather than its properties (which copy the
        attributes into a proxy, the events and links into tuples, and check each for
        a bounded container): a third of the time of a span here otherwise.
        """
        # SpanContext is a tuple (trace_id, span_id, is_remote, trace_flags, trace_state,
        # is_valid), as its class declares: indexing skips a property call per field.
        context = span._context
        if context is None:
            raise _Unsupported(span)
        trace_id = context[0]
        last_trace = self._last_trace  # one tuple, so threads never see half of it
        if trace_id != last_trace[0]:  # spans of a batch come by trace
            last_trace = self._last_trace = (trace_id, b"\x0a\x10" + trace_id.to_bytes(16, "big"))
        parent = span._parent
        if context[4]:
            parts = [last_trace[1], _id(_SPAN_ID, context[1])]
            parts.append(_delimited(b"\x1a", _trace_state(context[4]).encode()))
            if parent is not None:
                parts.append(_id(_PARENT_SPAN_ID, parent[1]))
        elif parent is not None:
            parts = [last_trace[1], _two_ids(_SPAN_ID, context[1], _PARENT_SPAN_ID, parent[1])]
        else:
            parts = [last_trace[1], _id(_SPAN_ID, context[1])]
        name = self._names.get(span._name)
        if name is None:
            name = self._name(span._name)
        parts.append(name)
        kind = span._kind
        parts.append(
            _INTERNAL if kind is SpanKind.INTERNAL else _CLIENT if kind is SpanKind.CLIENT else _KIND[kind]
        )
        start, end = span._start_time, span._end_time
        if start and end:
            parts.append(_times(_START, start, _END, end))
        else:
            if start:
                parts.append(b"\x39" + _fixed64(start))
            if end:
                parts.append(b"\x41" + _fixed64(end))
        attributes: Any = span._attributes
        if attributes:
            strings, ints, keys = self._strings, self._ints, self._keys
            for key, value in attributes.items():
                value_type = type(value)
                if value_type is str and len(value) <= CACHED_VALUE_CHARS:
                    entry = strings.get((key, value))
                    if entry is None:
                        entry = self._cache(strings, key, value)
                elif value_type is int:
                    entry = ints.get((key, value))  # apart from strings: 1 == True == 1.0
                    if entry is None:
                        entry = self._cache(ints, key, value)
                elif value_type is float:
                    head = keys.get(key)
                    if head is None:
                        head = self._double_head(key)
                    entry = head + _double(value)
                else:
                    entry = _SPAN_ATTRIBUTE + _key_value(key, value)
                parts.append(entry)
        if type(attributes) is not dict and span.dropped_attributes:  # a bounded container
            parts.append(b"\x50" + _varint(span.dropped_attributes))
        events = span._events
        if events:
            for event in events:
                body = b"\x09" + _fixed64(event.timestamp) if event.timestamp else b""
                if event.name:
                    body += _delimited(b"\x12", event.name.encode())
                body += _attributes(_EVENT_ATTRIBUTE, event.attributes)
                if dropped := event.dropped_attributes:
                    body += b"\x20" + _varint(dropped)
                parts.append(_delimited(b"\x5a", body))
        if type(events) is not tuple and type(events) is not list and span.dropped_events:
            parts.append(b"\x60" + _varint(span.dropped_events))
        links = span._links
        if links:
            for link in links:
                linked = link.context
                body = (
                    b"\x0a\x10"
                    + linked.trace_id.to_bytes(16, "big")
                    + b"\x12\x08"
                    + linked.span_id.to_bytes(8, "big")
                    + _attributes(_LINK_ATTRIBUTE, link.attributes)
                )
                if dropped := link.dropped_attributes:
                    body += b"\x28" + _varint(dropped)
                body += _LINK_FLAGS_REMOTE if linked.is_remote else _LINK_FLAGS_LOCAL
                parts.append(_delimited(b"\x6a", body))
        if type(links) is not tuple and type(links) is not list and span.dropped_links:
            parts.append(b"\x70" + _varint(span.dropped_links))
        status = span._status
        last_status = self._last_status  # spans share the UNSET status object
        if status is not last_status[0]:
            last_status = self._last_status = (status, _status(status))
        parts.append(last_status[1])
        parts.append(_FLAGS_REMOTE if parent is not None and parent[2] else _FLAGS_LOCAL)
        body = b"".join(parts)
        return b"\x12" + _varint(len(body)) + body

    def _cache(self, cache: dict[Any, bytes], key: str, value: Any) -> bytes:
        entry = _SPAN_ATTRIBUTE + _key_value(key, value)
        if len(cache) >= CACHE_ENTRIES:
            cache.clear()
        cache[(key, value)] = entry
        return entry

    def _double_head(self, key: str) -> bytes:
        """Tag, length, key and value header of a span attribute whose value is a double."""
        data = key.encode()
        key_field = (b"\x0a" + _varint(len(data)) + data) if data else b""
        # KeyValue.value = AnyValue{double_value: fixed64}: 11 bytes.
        head = _SPAN_ATTRIBUTE + _varint(len(key_field) + 11) + key_field + b"\x12\x09\x21"
        if len(self._keys) >= CACHE_ENTRIES:
            self._keys.clear()
        self._keys[key] = head
        return head

    def _name(self, name: str) -> bytes:
        encoded = _delimited(b"\x2a", name.encode()) if name else b""
        if len(self._names) >= CACHE_ENTRIES:
            self._names.clear()
        self._names[name] = encoded
        return encoded


try:  # what OTLPSpanExporter.export uses besides the encoder
    from opentelemetry.exporter.otlp.proto.http._common import (
        RequestPayloadTooLargeError,
        _is_request_too_large,
    )
except ImportError:  # laid out otherwise: FastOTLPSpanExporter exports as the stock one
    _HAS_COMMON = False
else:
    _HAS_COMMON = True


def _probe_spans() -> list[ReadableSpan]:
    """Spans with every field and value kind the tracer writes, made with the public
    ``ReadableSpan`` constructor (so the encoder reads what the SDK itself sets)."""
    from opentelemetry.sdk.trace import Event
    from opentelemetry.trace import Link, SpanContext, StatusCode, TraceFlags
    from opentelemetry.trace.span import TraceState

    flags = TraceFlags(TraceFlags.SAMPLED)
    trace_id = 0x0AF7651916CD43DD8448EB211C80319C
    root = SpanContext(trace_id, 0xB7AD6B7169203331, False, flags)
    child = SpanContext(trace_id, 0x00F067AA0BA902B7, False, flags, TraceState([("k", "v")]))
    remote = SpanContext(trace_id, 0x1111111111111111, True, flags)
    resource = Resource({"service.name": "probe", "n": 3}, schema_url="https://example.com/r")
    scope = InstrumentationScope("probe", "1.0", "https://example.com/s", {"k": "v"})
    attributes: dict[str, Any] = {"s": "x" * 300, "i": -5, "b": True, "f": 0.25, "t": ("a", "b"), "n": (1, 2)}
    return [
        ReadableSpan(
            name="root",
            context=root,
            resource=resource,
            attributes={"s": "v", "i": 1 << 40},
            kind=SpanKind.INTERNAL,
            status=Status(StatusCode.OK),
            start_time=1,
            end_time=9,
            instrumentation_scope=scope,
        ),
        ReadableSpan(
            name="child",
            context=child,
            parent=root,
            resource=resource,
            attributes=attributes,
            events=(Event("e", {"a": 1}, 3),),
            links=(Link(remote, {"r": "x"}),),
            kind=SpanKind.CLIENT,
            status=Status(StatusCode.ERROR, "failed"),
            start_time=2,
            end_time=4,
            instrumentation_scope=scope,
        ),
        ReadableSpan(name="bare", context=remote, parent=remote, resource=resource, start_time=5, end_time=6),
    ]


_encoder_verdict: bool | None = None


def encoder_matches_stock() -> bool:
    """The direct encoder's feature test: it writes the stock encoder's bytes for spans of
    every shape the tracer makes (:func:`_probe_spans`), read from fields the installed
    SDK sets. Run once per process (about a millisecond)."""
    global _encoder_verdict
    if _encoder_verdict is None:
        try:
            spans = _probe_spans()
            _encoder_verdict = SpanEncoder()._encode(spans) == bytes(
                encode_spans(spans).SerializePartialToString()
            )
        except Exception:
            log.debug("direct OTLP encoding unavailable", exc_info=True)
            _encoder_verdict = False
    return _encoder_verdict


def send_path_available(exporter: OTLPSpanExporter) -> bool:
    """The feature test of what :meth:`FastOTLPSpanExporter.send` uses of the exporter's
    own (private) members: an HTTP client whose ``export`` takes the request bytes and
    returns a result with ``success``, ``status_code`` and ``error``, the metrics'
    ``export_operation``, the size limit and the shutdown flag."""
    import inspect
    import typing

    try:
        export = exporter._client.export
        fields = typing.get_type_hints(export).get("return")
        names = set(getattr(fields, "__dataclass_fields__", None) or getattr(fields, "__annotations__", {}))
        inspect.signature(export).bind(b"")
        return (
            _HAS_COMMON
            and {"success", "status_code", "error"} <= names
            and callable(exporter._metrics.export_operation)
            and isinstance(exporter._max_request_size, int)
            and isinstance(exporter._shutdown, bool)
        )
    except Exception:
        log.debug("the exporter's send path is not the expected one", exc_info=True)
        return False


class FastOTLPSpanExporter(OTLPSpanExporter):
    """The OTLP/HTTP span exporter with :class:`SpanEncoder` instead of the stock encoder.

    Takes the same arguments as ``OTLPSpanExporter`` and behaves the same way; only
    ``export`` is overridden, and it does what the base class's does in
    opentelemetry-exporter-otlp-proto-http 1.45 with the request bytes from
    :class:`SpanEncoder`. With a version laid out otherwise (no HTTP client taking
    bytes), ``export`` is the base class's, stock encoder included.
    """

    def __init__(self, *args: Any, direct: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.encoder = SpanEncoder()
        """The encoder; its ``fallbacks`` counts batches the stock encoder took."""
        self.direct = (direct is None or direct) and send_path_available(self) and encoder_matches_stock()
        """Whether requests are encoded by :attr:`encoder` and posted by :meth:`send`: only
        when the feature tests (:func:`send_path_available`, :func:`encoder_matches_stock`)
        pass, and ``direct`` is not False. Otherwise ``export`` is the stock exporter's."""
        self.last_error: str | None = None
        """Why the last request failed (direct path), for the user."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self.direct:
            return super().export(spans)
        try:
            serialized_data = self.encoder.encode(spans)
        except Exception as error:
            log.error("Failed to encode span batch: %s", error)
            return SpanExportResult.FAILURE
        return self.send(serialized_data, len(spans))

    def send(self, serialized_data: bytes, count: int) -> SpanExportResult:
        """Post one encoded request of ``count`` spans, as ``export`` does after encoding.

        Only when :attr:`direct`."""
        if self._shutdown:
            log.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(count) as result:
            if _is_request_too_large(serialized_data, self._max_request_size):
                log.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                    len(serialized_data),
                    self._max_request_size,
                )
                result.error = RequestPayloadTooLargeError(
                    f"Serialized span request size {len(serialized_data)} bytes exceeds"
                    f" max_request_size {self._max_request_size} bytes."
                )
                return SpanExportResult.FAILURE
            export_result = self._client.export(serialized_data)
            if not export_result.success:
                self.last_error = (
                    describe_failure(
                        export_result.status_code, getattr(export_result, "reason", None), export_result.error
                    )
                    or EXPORT_LOG.last
                )
                result.error = export_result.error
                result.error_attrs = (
                    {HTTP_RESPONSE_STATUS_CODE: export_result.status_code}
                    if export_result.status_code is not None
                    else None
                )
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


class EncodingSpanProcessor(SpanProcessor):
    """Batches spans for a :class:`FastOTLPSpanExporter`, encoding each as it ends.

    The SDK's ``BatchSpanProcessor`` keeps every ended span until its thread exports
    a batch. With a run that never waits, that thread rarely gets the GIL, thousands
    of spans pile up and the garbage collector walks them again and again (~12 µs per
    agent hop in bench_engine). Here a span becomes its bytes in ``on_end``, the same
    CPU the export would spend, and is gone; the thread only joins and posts
    requests. A span the direct encoder does not handle goes to the exporter's
    ``export`` (the stock encoder) as it is.

    Args:
        exporter: Where requests go (its HTTP client, retries and settings).
        watch: Counts delivered and failed spans for :meth:`EventTracer.export_failures`.
        max_batch: Spans per request.
        max_queue: Spans held at most; beyond that new spans are dropped (and counted
            as failed), as the SDK's processor does.
        delay_s: A batch that is not full is sent after this long.
    """

    def __init__(
        self,
        exporter: FastOTLPSpanExporter,
        watch: Any,
        *,
        max_batch: int,
        max_queue: int,
        delay_s: float,
    ) -> None:
        self.exporter = exporter
        self.watch = watch
        self.max_batch = max(1, min(max_batch, max_queue))
        self.max_queue = max_queue
        self.delay_s = delay_s
        self._encoder = exporter.encoder
        self._lock = threading.Lock()
        self._batch: list[bytes] = []
        self._key: tuple[Any, Any] | None = None
        """The (resource, scope) of the spans in the batch."""
        self._held = 0
        """Spans encoded and not yet posted."""
        self._idle = threading.Condition(self._lock)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name="playground-otlp", daemon=True)
        self._thread.start()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._stopped or not span.context.trace_flags.sampled:
            return
        key = (span._resource, span._instrumentation_scope)
        try:
            data = self._encoder._span(span)
        except Exception:  # not for the direct encoder: the exporter's own path
            with self._lock:
                self._held += 1  # before the thread can post it and count it off
            self._queue.put(("spans", [span], key))
            return
        with self._lock:
            if self._held >= self.max_queue:
                self.watch.failed += 1
                return
            if key != self._key and self._batch:
                self._take()
            self._key = key
            self._batch.append(data)
            self._held += 1
            if len(self._batch) >= self.max_batch:
                self._take()

    def _take(self) -> None:
        """Queue the batch for the thread (the lock held)."""
        self._queue.put(("bytes", self._batch, self._key))
        self._batch = []

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.delay_s)
            except queue.Empty:
                with self._lock:
                    if self._batch:
                        self._take()
                continue
            if item is None:
                return
            kind, parts, (resource, scope) = item
            count = len(parts)
            try:
                if kind == "spans":
                    ok = self.exporter.export(parts) is SpanExportResult.SUCCESS
                else:
                    request = self._encoder.request(resource, scope, parts)
                    ok = self.exporter.send(request, count) is SpanExportResult.SUCCESS
            except Exception as error:
                log.exception("exporting spans failed")
                self.exporter.last_error = short_error(error)
                ok = False
            with self._lock:
                if ok:
                    self.watch.exported += count
                else:
                    self.watch.failed += count
                    self.watch.reason = self.exporter.last_error or self.watch.reason
                self._held -= count
                self._idle.notify_all()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            if self._batch:
                self._take()
            return self._idle.wait_for(lambda: self._held == 0, timeout_millis / 1000)

    def shutdown(self) -> None:
        if self._stopped:
            return
        self.force_flush()
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout=5)
        self.exporter.shutdown()  # type: ignore[no-untyped-call]
