"""Running a system with everything wired: versions, store, tracing, controller.

The CLI, the TUI, the scenario runner and the pytest plugin all run sessions
through :func:`run_session`, so a session is recorded the same way whoever
started it.
"""

from __future__ import annotations

import asyncio
import operator
import time
from typing import Any, Protocol, runtime_checkable

from playground.engine.clock import SYSTEM_CLOCK, Clock
from playground.engine.controller import Controller
from playground.engine.events import Event
from playground.engine.runtime import (
    EventSink,
    LLMFactory,
    RunResult,
    Runtime,
    SideEffectsDone,
    ToolReplay,
    default_llm_factory,
)
from playground.errors import PlaygroundError
from playground.spec.identity import canonical_spec, version_id_of_json
from playground.spec.load import System, misfit
from playground.spec.models import AgentSpec
from playground.store.store import Store


async def active_agents(
    store: Store, system: System, *, fresh: bool = False
) -> tuple[dict[str, AgentSpec], dict[str, str]]:
    """Record the file's agent versions and return the active specs and their version ids.

    Cached per system for the last store it ran with, until that store changes a version,
    so running one loaded system many times (scenarios, benchmarks) checks the store once.
    One entry, not one per store: the pytest plugin opens a store per scenario.

    Args:
        fresh: Read the store even if cached: another process (``playground rollback``) may
            have moved an active pointer, which this store object cannot know. A long-lived
            caller (the TUI) asks for this before each run; the cache then holds what it read.
    """
    cached = system.cache.get("active")
    if not fresh and cached is not None and cached[0] == store.token and cached[1] == store.generation:
        return cached[2], cached[3]
    specs, file_vids = _file_specs(system)
    active = await store.record_versions(system.name, specs)
    agents: dict[str, AgentSpec] = {}
    versions: dict[str, str] = {}
    for name in system.spec.agents:
        vid = active[name]
        spec_json = (
            specs[name]
            if active[name] == file_vids[name]
            else await store.version_spec(system.name, name, vid)
        )
        agents[name] = (
            system.spec.agents[name] if spec_json == specs[name] else AgentSpec.model_validate_json(spec_json)
        )
        versions[name] = vid
    _check_compatible(system, agents, versions)
    system.cache["active"] = (store.token, store.generation, agents, versions)
    return agents, versions


def _file_specs(system: System) -> tuple[dict[str, str], dict[str, str]]:
    """The file's agents as canonical JSON, and their version ids, computed once per loaded
    system: a store seen for the first time (the pytest plugin opens one per scenario) still
    records them all, but does not serialise and hash every agent again."""
    agents = system.spec.agents
    cached = system.cache.get("file_specs")
    if (
        cached is not None
        and len(cached[0]) == len(agents)
        and all(map(operator.is_, cached[0], agents.values()))
    ):
        return cached[1], cached[2]
    specs = {name: canonical_spec(agent) for name, agent in agents.items()}
    vids = {name: version_id_of_json(spec_json) for name, spec_json in specs.items()}
    system.cache["file_specs"] = (list(agents.values()), specs, vids)  # the specs keep their ids
    return specs, vids


def _check_compatible(system: System, agents: dict[str, AgentSpec], versions: dict[str, str]) -> None:
    """An active version from the store must still fit the system file it runs in."""
    for name, agent in agents.items():
        if agent is system.spec.agents[name]:
            continue
        problem = misfit(system, agent)
        if problem:
            raise PlaygroundError(
                f"agent {name!r} runs version {versions[name]} (active in the store), which "
                f"{problem} ({system.spec.path or system.name!r}). Roll {name!r} forward or back "
                "to a version that fits, or restore the file."
            )


def needs_litellm(agents: dict[str, AgentSpec]) -> bool:
    """Whether any agent (or fallback) calls a real model."""
    return any(
        not (model == "scripted" or model.startswith("scripted/"))
        for agent in agents.values()
        for model in (agent.model, *agent.fallbacks)
    )


@runtime_checkable
class Suspending(Protocol):
    """A sink that knows a session stopped to wait for approval (the tracer): the one
    outcome without a final event."""

    def __call__(self, event: Event) -> None: ...

    def suspend(self, session_id: str, ts: float) -> None: ...


async def run_session(
    system: System,
    request: str,
    *,
    store: Store | None = None,
    tracer: EventSink | None = None,
    controller: Controller | None = None,
    live: list[EventSink] | None = None,
    llm_factory: LLMFactory = default_llm_factory,
    agents: dict[str, AgentSpec] | None = None,
    versions: dict[str, str] | None = None,
    tool_replay: ToolReplay | None = None,
    side_effects_done: SideEffectsDone | None = None,
    parent_session_id: str | None = None,
    forked_from_step: int | None = None,
    agent: str | None = None,
    context: dict[str, Any] | None = None,
    session_id: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    make_way_after: bool = True,
    scenario: str | None = None,
    scenario_file: str | None = None,
) -> RunResult:
    """Run ``request`` through ``system``: record it in ``store`` and trace it with ``tracer``.

    Args:
        agents: Specs to run instead of the store's active versions (with their ``versions``).
        tool_replay: Answers tool calls from a recording (fork and replay).
        side_effects_done: Recorded results of side-effect tools, served instead of running them.
        parent_session_id: The session this one was forked or replayed from.
        forked_from_step: The parent's step where this session starts running live.
        agent: Run only this agent, in isolation, on ``context`` (scenario tests).
        session_id: The new session's id (default: random).
        clock: The time and id sources of the run (tests pass a fixed one).
        make_way_after: Let the store's writer in before returning (:func:`make_way`). False:
            the caller does, once it is done with the result (the scenario runner checks a
            run's events first, while they are fresh, and lets them go before other runs go).
        scenario: The scenario this run is, and ``scenario_file`` its file: the session row
            names them (``playground sessions``, the sessions screen).
    """
    if store is not None and agents is None:
        agents, versions = await active_agents(store, system)
    if needs_litellm(agents or system.spec.agents):
        from playground.llm.litellm_model import preload

        await preload()  # the ~3 s import must not eat the first call's timeout
    sinks: list[EventSink] = []
    if store is not None:
        sinks.append(store.sink)
    if tracer is not None:
        sinks.append(tracer)
    runtime = Runtime(
        system,
        agents=agents,
        versions=versions,
        controller=controller,
        llm_factory=llm_factory,
        sinks=sinks,
        live=live,
        tool_replay=tool_replay,
        side_effects_done=side_effects_done,
        session_id=session_id,
        clock=clock,
    )
    if store is not None:
        store.check_writable()  # a damaged or read-only store: the run must not start
    # The store derives the session row from the run's events (its sink): the row begins
    # with ``run_started`` and ends with ``run_finished`` / ``run_failed``, Ctrl-C included.
    result = await runtime.run(
        request,
        parent_session_id=parent_session_id,
        forked_from_step=forked_from_step,
        agent=agent,
        context=context,
        scenario=scenario,
        scenario_file=scenario_file,
    )
    if result.status == "waiting_approval":
        if store is not None:
            await store.record_waiting(result)  # the one outcome without a final event
        if isinstance(tracer, Suspending):  # its spans end as waiting, not as interrupted
            tracer.suspend(result.session_id, result.events[-1].ts)
    # Spans export in the background (batched); whoever owns the tracer flushes or shuts it
    # down when done. Flushing here would hold the event loop until the collector answers.
    if make_way_after and (store is not None or tracer is not None):
        await make_way()
    return result


async def make_way() -> None:
    """Let the store's writer and the threads behind the store and the tracer make progress.

    A run with instant models never waits, so the store's writer gets no turn on the
    event loop, and the threads (the store's connection, the span exporter) get no turn
    either: a thread waiting for the GIL asks for it only after 5 ms without a switch,
    and a busy event loop releases and retakes it around every poll, so such a thread
    can wait for seconds (measured: one SQLite statement waited 0.8 to 5 s while
    sessions ran back to back). ``sleep(0)`` gives the writer a turn; ``time.sleep(0)``
    releases the GIL with nothing to take it back, so a waiting thread gets it.
    """
    await asyncio.sleep(0)
    time.sleep(0)
