"""Events -> OpenTelemetry spans, and the exporters that send them.

Tracing is off by default and free when off: :func:`configure_tracing` returns
None unless an OTLP endpoint (``--otlp`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``), the
console or an exporter is asked for, and importing this package does not import
the OpenTelemetry SDK. When on, the returned :class:`EventTracer` is one more
event sink of the runtime::

    tracer = configure_tracing(otlp_endpoint=args.otlp, console=args.trace_console)
    runtime = Runtime(system, sinks=[store_writer, *([tracer] if tracer else [])])
    result = await runtime.run(request)
    if tracer:
        await tracer.flush_async()   # or tracer.flush() outside an event loop
    ...
    if tracer:
        tracer.shutdown()            # before exit

One trace per session; its trace id is the session's correlation id
(``int(correlation_id, 16)``). Spans (times are the events' ``ts``):

=================================  ==========================================  ========
span                               from .. to                                  parent
=================================  ==========================================  ========
``invoke_workflow {system}``       run_started .. run_finished / run_failed    (root)
``invoke_agent {agent}``           agent_started .. agent_finished             root; a delegated
                                                                               worker: its
                                                                               supervisor's
                                                                               ``execute_tool``
``chat {model}``                   model_requested .. model_responded / failed activation
``execute_tool {tool}``            tool_called .. tool_returned                activation
``handoff {source} -> {target}``   model_responded .. handoff_delivered        activation
=================================  ==========================================  ========

The root is named after the GenAI ``invoke_workflow`` operation (a session is one
run of a multi-agent workflow). An activation started by a handoff, escalation
or pipeline stage is a child of the root with a link to the handoff (or
activation) that started it, so the trace reads as the hand-to-hand path the
request took. A delegated worker nests inside its supervisor's activation, under
the ``execute_tool {worker}`` span of the delegation (``playground.tool.delegation``).

Attributes follow the GenAI semantic conventions where they have a name, plus
``playground.*`` ones (:mod:`playground.tracing.attributes` documents each):

- root: ``gen_ai.operation.name`` (``invoke_workflow``), ``gen_ai.workflow.name``,
  ``gen_ai.conversation.id`` and ``playground.session_id`` (the session id),
  ``playground.agent.versions``, ``playground.status``, ``playground.path``,
  ``playground.cost_usd``, ``playground.usage.input_tokens`` / ``output_tokens``;
  when failed ``error.type``, ``playground.error.origin`` / ``manifested``;
- ``invoke_agent``: ``gen_ai.agent.name``, ``playground.agent.version``,
  ``gen_ai.request.model``, ``playground.agent.reason`` / ``outcome``,
  ``playground.cost_usd``, ``playground.handoff.target`` when it handed off;
- ``chat``: ``gen_ai.provider.name``, ``gen_ai.request.model``,
  ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` / ``output_tokens``,
  ``gen_ai.response.time_to_first_chunk``, ``playground.cost_usd``, ``error.type``;
- ``execute_tool``: ``gen_ai.tool.name``, ``gen_ai.tool.call.id``;
- ``handoff``: ``playground.handoff.source`` / ``target`` / ``payload_tokens`` /
  ``history_tokens`` / ``schema``;
- and on the step spans ``playground.event_seq`` (the event that started the span:
  look it up in the store) and ``playground.step``; ``gen_ai.agent.name`` and
  ``gen_ai.conversation.id`` on agent, chat and tool spans.

OpenInference attributes (Arize Phoenix and other OpenInference backends) go beside
them: ``openinference.span.kind`` on every span (``CHAIN`` root, ``AGENT``, ``LLM``,
``TOOL`` for tool calls and handoffs), ``session.id`` and ``gen_ai.conversation.id`` on
every span, ``llm.model_name``, ``llm.token_count.prompt`` / ``completion`` / ``total``
and ``llm.cost.total`` on chat spans only (backends sum them over a trace),
``agent.name`` and ``tool.name``, and with content capture ``input.value`` /
``output.value`` with ``input.mime_type`` / ``output.mime_type`` on the root, agent,
chat, tool and handoff spans. What completed has status OK.

A span carries what identifies it and leaves what its parent says to the parent:
every attribute is recorded and encoded for OTLP on every span. Tracing with OTLP
export costs about 50-60 us of this process's CPU per agent hop (three spans) on the
fast paths: the tracer builds finished SDK spans itself (:mod:`playground.tracing.tracer`)
and the OTLP exporter writes the protobuf request itself (:mod:`playground.tracing.otlp`).
Each is used only when its feature test passes at startup (the installed SDK is laid out
as it expects); otherwise, or with ``PLAYGROUND_TRACING_PUBLIC_API=1``, spans go through
the SDK's public ``Tracer`` and the stock exporter and batch processor, about 330 us per
hop (``bench/bench_engine.py`` prints both).

Retries, fallbacks, validation failures, permission denials, loops, escalations,
checkpoint reviews and operator actions are span events named ``playground.<kind>``
on the activation they happened in (the root when there is none). A failed model
call, a tool error and a failed run set error status; so does every activation
still open when a run fails or is aborted. ``token_delta`` events are ignored.

Prompts, replies, tool arguments and results and handoff payloads are recorded
only with ``capture_content=True`` (or
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``), in the GenAI JSON
shape (``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions``, ``gen_ai.tool.call.arguments`` / ``result``). Model
settings are never recorded, so no API key can reach a trace. Error messages (a
provider's, a tool's exception, a run's failure) may quote the request or the
arguments, so they too are content: without capture a failed span's status
description names the error type and the agent (and the model or tool), with it the
message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playground.tracing.config import configure_tracing, otlp_traces_url

if TYPE_CHECKING:
    from playground.tracing.tracer import EventTracer

__all__ = ["EventTracer", "configure_tracing", "otlp_traces_url"]


def __getattr__(name: str) -> Any:
    # EventTracer imports the SDK: only when someone asks for it.
    if name == "EventTracer":
        from playground.tracing.tracer import EventTracer

        return EventTracer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
