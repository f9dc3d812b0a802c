"""The chat messages of an activation: rendering contexts, answering calls, history."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import to_json

from playground.llm.base import ModelResponse, parse_json
from playground.spec.schema import Schema, format_validation_error


def render_context(context: dict[str, Any]) -> str:
    """A context as the JSON text its receiving agent's model sees."""
    return to_json(context, fallback=str).decode()


def tool_message(call_id: str, content: str) -> dict[str, Any]:
    """The answer to one tool call of the model's last response."""
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def assistant_message(response: ModelResponse) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.text or None}
    if response.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in response.tool_calls
        ]
    return message


def before_last_assistant(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as it was before the model's last response (to run that call again)."""
    for index in range(len(messages) - 1, 1, -1):
        if messages[index].get("role") == "assistant":
            return messages[:index]
    return messages


def history_tokens(messages: list[dict[str, Any]]) -> int:
    """What the conversation after the system prompt would cost a handoff's target, in tokens."""
    tokens = 0
    for message in messages[1:]:
        text = str(message.get("content") or "")
        if text:
            tokens += (len(text) + 3) // 4  # approx_tokens, inlined: once per message
    return tokens


def history(messages: list[dict[str, Any]], policy: str) -> list[dict[str, Any]]:
    """What of a conversation a handoff's target sees under ``policy`` (none, full, last:N)."""
    if policy == "none":
        return []
    turns = [m for m in messages[1:] if m.get("content")]
    if policy == "full":
        return turns
    return turns[-int(policy.split(":", 1)[1]) :]


def parse_or_text(text: str) -> Any:
    """A reply's JSON, or the reply itself when it is not JSON."""
    try:
        return parse_json(text)
    except ValueError:
        return text


def check_json(text: str, schema: Schema) -> str | None:
    """Why ``text`` is not a JSON object of ``schema``'s shape, or None."""
    try:
        data = parse_json(text)
    except ValueError as exc:
        return f"not valid JSON ({exc})"
    try:
        schema.validate(data)
    except ValidationError as exc:
        return format_validation_error(exc)
    return None
