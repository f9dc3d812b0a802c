"""Events -> OpenTelemetry spans, built as finished SDK spans.

:class:`EventTracer` is an event sink: give it to ``Runtime(sinks=[...])`` and it
turns each session's events into one trace. It is the only producer of spans in
the playground, and it reads nothing but events (shared/DESIGN.md: the event
stream is the single source of truth). Importing this module imports the SDK
(~50 ms); :func:`playground.tracing.configure_tracing` imports it only when
tracing is on.

The trace of one session::

    invoke_workflow {system}                    root: run_started .. run_finished/run_failed
      invoke_agent {agent}                      agent_started .. agent_finished
        chat {model}                            model_requested .. model_responded/model_failed
        execute_tool {tool}                     tool_called .. tool_returned
          invoke_agent {worker}                 a delegated worker (supervisor pattern)
        handoff {source} -> {target}            model_responded .. handoff_delivered
      invoke_agent {target}                     linked to the handoff span that started it

The trace id is the session's correlation id, so a correlation id shown in the TUI
or printed by ``playground run --json`` finds the trace in any backend; span ids are
random. Span times are the events' ``ts``. See ``playground/tracing/__init__.py``
for the attribute list.

Why no ``Tracer.start_span``: the tracer builds each span after the fact from events
whose times it already has, so it needs none of what a live SDK span is for (the
current context, a lock per span, the sampler per span, a clock, and
``BoundedAttributes`` checking every value it is given: about 20 us plus 1 us per
attribute per span, three spans per agent hop). Instead each span is a
``ReadableSpan`` from the start, as the SDK's own spans are (a subclass, about 1 us to
make): its attributes are a plain dict filled in while it is open, and when it ends
it goes as it is to each processor's ``on_end``, as the SDK's span would: the batch
processor queues it for the OTLP exporter, the simple processor exports it at once
(in-memory and console exporters). Processors are called ``on_end`` only, never
``on_start``: a span is handed over complete. The spans (names, parents, links,
events, attributes, statuses, times) are the ones the SDK path made; they were
compared span by span when this replaced it.

That is the fast path, used only when :data:`FAST_SPANS` (the feature test
:func:`_fast_spans_work`, run at import: a probe span built both ways must read back the
same through ``ReadableSpan``'s public properties and ``to_json``) says ``ReadableSpan`` is
laid out as ``_Span`` expects. Otherwise, or with ``PLAYGROUND_TRACING_PUBLIC_API=1``,
each span is an SDK span from the public ``Tracer.start_span`` (:class:`_PublicSpan`) and
the SDK enforces limits and sampling itself; ``tests/test_tracing_ecosystem.py`` checks
that both paths make the same spans.

What the SDK's tracer would have enforced is kept on the fast path:

- attributes are plain dicts, but only of values the SDK accepts (str, bool, int,
  float and tuples of them: every attribute is written here, and a test checks
  each span of real runs against ``BoundedAttributes``);
- span limits: the defaults (128 attributes, events and links) are far above what a
  span here carries (at most :data:`MOST_ATTRIBUTES`), so they cost nothing; limits
  set lower through ``OTEL_SPAN_*_LIMIT`` / ``OTEL_ATTRIBUTE_*_LIMIT``, and spans with
  more events than allowed, go through ``BoundedAttributes``/``BoundedList`` as the
  SDK would;
- sampling: ``OTEL_TRACES_SAMPLER`` is asked once per session, for its root, and its
  decision holds for the whole trace (what the default ``parentbased_*`` samplers
  do for children);
- trace flags (sampled, random trace id) and the instrumentation scope are the ones
  the SDK's tracer gave.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, assert_never

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace import Span as SdkSpan
from opentelemetry.trace.span import DEFAULT_TRACE_STATE, TraceState

from playground import redact
from playground.engine import events as ev
from playground.tracing import _content
from playground.tracing import attributes as attr
from playground.tracing.failures import EXPORT_LOG, short_error

log = logging.getLogger("playground.tracing")

_SpanEvent: TypeAlias = (
    ev.RetryScheduled
    | ev.FallbackUsed
    | ev.ValidationFailed
    | ev.PermissionDenied
    | ev.LoopDetected
    | ev.BudgetExceeded
    | ev.GuardAllowed
    | ev.GuardRewrote
    | ev.GuardDenied
    | ev.ApprovalRequested
    | ev.ApprovalDecided
    | ev.Escalated
    | ev.CheckpointReviewed
    | ev.OperatorActed
)
"""The events recorded as span events of their activation's span, not as spans."""

DEFAULT_SERVICE_NAME = "agent-playground"
"""``service.name`` unless ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` names one."""
INSTRUMENTATION_NAME = "playground.tracing"
"""The instrumentation scope of every span."""
MOST_ATTRIBUTES = 32
"""No span or span event here carries more attributes (a test checks): span limits at
least this high need no enforcing."""

# What the SDK's tracer sets on a sampled span whose trace id is random (correlation
# ids are 128 random bits: secrets.token_hex(16)).
_SAMPLED = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_UNSET = Status(StatusCode.UNSET)
_OK = Status(StatusCode.OK)
_getrandbits = random.getrandbits

# litellm provider prefix -> gen_ai.provider.name (semconv well-known values).
_PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai",
}
_BARE_MODELS = (
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("chatgpt", "openai"),
    ("claude", "anthropic"),
    ("gemini", "gcp.gemini"),
    ("command", "cohere"),
    ("mistral", "mistral_ai"),
    ("mixtral", "mistral_ai"),
)


def provider_name(model: str) -> str:
    """``gen_ai.provider.name`` of a model string (a litellm model string or ``scripted``).

    The litellm provider prefix maps to the semantic-convention value (``gemini/...``
    is ``gcp.gemini``); a prefix without a well-known value is used as is
    (``ollama``); the offline models are ``scripted`` and ``replay``.
    """
    prefix, slash, _ = model.partition("/")
    if slash:
        return _PROVIDERS.get(prefix, prefix)
    if model in ("scripted", "replay"):
        return model
    for start, provider in _BARE_MODELS:
        if model.startswith(start):
            return provider
    return "_OTHER"


_provider_names: dict[str, str] = {}


def _provider_name(model: str) -> str:
    name = _provider_names.get(model)
    if name is None:
        if len(_provider_names) >= 1024:
            _provider_names.clear()
        name = _provider_names[model] = provider_name(model)
    return name


_OI_KINDS: dict[str | None, str] = {
    attr.OP_INVOKE_AGENT: attr.OI_AGENT,
    attr.OP_CHAT: attr.OI_LLM,
    attr.OP_EXECUTE_TOOL: attr.OI_TOOL,
    None: attr.OI_TOOL,  # a handoff
}
"""``openinference.span.kind`` of a step span by its ``gen_ai.operation.name``."""


def _value(attributes: dict[str, Any], which: str, text: str) -> None:
    """``input.value``/``output.value`` and its mime type: JSON when the text is a JSON
    object or list (handoff contexts, stage outputs, tool arguments), else plain text."""
    mime = attr.MIME_TEXT
    if text[:1] in ("{", "["):
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            mime = attr.MIME_JSON
    if which == "input":
        attributes[attr.INPUT_VALUE] = text
        attributes[attr.INPUT_MIME_TYPE] = mime
    else:
        attributes[attr.OUTPUT_VALUE] = text
        attributes[attr.OUTPUT_MIME_TYPE] = mime


def _ns(ts: float) -> int:
    return int(ts * 1e9)


def _context_factory() -> Callable[[int, int, TraceState], SpanContext]:
    """Makes the sampled, local ``SpanContext`` of a new span from valid ids.

    ``SpanContext(...)`` checks the ids on every call (0.65 us a span); ours are valid
    by construction, so the tuple it would build is built directly, after checking
    here once that it is exactly what the constructor builds.
    """

    def checked(trace_id: int, span_id: int, state: TraceState) -> SpanContext:
        return SpanContext(trace_id, span_id, False, _SAMPLED, state)

    def direct(trace_id: int, span_id: int, state: TraceState) -> SpanContext:
        return tuple.__new__(SpanContext, (trace_id, span_id, False, _SAMPLED, state, True))

    probe = (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, DEFAULT_TRACE_STATE)
    made, expected = direct(*probe), checked(*probe)
    same = tuple(made) == tuple(expected) and made.is_valid and made.trace_flags.sampled
    return direct if same and made.__getnewargs__() == expected.__getnewargs__() else checked


_new_context = _context_factory()


def _span_id() -> int:
    span_id = _getrandbits(64)
    while not span_id:
        span_id = _getrandbits(64)
    return span_id


def _root_span_id(trace_id: int) -> int:
    """A session's root span id, from its trace id: a resumed session's spans find the root
    of the run that stopped to wait without anything stored but the correlation id."""
    return (trace_id & 0xFFFFFFFFFFFFFFFF) or 1


def _random_trace_id() -> int:
    trace_id = _getrandbits(128)
    while not trace_id:
        trace_id = _getrandbits(128)
    return trace_id


def _env_sampler() -> Sampler | None:
    """The sampler ``OTEL_TRACES_SAMPLER`` names, as the SDK's TracerProvider picks it."""
    try:
        from opentelemetry.sdk.trace.sampling import _get_from_env_or_default
    except ImportError:  # a later SDK: sample everything, as by default
        return None
    return _get_from_env_or_default()


def _enforced_limits(limits: SpanLimits) -> SpanLimits | None:
    """``limits`` if any is below what a span here may carry; None when none can bind."""
    counts = (limits.max_span_attributes, limits.max_event_attributes, limits.max_link_attributes)
    lengths = (limits.max_span_attribute_length, limits.max_attribute_length)
    if any(n is not None and n < MOST_ATTRIBUTES for n in counts) or any(n is not None for n in lengths):
        return limits
    if limits.max_links is not None and limits.max_links < 1:
        return limits
    return None


class ExportWatch(SpanExporter):
    """Wraps an exporter and counts the spans it delivered and failed to deliver.

    The SDK reports a failed export only as a log line (and ``force_flush`` returns
    True regardless), so this is how a caller learns that traces did not arrive.

    Args:
        exporter: The exporter to wrap.
        target: Where it sends spans, for messages (e.g. the OTLP URL).
    """

    def __init__(self, exporter: SpanExporter, target: str) -> None:
        self.exporter = exporter
        self.target = target
        self.exported = 0
        """Spans delivered."""
        self.failed = 0
        """Spans the exporter gave up on."""
        self.reason: str | None = None
        """Why the last failed export failed, in a few words."""
        self._stopped = False
        EXPORT_LOG.install()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception as error:
            self.failed += len(spans)
            self.reason = short_error(error)
            raise
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
            self.reason = getattr(self.exporter, "last_error", None) or EXPORT_LOG.last or "refused"
        return result

    def shutdown(self) -> None:
        """Stop the exporter (once): an export waiting to retry gives up at once."""
        if not self._stopped:
            self._stopped = True
            self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


@dataclass(frozen=True)
class ExportLoss:
    """Spans that did not reach one exporter's target."""

    target: str
    lost: int
    """Spans not delivered (failed, dropped, or still unsent when the tracer stopped)."""
    total: int
    """Spans the tracer handed to the exporter."""
    reason: str | None
    """Why, when the exporter said (``connection refused``, ``HTTP 405 Method Not Allowed``...)."""

    def message(self) -> str:
        """One line for the user."""
        why = self.reason or "not delivered in time"
        return f"{self.lost} of {self.total} spans were not exported to {self.target}: {why}"


def default_resource(service_name: str | None = None) -> Resource:
    """The SDK's resource (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``), with our
    service name and version where the environment names none."""
    resource = Resource.create({SERVICE_NAME: service_name} if service_name else {})
    extra: dict[str, str] = {}
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        extra[SERVICE_NAME] = DEFAULT_SERVICE_NAME
    if SERVICE_VERSION not in resource.attributes:
        extra[SERVICE_VERSION] = _package_version()
    return resource.merge(Resource(extra)) if extra else resource


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agent-playground")
    except PackageNotFoundError:
        return "0"


class _Span(ReadableSpan):
    """A span being recorded: like the SDK's own spans, a ``ReadableSpan`` whose fields
    are filled in while it is open; once ended it goes to the processors as it is and
    never changes again."""

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        start: int,
        attributes: dict[str, Any],
        resource: Resource,
        scope: InstrumentationScope,
        links: Sequence[Link],
    ) -> None:
        # ReadableSpan.__init__'s fields, set here (a test checks that they are all of
        # them): calling it with keywords costs as much again.
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = None
        self._instrumentation_scope = scope
        self._parent = parent
        self._start_time: int | None = start
        self._end_time: int | None = None
        self._attributes = attributes
        self._events: Sequence[Event] = ()
        self._links = links
        self._resource = resource
        self._status = _UNSET
        self.attrs = attributes
        """The attributes themselves, to write while the span is open (``attributes``
        is a read-only view)."""

    def add_event(self, name: str, attributes: dict[str, Any], ts: int) -> None:
        if not self._events:
            self._events = []
        self._events.append(Event(name, attributes, ts))  # type: ignore[attr-defined]

    def fail(self, description: str) -> None:
        self._status = Status(StatusCode.ERROR, description)

    def succeed(self) -> None:
        """Status OK, unless the span already failed."""
        if self._status is _UNSET:
            self._status = _OK


def _fast_spans_work() -> bool:
    """Whether :class:`_Span` is what ``ReadableSpan`` itself would make (the feature test
    of the fast path, run once at import).

    A probe with every field set (parent, attributes, an event, a link, an error status,
    times) is built both ways, ``_Span`` setting ``ReadableSpan``'s fields and the public
    ``ReadableSpan(...)`` constructor; the fast path is used only if the constructor sets
    no field ``_Span`` does not, and both read back the same through the public
    properties and ``to_json``. Otherwise every span goes through the SDK's public
    ``Tracer.start_span`` (:class:`_PublicSpan`).
    """
    try:
        trace_id, state = 0x0AF7651916CD43DD8448EB211C80319C, DEFAULT_TRACE_STATE
        context = SpanContext(trace_id, 0xB7AD6B7169203331, False, _SAMPLED, state)
        parent = SpanContext(trace_id, 0x00F067AA0BA902B7, False, _SAMPLED, state)
        link = Link(parent, {"playground.link.reason": "handoff"})
        resource = Resource({"service.name": "probe"})
        scope = InstrumentationScope(INSTRUMENTATION_NAME, "0")
        attributes: dict[str, Any] = {"a": "x", "n": 1, "f": 0.5, "t": ("p", "q"), "b": True}
        probe = _Span(
            "probe", context, parent, SpanKind.CLIENT, 10, dict(attributes), resource, scope, (link,)
        )
        probe.add_event("playground.retry_scheduled", {"attempt": 2}, 15)
        probe.fail("failed")
        probe._end_time = 20
        reference = ReadableSpan(
            name="probe",
            context=context,
            parent=parent,
            resource=resource,
            attributes=dict(attributes),
            events=(Event("playground.retry_scheduled", {"attempt": 2}, 15),),
            links=(link,),
            kind=SpanKind.CLIENT,
            status=Status(StatusCode.ERROR, "failed"),
            start_time=10,
            end_time=20,
            instrumentation_scope=scope,
        )
        return (
            set(vars(reference)) <= set(vars(probe))
            and probe.to_json() == reference.to_json()
            and (probe.context, probe.parent, probe.kind) == (context, parent, SpanKind.CLIENT)
            and (probe.resource, probe.instrumentation_scope) == (resource, scope)
            and dict(probe.attributes or {}) == attributes
            and [(e.name, dict(e.attributes or {}), e.timestamp) for e in probe.events]
            == [("playground.retry_scheduled", {"attempt": 2}, 15)]
            and (probe.start_time, probe.end_time) == (10, 20)
            and probe.status.status_code is StatusCode.ERROR
        )
    except Exception:
        log.debug("fast spans unavailable", exc_info=True)
        return False


FAST_SPANS = _fast_spans_work()
"""Whether spans are built as finished ``ReadableSpan`` records (:class:`_Span`): the
feature test's verdict. When False (or with ``PLAYGROUND_TRACING_PUBLIC_API=1``, or
``EventTracer(fast_spans=False)``), spans go through the SDK's public ``Tracer``."""


class _PublicSpan:
    """A span through the SDK's public API: started with ``Tracer.start_span`` when its
    event comes (so its children know its context), its attributes, span events and
    status written when it ends. The SDK then enforces limits and sampling itself."""

    __slots__ = ("_events", "_status", "attrs", "context", "sdk")

    def __init__(self, sdk: SdkSpan, attributes: dict[str, Any]) -> None:
        self.sdk = sdk
        self.attrs = attributes
        self.context = sdk.get_span_context()
        self._events: list[tuple[str, dict[str, Any], int]] = []
        self._status: Status | None = None

    @property
    def status(self) -> Status:
        return self._status or _UNSET

    def add_event(self, name: str, attributes: dict[str, Any], ts: int) -> None:
        self._events.append((name, attributes, ts))

    def fail(self, description: str) -> None:
        self._status = Status(StatusCode.ERROR, description)

    def succeed(self) -> None:
        if self._status is None:
            self._status = _OK

    def end(self, end: int) -> None:
        sdk = self.sdk
        sdk.set_attributes(self.attrs)
        for name, attributes, ts in self._events:
            sdk.add_event(name, attributes, timestamp=ts)
        if self._status is not None:
            sdk.set_status(self._status)
        sdk.end(end_time=end)


class _SessionIds(IdGenerator):
    """Random ids, except the root span's trace id: the session's correlation id."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self.next_trace_id = 0
        """The trace id of the next root span (0: random)."""
        self.next_span_id = 0
        """The span id of the next span (0: random)."""

    def generate_span_id(self) -> int:
        span_id, self.next_span_id = self.next_span_id, 0
        return span_id or self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        trace_id, self.next_trace_id = self.next_trace_id, 0
        return trace_id or self._random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return True  # correlation ids are 128 random bits (secrets.token_hex(16))


_AnySpan: TypeAlias = "_Span | _PublicSpan"


def _described(span: _AnySpan) -> tuple[str, SpanKind, int | None]:
    """A span's name, kind and parent span id, through the public ``ReadableSpan`` API."""
    readable = span.sdk if isinstance(span, _PublicSpan) else span
    if not isinstance(readable, ReadableSpan):  # the SDK's spans are; another API span is not
        raise TypeError(f"not a span of the OpenTelemetry SDK: {type(readable).__name__}")
    parent = readable.parent
    return readable.name, readable.kind, parent.span_id if parent is not None else None


def _parent_of(span: _AnySpan) -> int | None:
    return _described(span)[2]


@dataclass(slots=True)
class _Activation:
    span: _AnySpan
    agent: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def totals(self) -> dict[str, Any]:
        return {
            attr.USAGE_INPUT_TOKENS: self.input_tokens,
            attr.USAGE_OUTPUT_TOKENS: self.output_tokens,
            attr.COST_USD: self.cost_usd,
        }


@dataclass(slots=True)
class _Open:
    span: _AnySpan
    activation: int | None


@dataclass(slots=True)
class _Session:
    session_id: str
    trace_id: int
    trace_state: TraceState
    sampled: bool
    """The sampler's decision for the root, which holds for the whole trace."""
    root: _Activation = field(init=False)
    activations: dict[int, _Activation] = field(default_factory=dict)
    """Open activations by the ``seq`` of their agent_started."""
    activation_spans: dict[int, SpanContext] = field(default_factory=dict)
    """Every activation's span, open or ended, for links."""
    by_agent: dict[str, list[int]] = field(default_factory=dict)
    """Open activations of each agent, innermost last."""
    calls: dict[int, _Open] = field(default_factory=dict)
    """Open chat spans by the ``seq`` of their model_requested."""
    tools: dict[int, _Open] = field(default_factory=dict)
    """Open tool spans by the ``seq`` of their tool_called."""
    handoffs: dict[int, SpanContext] = field(default_factory=dict)
    responded_ns: dict[int, int] = field(default_factory=dict)
    """When each model response came, for the handoff span it led to."""
    activation_of: dict[int, int] = field(default_factory=dict)
    """Activation of the events that later events name as ``cause`` without an activation."""


class EventTracer:
    """An event sink that turns sessions into OpenTelemetry traces.

    Call it with every event of one or more sessions (the runtime does, as a sink);
    it never raises into the runtime. Each span goes to every processor's ``on_end``
    as it ends. Call :meth:`flush` (or :meth:`flush_async`) to wait for the export
    and :meth:`shutdown` when done; most callers get one from
    :func:`playground.tracing.configure_tracing`.

    The tracer uses no ``TracerProvider`` and never touches the global one, so it
    neither affects nor is affected by other OpenTelemetry users in the process.

    Args:
        processors: Span processors, each with its exporter. Only their ``on_end``,
            ``force_flush`` and ``shutdown`` are called (spans are built finished).
        capture_content: Also record prompts, replies, tool arguments and results,
            handoff payloads and error messages. Off by default: traces often leave
            the machine.
        resource: The resource of every span; defaults to :func:`default_resource`.
        watches: Exporters (wrapped in :class:`ExportWatch`) whose failures
            :meth:`export_failures` reports.
    """

    def __init__(
        self,
        processors: Sequence[SpanProcessor],
        *,
        capture_content: bool = False,
        resource: Resource | None = None,
        watches: Sequence[ExportWatch] = (),
        fast_spans: bool | None = None,
    ) -> None:
        self.capture_content = capture_content
        self.resource = resource or default_resource()
        """The resource of every span."""
        self.scope = InstrumentationScope(INSTRUMENTATION_NAME, _package_version())
        """The instrumentation scope of every span."""
        self._processors = list(processors)
        self._on_end = [processor.on_end for processor in self._processors]
        self._watches = list(watches)
        self._sampler = _env_sampler()
        limits = SpanLimits()
        self._limits = _enforced_limits(limits)
        self._max_events: int = limits.max_events if limits.max_events is not None else 1 << 62
        self.fast_spans = FAST_SPANS if fast_spans is None else fast_spans
        """Spans built as finished records (the fast path), or through the SDK's ``Tracer``."""
        self.spans_ended = 0
        """Sampled spans handed to the processors so far (what an exporter should deliver)."""
        self._ids: _SessionIds | None = None
        self._sdk_tracer: Any = None
        if not self.fast_spans:
            self._ids = _SessionIds()
            provider = TracerProvider(resource=self.resource, id_generator=self._ids, shutdown_on_exit=False)
            for processor in self._processors:
                provider.add_span_processor(processor)
            self._sdk_tracer = provider.get_tracer(INSTRUMENTATION_NAME, self.scope.version)
        # Ours rather than an SDK provider's exit hook: it also ends the open sessions' spans.
        atexit.register(self.shutdown)
        self._sessions: dict[str, _Session] = {}
        self._closed = False
        self._quiet = False
        """Rebuilding a session from its stored events (:meth:`resume`): nothing is exported."""

    # -- the sink -------------------------------------------------------------------------

    def __call__(self, event: ev.Event) -> None:
        """Record one event. Token deltas are ignored."""
        if self._closed:
            return
        try:
            # Most frequent kinds first: each kind tested before the event's own costs
            # an isinstance check (~35 ns); a match with no case for a kind fails mypy.
            match event:
                case ev.AgentStarted():
                    self._agent_started(event)
                case ev.ModelRequested():
                    self._model_requested(event)
                case ev.ModelResponded():
                    self._model_responded(event)
                case ev.AgentFinished():
                    self._agent_finished(event)
                case ev.HandoffDelivered():
                    self._handoff_delivered(event)
                case ev.ToolCalled():
                    self._tool_called(event)
                case ev.ToolReturned():
                    self._tool_returned(event)
                case ev.TokenDelta():
                    pass
                case ev.RunStarted():
                    self._run_started(event)
                case ev.RunFinished():
                    self._run_finished(event)
                case ev.RunFailed():
                    self._run_failed(event)
                case ev.ModelFailed():
                    self._model_failed(event)
                case (
                    ev.RetryScheduled()
                    | ev.FallbackUsed()
                    | ev.ValidationFailed()
                    | ev.PermissionDenied()
                    | ev.LoopDetected()
                    | ev.BudgetExceeded()
                    | ev.GuardAllowed()
                    | ev.GuardRewrote()
                    | ev.GuardDenied()
                    | ev.ApprovalRequested()
                    | ev.ApprovalDecided()
                    | ev.Escalated()
                    | ev.CheckpointReviewed()
                    | ev.OperatorActed()
                ):
                    self._span_event(event)
                case _:
                    assert_never(event)
        except Exception:  # tracing must never break a run
            log.exception(
                "tracing failed on event %s (%s) of session %s",
                getattr(event, "seq", "?"),
                getattr(event, "kind", "?"),
                getattr(event, "session_id", "?"),
            )

    @property
    def open_sessions(self) -> list[str]:
        """Sessions whose root span has not ended yet."""
        return list(self._sessions)

    def suspend(self, session_id: str, ts: float) -> None:
        """The session stopped, resumable, to wait for a person's approval: end its open
        spans (status ``waiting_approval``, not an error) and export them. :meth:`resume`
        carries the trace on when ``playground approve`` runs it on."""
        session = self._sessions.pop(session_id, None)
        if session is None or self._closed:
            return
        self._close(session, ts, None, "waiting_approval")
        root = session.root
        root.span.attrs.update(root.totals())
        root.span.attrs[attr.STATUS] = "waiting_approval"
        self._end(session, root.span, _ns(ts))

    def resume(self, events: Sequence[ev.Event], ts: float) -> None:
        """Carry on the trace of a session that stopped to wait for approval, before its
        run goes on: ``events`` (its stored events) rebuild what was open when it stopped,
        exporting nothing again; then what was open opens again as new spans, from ``ts``,
        under a root that is a child of the stopped run's root in the same trace. Feed
        only the events after ``events`` from then on.

        The waiting tool call's span is not opened again: the resumed run records that call
        anew (after ``approval_decided``). Token and cost totals on the reopened spans count
        from the resumption, so the stopped run's spans and these add up to the session."""
        if self._closed or not events or not isinstance(events[0], ev.RunStarted):
            return
        self._quiet = True
        try:
            for event in events:
                self(event)
        finally:
            self._quiet = False
        session = self._sessions.get(events[0].session_id)
        if session is None:
            return
        start = _ns(ts)
        stopped_root = _new_context(session.trace_id, _root_span_id(session.trace_id), session.trace_state)
        parent_ids = {_parent_of(act.span) for act in session.activations.values()}
        reopened: dict[int, SpanContext] = {}

        def reopen(span: _AnySpan, parent: SpanContext | None, extra: dict[str, Any]) -> _AnySpan:
            name, kind, old_parent = _described(span)
            if parent is None:
                parent = reopened.get(old_parent or 0, session.root.span.context)
            attributes = {**span.attrs, attr.RESUMED: True, **extra}
            new = self._start(session, name, parent, kind, attributes, start)
            reopened[span.context.span_id] = new.context
            return new

        root = session.root
        root.span = reopen(root.span, stopped_root, {attr.RESUMED_AFTER: events[-1].seq})
        root.input_tokens = root.output_tokens = 0
        root.cost_usd = 0.0
        # Parents before children: each was opened at its event's seq.
        opened: list[tuple[int, _Activation | _Open]] = [
            *session.activations.items(),
            *((seq, tool) for seq, tool in session.tools.items() if tool.span.context.span_id in parent_ids),
        ]
        session.calls.clear()
        session.tools = {}
        for seq, item in sorted(opened, key=lambda pair: pair[0]):
            item.span = reopen(item.span, None, {})
            if isinstance(item, _Activation):
                item.input_tokens = item.output_tokens = 0
                item.cost_usd = 0.0
                session.activation_spans[seq] = item.span.context
            else:
                session.tools[seq] = item

    def discard(self, session_id: str) -> None:
        """Forget a session without exporting what is open (a resume that did not follow
        its recording: nothing of it happened)."""
        self._sessions.pop(session_id, None)

    def export_failures(self) -> dict[str, int]:
        """Spans that could not be delivered so far, by target; empty when all arrived.

        Ask after :meth:`flush` or :meth:`shutdown` to tell the user, e.g.
        ``warning: 8 spans could not be exported to http://localhost:4318/v1/traces``.
        """
        return {w.target: w.failed for w in self._watches if w.failed}

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Export every ended span now; blocks until the exporters are done.

        Returns False if a processor did not finish in time.
        """
        deadline = time.monotonic() + timeout_s
        done = True
        for processor in self._processors:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            done = remaining_ms > 0 and processor.force_flush(remaining_ms) and done
        return done

    async def flush_async(self, timeout_s: float = 30.0) -> bool:
        """:meth:`flush` in a worker thread, so an event loop (the TUI) keeps running."""
        return await asyncio.to_thread(self.flush, timeout_s)

    def shutdown(self) -> None:
        """End the spans of sessions still open (as interrupted), export, and stop.

        The tracer records nothing afterwards.
        """
        if self._closed:
            return
        self._closed = True  # ignore whatever comes later
        atexit.unregister(self.shutdown)
        now = time.time()
        for session in list(self._sessions.values()):
            self._interrupt(session, now, "the playground stopped before the run ended")
        self._sessions.clear()
        for processor in self._processors:
            processor.shutdown()

    async def shutdown_async(self) -> None:
        """:meth:`shutdown` in a worker thread."""
        await asyncio.to_thread(self.shutdown)

    def finish(self, timeout_s: float = 2.0) -> list[ExportLoss]:
        """Stop within ``timeout_s``: end open sessions, give the exporters that long to
        deliver, then stop them without waiting for the rest (a dead collector does not
        hold the exit for the exporter's retries). Returns what did not arrive.

        What :meth:`shutdown` does, bounded in time: the SDK's batch processor exports on
        the flushing thread and retries for up to 10 s, so the flush and the stop run on
        daemon threads that are waited for at most ``timeout_s`` in all.
        """
        if not self._closed:
            deadline = time.monotonic() + timeout_s
            self._closed = True
            atexit.unregister(self.shutdown)
            now = time.time()
            for session in list(self._sessions.values()):
                self._interrupt(session, now, "the playground stopped before the run ended")
            self._sessions.clear()
            flushing = threading.Thread(
                target=self.flush, args=(timeout_s,), name="playground-trace-flush", daemon=True
            )
            flushing.start()
            flushing.join(timeout_s)
            for watch in self._watches:
                watch.shutdown()  # a retry waiting stops now
            stopping = threading.Thread(
                target=self._shutdown_processors,
                name="playground-trace-stop",
                daemon=True,
            )
            stopping.start()
            stopping.join(max(0.1, deadline - time.monotonic()))
        return self.export_losses()

    def _shutdown_processors(self) -> None:
        for processor in self._processors:
            processor.shutdown()

    def export_losses(self) -> list[ExportLoss]:
        """Per exporter watched, the spans it has not delivered (none: an empty list)."""
        losses = []
        for watch in self._watches:
            lost = self.spans_ended - watch.exported
            if lost > 0:
                losses.append(ExportLoss(watch.target, lost, self.spans_ended, watch.reason))
        return losses

    # -- spans as records -----------------------------------------------------------------

    def _start(
        self,
        session: _Session,
        name: str,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        start: int,
        links: Sequence[Link] = (),
        span_id: int = 0,
    ) -> _AnySpan:
        if self._sdk_tracer is None:
            context = _new_context(session.trace_id, span_id or _span_id(), session.trace_state)
            return _Span(name, context, parent, kind, start, attributes, self.resource, self.scope, links)
        assert self._ids is not None
        self._ids.next_span_id = span_id
        if parent is None:  # a root: no parent, whatever span the caller has current
            self._ids.next_trace_id = session.trace_id
            where = Context()
        else:
            where = set_span_in_context(NonRecordingSpan(parent))
        sdk = self._sdk_tracer.start_span(
            name,
            context=where,
            kind=kind,
            attributes=attributes,
            links=links,
            start_time=start,
            record_exception=False,
            set_status_on_exception=False,
        )
        return _PublicSpan(sdk, attributes)

    def _end(self, session: _Session, span: _AnySpan, end: int) -> None:
        """The span ended: hand it to the processors as the SDK's span would."""
        if self._quiet:
            return
        if isinstance(span, _PublicSpan):
            self._end_public(span, end)
            return
        if not session.sampled:
            return
        self.spans_ended += 1
        span._end_time = end
        if redact.current():  # no key leaves in a span: scrubbed as the store scrubs
            redact.scrub_attributes(span.attrs)
            for event in span._events:
                if isinstance(event.attributes, dict):
                    redact.scrub_attributes(event.attributes)
            description = span.status.description
            if description and redact.scrub(description) != description:
                span.fail(redact.scrub(description))
        if self._limits is not None or len(span._events) > self._max_events:
            span._attributes, span._events, span._links = self._bounded(span)
        for on_end in self._on_end:
            on_end(span)

    def _end_public(self, span: _PublicSpan, end: int) -> None:
        if not span.sdk.is_recording():  # not sampled
            return
        self.spans_ended += 1
        if redact.current():  # no key leaves in a span: scrubbed as the store scrubs
            redact.scrub_attributes(span.attrs)
            for _, attributes, _ in span._events:
                redact.scrub_attributes(attributes)
            description = span.status.description
            if description and redact.scrub(description) != description:
                span.fail(redact.scrub(description))
        span.end(end)

    def _bounded(self, span: _Span) -> tuple[BoundedAttributes, BoundedList[Event], BoundedList[Link]]:
        """The span's data under span limits lower than a span here may need (rare)."""
        limits = self._limits or SpanLimits()
        attributes = BoundedAttributes(
            limits.max_span_attributes,
            span.attrs,
            immutable=True,
            max_value_len=limits.max_span_attribute_length,
        )
        events: BoundedList[Event] = BoundedList(limits.max_events)
        for event in span.events:
            bounded = BoundedAttributes(
                limits.max_event_attributes,
                event.attributes,
                immutable=True,
                max_value_len=limits.max_attribute_length,
            )
            events.append(Event(event.name, bounded, event.timestamp))
        links: BoundedList[Link] = BoundedList(limits.max_links)
        for link in span.links:
            bounded = BoundedAttributes(
                limits.max_link_attributes,
                link.attributes,
                immutable=True,
                max_value_len=limits.max_attribute_length,
            )
            links.append(Link(link.context, bounded))
        return attributes, events, links

    # -- helpers --------------------------------------------------------------------------

    def _step_attributes(self, event: ev.Event, operation: str | None) -> dict[str, Any]:
        # Every attribute costs to record and to encode for OTLP, so a step span
        # carries what identifies it and leaves the rest (session, version) to its
        # activation and root.
        if operation is not None and event.agent is not None and event.step is not None:
            return {  # the usual case, in one go
                attr.EVENT_SEQ: event.seq,
                attr.OI_SPAN_KIND: _OI_KINDS[operation],
                attr.GEN_AI_OPERATION_NAME: operation,
                attr.GEN_AI_CONVERSATION_ID: event.session_id,
                attr.OI_SESSION_ID: event.session_id,
                attr.GEN_AI_AGENT_NAME: event.agent,
                attr.STEP: event.step,
            }
        attributes: dict[str, Any] = {
            attr.EVENT_SEQ: event.seq,
            attr.OI_SPAN_KIND: _OI_KINDS[operation],
        }
        if operation is not None:
            attributes[attr.GEN_AI_OPERATION_NAME] = operation
        attributes[attr.GEN_AI_CONVERSATION_ID] = event.session_id
        attributes[attr.OI_SESSION_ID] = event.session_id
        if event.agent is not None:
            attributes[attr.GEN_AI_AGENT_NAME] = event.agent
        if event.step is not None:
            attributes[attr.STEP] = event.step
        return attributes

    def _owner(self, session: _Session, event: ev.Event) -> _Activation:
        """The activation an event belongs to, even when the event does not name it."""
        act = event.activation
        if act is None and event.cause is not None:
            act = session.activation_of.get(event.cause)
        if act is None and event.agent is not None:
            open_ = session.by_agent.get(event.agent)
            if open_:
                act = open_[-1]
        owner = session.activations.get(act) if act is not None else None
        return owner if owner is not None else session.root

    def _trace_id(self, correlation_id: str) -> int:
        try:
            trace_id = int(correlation_id, 16) if len(correlation_id) == 32 else 0
        except ValueError:
            trace_id = 0
        if not trace_id:
            log.warning("correlation id %r is not a trace id; the trace gets a random one", correlation_id)
            trace_id = _random_trace_id()
        return trace_id

    def _interrupt(self, session: _Session, ts: float, why: str) -> None:
        """End a session that will get no more events."""
        self._close(session, ts, why, "interrupted")
        root = session.root
        root.span.attrs.update({attr.STATUS: "interrupted", **root.totals()})
        root.span.fail(why)
        self._end(session, root.span, _ns(ts))

    def _close(self, session: _Session, ts: float, error: str | None, outcome: str) -> None:
        """End whatever is still open in a session that ended (innermost first)."""
        end = _ns(ts)
        for open_ in (*session.tools.values(), *session.calls.values()):
            if error is not None:
                open_.span.fail(f"unfinished: {error}")
            self._end(session, open_.span, end)
        session.tools.clear()
        session.calls.clear()
        for seq in sorted(session.activations, reverse=True):
            act = session.activations[seq]
            act.span.attrs[attr.AGENT_OUTCOME] = outcome
            act.span.attrs[attr.COST_USD] = act.cost_usd
            if error is not None:
                act.span.fail(error)
            self._end(session, act.span, end)
        session.activations.clear()
        session.by_agent.clear()

    # -- spans ----------------------------------------------------------------------------

    def _run_started(self, event: ev.RunStarted) -> None:
        old = self._sessions.pop(event.session_id, None)
        if old is not None:  # the same session id started again: end what was open
            self._interrupt(old, event.ts, "the session started again")
        attributes: dict[str, Any] = {
            attr.OI_SPAN_KIND: attr.OI_CHAIN,
            attr.GEN_AI_OPERATION_NAME: attr.OP_INVOKE_WORKFLOW,
            attr.GEN_AI_WORKFLOW_NAME: event.system,
            attr.GEN_AI_CONVERSATION_ID: event.session_id,
            attr.OI_SESSION_ID: event.session_id,
            attr.SESSION_ID: event.session_id,
        }
        if event.versions:
            attributes[attr.VERSIONS] = tuple(f"{a}={v}" for a, v in event.versions.items())
        if event.parent_session_id is not None:
            attributes[attr.PARENT_SESSION_ID] = event.parent_session_id
        if event.forked_from_step is not None:
            attributes[attr.FORKED_FROM_STEP] = event.forked_from_step
        if self.capture_content:
            attributes[attr.INPUT] = event.input
            attributes[attr.GEN_AI_INPUT_MESSAGES] = _content.user_message(event.input)
            _value(attributes, "input", event.input)
        name = f"{attr.OP_INVOKE_WORKFLOW} {event.system}"
        trace_id = self._trace_id(event.correlation_id)
        sampled, state = True, DEFAULT_TRACE_STATE
        if self._sampler is not None and self._sdk_tracer is None:
            # An empty context: the run is a root even if the caller has a span active.
            decision = self._sampler.should_sample(Context(), trace_id, name, SpanKind.INTERNAL, attributes)
            sampled = decision.decision is Decision.RECORD_AND_SAMPLE
            state = decision.trace_state or DEFAULT_TRACE_STATE
        session = _Session(event.session_id, trace_id, state, sampled)
        span = self._start(
            session, name, None, SpanKind.INTERNAL, attributes, _ns(event.ts), span_id=_root_span_id(trace_id)
        )
        session.root = _Activation(span, "")
        self._sessions[event.session_id] = session

    def _agent_started(self, event: ev.AgentStarted) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        parent = session.root.span.context
        links: tuple[Link, ...] = ()
        if event.parent_activation is not None:
            # A delegated worker runs inside its supervisor's tool call for it.
            tool = session.tools.get(event.cause) if event.cause is not None else None
            supervisor = session.activations.get(event.parent_activation)
            if tool is not None:
                parent = tool.span.context
                tool.span.attrs[attr.DELEGATION] = True
            elif supervisor is not None:
                parent = supervisor.span.context
        elif event.cause is not None and event.reason != "entry":
            # A handoff, escalation or next stage: a sibling under the root, linked to
            # what started it.
            cause = session.handoffs.get(event.cause)
            if cause is None:
                act = session.activation_of.get(event.cause)
                cause = session.activation_spans.get(act) if act is not None else None
            if cause is not None:
                links = (Link(cause, {attr.LINK_REASON: event.reason}),)
        attributes = self._step_attributes(event, attr.OP_INVOKE_AGENT)
        attributes[attr.AGENT_REASON] = event.reason
        if event.version is not None:
            attributes[attr.AGENT_VERSION] = event.version
        if event.model:
            attributes[attr.GEN_AI_REQUEST_MODEL] = event.model
        if event.parent_activation is not None:
            attributes[attr.PARENT_ACTIVATION] = event.parent_activation
        attributes[attr.OI_AGENT_NAME] = event.agent or ""
        if self.capture_content:
            attributes[attr.GEN_AI_INPUT_MESSAGES] = _content.user_message(event.incoming)
            incoming = event.incoming if event.context is None else _content.dumps(event.context)
            _value(attributes, "input", incoming)
        agent = event.agent or ""
        span = self._start(
            session,
            f"{attr.OP_INVOKE_AGENT} {agent}",
            parent,
            SpanKind.INTERNAL,
            attributes,
            _ns(event.ts),
            links,
        )
        session.activations[event.seq] = _Activation(span, agent)
        session.activation_spans[event.seq] = span.context
        session.by_agent.setdefault(agent, []).append(event.seq)

    def _agent_finished(self, event: ev.AgentFinished) -> None:
        session = self._sessions.get(event.session_id)
        if session is None or event.activation is None:
            return
        session.activation_of[event.seq] = event.activation
        act = session.activations.pop(event.activation, None)
        if act is None:
            return
        open_ = session.by_agent.get(act.agent)
        if open_ and event.activation in open_:
            open_.remove(event.activation)
        attributes = act.span.attrs
        attributes[attr.AGENT_OUTCOME] = event.outcome
        attributes[attr.COST_USD] = act.cost_usd
        if event.handoff_to is not None:
            attributes[attr.HANDOFF_TARGET] = event.handoff_to
        if self.capture_content and event.output:
            attributes[attr.GEN_AI_OUTPUT_MESSAGES] = _content.output_message(event.output)
            _value(attributes, "output", event.output)
        if event.outcome == "failed":
            act.span.fail(f"agent {act.agent!r} failed")
        elif event.outcome != "aborted":
            act.span.succeed()
        self._end(session, act.span, _ns(event.ts))

    def _model_requested(self, event: ev.ModelRequested) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        owner = self._owner(session, event)
        attributes = self._step_attributes(event, attr.OP_CHAT)
        attributes[attr.GEN_AI_PROVIDER_NAME] = _provider_name(event.model)
        attributes[attr.GEN_AI_REQUEST_MODEL] = event.model
        # Phoenix derives llm.provider from gen_ai.provider.name; llm.model_name it prices by.
        attributes[attr.LLM_MODEL_NAME] = event.model
        if event.attempt > 1:
            attributes[attr.ATTEMPT] = event.attempt
        if self.capture_content:
            system, messages = _content.split_messages(event.messages)
            if system is not None:
                attributes[attr.GEN_AI_SYSTEM_INSTRUCTIONS] = system
            attributes[attr.GEN_AI_INPUT_MESSAGES] = messages
            attributes[attr.INPUT_VALUE] = _content.dumps(event.messages)
            attributes[attr.INPUT_MIME_TYPE] = attr.MIME_JSON
        span = self._start(
            session,
            f"{attr.OP_CHAT} {event.model}",
            owner.span.context,
            SpanKind.CLIENT,
            attributes,
            _ns(event.ts),
        )
        session.calls[event.seq] = _Open(span, event.activation)

    def _model_responded(self, event: ev.ModelResponded) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        end = _ns(event.ts)
        if event.activation is not None:
            session.activation_of[event.seq] = event.activation
        session.responded_ns[event.seq] = end
        call = session.calls.pop(event.cause, None) if event.cause is not None else None
        if call is None:
            return
        attributes = call.span.attrs
        attributes[attr.GEN_AI_RESPONSE_MODEL] = event.model
        attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] = event.input_tokens
        attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] = event.output_tokens
        attributes[attr.COST_USD] = event.cost_usd
        if event.model != attributes.get(attr.LLM_MODEL_NAME):
            attributes[attr.LLM_MODEL_NAME] = event.model
        attributes[attr.LLM_TOKENS_PROMPT] = event.input_tokens
        attributes[attr.LLM_TOKENS_COMPLETION] = event.output_tokens
        attributes[attr.LLM_TOKENS_TOTAL] = event.input_tokens + event.output_tokens
        attributes[attr.LLM_COST_TOTAL] = event.cost_usd
        if event.first_token_ms is not None:
            attributes[attr.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = event.first_token_ms / 1000
        if event.retry_of is not None:
            attributes[attr.RETRY_OF] = event.retry_of
        if self.capture_content:
            attributes[attr.GEN_AI_OUTPUT_MESSAGES] = _content.output_message(event.text, event.tool_calls)
            if event.tool_calls:
                attributes[attr.OUTPUT_VALUE] = _content.dumps(
                    {"content": event.text, "tool_calls": event.tool_calls}
                )
                attributes[attr.OUTPUT_MIME_TYPE] = attr.MIME_JSON
            else:
                attributes[attr.OUTPUT_VALUE] = event.text
                attributes[attr.OUTPUT_MIME_TYPE] = attr.MIME_TEXT
        call.span.succeed()
        self._end(session, call.span, end)
        act = session.activations.get(call.activation) if call.activation else None
        for totals in (act, session.root) if act is not None else (session.root,):
            totals.input_tokens += event.input_tokens
            totals.output_tokens += event.output_tokens
            totals.cost_usd += event.cost_usd

    def _model_failed(self, event: ev.ModelFailed) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        call = session.calls.pop(event.cause, None) if event.cause is not None else None
        if call is None:
            return
        call.span.attrs[attr.ERROR_TYPE] = event.error_type
        call.span.attrs[attr.RETRYABLE] = event.retryable
        # A provider's message may quote the request: only with content capture.
        if self.capture_content:
            description = f"{event.error_type}: {event.message}"
        else:
            description = f"{event.error_type} (agent {event.agent!r}, model {event.model!r})"
        call.span.fail(description)
        self._end(session, call.span, _ns(event.ts))

    def _tool_called(self, event: ev.ToolCalled) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        owner = self._owner(session, event)
        attributes = self._step_attributes(event, attr.OP_EXECUTE_TOOL)
        attributes[attr.GEN_AI_TOOL_NAME] = event.tool
        attributes[attr.GEN_AI_TOOL_CALL_ID] = event.call_id
        attributes[attr.OI_TOOL_NAME] = event.tool
        if self.capture_content:
            arguments = _content.dumps(event.args)
            attributes[attr.GEN_AI_TOOL_CALL_ARGUMENTS] = arguments
            attributes[attr.INPUT_VALUE] = arguments
            attributes[attr.INPUT_MIME_TYPE] = attr.MIME_JSON
        span = self._start(
            session,
            f"{attr.OP_EXECUTE_TOOL} {event.tool}",
            owner.span.context,
            SpanKind.INTERNAL,
            attributes,
            _ns(event.ts),
        )
        session.tools[event.seq] = _Open(span, event.activation)

    def _tool_returned(self, event: ev.ToolReturned) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        tool = session.tools.pop(event.cause, None) if event.cause is not None else None
        if tool is None:
            return
        if self.capture_content:
            tool.span.attrs[attr.GEN_AI_TOOL_CALL_RESULT] = event.result
            _value(tool.span.attrs, "output", event.result)
        if event.error is not None:
            # The engine writes "ExceptionType: message"; the message may quote the
            # arguments, so it is recorded only with content capture.
            head, colon, _ = event.error.partition(":")
            error_type = head.strip() if colon and head.strip() else "tool_error"
            tool.span.attrs[attr.ERROR_TYPE] = error_type
            if self.capture_content:
                description = event.error
            else:
                description = f"{error_type} (tool {event.tool!r}, agent {event.agent!r})"
            tool.span.fail(description)
        else:
            tool.span.succeed()
        self._end(session, tool.span, _ns(event.ts))

    def _handoff_delivered(self, event: ev.HandoffDelivered) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        owner = self._owner(session, event)
        end = _ns(event.ts)
        # From the model's request to hand off to the delivery: validation and any
        # debugger hold (an operator editing the context) are part of the handoff.
        start = session.responded_ns.get(event.cause, end) if event.cause is not None else end
        attributes = self._step_attributes(event, None)
        attributes[attr.HANDOFF_SOURCE] = event.source
        attributes[attr.HANDOFF_TARGET] = event.target
        attributes[attr.HANDOFF_PAYLOAD_TOKENS] = event.payload_tokens
        attributes[attr.HANDOFF_HISTORY_TOKENS] = event.history_tokens
        if event.history != "none":
            attributes[attr.HANDOFF_HISTORY] = event.history
        if event.edited:
            attributes[attr.HANDOFF_EDITED] = True
        if event.payload_schema:
            attributes[attr.HANDOFF_SCHEMA] = event.payload_schema
        if self.capture_content:
            payload = _content.dumps(event.payload)
            attributes[attr.HANDOFF_PAYLOAD] = payload
            attributes[attr.INPUT_VALUE] = payload
            attributes[attr.INPUT_MIME_TYPE] = attr.MIME_JSON
        span = self._start(
            session,
            f"handoff {event.source} -> {event.target}",
            owner.span.context,
            SpanKind.INTERNAL,
            attributes,
            min(start, end),
        )
        span.succeed()
        self._end(session, span, end)
        session.handoffs[event.seq] = span.context

    def _run_finished(self, event: ev.RunFinished) -> None:
        session = self._sessions.pop(event.session_id, None)
        if session is None:
            return
        self._close(session, event.ts, None, "unfinished")
        root = session.root
        attributes = root.span.attrs
        attributes.update(root.totals())
        attributes[attr.STATUS] = "completed"
        attributes[attr.PATH] = tuple(event.path)
        if self.capture_content:
            attributes[attr.OUTPUT] = event.output
            attributes[attr.GEN_AI_OUTPUT_MESSAGES] = _content.output_message(event.output)
            _value(attributes, "output", event.output)
        root.span.succeed()
        self._end(session, root.span, _ns(event.ts))

    def _run_failed(self, event: ev.RunFailed) -> None:
        session = self._sessions.pop(event.session_id, None)
        if session is None:
            return
        # The message may quote what the model said: only with content capture.
        if self.capture_content:
            description = f"{event.error_type}: {event.message}"
        elif event.manifested is not None:
            description = f"{event.error_type} (agent {event.manifested!r})"
        else:
            description = event.error_type
        self._close(session, event.ts, description, event.status)
        root = session.root
        attributes = root.span.attrs
        attributes.update(root.totals())
        attributes[attr.STATUS] = event.status
        attributes[attr.PATH] = tuple(event.path)
        attributes[attr.ERROR_TYPE] = event.error_type
        if event.origin is not None:
            attributes[attr.ERROR_ORIGIN] = event.origin
        if event.manifested is not None:
            attributes[attr.ERROR_MANIFESTED] = event.manifested
        root.span.fail(description)
        self._end(session, root.span, _ns(event.ts))

    # -- span events ----------------------------------------------------------------------

    def _span_event(self, event: _SpanEvent) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        owner = self._owner(session, event)
        if isinstance(event, ev.LoopDetected | ev.Escalated):
            # Later events name these as their cause without naming an activation.
            for seq, act in session.activations.items():
                if act is owner:
                    session.activation_of[event.seq] = seq
                    break
        attributes: dict[str, Any] = {attr.EVENT_SEQ: event.seq}
        if event.step is not None:
            attributes[attr.STEP] = event.step
        attributes.update(self._event_attributes(event))
        owner.span.add_event(f"playground.{event.kind}", attributes, _ns(event.ts))

    def _event_attributes(self, event: _SpanEvent) -> dict[str, Any]:
        content = self.capture_content
        match event:
            case ev.RetryScheduled():
                return {
                    attr.GEN_AI_REQUEST_MODEL: event.model,
                    attr.ATTEMPT: event.attempt,
                    "playground.retry.delay_s": event.delay_s,
                }
            case ev.FallbackUsed():
                return {
                    "playground.fallback.from_model": event.from_model,
                    "playground.fallback.to_model": event.to_model,
                }
            case ev.ValidationFailed():
                found = {
                    "playground.validation.what": event.what,
                    "playground.validation.errors": event.errors,
                    "playground.validation.attempt": event.attempt,
                }
                if event.target is not None:
                    found["playground.validation.target"] = event.target
                return found
            case ev.PermissionDenied():
                found = {
                    attr.GEN_AI_TOOL_NAME: event.tool,
                    attr.GEN_AI_TOOL_CALL_ID: event.call_id,
                    "playground.permission.allowed": tuple(event.allowed),
                }
                if content:
                    found[attr.GEN_AI_TOOL_CALL_ARGUMENTS] = event.args
                return found
            case ev.LoopDetected():
                return {
                    "playground.loop.reason": event.reason,
                    "playground.loop.edge": tuple(event.edge),
                    "playground.loop.policy": event.policy,
                    "playground.loop.kind": event.loop or "",
                    "playground.loop.cycle": tuple(event.cycle),
                }
            case ev.GuardAllowed():
                return {"playground.guard.name": event.guard, "playground.guard.target": event.target}
            case ev.GuardRewrote():
                return {
                    "playground.guard.name": event.guard,
                    "playground.guard.target": event.target,
                    "playground.guard.changed": tuple(event.changed),
                    "playground.guard.history_changed": event.history_changed,
                }
            case ev.ApprovalRequested():
                return {"playground.approval.tool": event.tool}
            case ev.ApprovalDecided():
                return {
                    "playground.approval.tool": event.tool,
                    "playground.approval.verdict": event.verdict,
                    "playground.approval.edited": event.edited,
                }
            case ev.GuardDenied():
                return {
                    "playground.guard.name": event.guard,
                    "playground.guard.target": event.target,
                    "playground.guard.reason": event.reason,
                }
            case ev.BudgetExceeded():
                return {
                    "playground.budget.scope": event.scope,
                    "playground.budget.limit": event.limit,
                    "playground.budget.allowed": event.allowed,
                    "playground.budget.spent": event.spent,
                    "playground.budget.policy": event.policy,
                }
            case ev.Escalated():
                return {
                    "playground.escalation.target": event.target,
                    "playground.escalation.reason": event.reason,
                }
            case ev.CheckpointReviewed():
                found = {
                    "playground.review.worker": event.worker,
                    "playground.review.verdict": event.verdict,
                    "playground.review.round": event.round,
                }
                if content and event.feedback:
                    found["playground.review.feedback"] = event.feedback
                return found
            case ev.OperatorActed():
                found = {
                    "playground.operator.action": event.action,
                    "playground.operator.gate": event.gate,
                }
                step = event.detail.get("step")
                if isinstance(step, int):
                    found["playground.operator.step"] = step
                if content and event.detail:
                    found["playground.operator.detail"] = _content.dumps(event.detail)
                return found
            case _:
                assert_never(event)
