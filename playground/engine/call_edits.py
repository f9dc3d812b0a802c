"""A model call held at its gate: what is about to be sent, and an operator's edit of it.

The gate of a model call carries :func:`held_call`: the model, the messages, the agent's
instructions, the tools offered (with their JSON Schemas) and the settings. An operator may
edit ``messages`` and ``instructions`` (:meth:`StepController.edit
<playground.engine.controller.StepController.edit>`); the call is then made with
:func:`edited_messages`, and the activation goes on from that conversation (its later calls
build on what the model saw). The agent's version is not changed: its next activation runs
its own instructions again, unless the operator saves the edited ones as a version.

The ``operator_acted`` event of such an edit records :func:`call_changes`: what changed,
not the whole payload; the ``model_requested`` that follows records what was sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playground.spec.models import AgentSpec

ROLES = frozenset({"system", "user", "assistant", "tool"})
"""The roles a message of an edited call may have."""

EDITABLE = frozenset({"messages", "instructions"})
"""What of a held model call an operator may change."""

MAX_MESSAGES = 2_000
"""Messages an edited call may have (an edit's text is bounded in bytes before it is parsed)."""


def held_call(
    agent: AgentSpec,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The payload of a model call's gate: what is about to be sent (copies: an edit of them
    changes nothing until it is delivered)."""
    return {
        "model": agent.model,
        "messages": [dict(m) for m in messages],
        "instructions": agent.instructions,
        "tools": tools,
        "settings": dict(settings),
    }


def check_call_edit(held: dict[str, Any]) -> Callable[[dict[str, Any]], str | None]:
    """A gate's ``validate`` for edits of the call ``held``: returns why an edit is refused."""

    def validate(payload: dict[str, Any]) -> str | None:
        for key in ("model", "tools", "settings"):
            if key in payload and payload[key] != held.get(key):
                return f"only the messages and the instructions of a held call can be edited, not {key!r}"
        instructions = payload.get("instructions", held["instructions"])
        if not isinstance(instructions, str):
            return "'instructions' must be text"
        messages = payload.get("messages", held["messages"])
        problem = messages_problem(messages)
        if problem is not None:
            return problem
        system = messages[0].get("content")
        if instructions != held["instructions"] and system != held["messages"][0].get("content"):
            return "edit the instructions or the system message, not both"
        return None

    return validate


def messages_problem(messages: Any) -> str | None:
    """Why ``messages`` cannot be sent as a model call's messages, or None."""
    if not isinstance(messages, list) or len(messages) < 2:
        return "'messages' must be a list: the system message, then at least one more"
    if len(messages) > MAX_MESSAGES:
        return f"at most {MAX_MESSAGES} messages"
    offered: set[str] = set()
    for index, message in enumerate(messages):
        where = f"message {index}"
        if not isinstance(message, dict):
            return f"{where} must be an object with 'role' and 'content'"
        role = message.get("role")
        if role not in ROLES:
            return f"{where} has role {role!r}; one of {', '.join(sorted(ROLES))}"
        if (role == "system") != (index == 0):
            return "the system message comes first, and only there"
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            return f"{where}: 'content' must be text (or null)"
        calls = message.get("tool_calls")
        if calls is not None:
            if role != "assistant" or not isinstance(calls, list):
                return f"{where}: only an assistant message has 'tool_calls', a list"
            offered.update(str(c.get("id")) for c in calls if isinstance(c, dict))
        if role == "tool" and str(message.get("tool_call_id")) not in offered:
            return f"{where} answers tool call {message.get('tool_call_id')!r}, which no earlier message made"
    return None


def check_failed_call_edit(editable: bool) -> Callable[[dict[str, Any]], str | None]:
    """A ``validate`` for the gate of a failure held before the run fails: its retry may be
    made with edited ``messages`` (``editable``), nothing else; an edit the run would not use
    is refused, so the run stays held instead of failing as if the operator let it go."""

    def validate(payload: dict[str, Any]) -> str | None:
        if not editable:
            return "nothing of this hold can be edited: retry (r) or let the run fail (c)"
        if "messages" not in payload:
            return "only the messages of a failed call can be edited before it is made again"
        return messages_problem(payload["messages"])

    return validate


def edited_messages(held: dict[str, Any], payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages the call is made with after the edit ``payload`` (already validated)."""
    messages = [dict(m) for m in payload.get("messages", held["messages"])]
    old, new = held["instructions"], payload.get("instructions", held["instructions"])
    if new != old:
        system = str(messages[0].get("content") or "")
        # The system prompt is the instructions and what the run adds (a reply shape, history).
        rest = system[len(old) :] if system.startswith(old) else ""
        messages[0]["content"] = new + rest
    return messages


def call_changes(held: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """What an edit of the call ``held`` changes, for its ``operator_acted`` event:
    ``changed`` (``instructions``, ``messages``), the new ``instructions``, and each changed,
    added or removed message as ``{index, before, after}`` (None where there was none)."""
    if check_call_edit(held)(payload) is not None:
        return {"payload": payload}  # refused: recorded as sent, then as ``edit_rejected``
    detail: dict[str, Any] = {"changed": []}
    instructions = payload.get("instructions", held["instructions"])
    if instructions != held["instructions"]:
        detail["changed"].append("instructions")
        detail["instructions"] = instructions
    before, after = held["messages"], payload.get("messages", held["messages"])
    changes = [
        {
            "index": index,
            "before": before[index] if index < len(before) else None,
            "after": after[index] if index < len(after) else None,
        }
        for index in range(max(len(before), len(after)))
        if index >= len(before) or index >= len(after) or before[index] != after[index]
    ]
    if changes:
        detail["changed"].append("messages")
        detail["messages"] = changes
    return detail
