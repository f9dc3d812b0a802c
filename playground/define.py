"""Systems defined in Python: the same systems a system file describes, written as code.

::

    from playground import Agent, Handoff, define_system

    billing = Agent(
        "billing",
        instructions="Answer billing questions.",
        tools=[lookup_invoice],
        input=BillingQuestion,  # a pydantic model, a JSON Schema or {field: type}
        script=[{"tool": "lookup_invoice", "args": {"customer_id": "{customer_id}"}},
                {"reply": "Your last invoice: {tool_result}."}],
    )
    router = Agent("router", handoffs=[Handoff(billing, "invoices and charges", context=BillingQuestion)])
    support = define_system("support-router", entry=router)

:func:`define_system` returns the very :class:`~playground.spec.load.System` the YAML
loader returns (a validated :class:`~playground.spec.models.SystemSpec` and its tools),
checked by the same rules, so a system is one model whichever way it was written and
every feature of the playground works on both. A problem is reported as a
:class:`~playground.errors.SpecError` naming the Python file and the line where the agent
(or the system) was defined.

What only Python has is versioned too: an agent's tools and a function that writes its
instructions are fingerprinted (signature and source hash, ``AgentSpec.code``), so a
changed tool body is a new version of every agent that may call it.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pydantic import BaseModel, ValidationError

from playground.errors import SpecError
from playground.spec.code import INSTRUCTIONS, fingerprint, tool_key
from playground.spec.load import Loc, System, Tool, _check, explain, tool_from_function
from playground.spec.models import Limits, Price, ScriptStep, SystemSpec

__all__ = [
    "Agent",
    "Checkpoint",
    "Handoff",
    "SchemaLike",
    "ToolFunction",
    "define_system",
    "import_file",
    "object_schema",
    "schema_of",
    "tool",
]

SchemaLike: TypeAlias = "type[BaseModel] | Mapping[str, Any]"
"""A schema as Python gives it: a pydantic model class, a JSON Schema, or ``{field: type}``."""


def _caller(depth: int = 2) -> tuple[str, int]:
    """The file and line of the code that called the function calling this one."""
    frame = sys._getframe(depth)
    return frame.f_code.co_filename, frame.f_lineno


@dataclass(frozen=True, eq=False)
class ToolFunction:
    """A Python function offered to agents as a tool (see :func:`tool`).

    Calling it calls the function, so a decorated function stays usable as before.
    """

    func: Callable[..., Any]
    name: str
    timeout_s: float | None = None
    """Limit of one call (default: ``limits.tool_timeout_s``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


def tool(
    func: Callable[..., Any] | None = None, *, name: str | None = None, timeout_s: float | None = None
) -> Any:
    """Make a function a tool: ``@tool`` or ``@tool(name=..., timeout_s=...)``.

    A plain function in ``Agent(tools=[...])`` is a tool too; the decorator only names it
    differently or gives it its own timeout. Its type hints are the argument schema the
    model sees, its docstring the description; sync functions run in a thread of their own.
    """

    def wrap(f: Callable[..., Any]) -> ToolFunction:
        return ToolFunction(f, name or f.__name__, timeout_s)

    return wrap(func) if func is not None else wrap


@dataclass(eq=False)
class Handoff:
    """A handoff an agent may make to ``to``.

    Args:
        to: The agent that receives the request.
        description: When to choose it (shown to the model).
        context: The fields the target receives (a pydantic model, a JSON Schema or
            ``{field: type}``); absent means ``{question: str}``.
        history: What of the conversation the target also sees: ``none``, ``last:N``, ``full``.
        options: Any other field of a handoff in a system file: ``guard=`` a function (it
            allows, rewrites or denies the payload before delivery), ``checkpoint=`` a
            function or :class:`Checkpoint`, ``from_={field: "request" | "context"}``.
    """

    to: Agent
    description: str = ""
    context: SchemaLike | None = None
    history: str = "none"
    options: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        to: Agent,
        description: str = "",
        *,
        context: SchemaLike | None = None,
        history: str = "none",
        **options: Any,
    ) -> None:
        self.to = to
        self.description = description
        self.context = context
        self.history = history
        self.options = options


Instructions: TypeAlias = "str | Callable[[], str] | Callable[[Agent], str]"


@dataclass(eq=False)
class Agent:
    """One agent, as in a system file's ``agents:`` (shared/DESIGN.md), with objects where the
    file has names: tools are functions, handoffs and delegates are agents.

    Args:
        name: The agent's name in the system (sessions, versions and the TUI use it).
        instructions: The system prompt, or a function returning it (called with no
            arguments, or with this agent, when the system is defined; its source is part of
            the agent's version).
        model: ``scripted`` (offline, answers from ``script``) or any litellm model string.
        tools: Functions (or :func:`tool` objects) this agent may call: its permission boundary.
        handoffs: Agents (or :class:`Handoff` objects) this agent may hand the request to.
        delegates: Workers a supervisor may call as tools.
        input: What this agent accepts; ``output``: what it must return (JSON of that shape).
        script: The scripted model's steps (:class:`~playground.spec.models.ScriptStep` or maps).
        options: Any other field of an agent in a system file (``review``, ``max_reviews``,
            ``on_reject``, ``budget``, ``fallback_settings``, ``latency_ms``, ...), validated
            the same way; functions where a file names ``file.py:function``:
            ``validate={"input": f, "output": g}``, ``checkpoint=`` a function or
            :class:`Checkpoint`.
    """

    name: str
    instructions: Instructions = ""
    model: str = "scripted"
    fallbacks: Sequence[str] = ()
    description: str = ""
    tools: Sequence[Callable[..., Any] | ToolFunction] = ()
    handoffs: Sequence[Agent | Handoff] = ()
    delegates: Sequence[Agent] = ()
    input: SchemaLike | None = None
    output: SchemaLike | None = None
    model_settings: Mapping[str, Any] = field(default_factory=dict)
    price: Price | Mapping[str, float] | None = None
    script: Sequence[ScriptStep | Mapping[str, Any]] = ()
    options: dict[str, Any] = field(default_factory=dict)
    defined_at: tuple[str, int] = ("", 0)
    """Where the agent was defined (file, line): errors point there."""

    def __init__(
        self,
        name: str,
        instructions: Instructions = "",
        *,
        model: str = "scripted",
        fallbacks: Sequence[str] = (),
        description: str = "",
        tools: Sequence[Callable[..., Any] | ToolFunction] = (),
        handoffs: Sequence[Agent | Handoff] = (),
        delegates: Sequence[Agent] = (),
        input: SchemaLike | None = None,
        output: SchemaLike | None = None,
        model_settings: Mapping[str, Any] | None = None,
        price: Price | Mapping[str, float] | None = None,
        script: Sequence[ScriptStep | Mapping[str, Any]] = (),
        **options: Any,
    ) -> None:
        self.name = name
        self.instructions = instructions
        self.model = model
        self.fallbacks = fallbacks
        self.description = description
        self.tools = tools
        self.handoffs = handoffs
        self.delegates = delegates
        self.input = input
        self.output = output
        self.model_settings = model_settings or {}
        self.price = price
        self.script = script
        self.options = options
        self.defined_at = _caller()

    def __repr__(self) -> str:
        return f"Agent({self.name!r})"


def define_system(
    name: str,
    *,
    entry: Agent | None = None,
    pipeline: Sequence[Agent | Sequence[Agent]] | None = None,
    pattern: str | None = None,
    description: str = "",
    limits: Limits | Mapping[str, Any] | None = None,
    on_loop: Agent | str = "stop",
    agents: Sequence[Agent] = (),
    **options: Any,
) -> System:
    """A system of agents, checked as a system file is, ready to run.

    Args:
        name: The system's name; versions and sessions are filed under it.
        entry: The agent that receives the request (a pipeline's first stage by default).
        pipeline: Stages in order (pattern ``pipeline``); a stage that is a list of agents
            is a parallel group.
        pattern: ``router``, ``supervisor`` or ``pipeline``; by default a pipeline if
            ``pipeline`` is given, a router if the entry hands off, else a supervisor.
        limits: Bounds on one run (:class:`~playground.spec.models.Limits` or a map).
        on_loop: An agent to escalate a detected loop to, or ``"stop"``.
        agents: Agents to include besides those reachable from the entry (their order
            is the order agents are reported in).
        options: Any other top-level field of a system file (``loops``, ``scripted``, ...).

    Raises:
        SpecError: The first problem, with the file and line where it was defined.
    """
    return _define(name, _caller(), entry, pipeline, pattern, description, limits, on_loop, agents, options)


def _define(
    name: str,
    where: tuple[str, int],
    entry: Agent | None,
    pipeline: Sequence[Agent | Sequence[Agent]] | None,
    pattern: str | None,
    description: str,
    limits: Limits | Mapping[str, Any] | None,
    on_loop: Agent | str,
    agents: Sequence[Agent],
    options: dict[str, Any],
) -> System:
    """:func:`define_system`, as if called at ``where`` (file, line): errors point there."""
    path, line = where
    found = _walk([*agents, *([entry] if entry else []), *_stages(pipeline), *_agents_in(on_loop)])
    shown = _shown(path)
    lines: dict[Loc, int] = {(): line}
    for agent in found.values():
        lines[("agents", agent.name)] = agent.defined_at[1] if agent.defined_at[0] == path else line
    if pattern is None:
        pattern = (
            "pipeline" if pipeline else ("router" if entry is not None and entry.handoffs else "supervisor")
        )
    tools: dict[str, Tool] = {}
    checks: dict[str, Tool] = {}
    declared: dict[str, Any] = {}
    specs: dict[str, Any] = {}
    for agent in found.values():
        specs[agent.name] = _agent_data(agent, tools, declared, checks, shown, lines)
    data: dict[str, Any] = {
        "name": name,
        "pattern": pattern,
        "agents": specs,
        "tools": declared,
        "path": shown,
        **options,
    }
    if description:
        data["description"] = description
    if entry is not None:
        data["entry"] = entry.name
    if pipeline:
        data["pipeline"] = [s.name if isinstance(s, Agent) else [a.name for a in s] for s in pipeline]
    if limits is not None:
        data["limits"] = limits
    if on_loop != "stop":
        data["on_loop"] = on_loop.name if isinstance(on_loop, Agent) else on_loop
    try:
        spec = SystemSpec.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, shown, lines) from None
    _check(spec, shown, lines)
    return System(spec, tools, lines, checks=checks)


def system_of_agent(entry: Agent, name: str) -> System:
    """The system an agent is the entry of (every agent its handoffs and delegates reach),
    defined where the agent was."""
    return _define(name, entry.defined_at, entry, None, None, "", None, "stop", (), {})


def _shown(path: str) -> str:
    """A path as errors and sessions show it: relative to the working folder when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if relative.startswith("..") else relative


def _stages(pipeline: Sequence[Agent | Sequence[Agent]] | None) -> list[Agent]:
    out: list[Agent] = []
    for stage in pipeline or []:
        out.extend([stage] if isinstance(stage, Agent) else list(stage))
    return out


def _agents_in(on_loop: Agent | str) -> list[Agent]:
    return [on_loop] if isinstance(on_loop, Agent) else []


def _walk(roots: list[Agent]) -> dict[str, Agent]:
    """Every agent reachable from ``roots`` through handoffs and delegates, in the order found."""
    found: dict[str, Agent] = {}
    todo = list(roots)
    while todo:
        agent = todo.pop(0)
        if not isinstance(agent, Agent):
            raise TypeError(f"expected a playground Agent, got {type(agent).__name__}: {agent!r}")
        seen = found.get(agent.name)
        if seen is agent:
            continue
        if seen is not None:
            file, line = agent.defined_at
            raise SpecError(
                _shown(file),
                line,
                f"agents.{agent.name}",
                f"two different agents are named {agent.name!r} (the other is defined at line"
                f" {seen.defined_at[1]}); an agent's name is unique in a system",
            )
        found[agent.name] = agent
        todo.extend(h.to if isinstance(h, Handoff) else h for h in agent.handoffs)
        todo.extend(agent.delegates)
        options = [agent.options, *(h.options for h in agent.handoffs if isinstance(h, Handoff))]
        for option in options:
            for value in (option.get("on_reject"), getattr(option.get("checkpoint"), "on_reject", None)):
                if isinstance(value, Agent):
                    todo.append(value)
    return found


def _agent_data(
    agent: Agent,
    tools: dict[str, Tool],
    declared: dict[str, Any],
    checks: dict[str, Tool],
    shown: str,
    lines: dict[Loc, int],
) -> dict[str, Any]:
    """The agent's fields as a system file would give them (defaults left out, so an agent
    without code has the version id of the same agent written in YAML)."""
    loc: Loc = ("agents", agent.name)

    def fail(where: str, problem: str) -> SpecError:
        return SpecError(shown, lines.get(loc), f"agents.{agent.name}.{where}", problem)

    data: dict[str, Any] = {"name": agent.name, "model": agent.model}
    code: dict[str, str] = {}
    instructions = agent.instructions
    if callable(instructions):
        try:
            text = instructions(agent) if _takes_argument(instructions) else instructions()  # type: ignore[call-arg]
        except Exception as exc:
            raise fail(
                "instructions", f"the instructions function raised {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(text, str):
            raise fail("instructions", f"the instructions function returned {type(text).__name__}, not str")
        code[INSTRUCTIONS] = fingerprint(instructions)
        instructions = text
    for key, value in (
        ("instructions", instructions),
        ("fallbacks", list(agent.fallbacks)),
        ("description", agent.description),
        ("model_settings", dict(agent.model_settings)),
        ("price", agent.price),
    ):
        if value:
            data[key] = value
    names: list[str] = []
    for i, item in enumerate(agent.tools):
        made = _tool(item)
        if made is None:
            raise fail(f"tools[{i}]", f"{item!r} is not a function")
        known = tools.get(made.name)
        if known is not None and known.func is not made.func:
            raise fail(f"tools[{i}]", f"two different functions are offered as tool {made.name!r}")
        tools[made.name] = made
        declared[made.name] = _tool_ref(made, shown)
        code[tool_key(made.name)] = fingerprint(made.func, made.name)
        names.append(made.name)
    if names:
        data["tools"] = names
    handoffs = []
    for i, target in enumerate(agent.handoffs):
        h = target if isinstance(target, Handoff) else Handoff(target)
        entry: dict[str, Any] = {"to": h.to.name}
        if h.description:
            entry["description"] = h.description
        if h.context is not None:
            entry["context"] = schema_of(h.context, _failing(fail, f"handoffs[{i}].context"))
        if h.history != "none":
            entry["history"] = h.history
        options = dict(h.options)
        if "checkpoint" in options:
            options["checkpoint"] = _checkpoint(options["checkpoint"], checks, code, shown)
        if "guard" in options:
            options["guard"] = _user_function(options["guard"], checks, code, shown)
        handoffs.append({**entry, **options})
    if handoffs:
        data["handoffs"] = handoffs
    if agent.delegates:
        data["delegates"] = [d.name for d in agent.delegates]
    for key in ("input", "output"):
        value = getattr(agent, key)
        if value is not None:
            data[key] = schema_of(value, _failing(fail, key))
    if agent.script:
        data["script"] = list(agent.script)
    options = dict(agent.options)
    if "checkpoint" in options:
        options["checkpoint"] = _checkpoint(options["checkpoint"], checks, code, shown)
    if isinstance(options.get("on_reject"), Agent):
        options["on_reject"] = {"escalate": options["on_reject"].name}
    validators = options.get("validate")
    if isinstance(validators, Mapping):
        options["validate"] = {k: _user_function(v, checks, code, shown) for k, v in validators.items()}
    data.update(options)
    if code:
        data["code"] = code
    return data


def _failing(fail: Callable[[str, str], SpecError], where: str) -> Callable[[str], SpecError]:
    def failing(problem: str) -> SpecError:
        return fail(where, problem)

    return failing


@dataclass(frozen=True)
class Checkpoint:
    """A Python check of a value crossing a boundary (an agent's ``checkpoint=``: a pipeline
    stage's output, or each worker's output for a supervisor; a :class:`Handoff`'s
    ``checkpoint=``: its payload before delivery).

    ``check`` (sync or async) gets the value and returns None or True to accept, False or a
    reason to reject (raising rejects too); a rejection goes back to the agent that produced
    the value, up to ``max_rejections`` times; then ``on_reject`` decides: ``"fail"``,
    ``"use_last"``, or an agent to escalate to. A bare function is a checkpoint with the
    defaults.
    """

    check: Callable[[Any], Any]
    max_rejections: int = 2
    on_reject: str | Agent = "fail"


def _checkpoint(value: Any, checks: dict[str, Tool], code: dict[str, str], shown: str) -> Any:
    """A checkpoint as a system file writes it, its function registered under its reference."""
    if callable(value) and not isinstance(value, Checkpoint):
        value = Checkpoint(value)
    if not isinstance(value, Checkpoint):
        return value  # a map as in a system file: validated (and refused) by the spec
    ref = _user_function(value.check, checks, code, shown)
    on_reject: Any = value.on_reject
    if isinstance(on_reject, Agent):
        on_reject = {"escalate": on_reject.name}
    return {"check": ref, "max_rejections": value.max_rejections, "on_reject": on_reject}


def _user_function(func: Any, checks: dict[str, Tool], code: dict[str, str], shown: str) -> Any:
    """A check, guard or validator function registered under the ``file.py:function`` a system
    file would name it by (and fingerprinted); anything else is left for the spec to judge."""
    if not callable(func) or isinstance(func, str):
        return func
    made = tool_from_function(getattr(func, "__name__", "check"), func)
    ref = _function_ref(made.func, shown)
    checks[ref] = made
    code[f"check {ref}"] = fingerprint(func)
    return ref


def _takes_argument(func: Callable[..., Any]) -> bool:
    try:
        return len(inspect.signature(func).parameters) > 0
    except (TypeError, ValueError):
        return False


def _tool(item: Any) -> Tool | None:
    if isinstance(item, ToolFunction):
        try:
            return tool_from_function(item.name, item.func, item.timeout_s)
        except ValueError as exc:
            raise SpecError(
                _shown(_file_of(item.func)), _line_of(item.func), f"tools.{item.name}", str(exc)
            ) from None
    if callable(item) and hasattr(item, "__name__"):
        return _tool(ToolFunction(item, item.__name__))
    return None


def _file_of(func: Callable[..., Any]) -> str:
    code = getattr(inspect.unwrap(func), "__code__", None)
    return code.co_filename if code is not None else "<python>"


def _line_of(func: Callable[..., Any]) -> int | None:
    code = getattr(inspect.unwrap(func), "__code__", None)
    return code.co_firstlineno if code is not None else None


def _tool_ref(made: Tool, shown: str) -> Any:
    """A tool as a system file declares it: ``file.py:function``, with its timeout if it has one."""
    ref = _function_ref(made.func, shown)
    return {"function": ref, "timeout_s": made.timeout_s} if made.timeout_s is not None else ref


def _function_ref(func: Callable[..., Any], shown: str) -> str:
    """Where a function is, as a system file names it (``file.py:function``, the path relative
    to the file the system was defined in)."""
    file = _file_of(func)
    base = os.path.dirname(os.path.abspath(shown)) if shown else os.getcwd()
    try:
        file = os.path.relpath(file, base)
    except ValueError:
        pass
    return f"{file}:{getattr(inspect.unwrap(func), '__name__', 'function')}"


# -- schemas ---------------------------------------------------------------------------------


def schema_of(value: Any, fail: Callable[[str], Exception]) -> Any:
    """A schema as a system file writes it: a map passes as it is; a pydantic model becomes its
    JSON Schema, which the playground enforces in full (constraints, nested models and all).

    A model with custom validators is refused by ``fail``: a JSON Schema cannot say what
    they check, and the playground would validate less than the model itself does.
    """
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, type) and issubclass(value, BaseModel):
        refuse_validators(value, fail)
        raw = value.model_json_schema()
        return _short_form(raw) or object_schema(raw, value.__name__, fail)
    raise fail(f"a schema is a pydantic model class, a JSON Schema or {{field: type}}, not {value!r}")


_SHORT = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}


def _short_form(raw: Mapping[str, Any]) -> dict[str, str] | None:
    """A model of plain fields (``str``, ``int``, ``float``, ``bool``, ``list[...]`` of those,
    each required, or optional with a None default, no description or constraint) in the
    short form a system file writes (``{question: str, priority: int?}``), so it is the
    same schema, prompt and version as the YAML; None for anything more."""
    required = set(raw.get("required") or [])
    out: dict[str, str] = {}
    for key, prop in (raw.get("properties") or {}).items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        optional = key not in required
        if optional:
            if prop.pop("default", ...) is not None:
                return None
            kinds = [p for p in prop.pop("anyOf", []) if p != {"type": "null"}]
            if len(kinds) != 1:
                return None
            prop.update(kinds[0])
        kind = prop.pop("type", None)
        items = prop.pop("items", None)
        if prop:
            return None
        if kind == "array" and isinstance(items, dict) and set(items) == {"type"} and items["type"] in _SHORT:
            name = f"list[{_SHORT[items['type']]}]"
        elif kind in _SHORT and items is None:
            name = _SHORT[kind]
        else:
            return None
        out[key] = name + ("?" if optional else "")
    return out


def refuse_validators(model: type[BaseModel], fail: Callable[[str], Exception]) -> None:
    """Raise ``fail(problem)`` if ``model`` has validators of its own (code a JSON Schema
    cannot carry)."""
    decorators = model.__pydantic_decorators__
    custom = [
        *decorators.field_validators,
        *decorators.model_validators,
        *decorators.validators,
        *decorators.root_validators,
    ]
    if custom:
        raise fail(
            f"{model.__name__} has validators ({', '.join(custom)}), which a JSON Schema cannot carry:"
            " check the value in a checkpoint instead, or drop them"
        )


def object_schema(raw: Mapping[str, Any], title: str, fail: Callable[[str], Exception]) -> dict[str, Any]:
    """A JSON Schema of an object (a pydantic model's, an OpenAI Agents SDK tool's or handoff's),
    as it is: the playground enforces it in full and offers it to the model as written."""
    if raw.get("type") != "object" and not isinstance(raw.get("properties"), Mapping):
        raise fail(f"the schema of {title} is not an object's (type: object with properties)")
    return dict(raw)


def import_file(path: str | os.PathLike[str]) -> Any:
    """Import a Python file by its path (a tools file next to a system defined in Python):
    the same module object a system file's ``tools:`` loads it as.

    Raises:
        SpecError: The file is missing or raised at import (with the line).
    """
    from pathlib import Path

    from playground.spec.load import import_tools_file

    file = Path(path).resolve()
    module_name = f"_playground_tools_{abs(hash(str(file))):x}"
    module = sys.modules.get(module_name)
    if module is not None:
        return module
    if not file.is_file():
        raise SpecError(str(path), None, "", "no such file")
    try:
        module = import_tools_file(file, module_name)
    except ValueError as exc:
        raise SpecError(str(path), None, "", str(exc)) from None
    sys.modules[module_name] = module
    return module
