"""Spans of one trace -> the typed events of one session.

:func:`build_session` is a pure function of the spans received so far: the same spans,
in any order and in any number of batches, give the same events. The receiver calls it
again whenever spans of a trace arrive, so a session grows as its trace does and is
final once its root span has arrived.

What becomes what (each convention as the instrumentations named in the README write it):

=====================  ===================================================================
session                one trace; the root span's name (or ``gen_ai.workflow.name``) is
                       the system; the session id is the trace id's last 12 hex digits
                       (its random part, W3C trace context)
agent activation       a span with ``gen_ai.operation.name = invoke_agent`` and an agent
                       name (``gen_ai.agent.name``), an OpenInference ``AGENT`` span with
                       ``agent.name`` or ``graph.node.id``, or a LangGraph node (a span
                       named after its ``metadata.langgraph_node``) with a model call in it
model call             ``chat``/``text_completion``/``generate_content`` spans, OpenInference
                       ``LLM`` spans: model, tokens, cost (the span's own, else litellm's
                       cost map), latency, messages when captured
tool call              ``execute_tool`` spans, OpenInference ``TOOL`` spans
handoff                explicit handoff spans (``agent_handoff``, ``handoff to X``, the
                       playground's ``handoff A -> B``), a ``transfer_to_X`` tool call, an
                       agent that starts after another (siblings) or inside one (nested);
                       an agent inside another agent's tool call is a delegation
error                  span status ``ERROR`` and ``exception`` events: the origin is the
                       agent of the first span that failed, the manifestation the
                       outermost agent that failed
=====================  ===================================================================

Spans are exported when they end, so children usually arrive before their parents: an
agent's model calls show before its agent span does. A span whose parent has not arrived
yet is shown under a provisional activation (named by the span's ``gen_ai.agent.name``
when it has one) until the parent comes, and an activation whose span has not arrived is
still running: the live view shows it as the current handler.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from playground.engine import events as ev
from playground.engine.results import AgentTotals, RunResult
from playground.llm.base import approx_tokens
from playground.observe.otlp import Span

Price = Callable[[str, int, int], "float | None"]
"""``(model, input_tokens, output_tokens) -> cost in USD``, or None when the model is unknown."""

Status = Literal["running", "completed", "failed"]

_CHAT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
_HANDOFF_OPERATIONS = frozenset({"agent_handoff", "handoff"})
_TRANSFER = re.compile(r"^transfer_to_(.+)$")
_ERROR_TYPE = re.compile(r"^([A-Za-z_][\w.]*)\s*[(:]")
_COST_KEYS = ("playground.cost_usd", "operation.cost", "llm.cost.total", "gen_ai.usage.cost")
_INPUT_TOKEN_KEYS = ("gen_ai.usage.input_tokens", "llm.token_count.prompt", "gen_ai.usage.prompt_tokens")
_OUTPUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "llm.token_count.completion",
    "gen_ai.usage.completion_tokens",
)

# Instrumentation scope (by prefix) -> the framework it instruments.
_FRAMEWORKS = (
    ("playground.tracing", "playground"),
    ("openinference.instrumentation.openai_agents", "openai-agents"),
    ("opentelemetry.instrumentation.openai_agents", "openai-agents"),
    ("openai.agents", "openai-agents"),
    ("openai_agents", "openai-agents"),
    ("pydantic-ai", "pydantic-ai"),
    ("pydantic_ai", "pydantic-ai"),
    ("openinference.instrumentation.crewai", "crewai"),
    ("crewai", "crewai"),
    ("openinference.instrumentation.autogen", "autogen"),
    ("autogen", "autogen"),
    ("openinference.instrumentation.langchain", "langchain"),
    ("opentelemetry.instrumentation.langchain", "langchain"),
    ("langsmith", "langchain"),
)


@dataclass
class ObservedSession:
    """One trace as a session: its events so far and, once its root span came, its outcome."""

    session_id: str
    trace_id: str
    framework: str
    """Where the spans came from: ``openai-agents``, ``pydantic-ai``, ``langgraph``, ``playground``, ..."""
    system: str
    input: str
    status: Status
    events: list[ev.Event]
    result: RunResult
    """Path, output, per-agent totals and error, as a run of the playground reports them."""
    created_at: float
    """When the trace started (its earliest span), Unix seconds."""
    spans: int
    """Spans this session was built from."""


def session_id_of(trace_id: str) -> str:
    """The session id of a trace: its last 12 hex digits (the random part of a W3C trace id)."""
    return trace_id[-12:]


def build_session(spans: Sequence[Span], *, price: Price | None = None) -> ObservedSession:
    """The session one trace's spans make (all of them from one trace, in any order).

    Args:
        spans: The spans received so far.
        price: Prices a model call whose span carries no cost; None leaves it at zero.
    """
    if not spans:
        raise ValueError("a session needs at least one span")
    return _Builder(spans, price).build()


def _seconds(ns: int) -> float:
    return ns / 1e9


def _int(attrs: dict[str, Any], keys: Iterable[str]) -> int | None:
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            return int(value)
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def _float(attrs: dict[str, Any], keys: Iterable[str]) -> float | None:
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _metadata(span: Span) -> dict[str, Any]:
    metadata = _json(span.attributes.get("metadata"))
    return metadata if isinstance(metadata, dict) else {}


def _error_of(span: Span) -> tuple[str, str]:
    """``(error_type, message)`` of a failed span."""
    for event in span.events:
        if event.name == "exception":
            kind = str(event.attributes.get("exception.type") or "")
            message = str(event.attributes.get("exception.message") or span.status_message)
            if kind:
                return kind.rsplit(".", 1)[-1], message
    message = span.status_message or str(span.attributes.get("error.type") or "") or "error"
    error_type = str(span.attributes.get("error.type") or "")
    if not error_type:
        match = _ERROR_TYPE.match(message)
        error_type = match.group(1).rsplit(".", 1)[-1] if match else "error"
    return error_type, message


# -- messages in the conventions' shapes ----------------------------------------------------


def _genai_messages(value: Any) -> list[dict[str, Any]]:
    """``gen_ai.input.messages``/``output.messages`` (role + parts) as OpenAI-style messages."""
    data = _json(value)
    if not isinstance(data, list):
        return []
    out: list[dict[str, Any]] = []
    for message in data:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role") or "user")
        parts = message.get("parts")
        if not isinstance(parts, list):  # already OpenAI-style
            out.append({"role": role, "content": _text(message.get("content"))})
            continue
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        call_id = None
        for part in parts:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                texts.append(_text(part.get("content")))
            elif kind == "tool_call":
                calls.append(
                    {
                        "id": str(part.get("id") or ""),
                        "name": str(part.get("name") or ""),
                        "arguments": _arguments(part.get("arguments")),
                    }
                )
            elif kind == "tool_call_response":
                call_id = part.get("id")
                texts.append(_text(part.get("response")))
        converted: dict[str, Any] = {"role": role, "content": "\n".join(t for t in texts if t)}
        if calls:
            converted["tool_calls"] = calls
        if call_id is not None:
            converted["tool_call_id"] = str(call_id)
        out.append(converted)
    return out


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


_FLAT = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(.+)$")
_FLAT_CALL = re.compile(r"^tool_calls\.(\d+)\.tool_call\.(.+)$")


def _openinference_messages(attrs: dict[str, Any], which: str) -> list[dict[str, Any]]:
    """OpenInference's flattened ``llm.input_messages.N.message.*`` as OpenAI-style messages."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        match = _FLAT.match(key)
        if match is None or match.group(1) != which:
            continue
        message = found.setdefault(int(match.group(2)), {"role": "user", "content": ""})
        rest = match.group(3)
        if rest in ("role", "content", "tool_call_id", "name"):
            message[rest] = _text(value)
            continue
        call = _FLAT_CALL.match(rest)
        if call is not None:
            calls = message.setdefault("_calls", {})
            entry = calls.setdefault(int(call.group(1)), {"id": "", "name": "", "arguments": "{}"})
            leaf = call.group(2)
            if leaf == "id":
                entry["id"] = _text(value)
            elif leaf == "function.name":
                entry["name"] = _text(value)
            elif leaf == "function.arguments":
                entry["arguments"] = _arguments(value)
    out = []
    for index in sorted(found):
        message = found[index]
        calls = message.pop("_calls", None)
        if calls:
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        out.append(message)
    return out


def _request_messages(span: Span) -> list[dict[str, Any]]:
    attrs = span.attributes
    messages = _genai_messages(attrs.get("gen_ai.input.messages"))
    if messages:
        system = _genai_system(attrs.get("gen_ai.system_instructions"))
        return [{"role": "system", "content": system}, *messages] if system else messages
    return _openinference_messages(attrs, "input")


def _genai_system(value: Any) -> str:
    data = _json(value)
    if isinstance(data, list):
        return "\n".join(_text(p.get("content")) for p in data if isinstance(p, dict))
    return _text(data) if data else ""


def _reply(span: Span) -> tuple[str, list[dict[str, Any]]]:
    """The text and tool calls a model call answered with, when the span recorded them."""
    attrs = span.attributes
    messages = _genai_messages(attrs.get("gen_ai.output.messages"))
    if not messages:
        messages = _openinference_messages(attrs, "output")
    if messages:
        last = messages[-1]
        return _text(last.get("content")), list(last.get("tool_calls") or [])
    output = attrs.get("output.value")
    if isinstance(output, str) and output[:1] not in ("[", "{"):
        return output, []
    return "", []


def _first_user_text(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        if message.get("role") in ("user", "human") and message.get("content"):
            return _text(message["content"])
    return ""


def _value_text(value: Any) -> str:
    """Plain text of an ``input.value``/``output.value``: a LangGraph state's last message, or as is."""
    data = _json(value)
    if isinstance(data, dict) and isinstance(data.get("messages"), list) and data["messages"]:
        messages = data["messages"]
        for message in messages:  # LangChain messages: {"type": "human", "data": {"content": ...}}
            if isinstance(message, dict):
                inner: dict[str, Any] = message["data"] if isinstance(message.get("data"), dict) else message
                if message.get("type") in ("human", "user") or inner.get("role") == "user":
                    return _text(inner.get("content"))
        return ""
    return _text(data) if isinstance(data, str) else ""


def _last_text(value: Any) -> str:
    data = _json(value)
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        for message in reversed(data["messages"]):
            if isinstance(message, dict):
                inner: dict[str, Any] = message["data"] if isinstance(message.get("data"), dict) else message
                if message.get("type") in ("ai", "assistant") or inner.get("role") == "assistant":
                    return _text(inner.get("content"))
        return ""
    return data if isinstance(data, str) else ""


# -- the builder -----------------------------------------------------------------------------


@dataclass
class _Node:
    """A span (or a synthesised step) placed in the session: an activation, a model call, a
    tool call or a handoff."""

    role: Literal["agent", "chat", "tool", "handoff"]
    key: str
    start: int
    end: int | None
    """None while the span has not arrived (an activation still running)."""
    span: Span | None = None
    agent: str = ""
    """For an activation: its agent. For the others: the agent they belong to."""
    owner: _Node | None = None
    """The activation a step belongs to."""
    parent: _Node | None = None
    """The node it sits in (an activation, or the tool call a delegated worker runs in)."""
    children: list[_Node] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    """For a provisional activation: the spans it stands in for the parent of."""
    # handoffs
    source: str = ""
    target: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    payload_tokens: int | None = None
    into: _Node | None = None
    """The activation a handoff started."""
    # activations
    reason: Literal["entry", "handoff", "delegation"] = "entry"
    via: _Node | None = None
    """The handoff or tool call that started the activation."""
    handoff_to: str | None = None
    failed: bool = False
    pre: int = 0
    post: int = 0


class _Builder:
    def __init__(self, spans: Sequence[Span], price: Price | None) -> None:
        self.price = price
        self.spans = {s.span_id: s for s in spans}
        self.trace_id = spans[0].trace_id
        self.children: dict[str, list[Span]] = {}
        for span in self.spans.values():
            if span.parent_id:
                self.children.setdefault(span.parent_id, []).append(span)
        roots = sorted((s for s in self.spans.values() if not s.parent_id), key=lambda s: s.start_ns)
        self.root: Span | None = roots[0] if roots else None
        self.first_ns = min(s.start_ns for s in self.spans.values())
        self._roles: dict[str, str | None] = {}
        self.framework = self._framework()

    # -- what each span is -------------------------------------------------------------------

    def _framework(self) -> str:
        scopes = Counter(s.scope for s in self.spans.values())
        for scope, _ in scopes.most_common():
            for prefix, name in _FRAMEWORKS:
                if scope.startswith(prefix):
                    if name == "langchain" and any(
                        "langgraph_node" in _metadata(s) or _metadata(s).get("ls_integration") == "langgraph"
                        for s in self.spans.values()
                    ):
                        return "langgraph"
                    return name
        for scope, _ in scopes.most_common():
            if scope.startswith("openinference.instrumentation."):
                return scope.removeprefix("openinference.instrumentation.").replace("_", "-")
        return "otel"

    def role(self, span: Span) -> str | None:
        role = self._roles.get(span.span_id, "?")
        if role == "?":
            role = self._roles[span.span_id] = self._role(span)
        return role

    def _role(self, span: Span) -> str | None:
        attrs = span.attributes
        operation = attrs.get("gen_ai.operation.name")
        kind = str(attrs.get("openinference.span.kind") or "").upper()
        if operation in _HANDOFF_OPERATIONS or span.name.startswith("handoff "):
            return "handoff"
        if operation in _CHAT_OPERATIONS or kind == "LLM":
            return "chat"
        if operation == "execute_tool" or kind == "TOOL":
            name = self.tool_name(span)
            return "handoff" if _TRANSFER.match(name) else "tool"
        if (operation == "invoke_agent" or kind == "AGENT") and self.agent_name(span):
            return "agent"
        node = _metadata(span).get("langgraph_node")
        if node and node == span.name and span is not self.root and self._has_model_call(span):
            return "agent"
        return None

    def _has_model_call(self, span: Span) -> bool:
        for child in self.children.get(span.span_id, ()):
            if self.role(child) == "chat":
                return True
            node = _metadata(child).get("langgraph_node")
            if not (node and node == child.name) and self._has_model_call(child):
                return True
        return False

    def agent_name(self, span: Span) -> str:
        attrs = span.attributes
        for key in ("gen_ai.agent.name", "agent.name", "graph.node.id"):
            value = attrs.get(key)
            if isinstance(value, str) and value:
                return value
        if span.name.startswith("invoke_agent "):
            return span.name.removeprefix("invoke_agent ").strip()
        node = _metadata(span).get("langgraph_node")
        return str(node) if node else ""

    def tool_name(self, span: Span) -> str:
        name = span.attributes.get("gen_ai.tool.name") or span.attributes.get("tool.name")
        if isinstance(name, str) and name:
            return name
        return span.name.removeprefix("execute_tool ").strip()

    # -- the session ---------------------------------------------------------------------------

    def build(self) -> ObservedSession:
        acts = self._activations()
        top = self._arrange(acts)
        self._handoffs(top)
        events, per_agent, path = self._emit(top)
        return self._session(events, per_agent, path, acts)

    def _activations(self) -> dict[str, _Node]:
        """Every activation by key, and every step placed under its activation."""
        acts: dict[str, _Node] = {}
        for span in self.spans.values():
            if self.role(span) == "agent":
                acts[span.span_id] = _Node("agent", span.span_id, span.start_ns, span.end_ns, span)
                acts[span.span_id].agent = self.agent_name(span)
                acts[span.span_id].failed = span.failed
        self.acts = acts
        self.steps: list[_Node] = []
        for span in sorted(self.spans.values(), key=lambda s: s.start_ns):
            role = self.role(span)
            if role in ("chat", "tool", "handoff"):
                node = _Node(role, span.span_id, span.start_ns, span.end_ns, span)  # type: ignore[arg-type]
                if role == "handoff":
                    self._describe_handoff(node, span)
                owner = self._owner(span)
                node.owner = owner
                self.steps.append(node)
        # Agents nested in another agent, directly or in one of its tool calls.
        for act in list(acts.values()):
            if act.span is None:  # provisional: stands in for a span that has not arrived
                continue
            owner, via = self._enclosing(act.span)
            if owner is not None:
                act.parent = via or owner
                act.owner = owner
                act.reason = "delegation" if via is not None else "handoff"
                if via is not None:
                    act.via = via
        return acts

    def _describe_handoff(self, node: _Node, span: Span) -> None:
        attrs = span.attributes
        source = attrs.get("playground.handoff.source") or attrs.get("gen_ai.handoff.from_agent")
        target = attrs.get("playground.handoff.target") or attrs.get("gen_ai.handoff.to_agent")
        if not target and span.name.startswith("handoff to "):
            target = span.name.removeprefix("handoff to ")
        if not target and " -> " in span.name:
            target = span.name.split(" -> ", 1)[1]
        match = _TRANSFER.match(self.tool_name(span))
        if not target and match:
            target = match.group(1)
        if not target and isinstance(attrs.get("output.value"), str):
            target = attrs["output.value"]
        node.source = str(source or "")
        node.target = str(target or "")
        payload = _json(attrs.get("playground.handoff.payload") or attrs.get("gen_ai.tool.call.arguments"))
        if match and not isinstance(payload, dict):
            payload = _json(attrs.get("input.value"))
        node.payload = payload if isinstance(payload, dict) else {}
        node.payload_tokens = _int(attrs, ("playground.handoff.payload_tokens",))

    def _enclosing(self, span: Span) -> tuple[_Node | None, _Node | None]:
        """The activation ``span`` runs in (its nearest agent ancestor), and the tool call of
        that activation it runs inside, if any. ``(None, None)`` at the top."""
        via: _Node | None = None
        parent = self.spans.get(span.parent_id) if span.parent_id else None
        while parent is not None:
            role = self.role(parent)
            if role == "agent":
                return self.acts[parent.span_id], via
            if role == "tool" and via is None:
                via = next((s for s in self.steps if s.key == parent.span_id), None)
            parent = self.spans.get(parent.parent_id) if parent.parent_id else None
        return None, None

    def _owner(self, span: Span) -> _Node | None:
        """The activation a step belongs to: its nearest agent ancestor; a provisional one
        while an ancestor is missing; None at the top of the trace."""
        child = span
        parent = self.spans.get(span.parent_id) if span.parent_id else None
        while parent is not None:
            if self.role(parent) == "agent":
                return self.acts[parent.span_id]
            child = parent
            parent = self.spans.get(parent.parent_id) if parent.parent_id else None
        if child.parent_id:  # the chain stops at a span that has not arrived
            key = "pending:" + child.parent_id
            act = self.acts.get(key)
            if act is None:
                act = self.acts[key] = _Node("agent", key, span.start_ns, None)
            act.start = min(act.start, span.start_ns)
            act.spans.append(span)
            return act
        return None

    def _arrange(self, acts: dict[str, _Node]) -> list[_Node]:
        """Place every node under its parent; the top-level activations, in order."""
        for act in acts.values():
            if act.key.startswith("pending:"):
                names = Counter(
                    str(s.attributes.get("gen_ai.agent.name"))
                    for s in act.spans
                    if s.attributes.get("gen_ai.agent.name")
                )
                act.agent = names.most_common(1)[0][0] if names else "(pending)"
        top = sorted((a for a in acts.values() if a.parent is None), key=lambda a: a.start)
        # Steps at the top of the trace (in no agent) belong to the activation that started
        # last before them (a LangGraph tool node runs the tools its agent asked for), or to
        # the system itself when no agent ran before them.
        loose = [s for s in self.steps if s.owner is None]
        if loose:
            for step in loose:
                before = [a for a in top if a.start <= step.start]
                step.owner = before[-1] if before else self._system_agent(top)
            top = sorted((a for a in acts.values() if a.parent is None), key=lambda a: a.start)
        # Consecutive activations of one agent (a LangGraph agent node entered again after
        # its tool node) are one activation.
        merged: list[_Node] = []
        for act in top:
            last = merged[-1] if merged else None
            provisional = act.key.startswith("pending:") or (
                last is not None and last.key.startswith("pending:")
            )
            if last is not None and last.agent == act.agent and not provisional:
                last.end = None if act.end is None or last.end is None else max(last.end, act.end)
                last.failed = last.failed or act.failed
                for other in [*self.steps, *self.acts.values()]:
                    if other.owner is act:
                        other.owner = last
                    if other.parent is act:
                        other.parent = last
                del self.acts[act.key]
                continue
            merged.append(act)
        for step in self.steps:
            step.agent = step.owner.agent if step.owner is not None else ""
            step.parent = step.owner
        for node in [*self.steps, *self.acts.values()]:
            if node.parent is not None:
                node.parent.children.append(node)
        return merged

    def _system_agent(self, top: list[_Node]) -> _Node:
        key = "system"
        act = self.acts.get(key)
        if act is None:
            root = self.root
            start = root.start_ns if root is not None else self.first_ns
            end = root.end_ns if root is not None else None
            act = self.acts[key] = _Node("agent", key, start, end, root)
            act.agent = self.system_name()
            act.failed = root.failed if root is not None else False
        return act

    def _handoffs(self, top: list[_Node]) -> None:
        """Every activation after the first at the top, and every nested one, starts from a
        handoff: the explicit one naming it, a ``transfer_to_X`` call, or one made up from
        the agent that came before."""
        explicit = sorted((s for s in self.steps if s.role == "handoff"), key=lambda s: s.start)
        for handoff in explicit:
            if not handoff.source and handoff.owner is not None:
                handoff.source = handoff.owner.agent
        for index, act in enumerate(top):
            if index == 0:
                act.reason = "entry"
                continue
            previous = top[index - 1]
            self._start_by_handoff(act, previous, explicit)
        for act in self.acts.values():
            if act.owner is not None and act.reason == "handoff":
                self._start_by_handoff(act, act.owner, explicit)

    def _start_by_handoff(self, act: _Node, source: _Node, explicit: list[_Node]) -> None:
        act.reason = "handoff"
        chosen = next(
            (
                h
                for h in explicit
                if h.into is None and h.target == act.agent and h.start <= act.start and h.source != act.agent
            ),
            None,
        )
        if chosen is None:
            at = act.start if source.end is None else min(source.end, act.start)
            chosen = _Node(
                "handoff", f"to:{act.key}", at, at, owner=source, parent=source, agent=source.agent
            )
            chosen.source, chosen.target = source.agent, act.agent
            chosen.payload = self._transfer_payload(source, act.agent)
            source.children.append(chosen)
            self.steps.append(chosen)
        chosen.into = act
        act.via = chosen
        if chosen.owner is not None:
            chosen.owner.handoff_to = act.agent

    def _transfer_payload(self, source: _Node, target: str) -> dict[str, Any]:
        """The arguments of the ``transfer_to_<target>`` call the source's model made, if any."""
        for step in reversed(source.children):
            if step.role == "chat" and step.span is not None:
                for call in _reply(step.span)[1]:
                    if call.get("name") == f"transfer_to_{target}":
                        payload = _json(call.get("arguments"))
                        return payload if isinstance(payload, dict) else {}
        return {}

    # -- events ------------------------------------------------------------------------------

    def _order(self, top: list[_Node]) -> list[tuple[int, int, _Node, bool]]:
        """Start and end points of every node, in time order; nesting breaks ties (a parent
        starts before and ends after its children, even at the same nanosecond)."""
        counter = 0
        points: list[tuple[int, int, _Node, bool]] = []

        def visit(node: _Node, low: int, high: int | None) -> None:
            nonlocal counter
            start = max(node.start, low)
            end = None if node.end is None else max(start, node.end if high is None else min(node.end, high))
            counter += 1
            points.append((start, counter, node, True))
            node.start = start
            children = sorted(node.children, key=lambda n: (n.start, n.end if n.end is not None else 1 << 62))
            for child in children:
                visit(child, start, end)
            counter += 1
            if end is not None:
                node.end = end
                points.append((end, counter, node, False))

        for node in top:
            visit(node, self.first_ns, None)
        points.sort(key=lambda p: (p[0], p[1]))
        return points

    def _emit(self, top: list[_Node]) -> tuple[list[ev.Event], dict[str, AgentTotals], list[str]]:
        session_id = session_id_of(self.trace_id)
        events: list[ev.Event] = []
        seq_of: dict[tuple[str, str], int] = {}
        """(what, node key) -> seq: 'act' (AgentStarted), 'req', 'resp', 'tool', 'handoff'."""
        per_agent: dict[str, AgentTotals] = {}
        path: list[str] = []
        step_of: dict[str, int] = {}
        steps = 0

        def add(event_type: type[ev.EventBase], ts_ns: int, **data: Any) -> int:
            seq = len(events) + 1
            event = event_type(session_id=session_id, seq=seq, ts=_seconds(ts_ns), **data)
            events.append(event)  # type: ignore[arg-type]
            return seq

        root = self.root
        add(
            ev.RunStarted,
            root.start_ns if root is not None else self.first_ns,
            system=self.system_name(),
            input=self.input_text(top),
            correlation_id=self.trace_id,
            observed=self.framework,
        )
        for ts, _, node, starting in self._order(top):
            activation = seq_of.get(("act", node.owner.key)) if node.owner is not None else None
            common = {"agent": node.agent or None, "activation": activation}
            if node.role == "agent":
                if starting:
                    if not path or path[-1] != node.agent:
                        path.append(node.agent)
                    cause = None
                    if node.via is not None:
                        cause = seq_of.get(("handoff", node.via.key)) or seq_of.get(("tool", node.via.key))
                    parent_activation = (
                        seq_of.get(("act", node.owner.key))
                        if node.owner is not None and node.reason in ("delegation", "handoff")
                        else None
                    )
                    context = (
                        node.via.payload if node.via is not None and node.via.role == "handoff" else None
                    )
                    seq = add(
                        ev.AgentStarted,
                        ts,
                        agent=node.agent,
                        reason=node.reason,
                        incoming=self.incoming(node),
                        context=context or None,
                        model=self.model_of(node),
                        cause=cause,
                        parent_activation=parent_activation,
                    )
                    seq_of[("act", node.key)] = seq
                    per_agent.setdefault(node.agent, AgentTotals())
                else:
                    outcome = "failed" if node.failed else ("handoff" if node.handoff_to else "reply")
                    add(
                        ev.AgentFinished,
                        ts,
                        agent=node.agent,
                        activation=seq_of.get(("act", node.key)),
                        outcome=outcome,
                        output=self.output_of(node),
                        handoff_to=node.handoff_to,
                    )
                continue
            span = node.span
            if node.role == "chat" and span is not None:
                attrs = span.attributes
                model = self.chat_model(span)
                if starting:
                    steps += 1
                    step_of[node.key] = steps
                    seq_of[("req", node.key)] = add(
                        ev.ModelRequested,
                        ts,
                        **common,
                        step=steps,
                        model=model,
                        messages=_request_messages(span),
                        tools=self.tool_names(span),
                    )
                    continue
                latency = (span.end_ns - span.start_ns) / 1e6
                cause = seq_of.get(("req", node.key))
                totals = per_agent.setdefault(node.agent, AgentTotals())
                totals.latency_ms += latency
                if span.failed:
                    error_type, message = _error_of(span)
                    add(
                        ev.ModelFailed,
                        ts,
                        **common,
                        step=step_of.get(node.key),
                        cause=cause,
                        model=model,
                        error_type=error_type,
                        message=message,
                        latency_ms=latency,
                    )
                    continue
                tokens_in = _int(attrs, _INPUT_TOKEN_KEYS) or 0
                tokens_out = _int(attrs, _OUTPUT_TOKEN_KEYS) or 0
                cost = _float(attrs, _COST_KEYS)
                if cost is None:
                    cost = self.priced(span, model, tokens_in, tokens_out)
                text, calls = _reply(span)
                totals.calls += 1
                totals.input_tokens += tokens_in
                totals.output_tokens += tokens_out
                totals.cost_usd += cost
                seq_of[("resp", node.key)] = add(
                    ev.ModelResponded,
                    ts,
                    **common,
                    step=step_of.get(node.key),
                    cause=cause,
                    model=model,
                    text=text,
                    tool_calls=calls,
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cost_usd=cost,
                    latency_ms=latency,
                )
            elif node.role == "tool" and span is not None:
                tool = self.tool_name(span)
                call_id = str(span.attributes.get("gen_ai.tool.call.id") or span.span_id)
                if starting:
                    steps += 1
                    step_of[node.key] = steps
                    seq_of[("tool", node.key)] = add(
                        ev.ToolCalled,
                        ts,
                        **common,
                        step=steps,
                        tool=tool,
                        call_id=call_id,
                        args=self.args(span),
                    )
                    continue
                error = None
                if span.failed:
                    error_type, message = _error_of(span)
                    error = f"{error_type}: {message}"
                add(
                    ev.ToolReturned,
                    ts,
                    **common,
                    step=step_of.get(node.key),
                    cause=seq_of.get(("tool", node.key)),
                    tool=tool,
                    call_id=call_id,
                    result=self.result(span),
                    error=error,
                    latency_ms=(span.end_ns - span.start_ns) / 1e6,
                )
            elif node.role == "handoff" and not starting:
                steps += 1
                rendered = json.dumps(node.payload, ensure_ascii=False, separators=(",", ":"))
                cause = None
                for sibling in reversed(node.owner.children if node.owner is not None else []):
                    found = seq_of.get(("resp", sibling.key))
                    if found is not None:
                        cause = found
                        break
                seq_of[("handoff", node.key)] = add(
                    ev.HandoffDelivered,
                    ts,
                    **common,
                    step=steps,
                    cause=cause,
                    source=node.source or node.agent,
                    target=node.target,
                    payload=node.payload,
                    payload_tokens=node.payload_tokens
                    if node.payload_tokens is not None
                    else approx_tokens(rendered),
                )
        return events, per_agent, path

    def _session(
        self,
        events: list[ev.Event],
        per_agent: dict[str, AgentTotals],
        path: list[str],
        acts: dict[str, _Node],
    ) -> ObservedSession:
        root = self.root
        session_id = session_id_of(self.trace_id)
        declared = root.attributes.get("playground.path") if root is not None else None
        if isinstance(declared, list) and all(isinstance(a, str) for a in declared):
            path = list(declared)  # the playground's own trace says its path
        status: Status = "running"
        error: dict[str, Any] | None = None
        output = ""
        latency = 0.0
        if root is not None:
            latency = (root.end_ns - root.start_ns) / 1e6
            output = self.run_output(acts)
            error = self.failure(acts)
            status = "failed" if error is not None else "completed"
            totals = {name: t.as_json() for name, t in per_agent.items() if t.calls}
            end = root.end_ns
            if error is None:
                events.append(
                    ev.RunFinished(
                        session_id=session_id,
                        seq=len(events) + 1,
                        ts=_seconds(end),
                        output=output,
                        path=path,
                        totals=totals,
                    )
                )
            else:
                events.append(
                    ev.RunFailed(
                        session_id=session_id,
                        seq=len(events) + 1,
                        ts=_seconds(end),
                        error_type=error["type"],
                        message=error["message"],
                        origin=error["origin"],
                        manifested=error["manifested"],
                        path=path,
                        totals=totals,
                    )
                )
        first = events[0]
        assert isinstance(first, ev.RunStarted)
        result = RunResult(
            session_id=session_id,
            correlation_id=self.trace_id,
            system=first.system,
            status=status,
            path=path,
            output=output,
            per_agent={name: t for name, t in per_agent.items() if t.calls or name in path},
            latency_ms=latency,
            error=error,
        )
        return ObservedSession(
            session_id=session_id,
            trace_id=self.trace_id,
            framework=self.framework,
            system=first.system,
            input=first.input,
            status=status,
            events=events,
            result=result,
            created_at=_seconds(self.first_ns),
            spans=len(self.spans),
        )

    # -- what the spans say ------------------------------------------------------------------

    def system_name(self) -> str:
        root = self.root
        if root is not None:
            attrs = root.attributes
            workflow = attrs.get("gen_ai.workflow.name")
            if isinstance(workflow, str) and workflow:
                return workflow
            if self.role(root) != "agent":
                name = root.name
                for prefix in ("invoke_workflow ", "invoke_agent "):
                    name = name.removeprefix(prefix)
                if name.strip():
                    return name.strip()
        services = Counter(s.service for s in self.spans.values() if s.service)
        service = services.most_common(1)[0][0] if services else ""
        if service and not service.startswith("unknown_service"):
            return service
        if root is not None and self.role(root) == "agent":
            return self.agent_name(root)
        return self.framework

    def input_text(self, top: list[_Node]) -> str:
        root = self.root
        if root is not None:
            attrs = root.attributes
            for key in ("playground.input",):
                if isinstance(attrs.get(key), str):
                    return str(attrs[key])
            text = _first_user_text(_genai_messages(attrs.get("gen_ai.input.messages")))
            text = text or _first_user_text(_genai_messages(attrs.get("pydantic_ai.all_messages")))
            text = text or _value_text(attrs.get("input.value"))
            if text:
                return text
        for step in sorted(self.steps, key=lambda s: s.start):
            if step.role == "chat" and step.span is not None:
                text = _first_user_text(_request_messages(step.span))
                if text:
                    return text
        return ""

    def incoming(self, act: _Node) -> str:
        if act.via is not None and act.via.role == "handoff" and act.via.payload:
            return json.dumps(act.via.payload, ensure_ascii=False)
        if act.via is not None and act.via.role == "tool" and act.via.span is not None:
            args = self.args(act.via.span)
            return _text(args.get("question") or args.get("input") or args) if args else ""
        span = act.span
        if span is not None:
            for key in ("gen_ai.input.messages", "pydantic_ai.all_messages"):
                text = _first_user_text(_genai_messages(span.attributes.get(key)))
                if text:
                    return text
        for child in sorted(act.children, key=lambda n: n.start):
            if child.role == "chat" and child.span is not None:
                messages = [m for m in _request_messages(child.span) if m.get("role") != "system"]
                if messages:
                    return _first_user_text(messages) or _text(messages[-1].get("content"))
        return ""

    def model_of(self, act: _Node) -> str:
        for child in sorted(act.children, key=lambda n: n.start):
            if child.role == "chat" and child.span is not None:
                return self.chat_model(child.span)
        if act.span is not None:
            model = act.span.attributes.get("gen_ai.request.model") or act.span.attributes.get("model_name")
            if isinstance(model, str):
                return model
        return ""

    def chat_model(self, span: Span) -> str:
        attrs = span.attributes
        for key in ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name"):
            value = attrs.get(key)
            if isinstance(value, str) and value:
                return value
        for prefix in ("chat ", "text_completion ", "generate_content "):
            if span.name.startswith(prefix):
                return span.name.removeprefix(prefix)
        return span.name

    def priced(self, span: Span, model: str, tokens_in: int, tokens_out: int) -> float:
        if self.price is None or not (tokens_in or tokens_out):
            return 0.0
        provider = span.attributes.get("gen_ai.provider.name") or span.attributes.get("llm.provider")
        for name in (model, f"{provider}/{model}" if provider else None):
            if name:
                cost = self.price(name, tokens_in, tokens_out)
                if cost is not None:
                    return cost
        return 0.0

    def tool_names(self, span: Span) -> list[str]:
        names: list[str] = []
        definitions = _json(span.attributes.get("gen_ai.tool.definitions"))
        if isinstance(definitions, list):
            for tool in definitions:
                if isinstance(tool, dict):
                    function: dict[str, Any] = (
                        tool["function"] if isinstance(tool.get("function"), dict) else tool
                    )
                    if function.get("name"):
                        names.append(str(function["name"]))
        index = 0
        while f"llm.tools.{index}.tool.json_schema" in span.attributes:
            schema = _json(span.attributes[f"llm.tools.{index}.tool.json_schema"])
            if isinstance(schema, dict):
                function = schema["function"] if isinstance(schema.get("function"), dict) else schema
                if function.get("name"):
                    names.append(str(function["name"]))
            index += 1
        return names

    def args(self, span: Span) -> dict[str, Any]:
        raw = span.attributes.get("gen_ai.tool.call.arguments", span.attributes.get("input.value"))
        value = _json(raw)
        if isinstance(value, dict):
            return value
        return {} if value in (None, "") else {"input": value}

    def result(self, span: Span) -> str:
        value = span.attributes.get("gen_ai.tool.call.result", span.attributes.get("output.value"))
        data = _json(value)
        if isinstance(data, dict) and isinstance(data.get("data"), dict) and "content" in data["data"]:
            return _text(data["data"]["content"])  # a LangChain ToolMessage
        return _text(value)

    def output_of(self, act: _Node) -> str:
        span = act.span
        if span is not None and self.role(span) == "agent":
            attrs = span.attributes
            final = attrs.get("final_result")
            if final is not None:
                return _text(final)
            text, _ = _reply(span)
            if text:
                return text
            text = _last_text(attrs.get("output.value"))
            if text:
                return text
        for child in sorted(act.children, key=lambda n: n.start, reverse=True):
            if child.role == "chat" and child.span is not None and not child.span.failed:
                return _reply(child.span)[0]
        return ""

    def run_output(self, acts: dict[str, _Node]) -> str:
        root = self.root
        assert root is not None
        attrs = root.attributes
        for key in ("playground.output", "final_result"):
            if key in attrs:
                return _text(attrs[key])
        text = _reply(root)[0] or _last_text(attrs.get("output.value"))
        if text:
            return text
        top = sorted((a for a in acts.values() if a.parent is None), key=lambda a: a.start)
        return self.output_of(top[-1]) if top else ""

    def failure(self, acts: dict[str, _Node]) -> dict[str, Any] | None:
        """The error of a finished trace, or None when it completed.

        It failed when its root span failed or its last top-level agent did. The origin is
        the agent of the failed span that ended first; the manifestation the outermost
        agent that failed (or the last one on the path when only the root says so).
        """
        root = self.root
        assert root is not None
        declared = root.attributes.get("playground.status")
        top = sorted((a for a in acts.values() if a.parent is None), key=lambda a: a.start)
        last = top[-1] if top else None
        if declared == "completed" or (
            declared is None and not root.failed and not (last is not None and last.failed)
        ):
            return None
        failed = sorted(
            (s for s in self.steps if s.span is not None and s.span.failed), key=lambda s: s.end or s.start
        )
        failed_acts = sorted(
            (a for a in acts.values() if a.failed), key=lambda a: a.end if a.end is not None else 1 << 62
        )
        first = failed[0] if failed else (failed_acts[0] if failed_acts else None)
        origin = first.agent if first is not None else (last.agent if last is not None else None)
        outer = [a for a in failed_acts if a.parent is None]
        manifested = outer[-1].agent if outer else (last.agent if last is not None else origin)
        attrs = root.attributes
        if isinstance(attrs.get("playground.error.origin"), str):
            origin = attrs["playground.error.origin"]
        if isinstance(attrs.get("playground.error.manifested"), str):
            manifested = attrs["playground.error.manifested"]
        source = (
            root if root.failed else (first.span if first is not None and first.span is not None else root)
        )
        error_type, message = (
            _error_of(source) if source.failed else ("error", source.status_message or "failed")
        )
        if isinstance(attrs.get("error.type"), str) and root.failed:
            error_type = attrs["error.type"]
        return {"type": error_type, "message": message, "origin": origin, "manifested": manifested}
