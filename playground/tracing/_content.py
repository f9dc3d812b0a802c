"""Prompts and replies in the GenAI semantic-convention JSON shape.

Only used when content capture is on. OpenAI-style chat messages (what the
engine sends) become ``{"role", "parts": [...]}`` objects: text parts, tool
calls and tool call responses, as ``gen_ai.input.messages`` and
``gen_ai.output.messages`` expect. The system prompt goes to
``gen_ai.system_instructions`` instead of the input messages.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str:
    """Compact JSON that never fails (unknown objects become strings)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _tool_call_part(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function")
    if isinstance(function, dict):  # OpenAI message shape
        name, arguments = function.get("name"), function.get("arguments")
    else:  # the engine's ToolCall.as_dict shape
        name, arguments = call.get("name"), call.get("arguments")
    return {
        "type": "tool_call",
        "id": call.get("id"),
        "name": name,
        "arguments": _arguments(arguments),
    }


def split_messages(messages: list[dict[str, Any]]) -> tuple[str | None, str]:
    """Returns ``(system_instructions, input_messages)`` as JSON strings."""
    system: list[dict[str, Any]] = []
    converted: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        text = _text(message.get("content"))
        if role == "system":
            system.append({"type": "text", "content": text})
            continue
        parts: list[dict[str, Any]] = []
        if role == "tool":
            parts.append({"type": "tool_call_response", "id": message.get("tool_call_id"), "response": text})
        elif text:
            parts.append({"type": "text", "content": text})
        for call in message.get("tool_calls") or ():
            parts.append(_tool_call_part(call))
        converted.append({"role": role, "parts": parts})
    return (dumps(system) if system else None), dumps(converted)


def user_message(text: str) -> str:
    """One user message as ``gen_ai.input.messages`` JSON."""
    return dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])


def output_message(text: str, tool_calls: list[dict[str, Any]] | None = None) -> str:
    """One assistant reply as ``gen_ai.output.messages`` JSON."""
    parts: list[dict[str, Any]] = [{"type": "text", "content": text}] if text else []
    parts.extend(_tool_call_part(call) for call in tool_calls or ())
    finish = "tool_call" if tool_calls else "stop"
    return dumps([{"role": "assistant", "parts": parts, "finish_reason": finish}])
