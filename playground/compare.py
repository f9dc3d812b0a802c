"""Compare two variants of one agent (two versions, two models) on the same inputs.

Each input runs through both variants concurrently, each run a recorded
session. Inputs come from ``--input``, a scenario file (whose expectations give
pass rates), or a recorded session, in which case both variants are replayed
from the recording so only the compared agent, and what follows it, costs
model calls.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playground.debug import DebugSession
from playground.engine import events as ev
from playground.engine.runtime import EventSink, RunResult
from playground.errors import PlaygroundError, StoreError
from playground.spec.identity import canonical_spec, version_id
from playground.spec.load import System
from playground.spec.models import AgentSpec
from playground.store.store import Store

if TYPE_CHECKING:
    from playground.scenarios import Scenario

WATCHED = (ev.ValidationFailed, ev.LoopDetected, ev.FallbackUsed, ev.PermissionDenied, ev.ModelFailed)
"""Events whose new appearance in B is called out (counted by ``kind``)."""


@dataclass(frozen=True)
class Side:
    """One variant: a version of the agent, or the active version on another model."""

    label: str
    version: str | None = None
    model: str | None = None

    def describe(self) -> str:
        return f"version {self.version}" if self.version else f"model {self.model}"


async def resolve_side(store: Store, system: System, agent: str, value: str) -> Side:
    """A model string if it looks like one (``provider/model``, ``scripted``), else a version
    id or unique prefix of ``agent``; a typo is an error, never silently a model name."""
    if "/" in value or value == "scripted":
        return Side(value, model=value)
    try:
        version = await store.resolve_version(system.name, agent, value)
    except StoreError as exc:
        raise PlaygroundError(
            f"{value!r} is not a version of {agent!r} ({exc}); name a model with its provider "
            "prefix, e.g. openai/gpt-4o-mini or scripted/label"
        ) from None
    return Side(value, version=version)


async def agents_for(
    store: Store, system: System, agent: str, side: Side, base: dict[str, AgentSpec], versions: dict[str, str]
) -> tuple[dict[str, AgentSpec], dict[str, str]]:
    agents, vids = dict(base), dict(versions)
    if side.version is not None:
        loaded = AgentSpec.model_validate_json(await store.version_spec(system.name, agent, side.version))
        # Both sides run at the same pace: the stored version's scripted timing follows the base's.
        agents[agent] = loaded.model_copy(
            update={"latency_ms": base[agent].latency_ms, "tokens_per_s": base[agent].tokens_per_s}
        )
        vids[agent] = side.version
    else:
        assert side.model is not None
        changed = agents[agent].model_copy(update={"model": side.model})
        await store.record_versions(
            system.name,
            {agent: canonical_spec(changed)},
            source="operator",
            note=f"model {side.model} for a comparison",
            activate=False,
        )
        agents[agent], vids[agent] = changed, version_id(changed)
    return agents, vids


def word_diff(a: str, b: str) -> list[dict[str, str]]:
    """Word-level diff of two outputs: ``{op: equal|delete|insert, text}`` pieces."""
    wa, wb = a.split(), b.split()
    pieces: list[dict[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=wa, b=wb, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append({"op": "equal", "text": " ".join(wa[i1:i2])})
            continue
        if i2 > i1:
            pieces.append({"op": "delete", "text": " ".join(wa[i1:i2])})
        if j2 > j1:
            pieces.append({"op": "insert", "text": " ".join(wb[j1:j2])})
    return pieces


def _per_agent(result: RunResult) -> dict[str, dict[str, Any]]:
    return {name: totals.as_json() for name, totals in result.per_agent.items()}


def _deltas(a: RunResult, b: RunResult) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys([*a.per_agent, *b.per_agent]):
        ta, tb = a.per_agent.get(name), b.per_agent.get(name)
        tokens_a = (ta.input_tokens + ta.output_tokens) if ta else 0
        tokens_b = (tb.input_tokens + tb.output_tokens) if tb else 0
        out[name] = {
            "tokens": tokens_b - tokens_a,
            "cost_usd": round((tb.cost_usd if tb else 0) - (ta.cost_usd if ta else 0), 8),
            "latency_ms": round((tb.latency_ms if tb else 0) - (ta.latency_ms if ta else 0), 3),
        }
    return out


def _counts(result: RunResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    events: list[ev.Event] = result.events
    for event in events:
        if isinstance(event, WATCHED):
            counts[event.kind] = counts.get(event.kind, 0) + 1
    return counts


def _side_json(result: RunResult, passed: bool | None, failures: list[str] | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "session_id": result.session_id,
        "status": result.status,
        "path": result.path,
        "output": result.output,
        "cost_usd": round(result.cost_usd, 8),
        "tokens": result.tokens,
        "latency_ms": round(result.latency_ms, 3),
        "per_agent": _per_agent(result),
        "events": _counts(result),
    }
    if passed is not None:
        data["passed"] = passed
        data["failures"] = failures or []
    return data


def input_report(
    name: str, request: str, a: RunResult, b: RunResult, checks: tuple[list[str], list[str]] | None = None
) -> dict[str, Any]:
    """The comparison of one input."""
    counts_a, counts_b = _counts(a), _counts(b)
    new_problems = {k: v - counts_a.get(k, 0) for k, v in counts_b.items() if v > counts_a.get(k, 0)}
    return {
        "name": name,
        "input": request,
        "a": _side_json(a, None if checks is None else not checks[0], None if checks is None else checks[0]),
        "b": _side_json(b, None if checks is None else not checks[1], None if checks is None else checks[1]),
        "path_changed": a.path != b.path,
        "output_changed": a.output != b.output,
        "output_diff": word_diff(a.output, b.output),
        "deltas": _deltas(a, b),
        "new_in_b": new_problems,
    }


def summarise(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over all inputs: cost, latency, pass rates, inputs whose path changed."""

    def total(side: str, key: str) -> float:
        return round(sum(float(i[side][key]) for i in inputs), 8)

    out: dict[str, Any] = {
        "inputs": len(inputs),
        "path_changed": [i["name"] for i in inputs if i["path_changed"]],
        "output_changed": sum(1 for i in inputs if i["output_changed"]),
        "a": {"cost_usd": total("a", "cost_usd"), "latency_ms": total("a", "latency_ms")},
        "b": {"cost_usd": total("b", "cost_usd"), "latency_ms": total("b", "latency_ms")},
    }
    if inputs and "passed" in inputs[0]["a"]:
        for side in ("a", "b"):
            passed = sum(1 for i in inputs if i[side]["passed"])
            out[side]["passed"] = passed
            out[side]["pass_rate"] = round(passed / len(inputs), 4)
    return out


@dataclass(frozen=True)
class Case:
    """One input both variants answer: a request, or a scenario of a scenario file."""

    name: str
    request: str
    scenario: Scenario | None = None
    """The scenario it comes from (its agent, context, faults and expectations), if any."""
    file: str | None = None
    """The scenario file it comes from (recorded on the session with the scenario's name)."""

    def run_in(self, session: DebugSession) -> Awaitable[RunResult]:
        """Run this input in ``session`` (a scenario with its faults, counted for that run alone)."""
        if self.scenario is not None:
            return session.run_scenario(self.scenario, file=self.file)
        return session.run(self.request)

    def checks(self, a: RunResult, b: RunResult) -> tuple[list[str], list[str]] | None:
        """Each side's unmet expectations, for a scenario (None for a plain request)."""
        if self.scenario is None:
            return None
        from playground.scenarios import check

        return check(self.scenario.expect, a), check(self.scenario.expect, b)


def load_cases(system: System, *, request: str | None = None, scenarios: str | None = None) -> list[Case]:
    """The inputs of a comparison: ``request``, or every scenario of the file ``scenarios``."""
    if scenarios is None:
        return [Case((request or "")[:60], request or "")]
    from playground.scenarios import load_scenarios

    suite = load_scenarios(scenarios)
    if suite.system.name != system.name:
        raise PlaygroundError(f"{scenarios!r} tests {suite.system.name!r}, not {system.name!r}")
    return [Case(sc.name, sc.input or "", sc, scenarios) for sc in suite.scenarios]


async def compare(
    store: Store,
    system: System,
    agent: str,
    a: str,
    b: str,
    *,
    request: str | None = None,
    scenarios: str | None = None,
    session_id: str | None = None,
    jobs: int = 4,
    realtime: bool = False,
    tracer: EventSink | None = None,
) -> dict[str, Any]:
    """Run both variants over the inputs and return (and store) the report; ``tracer``
    traces every session of it. Each run is a :class:`~playground.debug.DebugSession` no
    one attends (as the compare screen's runs are, with an operator)."""
    from playground.service import active_agents

    if agent not in system.spec.agents:
        raise PlaygroundError(f"{agent!r} is not an agent of {system.name!r}")
    if sum(x is not None for x in (request, scenarios, session_id)) != 1:
        raise PlaygroundError("give exactly one of --input, --scenarios or --session")
    # The file's versions are recorded first, so `active` names one even in a new store.
    active = await active_agents(store, system) if session_id is None else None
    side_a, side_b = await resolve_side(store, system, agent, a), await resolve_side(store, system, agent, b)
    limit = asyncio.Semaphore(max(1, jobs))
    inputs: list[dict[str, Any]] = []

    if session_id is not None:
        from playground.replay import Variant

        async def replayed(side: Side) -> RunResult:
            session = DebugSession(system, store, attended=False, tracer=tracer)
            variant = Variant(agent, side.version, side.model)
            return (await session.replay(session_id, variant=variant)).result

        ra, rb = await asyncio.gather(replayed(side_a), replayed(side_b))
        inputs.append(input_report(f"session {session_id}", _request(ra), ra, rb))
    else:
        assert active is not None
        base, versions = active
        if not realtime:
            from playground.scenarios import instant

            base = instant(base)
        agents_a = await agents_for(store, system, agent, side_a, base, versions)
        agents_b = await agents_for(store, system, agent, side_b, base, versions)
        cases = load_cases(system, request=request, scenarios=scenarios)

        async def one(side_agents: tuple[dict[str, AgentSpec], dict[str, str]], case: Case) -> RunResult:
            session = DebugSession(
                system,
                store,
                agents=side_agents[0],
                versions=side_agents[1],
                attended=False,
                tracer=tracer,
            )
            async with limit:
                return await case.run_in(session)

        results = await asyncio.gather(*(one(s, c) for c in cases for s in (agents_a, agents_b)))
        for index, case in enumerate(cases):
            ra, rb = results[2 * index], results[2 * index + 1]
            inputs.append(input_report(case.name, case.request, ra, rb, case.checks(ra, rb)))
    report = build_report(
        system.name,
        agent,
        side_a,
        side_b,
        {"input": request, "scenarios": scenarios, "session": session_id},
        inputs,
    )
    report["comparison_id"] = await store.save_comparison(system.name, agent, report)
    return report


def build_report(
    system: str, agent: str, side_a: Side, side_b: Side, source: dict[str, Any], inputs: list[dict[str, Any]]
) -> dict[str, Any]:
    """The stored comparison report (what ``compare --json`` prints) from per-input reports."""
    return {
        "system": system,
        "agent": agent,
        "a": {"label": side_a.label, "version": side_a.version, "model": side_a.model},
        "b": {"label": side_b.label, "version": side_b.version, "model": side_b.model},
        "source": source,
        "inputs": inputs,
        "summary": summarise(inputs),
    }


def _request(result: RunResult) -> str:
    """The request a run answered (its first event says)."""
    first = result.events[0]
    assert isinstance(first, ev.RunStarted)
    return first.input
