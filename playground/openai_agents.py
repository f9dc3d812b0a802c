"""OpenAI Agents SDK agents, run by the playground's own engine.

Given an SDK ``Agent`` (the entry agent), :func:`system_from_agent` walks its handoffs
and the agents it uses as tools and builds a :class:`~playground.spec.load.System`: the
same model a system file loads into, so stepping, edits, retries, model swaps,
versions, fork, replay, compare and traces all work on it. Every model call goes
through litellm (or the scripted model); the SDK's ``Runner`` is not used.

What maps (the SDK's objects are used wherever they do the work):

- ``name`` -> the agent's name as the SDK names its handoff tool (``Billing Agent`` ->
  ``billing_agent``); ``handoff_description`` -> ``description``.
- ``instructions``: a string, or a function ``(context, agent)`` (sync or async), called
  once when the system is built, with a run context whose ``context`` is None (the
  playground has no user context object); its source is part of the version.
- ``model``: a model name becomes a litellm model string (``gpt-4o`` -> ``openai/gpt-4o``,
  ``litellm/anthropic/...`` -> ``anthropic/...``); ``model_settings``: temperature,
  top_p, penalties, max_tokens, parallel_tool_calls, tool_choice (``auto``/``none``),
  reasoning effort, verbosity, metadata, top_logprobs, extra_headers, extra_body and
  extra_args become litellm arguments.
- function tools run through the SDK's own tool object (``on_invoke_tool``): its argument
  parsing, validation and error messages are the SDK's; ``timeout_seconds`` is the
  tool's timeout.
- agents used as tools (``agent.as_tool(...)``) become delegates named after their tool.
- handoffs (an agent, or ``handoff(agent, ...)``): the conversation goes with them
  (``history: full``, the SDK's default); with ``input_type`` the target also receives
  the typed arguments as its context. A ``handoff()`` object's own ``on_invoke_handoff``
  (the SDK's strict validation of ``input_type``, then ``on_handoff``) runs as the
  handoff's checkpoint, before the handoff is held at a gate and delivered: a payload
  it rejects goes back to the model, like any checkpoint rejection.
- ``output_type`` -> ``output``: the final reply must be JSON of its (strict) JSON Schema,
  enforced in full; schemas are offered to the model as the SDK writes them.

What is refused, by name, because the playground would run something else:
guardrails (input, output and tool guardrails: the engine has no tripwire yet), ``hooks``,
``mcp_servers``, ``prompt``, hosted and other non-function tools, ``tool_use_behavior``
other than ``run_llm_again``, ``needs_approval``, ``is_enabled`` that is not ``True``,
handoff ``input_filter``, a handoff tool renamed away from ``transfer_to_<agent>``,
``tool_choice`` ``required`` or a tool's name (the SDK resets it after a tool call; the
playground would not), ``Model`` objects instead of model names, the SDK settings that
only its Responses client knows (``truncation``, ``store``, ``prompt_cache_*``,
``context_management``, ``response_include``, ``retry``, ``extra_query``), and an
``output_type`` with validators of its own (a JSON Schema cannot carry them).

This module imports the SDK; nothing imports this module unless an SDK agent is
loaded (:mod:`playground.spec.python`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents import (
    Agent,
    AgentOutputSchema,
    AgentOutputSchemaBase,
    FunctionTool,
    Handoff,
    ItemHelpers,
    ModelSettings,
    RunContextWrapper,
)
from agents.models import get_default_model, get_default_model_settings
from agents.tool_context import ToolContext
from openai.types.responses import ResponseFunctionToolCall
from pydantic import BaseModel, ValidationError

from playground.define import object_schema, refuse_validators
from playground.errors import SpecError
from playground.spec.code import INSTRUCTIONS, fingerprint, source_hash, tool_key
from playground.spec.load import HANDOFF_PREFIX, Loc, System, Tool, _check, explain
from playground.spec.models import Limits, ScriptStep, SystemSpec

__all__ = ["Unmappable", "litellm_model", "system_from_agent"]

_CALL_ID = "call_playground"
_SETTINGS_AS_IS = (
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "max_tokens",
    "parallel_tool_calls",
    "metadata",
    "extra_headers",
    "extra_body",
)
_SETTINGS_REFUSED = (
    "truncation",
    "store",
    "prompt_cache_retention",
    "prompt_cache_options",
    "response_include",
    "context_management",
    "retry",
    "extra_query",
)


class Unmappable(SpecError):
    """An SDK agent uses something the playground cannot run as the SDK would."""


@dataclass
class _Node:
    """One SDK agent of the system, and what it is called and asked for here."""

    agent: Agent[Any]
    name: str
    worker_tool: FunctionTool | None = None
    """The tool an agent used as a tool is called by (a delegate), else None."""


@dataclass
class _Build:
    path: str
    model: str | None
    models: Mapping[str, str]
    settings: Mapping[str, Any]
    scripts: Mapping[str, Sequence[ScriptStep | Mapping[str, Any]]]
    nodes: dict[int, _Node] = field(default_factory=dict)
    order: list[_Node] = field(default_factory=list)
    tools: dict[str, Tool] = field(default_factory=dict)
    sdk_tools: dict[str, FunctionTool] = field(default_factory=dict)
    checks: dict[str, Tool] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def refuse(self, where: str, problem: str) -> None:
        self.problems.append((where, problem))


def system_from_agent(
    entry: Agent[Any],
    *,
    name: str | None = None,
    model: str | None = None,
    models: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    scripts: Mapping[str, Sequence[ScriptStep | Mapping[str, Any]]] | None = None,
    limits: Limits | Mapping[str, Any] | None = None,
    on_loop: str = "stop",
    description: str = "",
    path: str = "",
) -> System:
    """The playground system an SDK agent and the agents it reaches make.

    Args:
        entry: The agent that receives the request.
        name: The system's name (versions and sessions are filed under it); the entry
            agent's name by default.
        model: Run every agent on this model instead of its own (``scripted`` runs
            offline from ``scripts``; any litellm model string).
        models: Per agent (by its playground name; ``*`` for the rest): the model to run it on.
        settings: Model settings added to every agent's (``api_base``, ``api_key_env``, ...).
        scripts: Per agent, the scripted model's steps (see the system file's ``script:``).
        limits: Bounds on one run. ``on_loop``: an agent to escalate a loop to, or ``stop``.
        path: Where the agent was loaded from (errors and sessions name it).

    Raises:
        Unmappable: listing everything of the SDK agents the playground would not run as
            the SDK does, each with the agent and attribute.
        SpecError: the system does not check (a script step's unknown tool, ...).
    """
    shown = path or "<openai-agents>"
    build = _Build(shown, model, dict(models or {}), dict(settings or {}), dict(scripts or {}))
    _walk(build, entry)
    unknown = sorted(set(build.scripts) - {n.name for n in build.order})
    if unknown:
        build.refuse("scripts", f"no agent is named {', '.join(unknown)}")
    agents = {node.name: _agent_data(build, node) for node in build.order}
    if build.problems:
        listed = "; ".join(f"{where}: {problem}" for where, problem in build.problems)
        raise Unmappable(shown, None, "", f"cannot run under the playground as the SDK would: {listed}")
    entry_node = build.nodes[id(entry)]
    entry_data = agents[entry_node.name]
    if entry_data.get("handoffs"):
        pattern = "router"
    elif entry_data.get("delegates"):
        pattern = "supervisor"
    else:
        raise Unmappable(
            shown,
            None,
            f"agents.{entry_node.name}",
            "the entry agent has neither handoffs nor agents used as tools: the playground runs"
            " systems of several agents (a router hands off, a supervisor delegates)",
        )
    data: dict[str, Any] = {
        "name": name or entry_node.name,
        "pattern": pattern,
        "entry": entry_node.name,
        "agents": agents,
        "tools": {t: f"openai-agents:{t}" for t in build.tools},
        "on_loop": on_loop,
        "path": shown,
    }
    if description:
        data["description"] = description
    if limits is not None:
        data["limits"] = limits
    lines: dict[Loc, int] = {}
    try:
        spec = SystemSpec.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, shown, lines) from None
    _check(spec, shown, lines)
    return System(spec, build.tools, lines, checks=build.checks)


# -- walking the agents ----------------------------------------------------------------------


def _handoff_name(agent: Agent[Any]) -> str:
    """The playground name of an agent: what the SDK's handoff tool calls it."""
    return Handoff.default_tool_name(agent)[len(HANDOFF_PREFIX) :]


def _walk(build: _Build, entry: Agent[Any]) -> None:
    todo: list[tuple[Agent[Any], str, FunctionTool | None]] = [(entry, _handoff_name(entry), None)]
    while todo:
        agent, name, worker_tool = todo.pop(0)
        node = build.nodes.get(id(agent))
        if node is not None:
            if node.name != name:
                build.refuse(
                    f"agents.{node.name}",
                    f"the same agent is reached as {node.name!r} and as {name!r} (a handoff target is"
                    " named after the agent, a delegate after its tool): one agent, one name",
                )
            continue
        clash = next((n for n in build.order if n.name == name), None)
        if clash is not None:
            build.refuse(f"agents.{name}", f"two different agents are named {name!r}")
            continue
        node = _Node(agent, name, worker_tool)
        build.nodes[id(agent)] = node
        build.order.append(node)
        for item in agent.handoffs:
            target = item if isinstance(item, Agent) else _handoff_target(item)
            if target is not None:
                todo.append((target, _handoff_name(target), None))
        for tool in agent.tools:
            worker = _agent_of_tool(tool)
            if worker is not None and isinstance(tool, FunctionTool):
                todo.append((worker, tool.name, tool))


def _handoff_target(handoff: Handoff[Any, Any]) -> Agent[Any] | None:
    """The agent a ``handoff()`` object hands to (the SDK keeps a weak reference to it)."""
    ref = getattr(handoff, "_agent_ref", None)
    target = ref() if callable(ref) else None
    return target if isinstance(target, Agent) else None


def _agent_of_tool(tool: Any) -> Agent[Any] | None:
    """The agent behind ``agent.as_tool(...)``, or None for any other tool."""
    if not isinstance(tool, FunctionTool) or not getattr(tool, "_is_agent_tool", False):
        return None
    agent = getattr(tool, "_agent_instance", None)
    return agent if isinstance(agent, Agent) else None


# -- one agent -------------------------------------------------------------------------------


def _agent_data(build: _Build, node: _Node) -> dict[str, Any]:
    agent, name = node.agent, node.name
    where = f"agents.{name}"
    refuse = build.refuse
    code: dict[str, str] = {}
    for attr, why in (
        ("input_guardrails", "guardrails have no tripwire in the playground's engine yet"),
        ("output_guardrails", "guardrails have no tripwire in the playground's engine yet"),
        ("mcp_servers", "MCP servers are not run by the playground"),
        ("hooks", "agent lifecycle hooks are not called by the playground"),
    ):
        if getattr(agent, attr, None):
            refuse(f"{where}.{attr}", why)
    if getattr(agent, "prompt", None) is not None:
        refuse(f"{where}.prompt", "prompt objects exist only in OpenAI's Responses API")
    if agent.tool_use_behavior != "run_llm_again":
        refuse(
            f"{where}.tool_use_behavior",
            f"{agent.tool_use_behavior!r}: the playground always gives tool results back to the model",
        )
    data: dict[str, Any] = {"name": name, "model": _model_of(build, node)}
    instructions = _instructions(build, node, code)
    if instructions:
        data["instructions"] = instructions
    description = node.worker_tool.description if node.worker_tool is not None else agent.handoff_description
    if description:
        data["description"] = description
    settings = _settings(build, node)
    if settings:
        data["model_settings"] = settings
    tools, delegates = _tools(build, node, code)
    if tools:
        data["tools"] = tools
    if delegates:
        data["delegates"] = delegates
    handoffs = [_handoff(build, node, item, i, code) for i, item in enumerate(agent.handoffs)]
    if handoffs:
        data["handoffs"] = handoffs
    if node.worker_tool is not None:
        data["input"] = _schema(
            build, f"{where}.input", node.worker_tool.params_json_schema, node.worker_tool.name
        )
    output = _output(build, node)
    if output is not None:
        data["output"] = output
    script = build.scripts.get(name)
    if script:
        data["script"] = list(script)
    if code:
        data["code"] = code
    return data


def _instructions(build: _Build, node: _Node, code: dict[str, str]) -> str:
    instructions = node.agent.instructions
    if instructions is None or isinstance(instructions, str):
        return instructions or ""
    if not callable(instructions):
        build.refuse(
            f"agents.{node.name}.instructions", f"{instructions!r} is neither a string nor a function"
        )
        return ""
    code[INSTRUCTIONS] = fingerprint(instructions)
    try:
        text = _call(instructions, RunContextWrapper(context=None), node.agent)
    except Exception as exc:
        build.refuse(
            f"agents.{node.name}.instructions",
            f"the instructions function raised {type(exc).__name__}: {exc} (it is called with a run"
            " context whose context is None)",
        )
        return ""
    if not isinstance(text, str):
        build.refuse(
            f"agents.{node.name}.instructions", f"the function returned {type(text).__name__}, not str"
        )
        return ""
    return text


def _call(func: Callable[..., Any], *args: Any) -> Any:
    """Call a sync or async function from synchronous code (an event loop may be running in
    this thread: an async one then runs to completion in a thread of its own)."""
    result = func(*args)
    if not inspect.isawaitable(result):
        return result
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_awaited(result))
    box: list[Any] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            box.append(asyncio.run(_awaited(result)))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work, name="playground-sdk-instructions", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return box[0]


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


def litellm_model(model: str | None) -> str:
    """The litellm model string of an SDK model name (``None`` is the SDK's default model)."""
    name = model or get_default_model()
    if name.startswith("litellm/"):
        return name[len("litellm/") :]
    if "/" in name:
        return name  # openai/gpt-4o and the like: litellm reads the same prefix
    return f"openai/{name}"


def _model_of(build: _Build, node: _Node) -> str:
    override = build.models.get(node.name) or build.models.get("*") or build.model
    if override:
        return override
    model = node.agent.model
    if model is not None and not isinstance(model, str):
        build.refuse(
            f"agents.{node.name}.model",
            f"a {type(model).__name__} object: give the model as a name (any litellm model string,"
            " or 'litellm/<model>'), so every call goes through litellm",
        )
        return "scripted"
    return litellm_model(model)


def _settings(build: _Build, node: _Node) -> dict[str, Any]:
    agent = node.agent
    ms: ModelSettings = agent.model_settings
    overridden = bool(build.models.get(node.name) or build.models.get("*") or build.model)
    if overridden and ms == get_default_model_settings(agent.model if isinstance(agent.model, str) else None):
        ms = ModelSettings()  # the SDK's own defaults for its model, as the SDK drops them for another
    where = f"agents.{node.name}.model_settings"
    out: dict[str, Any] = {}
    for key in _SETTINGS_AS_IS:
        value = getattr(ms, key, None)
        if value is not None:
            out[key] = dict(value) if isinstance(value, Mapping) else value
    for key in _SETTINGS_REFUSED:
        if getattr(ms, key, None) is not None:
            build.refuse(f"{where}.{key}", "only the SDK's OpenAI clients know this setting")
    if ms.include_usage is False:
        build.refuse(f"{where}.include_usage", "the playground always asks for usage (it reports cost)")
    if ms.tool_choice is not None:
        if ms.tool_choice in ("auto", "none"):
            out["tool_choice"] = ms.tool_choice
        elif agent.reset_tool_choice:
            build.refuse(
                f"{where}.tool_choice",
                f"{ms.tool_choice!r}: the SDK resets it after a tool call (reset_tool_choice),"
                " the playground would not",
            )
        else:
            out["tool_choice"] = (
                ms.tool_choice
                if ms.tool_choice == "required"
                else {"type": "function", "function": {"name": str(ms.tool_choice)}}
            )
    if ms.reasoning is not None:
        if ms.reasoning.effort is not None:
            out["reasoning_effort"] = ms.reasoning.effort
        if ms.reasoning.model_dump(exclude_none=True, exclude={"effort"}):
            build.refuse(f"{where}.reasoning", "only reasoning.effort has a litellm equivalent")
    if ms.verbosity is not None:
        out["verbosity"] = ms.verbosity
    if ms.top_logprobs is not None:
        out.update(logprobs=True, top_logprobs=ms.top_logprobs)
    out.update(ms.extra_args or {})
    out.update(build.settings)
    return out


def _tools(build: _Build, node: _Node, code: dict[str, str]) -> tuple[list[str], list[str]]:
    tools: list[str] = []
    delegates: list[str] = []
    for i, tool in enumerate(node.agent.tools):
        where = f"agents.{node.name}.tools[{i}]"
        if _agent_of_tool(tool) is not None:
            delegates.append(tool.name)
            continue
        if not isinstance(tool, FunctionTool):
            label = getattr(tool, "name", "")
            build.refuse(
                where,
                f"{type(tool).__name__} {label!r} is not a function tool (hosted and other tools run"
                " where the playground cannot see or step them)",
            )
            continue
        problems = _tool_problems(tool)
        for problem in problems:
            build.refuse(f"{where} ({tool.name})", problem)
        if problems:
            continue
        known = build.sdk_tools.get(tool.name)
        if known is not None and known is not tool:
            build.refuse(
                where, f"two different tools are named {tool.name!r}; a tool's name is unique in a system"
            )
            continue
        build.sdk_tools[tool.name] = tool
        build.tools[tool.name] = _wrap_tool(tool)
        code[tool_key(tool.name)] = _tool_fingerprint(tool)
        tools.append(tool.name)
    return tools, delegates


def _tool_problems(tool: FunctionTool) -> list[str]:
    problems = []
    if tool.needs_approval is not False:
        problems.append("needs_approval: the playground's approvals are not the SDK's interruptions")
    if tool.tool_input_guardrails or tool.tool_output_guardrails:
        problems.append("tool guardrails have no tripwire in the playground's engine yet")
    if tool.is_enabled is not True:
        problems.append("is_enabled: the playground offers an agent all of its tools")
    if tool.timeout_behavior != "error_as_result" or tool.timeout_error_function is not None:
        problems.append("a timeout is reported to the model as an error; other timeout behaviours are not")
    if getattr(tool, "defer_loading", False):
        problems.append("defer_loading exists only in OpenAI's Responses API")
    return problems


def _tool_fingerprint(tool: FunctionTool) -> str:
    """Signature (the parameters the model sees) and the source of the function behind it."""
    try:
        func: Any = tool.__wrapped__
    except AttributeError:  # not made by function_tool: its invoker is the code
        func = tool.on_invoke_tool
    parameters = json.dumps(tool.params_json_schema.get("properties", {}), sort_keys=True)
    return f"{tool.name}{parameters} #{source_hash(func)}"


def _as_is(raw: dict[str, Any]) -> dict[str, Any]:
    """An SDK tool's arguments go to the SDK as they came: it parses and validates them."""
    return raw


def _wrap_tool(tool: FunctionTool) -> Tool:
    """The SDK's tool as a playground tool: an async function calling ``on_invoke_tool``, so
    argument parsing, validation, sync functions in threads and error messages are the
    SDK's; its output becomes text as the SDK would send it to the model."""
    output_adapter = getattr(tool, "_output_type_adapter", None)

    async def invoke(**arguments: Any) -> str:
        raw = json.dumps(arguments, ensure_ascii=False)
        context: ToolContext[Any] = ToolContext(
            context=None, tool_name=tool.name, tool_call_id=_CALL_ID, tool_arguments=raw
        )
        output = await tool.on_invoke_tool(context, raw)
        call = ResponseFunctionToolCall(arguments=raw, call_id=_CALL_ID, name=tool.name, type="function_call")
        item = ItemHelpers.tool_call_output_item(
            call, output, output_json_schema=tool.output_json_schema, output_type_adapter=output_adapter
        )
        text = item["output"]
        if not isinstance(text, str):
            raise TypeError(
                f"{tool.name} returned structured output (images, files), which the playground's"
                " chat messages cannot carry"
            )
        return text

    return Tool(
        name=tool.name,
        func=invoke,
        description=tool.description,
        parameters=tool.params_json_schema,
        validate=_as_is,
        is_async=True,
        timeout_s=tool.timeout_seconds,
    )


def _handoff(build: _Build, node: _Node, item: Any, index: int, code: dict[str, str]) -> dict[str, Any]:
    where = f"agents.{node.name}.handoffs[{index}]"
    if isinstance(item, Agent):
        return {
            "to": _handoff_name(item),
            "description": Handoff.default_tool_description(item),
            "context": {},
            "history": "full",
        }
    if not isinstance(item, Handoff):
        build.refuse(where, f"{item!r} is neither an Agent nor a Handoff")
        return {"to": "?"}
    target_agent = _handoff_target(item)
    if target_agent is None:
        build.refuse(where, f"the handoff to {item.agent_name!r} was not made by handoff(agent, ...)")
        return {"to": item.agent_name}
    target = build.nodes[id(target_agent)].name
    if item.tool_name != HANDOFF_PREFIX + target:
        build.refuse(
            f"{where}.tool_name",
            f"{item.tool_name!r}: the playground names the handoff to {target!r} {HANDOFF_PREFIX}{target}",
        )
    if item.input_filter is not None:
        build.refuse(
            f"{where}.input_filter",
            f"{getattr(item.input_filter, '__name__', item.input_filter)!r}: a function over the SDK's"
            " run items cannot run on the playground's history (it passes the whole conversation)",
        )
    if item.is_enabled is not True:
        build.refuse(f"{where}.is_enabled", "the playground offers an agent all of its handoffs")
    entry: dict[str, Any] = {"to": target, "description": item.tool_description, "history": "full"}
    parameters = item.input_json_schema or {}
    entry["context"] = (
        _schema(build, f"{where}.input_type", parameters, f"the handoff to {target}")
        if parameters.get("properties")
        else {}
    )
    callback = _handoff_callback(item)
    if callback is not False:
        ref = f"openai-agents:{node.name}->{target}"
        build.checks[ref] = _handoff_check(ref, item)
        entry["checkpoint"] = {"check": ref, "max_rejections": 2, "on_reject": "fail"}
        code[f"handoff {target}"] = fingerprint(callback if callback is not None else item.on_invoke_handoff)
    return entry


def _handoff_callback(item: Handoff[Any, Any]) -> Any:
    """The ``on_handoff`` of a ``handoff()`` object; False when it has neither ``on_handoff``
    nor ``input_type`` (nothing to run at delivery); None when that cannot be told (a
    hand-made ``Handoff``: its ``on_invoke_handoff`` then runs at every delivery)."""
    invoke: Any = item.on_invoke_handoff
    impl = invoke.args[0] if getattr(invoke, "args", None) else None
    if impl is None or not inspect.isfunction(impl):
        return None
    try:
        free = inspect.getclosurevars(impl).nonlocals
    except (TypeError, ValueError):
        return None
    if "on_handoff" not in free or "input_type" not in free:
        return None
    if free["on_handoff"] is None and free["input_type"] is None:
        return False
    return free["on_handoff"]


def _handoff_check(ref: str, item: Handoff[Any, Any]) -> Tool:
    """The handoff's checkpoint: the SDK's own ``on_invoke_handoff`` on the payload (its strict
    validation against ``input_type``, then ``on_handoff``); what it raises rejects it."""

    async def check(payload: dict[str, Any]) -> None:
        arguments = json.dumps(payload, ensure_ascii=False) if item.input_json_schema else ""
        await item.on_invoke_handoff(RunContextWrapper(context=None), arguments)

    return Tool(
        name=ref,
        func=check,
        description=f"the SDK's on_invoke_handoff of {item.tool_name}",
        parameters={},
        validate=_as_is,
        is_async=True,
    )


def _schema(build: _Build, where: str, raw: Mapping[str, Any], title: str) -> dict[str, Any]:
    try:
        return object_schema(raw, title, ValueError)
    except ValueError as exc:
        build.refuse(where, str(exc))
        return {}


def _output(build: _Build, node: _Node) -> dict[str, Any] | None:
    output_type = node.agent.output_type
    if output_type is None or output_type is str:
        return None
    where = f"agents.{node.name}.output_type"
    if isinstance(output_type, AgentOutputSchemaBase) and not isinstance(output_type, AgentOutputSchema):
        build.refuse(where, f"a custom {type(output_type).__name__}: its validation cannot run in the engine")
        return None
    schema = output_type if isinstance(output_type, AgentOutputSchema) else AgentOutputSchema(output_type)
    if schema.is_plain_text():
        return None
    model = schema.output_type
    if isinstance(model, type) and issubclass(model, BaseModel):
        try:
            refuse_validators(model, ValueError)
        except ValueError as exc:
            build.refuse(where, str(exc))
            return None
    return _schema(build, where, schema.json_schema(), schema.name())
