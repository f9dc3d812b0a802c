"""Loading a system written in Python: ``path/file.py:NAME`` or ``package.module:NAME``.

NAME is a system (:func:`playground.define_system`), an agent (the playground's
:class:`~playground.define.Agent` or an OpenAI Agents SDK ``Agent``: the entry agent of
the system its handoffs reach), or a function with no arguments returning either.
Whatever goes wrong (the file is missing, does not compile, raises at import, NAME is
missing or of the wrong kind) is one :class:`~playground.errors.SpecError` naming the file
and line, never a traceback into the playground.

The OpenAI Agents SDK is imported only here, and only when NAME is one of its agents
(the user's module has imported it by then).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import traceback
import types
from pathlib import Path
from typing import Any

from playground.errors import SpecError
from playground.spec.load import System, import_tools_file, read_spec_file

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_python_ref(ref: str) -> bool:
    """Whether ``ref`` names a Python object (``file.py:NAME``, ``package.module:NAME``)
    rather than a system file."""
    target, sep, name = ref.rpartition(":")
    if not sep or not _NAME.fullmatch(name):
        return False
    return target.endswith(".py") or bool(_MODULE.fullmatch(target))


def ref_file(ref: str) -> Path | None:
    """The file a reference loads from: the system file, or the ``.py`` file of a
    ``file.py:NAME``; None for a module reference (found on ``sys.path``)."""
    if not is_python_ref(ref):
        return Path(ref)
    target = ref.rpartition(":")[0]
    return Path(target) if target.endswith(".py") else None


def ref_relative_to(ref: str, base: Path) -> str:
    """``ref`` as seen from the folder ``base`` (a scenario file's ``system:``): a file's
    path is joined to it; a module reference stays as it is."""
    file = ref_file(ref)
    if file is None:
        return ref
    joined = str(base / file)
    return f"{joined}:{ref.rpartition(':')[2]}" if is_python_ref(ref) else joined


def load_python_system(ref: str) -> System:
    """Import the module of ``ref`` and build the system NAME is.

    Raises:
        SpecError: naming the file (and line, when there is one) of the first problem.
    """
    target, _, name = ref.rpartition(":")
    if target.endswith(".py"):
        module, shown = _import_file(Path(target)), target
    else:
        module, shown = _import_module(target), target
    if not hasattr(module, name):
        names = [n for n in vars(module) if not n.startswith("_")]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SpecError(shown, None, name, f"{target} has no {name!r}{hint}")
    value = getattr(module, name)
    stem = Path(target).stem if target.endswith(".py") else target.rsplit(".", 1)[-1]
    system = resolve(value, shown, name, default_name=f"{stem}.{name}")
    # The reference, not the module's file, is what loads this system again (replay, fork).
    return dataclasses.replace(system, spec=system.spec.model_copy(update={"path": ref}))


def resolve(value: Any, shown: str, name: str, *, default_name: str, called: bool = False) -> System:
    """The system ``value`` is (a system, an agent, or a function returning one)."""
    from playground.define import Agent, system_of_agent

    if isinstance(value, System):
        return value
    if isinstance(value, Agent):
        entry = value
        built: System = _defined(lambda: system_of_agent(entry, default_name), shown, name)
        return built
    sdk = sys.modules.get("agents")
    sdk_agent = getattr(sdk, "Agent", None) if sdk is not None else None
    if isinstance(sdk_agent, type) and isinstance(value, sdk_agent):
        from playground.openai_agents import system_from_agent

        agent: Any = value
        made: System = _defined(lambda: system_from_agent(agent, name=default_name, path=shown), shown, name)
        return made
    if callable(value) and not isinstance(value, type) and not called:
        required = _required_parameters(value)
        if required:
            raise SpecError(
                shown,
                _line_of(value),
                name,
                f"{name}() takes arguments ({', '.join(required)}); NAME is a function with none",
            )
        result = _defined(value, shown, name)
        return resolve(result, shown, name, default_name=default_name, called=True)
    kind = "returned " if called else "is "
    raise SpecError(
        shown,
        None,
        name,
        f"{name} {kind}a {type(value).__name__}, not a system: give a system (playground.define_system),"
        " an agent (a playground or OpenAI Agents SDK Agent), or a function with no arguments returning one",
    )


def _defined(make: Any, shown: str, name: str) -> Any:
    """Call user code that builds a system; its error becomes a :class:`SpecError` at its line."""
    try:
        return make()
    except SpecError:
        raise
    except Exception as exc:
        file, line = _innermost_user_frame(exc)
        where = file or shown
        return _raise(SpecError(where, line, name, f"{type(exc).__name__}: {exc}"))


def _raise(error: SpecError) -> Any:
    raise error


def _required_parameters(func: Any) -> list[str]:
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _line_of(func: Any) -> int | None:
    code = getattr(func, "__code__", None)
    return code.co_firstlineno if code is not None else None


def _innermost_user_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """The innermost frame of the traceback outside the playground and installed packages
    (the user's line), or (None, None)."""
    found: tuple[str | None, int | None] = (None, None)
    package = str(Path(__file__).resolve().parent.parent)
    for frame, number in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if filename.startswith(package) or "site-packages" in filename or filename.startswith("<"):
            continue
        found = (filename, number)
    return found


def _import_file(file: Path) -> types.ModuleType:
    shown = str(file)
    text = read_spec_file(file, shown)  # exists, readable, bounded, UTF-8: or a SpecError
    try:
        compile(text, shown, "exec")
    except SyntaxError as exc:
        raise SpecError(shown, exc.lineno, "", f"not valid Python: {exc.msg}") from None
    except ValueError as exc:  # null bytes
        raise SpecError(shown, None, "", f"not valid Python: {exc}") from None
    resolved = file.resolve()
    module_name = f"_playground_system_{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}"
    try:
        return import_tools_file(resolved, module_name, register=True)
    except ValueError as exc:
        message = str(exc)
        match = re.search(r" at line (\d+)", message)
        line = int(match.group(1)) if match else None
        raise SpecError(shown, line, "", message.replace(match.group(0), "") if match else message) from None


def _import_module(target: str) -> types.ModuleType:
    try:
        found = importlib.util.find_spec(target)
    except (ImportError, ValueError) as exc:
        raise SpecError(target, None, "", f"cannot find module {target!r}: {exc}") from None
    if found is None:
        raise SpecError(target, None, "", f"no module named {target!r} (is it installed, or on PYTHONPATH?)")
    origin = found.origin or target
    try:
        return importlib.import_module(target)
    except SyntaxError as exc:
        raise SpecError(exc.filename or origin, exc.lineno, "", f"not valid Python: {exc.msg}") from None
    except (Exception, SystemExit) as exc:
        file, line = _innermost_user_frame(exc)
        what = f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
        raise SpecError(file or origin, line, "", f"importing {target} failed: {what}") from None
