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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

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
    parse_json,
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
        self._answers = [_answer(s, agent) for s in script]
        self._failures: dict[tuple[str, int], int] = {}

    async def complete(self, request: ModelRequest, on_delta: OnDelta | None = None) -> ModelResponse:
        started = time.perf_counter()
        messages = request.messages
        incoming = messages[1].get("content") if len(messages) > 1 else ""
        if not isinstance(incoming, str):
            incoming = ""
        turns = _own_turns(messages)
        for tool in request.tools:
            if tool.name == REVIEW_ACCEPT:
                index, step = self._review_step(incoming)
                break
        else:
            index, step = self._next_step(request, incoming, messages, turns)
        calls: list[ToolCall] = []
        text = ""
        call_id = f"{_OWN}{turns + 1}"
        if step is None:
            calls.append(ToolCall(call_id, REVIEW_ACCEPT, "{}"))
        else:
            answer = self._answers[index]
            action = answer.action
            render = answer.render
            rendered = answer.template if render is None else render(_fields(incoming, messages))
            if action == "reply":
                text = rendered if isinstance(rendered, str) else _json(rendered)
            elif action == "call":  # a tool, a delegate or a handoff
                args = answer.raw_args if answer.raw_args is not None else _json(rendered)
                calls.append(ToolCall(call_id, answer.tool, args))
            elif action == "calls":  # several in one response: rendered is one args map per call
                for j, (called, args_of_call) in enumerate(zip(answer.tools, rendered, strict=True)):
                    calls.append(ToolCall(f"{call_id}_{j + 1}", called, _json(args_of_call)))
            elif action == "accept":
                calls.append(ToolCall(call_id, REVIEW_ACCEPT, "{}"))
            elif action == "reject":
                calls.append(ToolCall(call_id, REVIEW_REJECT, json.dumps({"feedback": rendered})))
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        first_token_ms = (time.perf_counter() - started) * 1000
        if text:
            out = text
            if on_delta is not None or self.tokens_per_s:
                delay = 1 / self.tokens_per_s if self.tokens_per_s else 0.0
                for token in _TOKEN.findall(text):
                    if delay:
                        await asyncio.sleep(delay)
                    if on_delta is not None:
                        on_delta(token)
        else:
            out = calls[0].arguments if len(calls) == 1 else "".join(c.arguments for c in calls)
        input_tokens = 0
        for message in messages:
            content = message.get("content")
            if content and isinstance(content, str):
                input_tokens += (len(content) + 3) // 4  # approx_tokens, inlined: once per message
        return ModelResponse(
            text=text,
            tool_calls=calls,
            input_tokens=input_tokens,
            output_tokens=approx_tokens(out),
            cost_usd=None,
            model=request.model,
            first_token_ms=first_token_ms,
        )

    def _matches(self, index: int, incoming: str) -> bool:
        pattern = self._patterns[index]
        return pattern is None or pattern.search(incoming) is not None

    def _next_step(
        self, request: ModelRequest, incoming: str, messages: list[dict[str, Any]], turns: int
    ) -> tuple[int, ScriptStep]:
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
                return index, step
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
        answers, patterns = self._answers, self._patterns
        for index in range(start, len(answers)):
            answer = answers[index]
            if answer.reviews or (answers_only and answer.fails):
                continue
            pattern = patterns[index]
            if pattern is None or pattern.search(incoming) is not None:
                return index
        return -1

    def _review_step(self, incoming: str) -> tuple[int, ScriptStep | None]:
        for index, step in enumerate(self.script):
            if self._answers[index].reviews and self._matches(index, incoming):
                return index, step
        return -1, None


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
            parsed = parse_json(incoming)
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


Render = Callable[[dict[str, Any]], Any]
"""Fills a parsed template from the fields of one call."""


@dataclass(slots=True)
class _Answer:
    """What a script step answers, worked out once from the step."""

    action: str
    """``reply``, ``call`` (a tool, delegate or handoff), ``accept``, ``reject`` or ``fail``."""
    reviews: bool
    fails: bool
    tool: str = ""
    """The tool called, handoffs with their prefix."""
    raw_args: str | None = None
    template: Any = None
    """The reply, arguments, context or feedback, as written."""
    render: Render | None = None
    """Fills ``template`` in; None: it has no field and is used as is."""
    tools: tuple[str, ...] = ()
    """With ``calls``: the tool or delegate of each call, in order."""


def _answer(step: ScriptStep, agent: str) -> _Answer:
    reviews, fails = step.review is not None, step.fail is not None
    if step.review == "accept":
        return _Answer("accept", reviews, fails)
    template: Any = None
    if step.review == "reject":
        action, tool, template = "reject", "", step.feedback or "rejected"
    elif step.reply is not None:
        action, tool, template = "reply", "", step.reply
    elif step.tool is not None:
        action, tool = "call", step.tool
        if step.raw_args is None:  # sent as they are: their template is never rendered
            template = step.args or {}
    elif step.calls is not None:
        template = [call.args for call in step.calls]
        tools = tuple(call.tool for call in step.calls)
        return _Answer("calls", reviews, fails, "", None, template, _compile(template, agent), tools)
    elif step.handoff is not None:
        action, tool = "call", HANDOFF_PREFIX + step.handoff
        template = step.context if step.context is not None else {"question": "{input}"}
    else:
        action, tool = "fail", ""
    return _Answer(action, reviews, fails, tool, step.raw_args, template, _compile(template, agent))


def _compile(template: Any, agent: str) -> Render | None:
    """Parse a template once: a string's ``{field}``s, a map's or a list's values, recursively.

    Rendering gives what substituting into the template text would: a string that is one
    whole ``{field}`` becomes that field's value, any other field is spliced in as text.
    """
    if isinstance(template, dict):
        items = [(key, value, _compile(value, agent)) for key, value in template.items()]
        if all(render is None for _, _, render in items):
            return None
        return lambda fields: {k: v if r is None else r(fields) for k, v, r in items}
    if isinstance(template, list):
        elements = [(value, _compile(value, agent)) for value in template]
        if all(render is None for _, render in elements):
            return None
        return lambda fields: [v if r is None else r(fields) for v, r in elements]
    if not isinstance(template, str) or "{" not in template:
        return None
    whole = _FIELD.fullmatch(template)
    if whole:
        name = whole.group(1)
        return lambda fields: fields[name] if name in fields else _missing(name, fields, agent)
    pieces = _FIELD.split(template)  # literal, name, literal, name, ..., literal
    if len(pieces) == 1:
        return None
    literals, names = pieces[0::2], pieces[1::2]

    def splice(fields: dict[str, Any]) -> str:
        out = [literals[0]]
        for name, literal in zip(names, literals[1:], strict=True):
            out.append(_as_text(fields[name] if name in fields else _missing(name, fields, agent)))
            out.append(literal)
        return "".join(out)

    return splice


def _missing(name: str, fields: dict[str, Any], agent: str) -> NoReturn:
    known = ", ".join(sorted(fields))
    raise ScriptError(f"template field {{{name}}} of {agent!r} is not in its incoming context ({known})")


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_as_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
