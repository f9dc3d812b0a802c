"""The scripted model: offline, deterministic, and a real part of the product.

A script is a list of steps (shared/DESIGN.md, "System file"). Each model call
of one agent activation takes the next step, in order after the last one taken,
whose ``match`` is absent or matches the incoming message. The position is
derived from the request alone (the number of assistant turns so far), so a
retried, replayed or forked call gets the same answer as the original.

Message layout the engine guarantees for every activation: ``messages[0]`` is
the system prompt, ``messages[1]`` the incoming message (the request, or the
context rendered as JSON), then the activation's own turns.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from pydantic_core import to_json

from playground.errors import (
    ModelError,
    ModelRequestError,
    ModelTimeout,
    ProviderError,
    RateLimited,
    ScriptError,
)
from playground.llm.base import (
    REVIEW_ACCEPT,
    REVIEW_REJECT,
    ModelRequest,
    ModelResponse,
    OnDelta,
    ToolCall,
    approx_tokens,
)
from playground.spec.load import HANDOFF_PREFIX
from playground.spec.models import ScriptStep

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOKEN = re.compile(r"\S+\s*|\s+")
FAILURES: dict[str, type[ModelError]] = {
    # The provider errors a script step or a scenario fault can inject, by name.
    "provider_error": ProviderError,
    "rate_limited": RateLimited,
    "timeout": ModelTimeout,
    "request_error": ModelRequestError,
}


class ScriptedLLM:
    """Answers from an agent's script.

    Args:
        agent: The agent's name (for messages).
        script: Its steps.
        latency_ms: Delay before the first token.
        tokens_per_s: Streaming rate; 0 streams instantly.
    """

    def __init__(
        self,
        agent: str,
        script: list[ScriptStep],
        latency_ms: float = 0.0,
        tokens_per_s: float = 0.0,
    ) -> None:
        self.agent = agent
        self.script = script
        self.latency_ms = latency_ms
        self.tokens_per_s = tokens_per_s
        self._patterns = [re.compile(s.match) if s.match else None for s in script]
        self._failures: dict[tuple[str, int], int] = {}

    async def complete(self, request: ModelRequest, on_delta: OnDelta | None = None) -> ModelResponse:
        started = time.perf_counter()
        messages = request.messages
        incoming = _content(messages[1]) if len(messages) > 1 else ""
        offered = {t.name for t in request.tools}
        if REVIEW_ACCEPT in offered:
            step = self._review_step(incoming)
        else:
            step = self._next_step(request, incoming, messages)
        fields = _fields(incoming, messages)
        calls: list[ToolCall] = []
        text = ""
        call_id = f"{_OWN}{_own_turns(messages) + 1}"
        if step is None:
            calls.append(ToolCall(call_id, REVIEW_ACCEPT, "{}"))
        elif step.review is not None:
            if step.review == "accept":
                calls.append(ToolCall(call_id, REVIEW_ACCEPT, "{}"))
            else:
                feedback = _render(step.feedback or "rejected", fields, self.agent)
                calls.append(ToolCall(call_id, REVIEW_REJECT, json.dumps({"feedback": feedback})))
        elif step.reply is not None:
            rendered = _render(step.reply, fields, self.agent)
            text = rendered if isinstance(rendered, str) else _json(rendered)
        elif step.tool is not None:
            args = (
                step.raw_args
                if step.raw_args is not None
                else _json(_render(step.args or {}, fields, self.agent))
            )
            calls.append(ToolCall(call_id, step.tool, args))
        elif step.handoff is not None:
            context = _render(step.context or {"question": "{input}"}, fields, self.agent)
            calls.append(ToolCall(call_id, HANDOFF_PREFIX + step.handoff, _json(context)))
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        first_token_ms = (time.perf_counter() - started) * 1000
        out = text or "".join(c.arguments for c in calls)
        if text and (on_delta is not None or self.tokens_per_s):
            delay = 1 / self.tokens_per_s if self.tokens_per_s else 0.0
            for token in _TOKEN.findall(text):
                if delay:
                    await asyncio.sleep(delay)
                if on_delta is not None:
                    on_delta(token)
        return ModelResponse(
            text=text,
            tool_calls=calls,
            input_tokens=sum(approx_tokens(_content(m)) for m in messages),
            output_tokens=approx_tokens(out),
            cost_usd=None,
            model=request.model,
            first_token_ms=first_token_ms,
        )

    def _matches(self, index: int, incoming: str) -> bool:
        pattern = self._patterns[index]
        return pattern is None or pattern.search(incoming) is not None

    def _next_step(self, request: ModelRequest, incoming: str, messages: list[dict[str, Any]]) -> ScriptStep:
        turns = _own_turns(messages)
        last = -1
        for _ in range(turns):
            last = self._find(last + 1, incoming, answers_only=True)
            if last < 0:
                break
        index = last + 1
        while True:
            index = self._find(index, incoming, answers_only=False) if last >= 0 or turns == 0 else -1
            if index < 0:
                raise ScriptError(
                    f"the script of {self.agent!r} has no step left for model call {turns + 1}"
                    f" (incoming message: {incoming[:80]!r})",
                    model=request.model,
                )
            step = self.script[index]
            if step.fail is None:
                return step
            key = (request.activation, index)
            used = self._failures.get(key, 0)
            applies = step.model is None or step.model == request.model
            if applies and (step.times is None or used < step.times):
                self._failures[key] = used + 1
                raise FAILURES[step.fail](
                    f"injected {step.fail} (script step {index + 1} of {self.agent!r})",
                    model=request.model,
                )
            index += 1

    def _find(self, start: int, incoming: str, *, answers_only: bool) -> int:
        for index in range(start, len(self.script)):
            step = self.script[index]
            if step.review is not None or (answers_only and step.fail is not None):
                continue
            if self._matches(index, incoming):
                return index
        return -1

    def _review_step(self, incoming: str) -> ScriptStep | None:
        for index, step in enumerate(self.script):
            if step.review is not None and self._matches(index, incoming):
                return step
        return None


_OWN = "sc_"
"""Prefix of the scripted model's tool call ids: how it tells its own turns from others'."""


def _own_turns(messages: list[dict[str, Any]]) -> int:
    """Assistant turns this model produced: a turn injected by something else (a scenario's
    fault, say) does not move the script on, so the script then does what it would have done."""
    count = 0
    for message in messages:
        if message.get("role") != "assistant":
            continue
        calls = message.get("tool_calls") or []
        if not calls or any(str(c.get("id", "")).startswith(_OWN) for c in calls):
            count += 1
    return count


def _json(value: Any) -> str:
    return to_json(value, fallback=str).decode()


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _fields(incoming: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if incoming.startswith("{"):
        try:
            parsed = json.loads(incoming)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            fields.update(parsed)
    fields["input"] = incoming
    for message in reversed(messages):
        if message.get("role") == "tool":
            fields["tool_result"] = _content(message)
            break
    return fields


def _render(template: Any, fields: dict[str, Any], agent: str) -> Any:
    if isinstance(template, dict):
        return {k: _render(v, fields, agent) for k, v in template.items()}
    if isinstance(template, list):
        return [_render(v, fields, agent) for v in template]
    if not isinstance(template, str) or "{" not in template:
        return template

    def value(name: str) -> Any:
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ScriptError(
                f"template field {{{name}}} of {agent!r} is not in its incoming context ({known})"
            )
        return fields[name]

    whole = _FIELD.fullmatch(template)
    if whole:
        return value(whole.group(1))
    return _FIELD.sub(lambda m: _as_text(value(m.group(1))), template)


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_as_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
