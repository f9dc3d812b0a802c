"""The headless engine: runtime, patterns, handoffs, debugger gates, tools."""

from playground.engine.controller import Controller, Decision, Gate, StepController
from playground.engine.runtime import RunResult, Runtime, default_llm_factory
from playground.spec.identity import version_id

__all__ = [
    "Controller",
    "Decision",
    "Gate",
    "RunResult",
    "Runtime",
    "StepController",
    "default_llm_factory",
    "version_id",
]
