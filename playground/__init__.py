"""Agent Playground.

The Python API for systems (:mod:`playground.define`) is exported here and imported on
first use, so ``import playground`` (and ``playground --help``) stays cheap: nothing
heavy, no litellm, no Textual, no OpenAI Agents SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playground.define import Agent, Checkpoint, Handoff, ToolFunction, define_system, import_file, tool
    from playground.spec.load import System, load_system_ref
    from playground.spec.models import Limits, Price, ScriptStep

__all__ = [
    "Agent",
    "Checkpoint",
    "Handoff",
    "Limits",
    "Price",
    "ScriptStep",
    "System",
    "ToolFunction",
    "define_system",
    "import_file",
    "load_system_ref",
    "tool",
]

_WHERE = {
    "Agent": "playground.define",
    "Checkpoint": "playground.define",
    "Handoff": "playground.define",
    "ToolFunction": "playground.define",
    "define_system": "playground.define",
    "import_file": "playground.define",
    "tool": "playground.define",
    "System": "playground.spec.load",
    "load_system_ref": "playground.spec.load",
    "Limits": "playground.spec.models",
    "Price": "playground.spec.models",
    "ScriptStep": "playground.spec.models",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'playground' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
