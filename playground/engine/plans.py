"""What the runtime derives from agent specs once, not once per call.

A :class:`Plan` is one agent's tools, models, settings, routes and prompt. Plans
are kept per system and set of agent specs (a :class:`World`), so every session
of a loaded system (scenarios, benchmarks, the TUI) shares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playground import redact
from playground.llm.base import LLM, ToolDef
from playground.spec.identity import version_id
from playground.spec.load import HANDOFF_PREFIX, System
from playground.spec.models import AgentSpec, HandoffSpec
from playground.spec.schema import Schema

TASK_SCHEMA = Schema.parse({"task": "str"})
"""What a delegated worker without an ``input`` receives."""


@dataclass(slots=True)
class Route:
    """One declared handoff of an agent, as the runtime checks it."""

    spec: HandoffSpec
    schema: Schema
    target_input: Schema | None
    """The target's own input schema, when it differs from the handoff's (validated too)."""
    described: str
    guarded: bool = False
    """It declares ``from:``, a guard or a checkpoint, or its target validates its input: the
    handoff takes the slower path through them (worked out once, not on every hop)."""


@dataclass(slots=True)
class Plan:
    """What the runtime derives from one agent spec (and the specs it hands off or delegates
    to): computed once per system and set of agent specs, not once per call."""

    tools: list[ToolDef]
    tool_names: list[str]
    models: list[str]
    settings: dict[str, dict[str, Any]]
    """Model string to the settings a call to it is made with."""
    routes: dict[str, Route]
    """Handoff target to how it is checked."""
    prompt: str
    """The system prompt, unless a pipeline's next stage asks for a reply shape."""
    llms: dict[str, LLM] = field(default_factory=dict)
    """The default factory's models, by model string (they keep no per-run state)."""
    tool_schemas: list[dict[str, Any]] = field(default_factory=list)
    """``tools`` as recorded in ``model_requested``: one list shared by every call (never changed)."""


@dataclass(slots=True)
class World:
    """A set of agent specs runtimes of one system run with, and what is derived from them."""

    specs: list[AgentSpec]
    """Kept so the ids in the key stay theirs."""
    versions: dict[str, str] | None
    """The file's version ids, when the versions are the file's."""
    plans: dict[str, Plan] = field(default_factory=dict)


WORLDS_KEPT = 64
"""Sets of agent versions a system keeps plans for (forks and variants each make one)."""


def world_of(system: System, agents: dict[str, AgentSpec]) -> World:
    """The plans shared by every runtime of ``system`` running these very agent specs."""
    key = (tuple(agents), tuple(map(id, agents.values())))
    worlds = system.cache.get("worlds")
    if worlds is None:
        worlds = system.cache["worlds"] = {}
    world: World | None = worlds.get(key)
    if world is None:
        if len(worlds) >= WORLDS_KEPT:
            worlds.clear()
        world = worlds[key] = World(list(agents.values()), None)
    return world


def file_versions(system: System, agents: dict[str, AgentSpec]) -> dict[str, str]:
    """The version id of each agent spec, computed once per spec object."""
    cache = system.cache
    versions = {}
    for name, agent in agents.items():
        key = ("version", name, id(agent))
        vid = cache.get(key)
        if vid is None:
            vid = cache[key] = version_id(agent)
            cache[("keep", name, id(agent))] = agent  # keeps id(agent) from being reused
        versions[name] = vid
    return versions


def make_plan(system: System, agents: dict[str, AgentSpec], name: str) -> Plan:
    agent = agents[name]
    defs: list[ToolDef] = []
    for tool_name in agent.tools:
        tool = system.tools[tool_name]
        defs.append(ToolDef(tool.name, tool.description, tool.parameters))
    for worker in agent.delegates:
        w = agents[worker]
        schema = w.input or TASK_SCHEMA
        defs.append(ToolDef(worker, w.description or f"Ask the {worker} agent.", schema.json_schema))
    for handoff in agent.handoffs:
        defs.append(
            ToolDef(
                HANDOFF_PREFIX + handoff.to,
                handoff.description or f"Hand the request to {handoff.to}.",
                handoff.schema_.json_schema,
            )
        )
    models = [agent.model, *agent.fallbacks]
    return Plan(
        tools=defs,
        tool_names=[t.name for t in defs],
        models=models,
        settings={model: agent.settings_for(model) for model in models},
        routes={},
        prompt=system_prompt(agent, agent.output),
        tool_schemas=tool_schemas(defs),
    )


def tool_schemas(tools: list[ToolDef]) -> list[dict[str, Any]]:
    """Tools as a model call records them: ``{name, description, parameters}`` each, with the
    default of a credential-named parameter (``api_key``, ``token``, ...) redacted: a tool's
    signature may take a key as its default, read from a variable the scrubber does not know."""
    return [
        {"name": t.name, "description": t.description, "parameters": _without_secret_defaults(t.parameters)}
        for t in tools
    ]


def _without_secret_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return schema
    hidden = {
        name: {**prop, "default": redact.REDACTED}
        for name, prop in properties.items()
        if isinstance(prop, dict) and prop.get("default") is not None and redact.secret_setting(str(name))
    }
    return {**schema, "properties": {**properties, **hidden}} if hidden else schema


def route_for(agents: dict[str, AgentSpec], agent: AgentSpec, plan: Plan, target: str) -> Route | None:
    """How a handoff of ``agent`` to ``target`` is checked; None if it declares none."""
    route = plan.routes.get(target)
    if route is not None:
        return route
    declared = {h.to: h for h in agent.handoffs}
    handoff = declared.get(target)
    if handoff is None:
        return None
    schema = handoff.schema_
    target_input = agents[target].input
    if target_input is not None and target_input.fields == schema.fields:
        target_input = None  # the same shape: validating twice would change nothing
    guarded = bool(
        handoff.from_
        or handoff.guard is not None
        or handoff.checkpoint is not None
        or agents[target].validators
    )
    route = plan.routes[target] = Route(handoff, schema, target_input, schema.describe(), guarded)
    return route


def system_prompt(agent: AgentSpec, expect: Schema | None) -> str:
    prompt = agent.instructions
    if expect is not None:
        prompt += f"\n\nReply with only a JSON object of this shape: {expect.describe()}"
    return prompt
