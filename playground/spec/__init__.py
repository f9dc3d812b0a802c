"""System files -> validated pydantic models, with clear errors."""

from playground.spec.load import HANDOFF_PREFIX, System, Tool, load_system, load_system_text
from playground.spec.models import AgentSpec, HandoffSpec, Limits, ScriptStep, SystemSpec
from playground.spec.schema import Schema

__all__ = [
    "HANDOFF_PREFIX",
    "AgentSpec",
    "HandoffSpec",
    "Limits",
    "Schema",
    "ScriptStep",
    "System",
    "SystemSpec",
    "Tool",
    "load_system",
    "load_system_text",
]
