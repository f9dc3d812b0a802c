"""Running a system with everything wired: versions, store, tracing, controller.

The CLI, the TUI, the scenario runner and the pytest plugin all run sessions
through :func:`run_session`, so a session is recorded the same way whoever
started it.
"""

from __future__ import annotations

from typing import Any

from playground.engine.controller import Controller
from playground.engine.runtime import (
    EventSink,
    LLMFactory,
    Runtime,
    RunResult,
    canonical_spec,
    default_llm_factory,
)
from playground.spec.load import System
from playground.spec.models import AgentSpec
from playground.store.store import Store


async def active_agents(store: Store, system: System) -> tuple[dict[str, AgentSpec], dict[str, str]]:
    """Record the file's agent versions and return the active specs and their version ids."""
    specs = {name: canonical_spec(agent) for name, agent in system.spec.agents.items()}
    active = await store.record_versions(system.name, specs)
    agents: dict[str, AgentSpec] = {}
    versions: dict[str, str] = {}
    for name in system.spec.agents:
        vid = active[name]
        spec_json = specs[name] if active[name] == _vid(specs[name]) else await store.version_spec(
            system.name, name, vid)
        agents[name] = AgentSpec.model_validate_json(spec_json)
        versions[name] = vid
    return agents, versions


def _vid(spec_json: str) -> str:
    from playground.engine.runtime import version_id_of_json

    return version_id_of_json(spec_json)


async def run_session(
    system: System,
    request: str,
    *,
    store: Store | None = None,
    tracer: Any = None,
    controller: Controller | None = None,
    live: list[EventSink] | None = None,
    llm_factory: LLMFactory = default_llm_factory,
    agents: dict[str, AgentSpec] | None = None,
) -> RunResult:
    """Run ``request`` through ``system``: record it in ``store`` and trace it with ``tracer``.

    Args:
        agents: Specs to run instead of the store's active versions.
    """
    versions = None
    if store is not None and agents is None:
        agents, versions = await active_agents(store, system)
    sinks: list[EventSink] = []
    if store is not None:
        sinks.append(store.sink)
    if tracer is not None:
        sinks.append(tracer)
    runtime = Runtime(system, agents=agents, versions=versions, controller=controller,
                      llm_factory=llm_factory, sinks=sinks, live=live)
    if store is not None:
        await store.begin_session(session_id=runtime.session_id, system=system.name,
                                  system_path=system.spec.path, correlation_id=runtime.correlation_id,
                                  input=request, versions=runtime.versions)
    result = await runtime.run(request)
    if store is not None:
        await store.finish_session(result)
    if tracer is not None:
        flush = getattr(tracer, "flush", None)
        if flush is not None:
            flush()
    return result
