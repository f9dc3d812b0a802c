"""A stand-in system for an observed session: its agents as they appeared, nothing to run.

The run screen's reducer (:class:`playground.tui.state.RunView`) and its widgets take a
:class:`~playground.spec.load.System` for the agents' panes and the handoffs' schemas.
An observed session has no system file: this builds one from its events, with each agent
that started, its model and where it came from. It is never run.
"""

from __future__ import annotations

from collections.abc import Iterable

from playground.engine import events as ev
from playground.spec.load import System
from playground.spec.models import AgentSpec, SystemSpec


def observed_agents(events: Iterable[ev.Event]) -> dict[str, str]:
    """Agent name -> model, in the order the agents first started."""
    agents: dict[str, str] = {}
    for event in events:
        if isinstance(event, ev.AgentStarted) and event.agent is not None and not agents.get(event.agent):
            agents[event.agent] = event.model
    return agents


def observed_system(events: list[ev.Event], agents: dict[str, str] | None = None) -> System:
    """The stand-in system of an observed session (its first event names it)."""
    first = events[0] if events else None
    name = first.system if isinstance(first, ev.RunStarted) else "observed"
    framework = first.observed if isinstance(first, ev.RunStarted) and first.observed else "otel"
    found = observed_agents(events) if agents is None else agents
    specs = {
        agent: AgentSpec(name=agent, model=model or "?", description=f"observed ({framework})")
        for agent, model in found.items()
    }
    spec = SystemSpec(
        name=name,
        description=f"observed from {framework} over OTLP: read-only",
        pattern="router",
        entry=next(iter(specs), None),
        agents=specs,
        path="",
    )
    return System(spec=spec, tools={}, lines={})
