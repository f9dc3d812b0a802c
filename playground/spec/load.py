"""Load a system file: YAML -> checked :class:`SystemSpec`, or one clear :class:`SpecError`."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import inspect
import os
import re
import sys
import threading
import traceback
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import BaseModel, ValidationError

from playground import bounds, redact
from playground.errors import SpecError
from playground.spec.models import AgentSpec, SystemSpec

Loc = tuple[str | int, ...]

_TEMPLATE_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
HANDOFF_PREFIX = "transfer_to_"


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, composing within the limits of :mod:`playground.bounds`.

    PyYAML composes an alias as a second reference to the anchored node, so a file of
    a few hundred bytes can describe billions of values (and an anchor used inside
    itself, a cycle). While composing, each node's size and depth *with aliases
    expanded* is computed from its children's, so a file is refused at the node where
    it crosses a limit, before anything walks the expansion.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.sizes: dict[int, tuple[int, int]] = {}
        """Expanded size and depth of each composed node, by ``id``."""
        self.aliases = 0
        self.depth = 0
        self.max_depth = bounds.SPEC_DEPTH.value
        self.max_nodes = bounds.SPEC_NODES.value
        self.max_aliases = bounds.SPEC_ALIASES.value

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > self.max_aliases:
                raise _Bound(event.start_mark, bounds.SPEC_ALIASES.message("the use of aliases (*name)"))
            node = super().compose_node(parent, index)
            if id(node) not in self.sizes:  # anchored, but still being composed
                raise _Bound(event.start_mark, f"alias *{event.anchor} is used inside its own anchor")
            return node
        self.depth += 1
        if self.depth > self.max_depth:
            raise _Bound(event.start_mark, bounds.SPEC_DEPTH.message("the nesting"))
        node = super().compose_node(parent, index)
        self.depth -= 1
        if node is None:
            return None
        if isinstance(node, yaml.SequenceNode):
            children = [self.sizes[id(child)] for child in node.value]
        elif isinstance(node, yaml.MappingNode):
            children = [self.sizes[id(part)] for pair in node.value for part in pair]
        else:
            children = []
        size = 1 + sum(c[0] for c in children)
        depth = 1 + max((c[1] for c in children), default=0)
        if size > self.max_nodes:
            raise _Bound(node.start_mark, bounds.SPEC_NODES.message("the file with its aliases expanded"))
        if depth > self.max_depth:
            raise _Bound(node.start_mark, bounds.SPEC_DEPTH.message("the nesting with aliases expanded"))
        self.sizes[id(node)] = (size, depth)
        return node


class _Bound(yaml.YAMLError):
    def __init__(self, mark: Any, problem: str) -> None:
        super().__init__(problem)
        self.problem_mark = mark
        self.problem = problem


def parse_yaml(text: str, path: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML, returning the data and the 1-based line of every node by its path.

    The text is checked against the limits of :mod:`playground.bounds` (size, nesting,
    aliases and their expansion) before and while it is composed.

    Raises:
        SpecError: Not YAML, over a limit, or a value YAML cannot represent here, with its line.
    """
    try:
        bounds.SPEC_FILE_BYTES.check(len(text.encode("utf-8", "surrogatepass")), "the file")
    except bounds.LimitExceeded as exc:
        raise SpecError(path, None, "", str(exc)) from None
    try:
        loader = _BoundedLoader(text)  # checks the characters
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, path) from None
    except RecursionError:  # the limits keep composing shallow; a last line of defence
        raise SpecError(path, None, "", bounds.SPEC_DEPTH.message("the nesting")) from None
    lines: dict[Loc, int] = {}

    def scalar(node: yaml.Node, loc: Loc) -> Any:
        try:
            return loader.construct_object(node)
        except ValueError as exc:  # a 5,000-digit integer, a date that is no date
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "integer string conversion" in problem:
                problem = f"an integer of more than {sys.get_int_max_str_digits()} digits"
            raise SpecError(
                path, node.start_mark.line + 1, _dotted(loc), f"not a usable value: {problem}"
            ) from None

    def build(node: yaml.Node | None, loc: Loc) -> Any:
        if node is None:
            return None
        lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            loader.flatten_mapping(node)  # merge keys (<<: *defaults)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise SpecError(
                        path, key_node.start_mark.line + 1, _dotted(loc), "a key must be a plain value"
                    )
                key = scalar(key_node, loc)
                try:
                    hash(key)
                except TypeError:
                    raise SpecError(
                        path, key_node.start_mark.line + 1, _dotted(loc), "a key must be a plain value"
                    ) from None
                if key in out:
                    raise SpecError(path, key_node.start_mark.line + 1, _dotted((*loc, key)), "duplicate key")
                lines[(*loc, key)] = key_node.start_mark.line + 1
                out[key] = build(value_node, (*loc, key))
                lines[(*loc, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return scalar(node, loc)

    try:
        return build(root, ()), lines
    except yaml.YAMLError as exc:  # an unknown tag, a bad merge: still one clear message
        raise _yaml_error(exc, text, path) from None


def _yaml_error(exc: yaml.YAMLError, text: str, path: str) -> SpecError:
    """One :class:`SpecError` with the line of a PyYAML error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line_no: int | None = mark.line + 1 if mark is not None else None
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        line_no = text.count("\n", 0, exc.position) + 1
        return SpecError(
            path,
            line_no,
            "",
            f"not valid YAML: character {exc.character:#06x} is not allowed in a YAML file"
            if isinstance(exc.character, int)
            else f"not valid YAML: {exc.reason}",
        )
    if isinstance(exc, _Bound):
        return SpecError(path, line_no, "", exc.problem)
    problem = getattr(exc, "problem", None) or str(exc)
    lines = text.splitlines()
    line = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
    if re.search(r"\?\s*[,}\]]", line):
        problem += ' (inside {...} quote an optional type: "str?")'
    return SpecError(path, line_no, "", f"not valid YAML: {problem}")


def _dotted(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line(lines: dict[Loc, int], loc: Loc) -> int:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get((), 1)  # an empty file: its first line


def _model_at(loc: Loc, root: type[BaseModel]) -> type[BaseModel] | None:
    """The model that the node at ``loc`` is validated as (for "did you mean")."""
    model: type[BaseModel] | None = root
    i = 0
    while i < len(loc) and model is not None:
        field = model.model_fields.get(str(loc[i]))
        i += 1
        annotation: Any = field.annotation if field else None
        # Step through dict[str, X], list[X] and X | None to the model inside.
        while annotation is not None and not (
            isinstance(annotation, type) and issubclass(annotation, BaseModel)
        ):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            origin = typing.get_origin(annotation)
            if origin in (dict, list) and i < len(loc):
                i += 1  # the key or index
            annotation = args[-1] if args else None
        model = annotation
    return model


def explain(
    exc: ValidationError, path: str, lines: dict[Loc, int], root: type[BaseModel] = SystemSpec
) -> SpecError:
    """The first problem of a failed validation, as a :class:`SpecError` with file, line and field."""
    item = exc.errors()[0]
    loc: Loc = tuple(item["loc"])
    # pydantic puts a union member's name into loc; drop what is not a real key.
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    kind = item["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _model_at(loc[:-1], root)
        problem = f"unknown field {key!r}"
        if model is not None:
            close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
            if close:
                problem += f"; did you mean {close[0]!r}?"
            else:
                known = ", ".join(k for k in model.model_fields if k not in ("name", "path"))
                problem += f" (known fields: {known})"
        return SpecError(path, _line(lines, loc), _dotted(loc), problem)
    if kind == "missing":
        return SpecError(path, _line(lines, loc[:-1]), _dotted(loc), "required field missing")
    message = item["msg"].removeprefix("Value error, ")
    if loc and message.startswith(f"{loc[-1]}."):  # a problem inside a map: find its own line
        inner = message[len(str(loc[-1])) + 1 :].split(" ", 1)[0].split(".")
        line = next(
            (lines[(*loc, *inner[:n])] for n in range(len(inner), 0, -1) if (*loc, *inner[:n]) in lines), None
        )
        if line is not None:
            return SpecError(path, line, _dotted(loc), message)
    if kind == "literal_error":
        got = repr(item["input"])
        message = f"{message} (got {got if len(got) <= 80 else got[:79] + '…'})"
    return SpecError(path, _line(lines, loc), _dotted(loc), message)


@dataclass(frozen=True)
class Tool:
    """A Python callable an agent may be allowed to call.

    Attributes:
        name: The name agents use.
        func: The callable (sync or async).
        description: From the docstring, shown to the model.
        parameters: JSON Schema of its arguments, derived from its signature.
        validate: Turns raw arguments into keyword arguments or raises ``ValidationError``.
        is_async: Whether ``func`` is a coroutine function (a sync one runs in a thread).
        timeout_s: Its own limit of one call, if declared (else ``limits.tool_timeout_s``).
    """

    name: str
    func: Callable[..., Any]
    description: str
    parameters: dict[str, Any]
    validate: Callable[[dict[str, Any]], dict[str, Any]]
    is_async: bool
    timeout_s: float | None = None
    side_effects: bool = False
    approval: bool = False


def load_tool(name: str, ref: str, base: Path) -> Tool:
    """Load ``file.py:function`` relative to ``base``; raises ``ValueError`` with the reason."""
    file_part, sep, func_name = ref.partition(":")
    if not sep or not file_part or not func_name:
        raise ValueError(f"a tool is 'file.py:function', not {ref!r}")
    file = (base / file_part).resolve()
    if not file.is_file():
        raise ValueError(f"tool file {str(file)!r} does not exist")
    module_name = f"_playground_tools_{abs(hash(str(file))):x}"
    module = sys.modules.get(module_name)
    if module is None:
        module = import_tools_file(file, module_name)
        sys.modules[module_name] = module
    func = getattr(module, func_name, None)
    if not callable(func):
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        close = difflib.get_close_matches(func_name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{file.name} has no function {func_name!r}{hint}")
    return tool_from_function(name, func)


def tool_from_function(name: str, func: Callable[..., Any], timeout_s: float | None = None) -> Tool:
    """A :class:`Tool` of a Python function: its signature is the argument schema, its
    docstring the description (a system file's tools and the Python API's alike)."""
    from pydantic import create_model

    fields: dict[str, Any] = {}
    try:
        for param in inspect.signature(func).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = param.annotation if param.annotation is not param.empty else Any
            default = param.default if param.default is not param.empty else ...
            fields[param.name] = (annotation, default)
        args_model = create_model(f"{name}_args", **fields)
        schema = args_model.model_json_schema()
    except Exception as exc:  # no signature, an annotation pydantic cannot use
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        code = getattr(func, "__code__", None)
        where = f" in {Path(code.co_filename).name}" if code is not None else ""
        raise ValueError(
            f"the arguments of {getattr(func, '__name__', name)!r}{where} cannot be described: {problem}"
        ) from None
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)

    def validate(raw: dict[str, Any]) -> dict[str, Any]:
        return dict(args_model.model_validate(raw))

    return Tool(
        name=name,
        func=func,
        description=inspect.getdoc(func) or "",
        parameters=schema,
        validate=validate,
        is_async=inspect.iscoroutinefunction(func),
        timeout_s=timeout_s,
    )


class _ExitCalled(BaseException):
    """Raised instead of ending the process when a tools module calls ``os._exit`` at import."""

    def __init__(self, code: object) -> None:
        super().__init__(code)
        self.code = code


def import_tools_file(file: Path, module_name: str, *, register: bool = False) -> types.ModuleType:
    """Import a tools file, reporting whatever goes wrong instead of letting it end the process.

    The module's code is the user's: at import it may raise anything, call ``sys.exit``
    or ``os._exit``, or never finish. It runs in a thread of its own, so a module that
    does not finish within :data:`playground.bounds.TOOL_IMPORT_S` is reported (and
    abandoned) rather than hanging ``check`` or ``run``; while it runs, ``os._exit``
    called from that thread raises instead of ending the process.

    Args:
        register: Put the module into ``sys.modules`` while it runs (a Python system file:
            dataclasses and pydantic models resolve their annotations through it); it is
            taken out again if the import fails.

    Raises:
        ValueError: Why the module could not be imported, in one line.
    """
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {str(file)!r}")
    loader = spec.loader
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[module_name] = module
    outcome: list[BaseException | None] = []
    done = threading.Event()

    def run() -> None:
        try:
            loader.exec_module(module)
        except BaseException as exc:  # the module's own: reported below, never re-raised here
            outcome.append(exc)
        else:
            outcome.append(None)
        finally:
            done.set()

    thread = threading.Thread(target=run, name=f"playground-import-{file.name}", daemon=True)
    real_exit = os._exit

    def guarded_exit(status: int) -> NoReturn:
        if threading.current_thread() is thread:
            raise _ExitCalled(status)
        real_exit(status)

    timeout_s = bounds.TOOL_IMPORT_S.value
    os._exit = guarded_exit
    try:
        thread.start()
        finished = done.wait(timeout_s)
    finally:
        if os._exit is guarded_exit:
            os._exit = real_exit
    if not finished:
        raise ValueError(
            f"importing {file.name} did not finish within {timeout_s} s (does it loop or wait at import?);"
            f" raise the limit with {bounds.TOOL_IMPORT_S.env}=N if it is just slow"
        )
    error = outcome[0]
    if error is None:
        return module
    if register and sys.modules.get(module_name) is module:
        del sys.modules[module_name]
    if isinstance(error, SpecError):  # a system defined in Python, refused where it is defined
        raise error.with_traceback(None)
    where = _import_line(error, file)
    if isinstance(error, _ExitCalled):
        raise ValueError(f"importing {file.name} called os._exit({error.code!r}){where}")
    if isinstance(error, SystemExit):
        raise ValueError(f"importing {file.name} called sys.exit({error.code!r}){where}")
    raise ValueError(f"importing {file.name} failed{where}: {type(error).__name__}: {error}")


def _import_line(error: BaseException, file: Path) -> str:
    """`` at line N`` of the tools file where the error was raised, if it was raised there."""
    line = None
    for frame, number in traceback.walk_tb(error.__traceback__):
        if Path(frame.f_code.co_filename) == file:
            line = number
    return f" at line {line}" if line is not None else ""


@dataclass(frozen=True)
class System:
    """A loaded system: its spec and its tools, ready to run."""

    spec: SystemSpec
    tools: dict[str, Tool]
    lines: dict[Loc, int]
    checks: dict[str, Tool] = field(default_factory=dict)
    """The checkpoints' Python functions, by their ``file.py:function``."""
    notes: tuple[str, ...] = ()
    """What ``check`` mentions although the file loads (a tools file outside its folder)."""
    cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """Derived data the runtime computes once per system (version ids, tool definitions)."""

    @property
    def name(self) -> str:
        return self.spec.name

    def agent(self, name: str) -> AgentSpec:
        return self.spec.agents[name]


def misfit(system: System, agent: AgentSpec) -> str:
    """Why ``agent`` (say, a stored version) cannot run in ``system`` as loaded now, or ``""``."""
    agents = system.spec.agents
    missing = [h.to for h in agent.handoffs if h.to not in agents]
    missing += [d for d in agent.delegates if d not in agents]
    if missing:
        return f"needs agents {', '.join(missing)} that this system file no longer has"
    tools = [t for t in agent.tools if t not in system.tools]
    if tools:
        return f"needs tools {', '.join(tools)} that this system file no longer has"
    from playground.spec.code import code_misfit

    return code_misfit(system, agent)


def load_system_ref(ref: str | Path) -> System:
    """Load the system a command names: a system file (``SYSTEM.yaml``), or a Python object
    (``path/file.py:NAME`` or ``package.module:NAME``: a system, an agent, or a function
    with no arguments returning one; see :mod:`playground.spec.python`).

    Raises:
        SpecError: naming the file, line and field of the first problem found.
    """
    from playground.spec.python import is_python_ref, load_python_system

    if isinstance(ref, str) and is_python_ref(ref):
        return load_python_system(ref)
    return load_system(ref)


def load_system(path: str | Path) -> System:
    """Load and check a system file.

    Raises:
        SpecError: naming the file, line and field of the first problem found.
    """
    file = Path(path)
    shown = str(path)
    text = read_spec_file(file, shown)
    return load_system_text(text, shown, base=file.resolve().parent)


def read_spec_file(file: Path, shown: str) -> str:
    """The text of a system or scenario file, read within :data:`playground.bounds.SPEC_FILE_BYTES`.

    Raises:
        SpecError: The file cannot be read, is too large, or is not UTF-8 (with the line).
    """
    limit = bounds.SPEC_FILE_BYTES
    try:
        with file.open("rb") as stream:
            data = stream.read(limit.value + 1)  # /dev/zero, a FIFO: read no more than the limit
    except OSError as exc:
        raise SpecError(shown, None, "", f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > limit.value:
        raise SpecError(shown, None, "", limit.message("the file"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            shown,
            line,
            "",
            f"not UTF-8 text (byte {data[exc.start]:#04x} at column {column}); save the file as UTF-8",
        ) from None


def load_system_text(text: str, shown: str, base: Path) -> System:
    """Load a system from YAML text; ``shown`` names it in errors, ``base`` anchors tool paths."""
    data, lines = parse_yaml(text, shown)
    if not isinstance(data, dict):
        raise SpecError(shown, 1, "", "a system file is a YAML map with name, pattern and agents")
    # Top-level keys starting with "x-" hold YAML anchors for merge keys (<<: *common), as in
    # docker compose files; they are not part of the system.
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        spec = SystemSpec.model_validate({**data, "path": shown})
    except ValidationError as exc:
        raise explain(exc, shown, lines) from None
    _refuse_secret_values(text, shown)
    tools: dict[str, Tool] = {}
    notes: list[str] = []
    for tool_name, decl in spec.tools.items():
        ref = decl if isinstance(decl, str) else decl.function
        loc = ("tools", tool_name) if isinstance(decl, str) else ("tools", tool_name, "function")
        try:
            tool = load_tool(tool_name, ref, base)
        except ValueError as exc:
            raise SpecError(shown, _line(lines, loc), _dotted(loc), str(exc)) from None
        outside = _outside(ref, base)
        if outside is not None:
            notes.append(
                f"{shown}:{_line(lines, loc)}: {_dotted(loc)}: the tools file {outside!r} is outside"
                " the system file's folder"
            )
        if not isinstance(decl, str):
            tool = dataclasses.replace(
                tool,
                timeout_s=decl.timeout_s,
                side_effects=decl.side_effects,
                approval=decl.approval == "required",
            )
        tools[tool_name] = tool
    _check(spec, shown, lines)
    notes_ = tuple(dict.fromkeys(notes))
    return System(spec, tools, lines, checks=_load_checks(spec, base, shown, lines), notes=notes_)


def _load_checks(spec: SystemSpec, base: Path, shown: str, lines: dict[Loc, int]) -> dict[str, Tool]:
    """The Python functions of the system's checkpoints, by their ``file.py:function``."""
    where: dict[str, Loc] = {}
    for name, agent in spec.agents.items():
        if agent.checkpoint is not None:
            where.setdefault(agent.checkpoint.check, ("agents", name, "checkpoint", "check"))
        for which in ("input", "output"):
            ref = getattr(agent.validators, which) if agent.validators is not None else None
            if ref is not None:
                where.setdefault(ref, ("agents", name, "validate", which))
        for i, handoff in enumerate(agent.handoffs):
            if handoff.checkpoint is not None:
                where.setdefault(
                    handoff.checkpoint.check, ("agents", name, "handoffs", i, "checkpoint", "check")
                )
            if handoff.guard is not None:
                where.setdefault(handoff.guard, ("agents", name, "handoffs", i, "guard"))
    checks: dict[str, Tool] = {}
    for ref, loc in where.items():
        try:
            checks[ref] = load_tool(ref, ref, base)
        except ValueError as exc:
            raise SpecError(shown, _line(lines, loc), _dotted(loc), str(exc)) from None
    return checks


def _refuse_secret_values(text: str, shown: str) -> None:
    """Refuse a file that holds the value of a secret environment variable (a key pasted in)."""
    name = redact.find(text)
    if name is None:
        return
    secret = next(value for value, var in redact.current() if var == name and value in text)
    line = text.count("\n", 0, text.index(secret)) + 1
    raise SpecError(
        shown,
        line,
        "",
        f"this line holds the value of the environment variable {name}, a secret: it would be stored"
        " with the system; refer to the variable instead (model_settings.api_key_env)",
    )


def _outside(ref: str, base: Path) -> str | None:
    """The resolved tools file of ``ref`` if it is not inside ``base``, else None."""
    file = (base / ref.partition(":")[0]).resolve()
    return None if file.is_relative_to(base.resolve()) else str(file)


def _check(spec: SystemSpec, path: str, lines: dict[Loc, int]) -> None:
    agents = spec.agents

    def fail(loc: Loc, problem: str) -> None:
        raise SpecError(path, _line(lines, loc), _dotted(loc), problem)

    def known_agent(name: str, loc: Loc, what: str) -> None:
        if name not in agents:
            close = difflib.get_close_matches(name, list(agents), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (agents: {', '.join(agents)})"
            fail(loc, f"{what} {name!r} is not an agent of this system{hint}")

    if not agents:
        fail(("agents",), "a system needs at least one agent")
    if spec.entry is not None:
        known_agent(spec.entry, ("entry",), "entry agent")
    elif spec.pattern != "pipeline":
        fail(("entry",), "required field missing: which agent receives the request?")
    if not isinstance(spec.on_budget, str):
        known_agent(spec.on_budget.escalate, ("on_budget", "escalate"), "on_budget escalation target")
    if spec.on_loop != "stop":
        known_agent(spec.on_loop, ("on_loop",), "on_loop escalation target")
        target_input = agents[spec.on_loop].input
        if target_input is not None:
            extra = [
                f.name for f in target_input.fields if not f.optional and f.name not in ("request", "reason")
            ]
            if extra:
                fail(
                    ("agents", spec.on_loop, "input"),
                    f"the on_loop agent receives {{request, reason}}, but its input also requires {extra}",
                )

    for name, agent in agents.items():
        base: Loc = ("agents", name)
        for i, tool in enumerate(agent.tools):
            if tool not in spec.tools:
                close = difflib.get_close_matches(tool, list(spec.tools), n=1)
                hint = (
                    f"; did you mean {close[0]!r}?" if close else " (declare it under the top-level 'tools:')"
                )
                fail((*base, "tools", i), f"tool {tool!r} is not declared{hint}")
        for i, handoff in enumerate(agent.handoffs):
            known_agent(handoff.to, (*base, "handoffs", i, "to"), "handoff target")
            if handoff.to == name:
                fail((*base, "handoffs", i, "to"), "an agent cannot hand off to itself")
            fields = handoff.schema_.names
            for field_name in handoff.from_:
                if field_name not in fields:
                    fail(
                        (*base, "handoffs", i, "from", field_name),
                        f"{field_name!r} is not a field of this handoff's context ({', '.join(fields)})",
                    )
        for i, delegate in enumerate(agent.delegates):
            known_agent(delegate, (*base, "delegates", i), "delegate")
            if delegate == name:
                fail((*base, "delegates", i), "an agent cannot delegate to itself")
        if agent.review and not agent.delegates:
            fail((*base, "review"), "review checks delegates' outputs, but this agent has no delegates")
        rejects: list[tuple[Loc, Any]] = [((*base, "on_reject"), agent.on_reject)]
        if agent.checkpoint is not None:
            rejects.append(((*base, "checkpoint", "on_reject"), agent.checkpoint.on_reject))
        for i, handoff in enumerate(agent.handoffs):
            if handoff.checkpoint is not None:
                rejects.append(
                    ((*base, "handoffs", i, "checkpoint", "on_reject"), handoff.checkpoint.on_reject)
                )
        for loc, on_reject in rejects:
            if not isinstance(on_reject, str):
                known_agent(on_reject.escalate, (*loc, "escalate"), "on_reject escalation target")
        _check_script(spec, agent, base, fail)

    if spec.pattern == "router":
        entry = agents[spec.entry_agent]
        if not entry.handoffs:
            fail(
                ("agents", spec.entry_agent, "handoffs"),
                "a router's entry agent hands off: declare at least one handoff",
            )
        if spec.pipeline:
            fail(("pipeline",), "'pipeline' belongs to pattern: pipeline")
    elif spec.pattern == "supervisor":
        entry = agents[spec.entry_agent]
        if not entry.delegates:
            fail(
                ("agents", spec.entry_agent, "delegates"),
                "a supervisor's entry agent delegates: list its workers under 'delegates'",
            )
        if spec.pipeline:
            fail(("pipeline",), "'pipeline' belongs to pattern: pipeline")
    else:
        if not spec.pipeline:
            fail(("pipeline",), "a pipeline lists its stages in order: pipeline: [first, second, ...]")
        assert spec.pipeline is not None
        seen: set[str] = set()
        for i, stage in enumerate(spec.pipeline):
            group = [stage] if isinstance(stage, str) else stage
            if not isinstance(stage, str) and len(stage) < 2:
                fail(("pipeline", i), "a parallel group lists at least two agents: [a, b]")
            if i == 0 and not isinstance(stage, str):
                fail(("pipeline", i), "a pipeline's first stage is one agent (it receives the request)")
            for j, name in enumerate(group):
                at: Loc = ("pipeline", i) if isinstance(stage, str) else ("pipeline", i, j)
                known_agent(name, at, "stage")
                if name in seen:
                    fail(at, f"{name!r} appears twice in the pipeline")
                seen.add(name)
        if spec.entry is not None and spec.entry != spec.entry_agent:
            fail(("entry",), f"a pipeline's entry is its first stage {spec.entry_agent!r}")


def _check_script(spec: SystemSpec, agent: AgentSpec, base: Loc, fail: Callable[[Loc, str], None]) -> None:
    handoff_targets = {h.to for h in agent.handoffs}
    callable_names = set(agent.tools) | set(agent.delegates)
    known_fields = {"input", "tool_result", "feedback"}
    if agent.input is not None:
        known_fields |= set(agent.input.names)
    for i, step in enumerate(agent.script):
        loc = (*base, "script", i)
        if step.handoff is not None and step.handoff not in handoff_targets:
            close = difflib.get_close_matches(step.handoff, sorted(handoff_targets), n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else f" (its handoffs: {', '.join(sorted(handoff_targets)) or 'none'})"
            )
            fail(
                (*loc, "handoff"),
                f"{agent.name!r} has no handoff to {step.handoff!r}{hint}."
                " To script a call to an unknown target on purpose, use"
                f" tool: {HANDOFF_PREFIX}{step.handoff}",
            )
        called: list[tuple[str, Loc, dict[str, Any]]] = []
        if step.tool is not None:
            called.append((step.tool, (*loc, "tool"), step.args or {}))
        for j, call in enumerate(step.calls or []):
            called.append((call.tool, (*loc, "calls", j, "tool"), call.args))
        for tool_name, tool_loc, _args in called:
            if (
                tool_name not in callable_names
                and tool_name not in spec.tools
                and not tool_name.startswith(HANDOFF_PREFIX)
            ):
                pool = sorted(callable_names | set(spec.tools))
                close = difflib.get_close_matches(tool_name, pool, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                fail(tool_loc, f"{tool_name!r} is neither a tool, a delegate nor a system tool{hint}")
        if agent.input is not None:
            for key in ("reply", "feedback"):
                _check_template(getattr(step, key), known_fields, (*loc, key), fail)
            for key in ("args", "context"):
                for arg, value in (getattr(step, key) or {}).items():
                    _check_template(value, known_fields, (*loc, key, arg), fail)
            for j, call in enumerate(step.calls or []):
                for arg, value in call.args.items():
                    _check_template(value, known_fields, (*loc, "calls", j, "args", arg), fail)


def _check_template(value: Any, known: set[str], loc: Loc, fail: Callable[[Loc, str], None]) -> None:
    if not isinstance(value, str):
        return
    for name in _TEMPLATE_FIELD.findall(value):
        if name not in known:
            fail(loc, f"template field {{{name}}} is unknown here; known: {', '.join(sorted(known))}")
