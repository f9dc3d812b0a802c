"""Versions of code: fingerprints of the Python an agent runs.

An agent defined in Python (the Python API, an OpenAI Agents SDK agent) runs code
that lives in the user's repository: its tools, and perhaps a function that writes
its instructions. The agent spec records a fingerprint of each (``AgentSpec.code``):
the signature, so a diff can say what changed, and a hash of the source, so a changed
body is a new version. The source itself is not stored (it may hold anything, a key
included); a stored version whose code is no longer what the file says cannot be run,
and rolling back to it is refused.
"""

from __future__ import annotations

import hashlib
import inspect
import marshal
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playground.spec.load import System
    from playground.spec.models import AgentSpec

INSTRUCTIONS = "instructions"
"""The key of a dynamic-instructions function in ``AgentSpec.code``."""


def tool_key(name: str) -> str:
    """The key of a tool in ``AgentSpec.code``."""
    return f"tool {name}"


def source_hash(func: Callable[..., Any]) -> str:
    """12 hex digits of the SHA-256 of a function's source (its code object's when the source
    cannot be read, e.g. a function made at run time)."""
    target = inspect.unwrap(func)
    try:
        data = textwrap.dedent(inspect.getsource(target)).encode()
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        data = marshal.dumps(code) if code is not None else repr(target).encode()
    return hashlib.sha256(data).hexdigest()[:12]


def signature_of(func: Callable[..., Any], name: str | None = None) -> str:
    """``name(arguments) -> return`` as written, or ``name(...)`` when it has none to read."""
    target = inspect.unwrap(func)
    label = name or getattr(target, "__name__", "function")
    try:
        try:
            signature = inspect.signature(target, eval_str=True)
        except Exception:  # an annotation that does not evaluate: keep it as written
            signature = inspect.signature(target)
    except (TypeError, ValueError):
        return f"{label}(...)"
    return f"{label}{signature}"


def fingerprint(func: Callable[..., Any], name: str | None = None, signature: str | None = None) -> str:
    """What ``AgentSpec.code`` records of a function: its signature and ``#`` its source hash."""
    return f"{signature or signature_of(func, name)} #{source_hash(func)}"


def _split(value: str) -> tuple[str, str]:
    signature, _, digest = value.rpartition(" #")
    return (signature, digest) if signature else (value, "")


def describe_changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """One line per piece of code that differs: which function, and whether its signature or
    only its body changed."""
    out: list[str] = []
    for key, value in new.items():
        was = old.get(key)
        if was is None:
            out.append(f"+{key}: {value}")
        elif was != value:
            (old_sig, _), (new_sig, digest) = _split(was), _split(value)
            if old_sig != new_sig:
                out.append(f"{key}: signature {old_sig} -> {new_sig}")
            else:
                out.append(f"{key}: body changed (#{_split(was)[1]} -> #{digest})")
    out.extend(f"-{key}" for key in old if key not in new)
    return out


def code_misfit(system: System, agent: AgentSpec) -> str:
    """Why a stored version of ``agent`` cannot run with the code ``system`` was loaded with
    (its tools' or instructions' code differs), or ``""``."""
    if not agent.code:
        return ""
    current: dict[str, str] = {}
    for other in system.spec.agents.values():
        for key, value in other.code.items():
            if key != INSTRUCTIONS:  # tools are the system's: any agent that has one knows it
                current[key] = value
    loaded = system.spec.agents.get(agent.name)
    if loaded is not None and INSTRUCTIONS in loaded.code:
        current[INSTRUCTIONS] = loaded.code[INSTRUCTIONS]
    changed = []
    for key, value in agent.code.items():
        now = current.get(key)
        if now == value:
            continue
        if now is None:
            changed.append(f"{key} (no agent of the file runs it now, so its code cannot be checked)")
        else:
            changed.append(f"{key} (#{_split(value)[1]} in this version, #{_split(now)[1]} in the file)")
    if not changed:
        return ""
    where = system.spec.path or system.name
    return (
        f"runs code that is no longer what {where} says: {'; '.join(changed)}. The code lives in"
        " your repository, not in the store: check out the commit that had it, or use a version"
        " made from the code as it is now"
    )
