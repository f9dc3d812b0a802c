"""Attribute names the tracer writes: GenAI semantic conventions and ``playground.*``.

The ``gen_ai.*`` names come from the OpenTelemetry semantic conventions package
(``opentelemetry.semconv._incubating.attributes.gen_ai_attributes``); the
``playground.*`` names are ours and, like event kinds, are a contract: dashboards
and queries are built on them. Add names freely; never rename one.

Importing this module imports ``opentelemetry.semconv`` (cheap, no SDK); it is
only imported once tracing is configured.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_CALL_RESULT,
    GEN_AI_TOOL_NAME,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_WORKFLOW_NAME,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

__all__ = [
    "ERROR_TYPE",
    "GEN_AI_AGENT_NAME",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_INPUT_MESSAGES",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_OUTPUT_MESSAGES",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK",
    "GEN_AI_SYSTEM_INSTRUCTIONS",
    "GEN_AI_TOOL_CALL_ARGUMENTS",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_CALL_RESULT",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_WORKFLOW_NAME",
]

# gen_ai.operation.name values (the semconv enum class is marked deprecated in
# the installed package, so the values are spelled here).
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CHAT: Final = "chat"
OP_EXECUTE_TOOL: Final = "execute_tool"

# Which span carries what: every attribute is recorded and encoded for OTLP on
# every span, so a span carries what identifies it and leaves what its parent
# already says to the parent. The session id is ``gen_ai.conversation.id``
# on the root, activation, chat and tool spans, and ``playground.session_id`` on
# the root; the trace id (the correlation id) ties every span to it anyway.

SESSION_ID: Final = "playground.session_id"
"""The session (root span)."""
EVENT_SEQ: Final = "playground.event_seq"
"""``seq`` of the event that started the span (all but the root), or of a span event's event."""
STEP: Final = "playground.step"
"""The step number of a model call, tool call or handoff (their spans and span events)."""
AGENT_VERSION: Final = "playground.agent.version"
"""The agent version id that ran (activation spans)."""

# The run's root span.
STATUS: Final = "playground.status"
"""``completed``, ``failed`` or ``aborted``."""
PATH: Final = "playground.path"
"""The agents in handling order."""
VERSIONS: Final = "playground.agent.versions"
"""``agent=version`` for every agent the run started with."""
PARENT_SESSION_ID: Final = "playground.parent_session_id"
FORKED_FROM_STEP: Final = "playground.forked_from_step"
RESUMED: Final = "playground.resumed"
"""A span opened again when a session waiting for approval resumed (``playground approve``)."""
RESUMED_AFTER: Final = "playground.resumed_after_seq"
"""On a resumed session's root: the last event recorded before it stopped to wait."""
ERROR_ORIGIN: Final = "playground.error.origin"
"""The agent whose output first went wrong."""
ERROR_MANIFESTED: Final = "playground.error.manifested"
"""The agent where the failure showed."""
INPUT: Final = "playground.input"
"""The request (only with content capture)."""
OUTPUT: Final = "playground.output"
"""The final output (only with content capture)."""

# Totals. Deliberately not ``gen_ai.usage.*`` (that is on chat spans only):
# backends that sum usage over a trace would count every call twice.
COST_USD: Final = "playground.cost_usd"
"""Cost in USD: of the call on a chat span, of the activation's calls on its span,
of the whole run on the root."""
USAGE_INPUT_TOKENS: Final = "playground.usage.input_tokens"
"""Input tokens of the whole run (root span)."""
USAGE_OUTPUT_TOKENS: Final = "playground.usage.output_tokens"
"""Output tokens of the whole run (root span)."""

# Activation spans.
AGENT_REASON: Final = "playground.agent.reason"
"""Why the activation began: entry, handoff, delegation, stage, escalation, review."""
AGENT_OUTCOME: Final = "playground.agent.outcome"
"""reply, handoff, failed or aborted."""
PARENT_ACTIVATION: Final = "playground.agent.parent_activation"
"""For a delegated worker: ``seq`` of its supervisor's activation."""

# Chat spans.
ATTEMPT: Final = "playground.model.attempt"
"""The attempt of a retried call (set from 2 on)."""
RETRYABLE: Final = "playground.model.retryable"
RETRY_OF: Final = "playground.model.retry_of"
"""When an operator retried the step: ``seq`` of the response this one replaces."""

# Tool spans.
DELEGATION: Final = "playground.tool.delegation"
"""The tool is a delegate: a worker agent called by a supervisor."""

# Handoff spans (and the activation that handed off: HANDOFF_TARGET).
HANDOFF_SOURCE: Final = "playground.handoff.source"
HANDOFF_TARGET: Final = "playground.handoff.target"
HANDOFF_PAYLOAD_TOKENS: Final = "playground.handoff.payload_tokens"
HANDOFF_HISTORY: Final = "playground.handoff.history"
HANDOFF_HISTORY_TOKENS: Final = "playground.handoff.history_tokens"
HANDOFF_SCHEMA: Final = "playground.handoff.schema"
HANDOFF_EDITED: Final = "playground.handoff.edited"
HANDOFF_PAYLOAD: Final = "playground.handoff.payload"
"""The delivered context as JSON (only with content capture)."""

# Links from an activation to what caused it.
LINK_REASON: Final = "playground.link.reason"

# OpenInference (Arize Phoenix and other OpenInference backends), beside the GenAI names:
# the span kind on every span, the session on every span, input and output values with
# their mime types (content: only with content capture), LLM token counts and cost on
# chat spans only (backends sum them over a trace).
OI_SPAN_KIND: Final = "openinference.span.kind"
OI_CHAIN: Final = "CHAIN"
"""The root (a run of the workflow)."""
OI_AGENT: Final = "AGENT"
OI_LLM: Final = "LLM"
OI_TOOL: Final = "TOOL"
"""Tool calls and handoffs (a handoff is the model calling a transfer, as the OpenAI
Agents SDK's OpenInference instrumentation also shows it)."""
OI_SESSION_ID: Final = "session.id"
INPUT_VALUE: Final = "input.value"
INPUT_MIME_TYPE: Final = "input.mime_type"
OUTPUT_VALUE: Final = "output.value"
OUTPUT_MIME_TYPE: Final = "output.mime_type"
MIME_TEXT: Final = "text/plain"
MIME_JSON: Final = "application/json"
OI_AGENT_NAME: Final = "agent.name"
OI_TOOL_NAME: Final = "tool.name"
LLM_MODEL_NAME: Final = "llm.model_name"
LLM_TOKENS_PROMPT: Final = "llm.token_count.prompt"
LLM_TOKENS_COMPLETION: Final = "llm.token_count.completion"
LLM_TOKENS_TOTAL: Final = "llm.token_count.total"
LLM_COST_TOTAL: Final = "llm.cost.total"
"""USD, the call's cost as the run computed it (litellm's cost map or the agent's ``price``)."""
