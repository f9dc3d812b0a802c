"""The one small interface between the engine and every model.

The engine builds a :class:`ModelRequest` and awaits :meth:`LLM.complete`. It
cannot tell the scripted, replay and litellm implementations apart, and must
not try: anything the engine needs is in the request and the response.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic_core import from_json

OnDelta = Callable[[str], None]
"""Receives streamed text as it arrives."""

REVIEW_ACCEPT = "accept_output"
"""Tool offered to a reviewing supervisor to accept a worker's output."""
REVIEW_REJECT = "reject_output"
"""Tool offered to a reviewing supervisor to reject a worker's output with feedback."""


@dataclass(slots=True)
class ToolDef:
    """A tool offered to the model: a real tool, a delegate or a handoff."""

    name: str
    description: str
    parameters: dict[str, Any]

    def as_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(slots=True)
class ToolCall:
    """A tool call as the model sent it. ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(slots=True)
class ModelRequest:
    """One model call.

    Attributes:
        agent: The agent making the call.
        model: The model string to call (the agent's model or a fallback).
        messages: OpenAI-style chat messages.
        tools: Tools offered, handoffs and delegates included.
        settings: Model settings from the agent spec (temperature, api_base, ...).
        timeout_s: Limit of this call.
        activation: Identifies the agent activation (stable across retries).
        version: The agent version making the call (lets the replay model match recordings).
    """

    agent: str
    model: str
    messages: list[dict[str, Any]]
    tools: list[ToolDef] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = 60.0
    activation: str = ""
    version: str = ""


@dataclass(slots=True)
class ModelResponse:
    """What a model call returned.

    ``cost_usd`` is None when the implementation knows no price; the engine then
    uses the agent's ``price:`` or zero.
    """

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    model: str = ""
    first_token_ms: float | None = None
    replayed: bool = False
    """Answered from a recording rather than a live call (the replay model)."""


class LLM(Protocol):
    """A model. Raises :class:`playground.errors.ModelError` subclasses on failure."""

    async def complete(self, request: ModelRequest, on_delta: OnDelta | None = None) -> ModelResponse:
        """Answer one request, streaming text to ``on_delta`` when given."""
        ...


def approx_tokens(text: str) -> int:
    """A cheap, deterministic token estimate (about four characters a token).

    Used for the scripted model's usage and for payload sizes, where calling a
    real tokenizer would need a network or a 3 s import.
    """
    return (len(text) + 3) // 4 if text else 0


def parse_json(text: str) -> Any:
    """``json.loads``, about 1 µs faster on the small documents tool calls carry.

    jiter parses what it accepts exactly as ``json`` does; whatever it rejects (a lone
    surrogate escape, malformed text) goes to ``json.loads``, which then decides, and
    raises its own error with its own message.
    """
    try:
        return from_json(text)
    except (ValueError, TypeError):
        return json.loads(text)
