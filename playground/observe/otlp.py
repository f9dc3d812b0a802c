"""OTLP/HTTP trace request bodies -> plain :class:`Span` records.

A body is an ``ExportTraceServiceRequest``: protobuf (``application/x-protobuf``) or
JSON (``application/json``, the OTLP/JSON mapping), optionally gzip-compressed. Both
are decoded by the ``opentelemetry-proto`` message classes (protobuf's own parser,
and ``google.protobuf.json_format`` for JSON), so what the protocol defines is what
is enforced. OTLP/JSON differs from protobuf's canonical JSON in one way that matters:
trace and span ids are hex, not base64; they are rewritten before parsing (see
:func:`_hex_ids_to_base64`). Unknown fields are ignored, as the specification requires
of receivers.

Every body is checked before the work that grows with it (shared/STYLE.md, 18):
its size as received, its size once decompressed (decompression stops at the limit,
so a "zip bomb" costs no more than the limit), the nesting of a JSON body, and the
number of spans in it. An attribute value nested deeper than :data:`VALUE_DEPTH`
levels is kept as text. Each limit names the environment variable that raises it.

Decoding a large body takes milliseconds to seconds of CPU: callers on an event loop
run :func:`decode_request` in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from playground.bounds import JSON_DEPTH, Limit, LimitExceeded, json_depth

BODY_BYTES = Limit("PLAYGROUND_OBSERVE_MAX_BODY_BYTES", 20 << 20, "bytes")
"""Size of one request body as received (the OpenTelemetry Collector's default is 20 MiB)."""
DECODED_BYTES = Limit("PLAYGROUND_OBSERVE_MAX_DECODED_BYTES", 64 << 20, "bytes")
"""Size of one request body once decompressed."""
REQUEST_SPANS = Limit("PLAYGROUND_OBSERVE_MAX_REQUEST_SPANS", 50_000, "spans")
"""Spans in one request."""
VALUE_DEPTH = 8
"""Nesting of an attribute value (arrays and maps in arrays and maps) kept as data; deeper
values are kept as their text."""

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPES = frozenset({"application/json"})


class BodyError(ValueError):
    """A request body that cannot be accepted.

    Attributes:
        status: The HTTP status to answer with (400, 413 or 415).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """An event recorded on a span (an exception, a log line)."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(slots=True)
class Span:
    """One received span, with the ids as hex and the attribute values as plain data."""

    trace_id: str
    """32 hex digits."""
    span_id: str
    """16 hex digits."""
    parent_id: str
    """The parent's span id; empty for a root span."""
    name: str
    kind: int
    """``SpanKind`` as OTLP numbers it: 1 internal, 2 server, 3 client, 4 producer, 5 consumer."""
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int = 0
    """0 unset, 1 ok, 2 error."""
    status_message: str = ""
    events: list[SpanEvent] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    """``(trace_id, span_id)`` of each linked span."""
    scope: str = ""
    """The instrumentation scope's name (which library made the span)."""
    service: str = ""
    """``service.name`` of the span's resource."""

    @property
    def failed(self) -> bool:
        """The span's status is an error, or it recorded an exception."""
        return self.status_code == 2 or any(e.name == "exception" for e in self.events)


def decode_request(body: bytes, content_type: str, content_encoding: str = "") -> list[Span]:
    """The spans of one OTLP/HTTP trace request.

    Args:
        body: The request body as received.
        content_type: The ``Content-Type`` header (parameters such as ``charset`` are ignored).
        content_encoding: The ``Content-Encoding`` header: empty, ``identity`` or ``gzip``.

    Raises:
        BodyError: The body is over a limit (413), in an encoding or type this receiver
            does not take (415), or not a valid request (400).
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in PROTOBUF_TYPES and media not in JSON_TYPES:
        raise BodyError(
            415, f"unsupported content type {content_type!r}: send application/x-protobuf or application/json"
        )
    _check(BODY_BYTES, len(body), "the request body")
    data = _decompress(body, content_encoding.strip().lower())
    request = _parse_json(data) if media in JSON_TYPES else _parse_protobuf(data)
    count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
    _check(REQUEST_SPANS, count, "the spans in one request")
    return list(_spans(request))


def _check(limit: Limit, found: int, what: str) -> None:
    try:
        limit.check(found, what)
    except LimitExceeded as exc:
        raise BodyError(413, str(exc)) from None


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise BodyError(415, f"unsupported content encoding {encoding!r}: send gzip or none")
    limit = DECODED_BYTES.value
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)  # never more than the limit (and one byte)
    except zlib.error as exc:
        raise BodyError(400, f"the body is not valid gzip: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise BodyError(413, DECODED_BYTES.message("the decompressed request body"))
    if not inflater.eof:
        raise BodyError(400, "the body is not valid gzip: it ends before the compressed data does")
    return data


def _parse_protobuf(data: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise BodyError(
            400, f"the body is not an OTLP ExportTraceServiceRequest in protobuf: {exc}"
        ) from None
    return request


def _parse_json(data: bytes) -> ExportTraceServiceRequest:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"the JSON body is not UTF-8: {exc}") from None
    limit = JSON_DEPTH.value
    if text.count("[") + text.count("{") > limit:
        depth = json_depth(text)
        if depth > limit:
            raise BodyError(413, JSON_DEPTH.message("the nesting of the JSON body", depth))
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BodyError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BodyError(400, "the JSON body is not an object (an ExportTraceServiceRequest)")
    try:
        _hex_ids_to_base64(raw)
        request = ExportTraceServiceRequest()
        json_format.ParseDict(raw, request, ignore_unknown_fields=True)
        return request
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise BodyError(400, f"the body is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None


_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(raw: dict[str, Any]) -> None:
    """OTLP/JSON writes ids as hex (the specification's one departure from protobuf's JSON
    mapping, which base64-encodes bytes): rewrite them in place so ``json_format`` reads them."""
    for resource in _list(raw, "resourceSpans", "resource_spans"):
        for scope in _list(resource, "scopeSpans", "scope_spans"):
            for span in _list(scope, "spans"):
                _fix_ids(span)
                for link in _list(span, "links"):
                    _fix_ids(link)


def _list(parent: Any, *keys: str) -> list[Any]:
    if not isinstance(parent, dict):
        raise ValueError("an object was expected")
    for key in keys:
        value = parent.get(key)
        if value is not None:
            if not isinstance(value, list):
                raise ValueError(f"{key!r} is not a list")
            return value
    return []


def _fix_ids(item: Any) -> None:
    if not isinstance(item, dict):
        raise ValueError("a span or link is not an object")
    for key in _ID_KEYS:
        value = item.get(key)
        if isinstance(value, str) and value:
            try:
                item[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise ValueError(f"{key} {value[:40]!r} is not hex") from None


def _spans(request: ExportTraceServiceRequest) -> Any:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    raise BodyError(
                        400, f"span {span.name[:60]!r} has no valid trace id (16 bytes) and span id (8 bytes)"
                    )
                yield Span(
                    trace_id=binascii.hexlify(span.trace_id).decode(),
                    span_id=binascii.hexlify(span.span_id).decode(),
                    parent_id=binascii.hexlify(span.parent_span_id).decode() if span.parent_span_id else "",
                    name=span.name,
                    kind=span.kind,
                    start_ns=span.start_time_unix_nano,
                    end_ns=max(span.end_time_unix_nano, span.start_time_unix_nano),
                    attributes=_attributes(span.attributes),
                    status_code=span.status.code,
                    status_message=span.status.message,
                    events=[
                        SpanEvent(e.name, e.time_unix_nano, _attributes(e.attributes)) for e in span.events
                    ],
                    links=[
                        (binascii.hexlify(link.trace_id).decode(), binascii.hexlify(link.span_id).decode())
                        for link in span.links
                    ],
                    scope=scope,
                    service=service,
                )


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value, 0) for pair in pairs}


def _value(value: AnyValue, depth: int) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        if depth >= VALUE_DEPTH:
            return json_format.MessageToJson(value, indent=None)
        return [_value(v, depth + 1) for v in value.array_value.values]
    if which == "kvlist_value":
        if depth >= VALUE_DEPTH:
            return json_format.MessageToJson(value, indent=None)
        items: list[KeyValue] = list(value.kvlist_value.values)
        return {kv.key: _value(kv.value, depth + 1) for kv in items}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which)
