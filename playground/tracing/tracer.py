"""Events -> OpenTelemetry spans, with the real OpenTelemetry SDK.

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

The trace id is the session's correlation id, set through the provider's
:class:`CorrelationIdGenerator`, so a correlation id shown in the TUI or printed
by ``playground run --json`` finds the trace in any backend. Span times are the
events' ``ts``. See ``playground/tracing/__init__.py`` for the attribute list.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode

from playground.engine import events as ev
from playground.tracing import _content
from playground.tracing import attributes as attr

log = logging.getLogger("playground.tracing")

DEFAULT_SERVICE_NAME = "agent-playground"
"""``service.name`` unless ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` names one."""
INSTRUMENTATION_NAME = "playground.tracing"
"""The instrumentation scope of every span."""

_INVALID_TRACE_ID = trace.INVALID_TRACE_ID
_INVALID_SPAN_ID = trace.INVALID_SPAN_ID

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


def _ns(ts: float) -> int:
    return int(ts * 1e9)


class CorrelationIdGenerator(IdGenerator):
    """Makes a session's correlation id the trace id of its root span.

    :meth:`EventTracer` calls :meth:`expect` just before it starts a root span; the
    SDK asks for a trace id only for root spans (children inherit their parent's),
    so no other span can take it. Span ids are random.
    """

    def __init__(self) -> None:
        self._pending = threading.local()

    def expect(self, trace_id: int) -> None:
        """Use ``trace_id`` for the next root span started on this thread (0: random)."""
        self._pending.trace_id = trace_id

    def generate_trace_id(self) -> int:
        trace_id: int = getattr(self._pending, "trace_id", 0)
        if trace_id:
            self._pending.trace_id = 0
            return trace_id
        trace_id = random.getrandbits(128)
        while trace_id == _INVALID_TRACE_ID:
            trace_id = random.getrandbits(128)
        return trace_id

    def generate_span_id(self) -> int:
        span_id = random.getrandbits(64)
        while span_id == _INVALID_SPAN_ID:
            span_id = random.getrandbits(64)
        return span_id

    def is_trace_id_random(self) -> bool:
        # Correlation ids are 128 random bits (secrets.token_hex(16)).
        return True


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

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception:
            self.failed += len(spans)
            raise
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


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


@dataclass(slots=True)
class _Activation:
    span: Span
    context: Context
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
    span: Span
    context: Context | None
    activation: int | None


@dataclass(slots=True)
class _Session:
    session_id: str
    root: _Activation
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
    it never raises into the runtime. Spans are exported through ``processors`` as
    they end. Call :meth:`flush` (or :meth:`flush_async`) at the end of a run and
    :meth:`shutdown` when done; most callers get one from
    :func:`playground.tracing.configure_tracing`.

    The tracer keeps its own :class:`TracerProvider` and never touches the global
    one, so it neither affects nor is affected by other OpenTelemetry users in
    the process.

    Args:
        processors: Span processors, each with its exporter.
        capture_content: Also record prompts, replies, tool arguments and results,
            and handoff payloads. Off by default: traces often leave the machine.
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
    ) -> None:
        self.capture_content = capture_content
        self._watches = list(watches)
        self._ids = CorrelationIdGenerator()
        self.provider = TracerProvider(
            resource=resource or default_resource(), id_generator=self._ids, shutdown_on_exit=False
        )
        """The tracer's own provider (not the global one)."""
        # Ours rather than the provider's exit hook: it also ends the open sessions' spans.
        atexit.register(self.shutdown)
        for processor in processors:
            self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer(INSTRUMENTATION_NAME, _package_version())
        self._sessions: dict[str, _Session] = {}
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            ev.RunStarted: self._run_started,
            ev.AgentStarted: self._agent_started,
            ev.ModelRequested: self._model_requested,
            ev.ModelResponded: self._model_responded,
            ev.ModelFailed: self._model_failed,
            ev.ToolCalled: self._tool_called,
            ev.ToolReturned: self._tool_returned,
            ev.HandoffDelivered: self._handoff_delivered,
            ev.AgentFinished: self._agent_finished,
            ev.RunFinished: self._run_finished,
            ev.RunFailed: self._run_failed,
            ev.RetryScheduled: self._span_event,
            ev.FallbackUsed: self._span_event,
            ev.ValidationFailed: self._span_event,
            ev.PermissionDenied: self._span_event,
            ev.LoopDetected: self._span_event,
            ev.Escalated: self._span_event,
            ev.CheckpointReviewed: self._span_event,
            ev.OperatorActed: self._span_event,
        }

    # -- the sink -------------------------------------------------------------------------

    def __call__(self, event: Any) -> None:
        """Record one event. Token deltas and unknown kinds are ignored."""
        handler = self._handlers.get(type(event))
        if handler is None:
            return
        try:
            handler(event)
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
        return self.provider.force_flush(int(timeout_s * 1000))

    async def flush_async(self, timeout_s: float = 30.0) -> bool:
        """:meth:`flush` in a worker thread, so an event loop (the TUI) keeps running."""
        return await asyncio.to_thread(self.flush, timeout_s)

    def shutdown(self) -> None:
        """End the spans of sessions still open (as interrupted), export, and stop.

        The tracer records nothing afterwards.
        """
        if not self._handlers:
            return
        self._handlers = {}  # ignore whatever comes later
        atexit.unregister(self.shutdown)
        now = time.time()
        for session in list(self._sessions.values()):
            self._interrupt(session, now, "the playground stopped before the run ended")
        self._sessions.clear()
        self.provider.shutdown()

    async def shutdown_async(self) -> None:
        """:meth:`shutdown` in a worker thread."""
        await asyncio.to_thread(self.shutdown)

    # -- helpers --------------------------------------------------------------------------

    def _step_attributes(self, event: Any, operation: str | None) -> dict[str, Any]:
        # Every attribute costs about 3 us per span to record and encode for OTLP
        # (the encoder is pure Python), so a step span carries what identifies it
        # and leaves the rest (session, version) to its activation and root.
        attributes: dict[str, Any] = {attr.EVENT_SEQ: event.seq}
        if operation is not None:
            attributes[attr.GEN_AI_OPERATION_NAME] = operation
            attributes[attr.GEN_AI_CONVERSATION_ID] = event.session_id
            if event.agent is not None:
                attributes[attr.GEN_AI_AGENT_NAME] = event.agent
        if event.step is not None:
            attributes[attr.STEP] = event.step
        return attributes

    def _owner(self, session: _Session, event: Any) -> _Activation:
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
        return trace_id

    def _interrupt(self, session: _Session, ts: float, why: str) -> None:
        """End a session that will get no more events."""
        self._close(session, ts, why, "interrupted")
        root = session.root
        root.span.set_attributes({attr.STATUS: "interrupted", **root.totals()})
        root.span.set_status(Status(StatusCode.ERROR, why))
        root.span.end(_ns(ts))

    def _close(self, session: _Session, ts: float, error: str | None, outcome: str) -> None:
        """End whatever is still open in a session that ended (innermost first)."""
        end = _ns(ts)
        for open_ in (*session.tools.values(), *session.calls.values()):
            if error is not None:
                open_.span.set_status(Status(StatusCode.ERROR, f"unfinished: {error}"))
            open_.span.end(end)
        session.tools.clear()
        session.calls.clear()
        for seq in sorted(session.activations, reverse=True):
            act = session.activations[seq]
            act.span.set_attributes({attr.AGENT_OUTCOME: outcome, attr.COST_USD: act.cost_usd})
            if error is not None:
                act.span.set_status(Status(StatusCode.ERROR, error))
            act.span.end(end)
        session.activations.clear()
        session.by_agent.clear()

    # -- spans ----------------------------------------------------------------------------

    def _run_started(self, event: ev.RunStarted) -> None:
        old = self._sessions.pop(event.session_id, None)
        if old is not None:  # the same session id started again: end what was open
            self._interrupt(old, event.ts, "the session started again")
        attributes: dict[str, Any] = {
            attr.GEN_AI_OPERATION_NAME: attr.OP_INVOKE_WORKFLOW,
            attr.GEN_AI_WORKFLOW_NAME: event.system,
            attr.GEN_AI_CONVERSATION_ID: event.session_id,
            attr.SESSION_ID: event.session_id,
        }
        if event.versions:
            attributes[attr.VERSIONS] = [f"{a}={v}" for a, v in event.versions.items()]
        if event.parent_session_id is not None:
            attributes[attr.PARENT_SESSION_ID] = event.parent_session_id
        if event.forked_from_step is not None:
            attributes[attr.FORKED_FROM_STEP] = event.forked_from_step
        if self.capture_content:
            attributes[attr.INPUT] = event.input
            attributes[attr.GEN_AI_INPUT_MESSAGES] = _content.user_message(event.input)
        self._ids.expect(self._trace_id(event.correlation_id))
        try:
            # An empty context: the run is a root even if the caller has a span active.
            span = self._tracer.start_span(
                f"{attr.OP_INVOKE_WORKFLOW} {event.system}",
                context=Context(),
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                start_time=_ns(event.ts),
            )
        finally:
            self._ids.expect(0)
        root = _Activation(span, trace.set_span_in_context(span, Context()), "")
        self._sessions[event.session_id] = _Session(event.session_id, root)

    def _agent_started(self, event: ev.AgentStarted) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        parent = session.root.context
        links: list[Link] = []
        if event.parent_activation is not None:
            # A delegated worker runs inside its supervisor's tool call for it.
            tool = session.tools.get(event.cause) if event.cause is not None else None
            supervisor = session.activations.get(event.parent_activation)
            if tool is not None and tool.context is not None:
                parent = tool.context
                tool.span.set_attribute(attr.DELEGATION, True)
            elif supervisor is not None:
                parent = supervisor.context
        elif event.cause is not None and event.reason != "entry":
            # A handoff, escalation or next stage: a sibling under the root, linked to
            # what started it.
            cause = session.handoffs.get(event.cause)
            if cause is None:
                act = session.activation_of.get(event.cause)
                cause = session.activation_spans.get(act) if act is not None else None
            if cause is not None:
                links.append(Link(cause, {attr.LINK_REASON: event.reason}))
        attributes = self._step_attributes(event, attr.OP_INVOKE_AGENT)
        attributes[attr.AGENT_REASON] = event.reason
        if event.version is not None:
            attributes[attr.AGENT_VERSION] = event.version
        if event.model:
            attributes[attr.GEN_AI_REQUEST_MODEL] = event.model
        if event.parent_activation is not None:
            attributes[attr.PARENT_ACTIVATION] = event.parent_activation
        if self.capture_content:
            attributes[attr.GEN_AI_INPUT_MESSAGES] = _content.user_message(event.incoming)
        agent = event.agent or ""
        span = self._tracer.start_span(
            f"{attr.OP_INVOKE_AGENT} {agent}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
            start_time=_ns(event.ts),
        )
        session.activations[event.seq] = _Activation(span, trace.set_span_in_context(span), agent)
        session.activation_spans[event.seq] = span.get_span_context()
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
        attributes: dict[str, Any] = {
            attr.AGENT_OUTCOME: event.outcome,
            attr.COST_USD: act.cost_usd,
        }
        if event.handoff_to is not None:
            attributes[attr.HANDOFF_TARGET] = event.handoff_to
        if self.capture_content and event.output:
            attributes[attr.GEN_AI_OUTPUT_MESSAGES] = _content.output_message(event.output)
        act.span.set_attributes(attributes)
        if event.outcome == "failed":
            act.span.set_status(Status(StatusCode.ERROR, f"agent {act.agent!r} failed"))
        act.span.end(_ns(event.ts))

    def _model_requested(self, event: ev.ModelRequested) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        owner = self._owner(session, event)
        attributes = self._step_attributes(event, attr.OP_CHAT)
        attributes[attr.GEN_AI_PROVIDER_NAME] = provider_name(event.model)
        attributes[attr.GEN_AI_REQUEST_MODEL] = event.model
        if event.attempt > 1:
            attributes[attr.ATTEMPT] = event.attempt
        if self.capture_content:
            system, messages = _content.split_messages(event.messages)
            if system is not None:
                attributes[attr.GEN_AI_SYSTEM_INSTRUCTIONS] = system
            attributes[attr.GEN_AI_INPUT_MESSAGES] = messages
        span = self._tracer.start_span(
            f"{attr.OP_CHAT} {event.model}",
            context=owner.context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=_ns(event.ts),
        )
        session.calls[event.seq] = _Open(span, None, event.activation)

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
        attributes: dict[str, Any] = {
            attr.GEN_AI_RESPONSE_MODEL: event.model,
            attr.GEN_AI_USAGE_INPUT_TOKENS: event.input_tokens,
            attr.GEN_AI_USAGE_OUTPUT_TOKENS: event.output_tokens,
            attr.COST_USD: event.cost_usd,
        }
        if event.first_token_ms is not None:
            attributes[attr.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = event.first_token_ms / 1000
        if event.retry_of is not None:
            attributes[attr.RETRY_OF] = event.retry_of
        if self.capture_content:
            attributes[attr.GEN_AI_OUTPUT_MESSAGES] = _content.output_message(event.text, event.tool_calls)
        call.span.set_attributes(attributes)
        call.span.end(end)
        for totals in (
            session.activations.get(call.activation) if call.activation else None,
            session.root,
        ):
            if totals is not None:
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
        call.span.set_attributes({attr.ERROR_TYPE: event.error_type, attr.RETRYABLE: event.retryable})
        call.span.set_status(Status(StatusCode.ERROR, event.message))
        call.span.end(_ns(event.ts))

    def _tool_called(self, event: ev.ToolCalled) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        owner = self._owner(session, event)
        attributes = self._step_attributes(event, attr.OP_EXECUTE_TOOL)
        attributes[attr.GEN_AI_TOOL_NAME] = event.tool
        attributes[attr.GEN_AI_TOOL_CALL_ID] = event.call_id
        if self.capture_content:
            attributes[attr.GEN_AI_TOOL_CALL_ARGUMENTS] = _content.dumps(event.args)
        span = self._tracer.start_span(
            f"{attr.OP_EXECUTE_TOOL} {event.tool}",
            context=owner.context,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(event.ts),
        )
        session.tools[event.seq] = _Open(span, trace.set_span_in_context(span), event.activation)

    def _tool_returned(self, event: ev.ToolReturned) -> None:
        session = self._sessions.get(event.session_id)
        if session is None:
            return
        tool = session.tools.pop(event.cause, None) if event.cause is not None else None
        if tool is None:
            return
        if self.capture_content:
            tool.span.set_attribute(attr.GEN_AI_TOOL_CALL_RESULT, event.result)
        if event.error is not None:
            error_type = event.error.partition(":")[0].strip() or "tool_error"
            tool.span.set_attribute(attr.ERROR_TYPE, error_type)
            tool.span.set_status(Status(StatusCode.ERROR, event.error))
        tool.span.end(_ns(event.ts))

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
            attributes[attr.HANDOFF_PAYLOAD] = _content.dumps(event.payload)
        span = self._tracer.start_span(
            f"handoff {event.source} -> {event.target}",
            context=owner.context,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=min(start, end),
        )
        span.end(end)
        session.handoffs[event.seq] = span.get_span_context()

    def _run_finished(self, event: ev.RunFinished) -> None:
        session = self._sessions.pop(event.session_id, None)
        if session is None:
            return
        self._close(session, event.ts, None, "unfinished")
        root = session.root
        attributes = root.totals()
        attributes[attr.STATUS] = "completed"
        attributes[attr.PATH] = event.path
        if self.capture_content:
            attributes[attr.OUTPUT] = event.output
            attributes[attr.GEN_AI_OUTPUT_MESSAGES] = _content.output_message(event.output)
        root.span.set_attributes(attributes)
        root.span.end(_ns(event.ts))

    def _run_failed(self, event: ev.RunFailed) -> None:
        session = self._sessions.pop(event.session_id, None)
        if session is None:
            return
        description = f"{event.error_type}: {event.message}"
        self._close(session, event.ts, description, event.status)
        root = session.root
        attributes = root.totals()
        attributes[attr.STATUS] = event.status
        attributes[attr.PATH] = event.path
        attributes[attr.ERROR_TYPE] = event.error_type
        if event.origin is not None:
            attributes[attr.ERROR_ORIGIN] = event.origin
        if event.manifested is not None:
            attributes[attr.ERROR_MANIFESTED] = event.manifested
        root.span.set_attributes(attributes)
        root.span.set_status(Status(StatusCode.ERROR, description))
        root.span.end(_ns(event.ts))

    # -- span events ----------------------------------------------------------------------

    def _span_event(self, event: Any) -> None:
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

    def _event_attributes(self, event: Any) -> dict[str, Any]:
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
                    "playground.permission.allowed": event.allowed,
                }
                if content:
                    found[attr.GEN_AI_TOOL_CALL_ARGUMENTS] = event.args
                return found
            case ev.LoopDetected():
                return {
                    "playground.loop.reason": event.reason,
                    "playground.loop.edge": event.edge,
                    "playground.loop.policy": event.policy,
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
        return {}
