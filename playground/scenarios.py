"""Scenario files: test a multi-agent system offline, deterministic and fast.

A scenario file (a contract, like the system file) names a system and lists
scenarios: a request (or one agent in isolation, given a handoff context), the
faults to inject, and what to expect: status, handling path, what each handoff
delivered, the output, hop and cost bounds, and events that must or must not
happen. Every scenario run is a recorded session, so a failure can be opened,
forked or replayed like any other.

Faults are injected by wrapping the agent's model, so they work the same for
the scripted model and for real providers: a provider error (``fail``) or a
malformed tool call (``malformed_tool_call``), ``times`` times.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from playground.engine.events import (
    EVENT_TYPES,
    CheckpointReviewed,
    Event,
    HandoffDelivered,
    LoopDetected,
    ToolCalled,
)
from playground.engine.runtime import EventSink, LLMFactory, RunResult, default_llm_factory
from playground.errors import SpecError
from playground.llm.base import LLM, ModelRequest, ModelResponse, OnDelta, ToolCall
from playground.llm.scripted import FAILURES
from playground.spec.identity import canonical_spec, version_id
from playground.spec.load import System, explain, load_system_ref, parse_yaml, read_spec_file
from playground.spec.models import AgentSpec
from playground.spec.python import ref_relative_to

EVENT_KINDS = tuple(k for k in EVENT_TYPES if k != "token_delta")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expect(_Strict):
    """What a scenario expects. Every field is optional; each one given is checked."""

    status: Literal["completed", "failed", "aborted"] | None = None
    path: list[str] | None = None
    """The exact handling path."""
    path_contains: list[str] | None = None
    """These agents appear in the path, in this order (others may come between)."""
    handoff: dict[str, dict[str, Any]] | None = None
    """Target agent -> fields its handoff carried (strings: substring match, case-insensitive)."""
    handoff_excludes: dict[str, list[str]] | None = None
    """Target agent -> text its handoffs must not carry (in any field, case-insensitive)."""
    output_contains: list[str] | None = None
    """Substrings of the output (case-insensitive)."""
    output_matches: str | None = None
    """A regex searched in the output."""
    max_hops: int | None = Field(None, ge=0)
    """Most handoffs and delegations."""
    max_cost_usd: float | None = Field(None, ge=0)
    events: list[str] | None = None
    """Event kinds that must happen (e.g. retry_scheduled, fallback_used, escalated)."""
    no_events: list[str] | None = None
    """Event kinds that must not happen."""
    error_origin: str | None = None
    """The failed run's origin agent."""
    loop: Literal["cycle", "repeat", "no_progress", "hops"] | None = None
    """A loop of this kind was detected (``loop_detected``)."""
    checkpoints: list[Literal["accept", "reject", "limit"]] | None = None
    """The verdicts of the run's checkpoints, in order."""
    error_manifested: str | None = None

    @field_validator("events", "no_events")
    @classmethod
    def _known_kinds(cls, kinds: list[str] | None) -> list[str] | None:
        for kind in kinds or []:
            if kind not in EVENT_KINDS:
                import difflib

                close = difflib.get_close_matches(kind, EVENT_KINDS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{kind!r} is not an event kind{hint}")
        return kinds

    @field_validator("output_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from None
        return value


class Fault(_Strict):
    """A fault injected into one agent's model calls."""

    agent: str
    fail: Literal["provider_error", "rate_limited", "timeout", "request_error"] | None = None
    """Raise this provider error instead of calling the model."""
    malformed_tool_call: str | None = None
    """Answer with a call of this tool whose arguments are not valid JSON."""
    times: int = Field(1, ge=1)
    """How many calls the fault hits before the model answers normally."""
    model: str | None = None
    """Hit only calls made as this model string (so a fallback can succeed)."""


class Scenario(_Strict):
    """One scenario of a scenario file."""

    name: str
    input: str | None = None
    """The request (required unless ``agent`` and ``context`` are given)."""
    agent: str | None = None
    """Run only this agent, in isolation."""
    context: dict[str, Any] | None = None
    """With ``agent``: the handoff context it receives."""
    faults: list[Fault] = []
    expect: Expect = Expect()


class ScenarioFile(_Strict):
    """A scenario file."""

    system: str
    """The system file, relative to this file (or ``file.py:NAME``, ``package.module:NAME``)."""
    scenarios: list[Scenario]


@dataclass
class Suite:
    """A loaded scenario file and its system."""

    path: str
    system: System
    scenarios: list[Scenario]


def load_scenarios(path: str | Path) -> Suite:
    """Load a scenario file and its system; raises :class:`SpecError` naming file, line and field."""
    shown = str(path)
    data, lines = parse_yaml(read_spec_file(Path(path), shown), shown)
    try:
        spec = ScenarioFile.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, shown, lines, ScenarioFile) from None
    system = load_system_ref(ref_relative_to(spec.system, Path(path).parent))
    agents = system.spec.agents
    first: dict[str, int] = {}  # scenario name -> index of its first use
    for i, scenario in enumerate(spec.scenarios):
        loc: tuple[str | int, ...] = ("scenarios", i)

        def fail(sub: tuple[str | int, ...], problem: str, loc: tuple[str | int, ...] = loc) -> None:
            full = (*loc, *sub)
            line = next((lines[full[:n]] for n in range(len(full), 0, -1) if full[:n] in lines), None)
            raise SpecError(shown, line, ".".join(str(p) for p in full), problem)

        if scenario.name in first:
            # Names are test ids (pytest, playground test --json): two of one name are one id.
            line = lines.get(("scenarios", first[scenario.name], "name"))
            fail(("name",), f"{scenario.name!r} is the name of the scenario at line {line}: names are unique")
        first[scenario.name] = i
        if scenario.input is None and (scenario.agent is None or scenario.context is None):
            fail((), "a scenario needs 'input', or 'agent' with 'context'")
        if scenario.agent is not None and scenario.agent not in agents:
            fail(("agent",), f"{scenario.agent!r} is not an agent of {system.name!r}")
        for j, fault in enumerate(scenario.faults):
            if fault.agent not in agents:
                fail(("faults", j, "agent"), f"{fault.agent!r} is not an agent of {system.name!r}")
            if (fault.fail is None) == (fault.malformed_tool_call is None):
                fail(("faults", j), "a fault is one of 'fail' or 'malformed_tool_call'")
        for key in ("path", "path_contains"):
            for name in getattr(scenario.expect, key) or []:
                if name not in agents:
                    fail(("expect", key), f"{name!r} is not an agent of {system.name!r}")
    return Suite(shown, system, spec.scenarios)


@dataclass
class _FaultyLLM:
    inner: LLM
    faults: list[Fault]
    hits: dict[int, int]

    async def complete(self, request: ModelRequest, on_delta: OnDelta | None = None) -> ModelResponse:
        for fault in self.faults:
            key = id(fault)
            if self.hits.get(key, 0) >= fault.times or (fault.model and fault.model != request.model):
                continue
            self.hits[key] = self.hits.get(key, 0) + 1
            if fault.fail is not None:
                raise FAILURES[fault.fail](f"injected {fault.fail} (scenario fault)", model=request.model)
            assert fault.malformed_tool_call is not None
            return ModelResponse(
                tool_calls=[ToolCall(f"fault_{key}", fault.malformed_tool_call, '{"broken": ')],
                model=request.model,
            )
        return await self.inner.complete(request, on_delta)


def faulty_factory(faults: list[Fault], base: LLMFactory = default_llm_factory) -> LLMFactory:
    """Wrap each agent's model so the scenario's faults hit it first."""
    hits: dict[int, int] = {}

    def factory(agent: AgentSpec, model: str) -> LLM:
        mine = [f for f in faults if f.agent == agent.name]
        inner = base(agent, model)
        return _FaultyLLM(inner, mine, hits) if mine else inner

    return factory


def check(expect: Expect, result: RunResult) -> list[str]:
    """Why ``result`` does not meet ``expect``: one readable line per failed expectation."""
    failures: list[str] = []
    events: list[Event] = result.events
    if expect.status is not None and result.status != expect.status:
        why = f" ({result.error['type']}: {result.error['message']})" if result.error else ""
        failures.append(f"status: expected {expect.status}, got {result.status}{why}")
    if expect.path is not None and result.path != expect.path:
        failures.append(f"path: expected {' → '.join(expect.path)}, got {' → '.join(result.path) or '-'}")
    if expect.path_contains is not None:
        remaining = iter(result.path)
        if not all(any(agent == seen for seen in remaining) for agent in expect.path_contains):
            failures.append(
                f"path: expected to contain {' → '.join(expect.path_contains)} in order, "
                f"got {' → '.join(result.path) or '-'}"
            )
    for target, fields in (expect.handoff or {}).items():
        delivered = [e.payload for e in events if isinstance(e, HandoffDelivered) and e.target == target]
        if not delivered:
            failures.append(f"handoff: nothing was handed to {target!r}")
            continue
        payload = delivered[-1]
        for key, wanted in fields.items():
            if key not in payload:
                failures.append(f"handoff to {target}: field {key!r} missing (got {sorted(payload)})")
            elif isinstance(wanted, str) and isinstance(payload[key], str):
                if wanted.lower() not in payload[key].lower():
                    failures.append(
                        f"handoff to {target}: {key} = {payload[key]!r} does not contain {wanted!r}"
                    )
            elif payload[key] != wanted:
                failures.append(f"handoff to {target}: {key} = {payload[key]!r}, expected {wanted!r}")
    for target, texts in (expect.handoff_excludes or {}).items():
        carried = [e.payload for e in events if isinstance(e, HandoffDelivered) and e.target == target]
        if not carried:
            failures.append(f"handoff: nothing was handed to {target!r}")
        dumped = json.dumps(carried, ensure_ascii=False).lower()
        for text in texts:
            if text.lower() in dumped:
                failures.append(f"handoff to {target} carried {text!r}")
    output = result.output
    for text in expect.output_contains or []:
        if text.lower() not in output.lower():
            failures.append(f"output does not contain {text!r}: {output[:120]!r}")
    if expect.output_matches is not None and not re.search(expect.output_matches, output):
        failures.append(f"output does not match /{expect.output_matches}/: {output[:120]!r}")
    hops = sum(1 for e in events if isinstance(e, HandoffDelivered)) + sum(
        1 for e in events if isinstance(e, ToolCalled) and e.tool in result.per_agent
    )
    if expect.max_hops is not None and hops > expect.max_hops:
        failures.append(f"hops: {hops} > max_hops {expect.max_hops}")
    if expect.max_cost_usd is not None and result.cost_usd > expect.max_cost_usd:
        failures.append(f"cost: ${result.cost_usd:.6f} > max_cost_usd ${expect.max_cost_usd}")
    kinds = [e.kind for e in events]
    for kind in expect.events or []:
        if kind not in kinds:
            failures.append(f"expected a {kind} event; there was none")
    for kind in expect.no_events or []:
        if kind in kinds:
            event = events[kinds.index(kind)]
            detail = (
                getattr(event, "errors", None) or getattr(event, "reason", None) or getattr(event, "tool", "")
            )
            failures.append(f"unexpected {kind} event (seq {event.seq}, {event.agent}): {detail}")
    if expect.checkpoints is not None:
        verdicts = [e.verdict for e in events if isinstance(e, CheckpointReviewed)]
        if verdicts != expect.checkpoints:
            failures.append(f"checkpoints: expected {expect.checkpoints}, got {verdicts}")
    if expect.loop is not None:
        found = [e.loop for e in events if isinstance(e, LoopDetected)]
        if expect.loop not in found:
            failures.append(f"expected a {expect.loop} loop; found {', '.join(map(str, found)) or 'none'}")
    error = result.error or {}
    if expect.error_origin is not None and error.get("origin") != expect.error_origin:
        failures.append(f"error origin: expected {expect.error_origin}, got {error.get('origin')}")
    if expect.error_manifested is not None and error.get("manifested") != expect.error_manifested:
        failures.append(
            f"error manifested: expected {expect.error_manifested}, got {error.get('manifested')}"
        )
    return failures


@dataclass
class ScenarioResult:
    """The outcome of one scenario."""

    file: str
    name: str
    passed: bool
    failures: list[str]
    result: RunResult

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "name": self.name,
            "status": "passed" if self.passed else "failed",
            "failures": self.failures,
            "path": self.result.path,
            "cost_usd": round(self.result.cost_usd, 8),
            "latency_ms": round(self.result.latency_ms, 3),
            "session_id": self.result.session_id,
        }


def instant(agents: dict[str, AgentSpec]) -> dict[str, AgentSpec]:
    """The same agents with the scripted model's latency and streaming rate at zero."""
    return {
        name: agent.model_copy(update={"latency_ms": 0.0, "tokens_per_s": 0.0})
        if agent.latency_ms or agent.tokens_per_s
        else agent
        for name, agent in agents.items()
    }


@dataclass
class Runner:
    """Runs scenarios, each as a recorded session.

    Attributes:
        store: Where sessions are recorded (None: not recorded).
        models: Agent -> model string overrides (``--model AGENT=MODEL``).
        realtime: Keep the scripted model's declared latency (off: instant).
        base: The LLM factory under the fault wrapper.
        keep_events: Keep each run's events in its result (``result.events``). Off, they are
            dropped once the expectations are checked (the store has them): a caller holding
            every result, as ``playground test`` does for its report, then does not hold every
            event of every run, which the garbage collector walks again and again while later
            scenarios run (+15 µs per hop after a few hundred runs, bench/bench_test_path.py).
    """

    store: Any = None
    models: dict[str, str] = field(default_factory=dict)
    realtime: bool = False
    base: LLMFactory = default_llm_factory
    keep_events: bool = True
    tracer: EventSink | None = None
    """Traces every scenario's session (``playground test`` with ``--otlp`` or ``OTEL_*``)."""

    async def agents_for(self, system: System) -> tuple[dict[str, AgentSpec], dict[str, str] | None]:
        from playground.service import active_agents

        versions = None
        if self.store is not None:
            agents, versions = await active_agents(self.store, system)
        else:
            agents = dict(system.spec.agents)
        if not self.realtime:
            agents = instant(agents)
        for name, model in self.models.items():
            if name not in agents:
                raise SpecError("--model", None, "", f"{name!r} is not an agent of {system.name!r}")
            changed = agents[name].model_copy(update={"model": model})
            agents = {**agents, name: changed}
            if versions is not None:
                # The session must name the version that really ran: record it, move nothing.
                await self.store.record_versions(
                    system.name,
                    {name: canonical_spec(changed)},
                    source="operator",
                    note=f"model {model} for scenarios",
                    activate=False,
                )
                versions = {**versions, name: version_id(changed)}
        return agents, versions

    async def run(self, suite: Suite, scenario: Scenario) -> ScenarioResult:
        from playground.service import make_way, run_session

        agents, versions = await self.agents_for(suite.system)
        result = await run_session(
            suite.system,
            scenario.input if scenario.input is not None else "",
            store=self.store,
            llm_factory=faulty_factory(scenario.faults, self.base) if scenario.faults else self.base,
            agents=agents,
            versions=versions,
            agent=scenario.agent,
            context=scenario.context,
            make_way_after=False,
            tracer=self.tracer,
            scenario=scenario.name,
            scenario_file=suite.path,
        )
        # Checked before other runs get a turn (make_way), while the events are fresh and only
        # one run's are alive: measured ~4 µs per hop less than checking after other runs went.
        failures = check(scenario.expect, result)
        if not self.keep_events:
            result.events = []
        if self.store is not None:
            await make_way()
        return ScenarioResult(suite.path, scenario.name, not failures, failures, result)

    async def run_all(self, suites: list[Suite], jobs: int = 4) -> list[ScenarioResult]:
        """Every scenario of every suite, ``jobs`` at a time, in file order."""
        limit = asyncio.Semaphore(max(1, jobs))

        async def one(suite: Suite, scenario: Scenario) -> ScenarioResult:
            async with limit:
                return await self.run(suite, scenario)

        return list(await asyncio.gather(*(one(s, sc) for s in suites for sc in s.scenarios)))


def summary_json(results: list[ScenarioResult], started: float | None = None) -> dict[str, Any]:
    """``playground test --json``: ``{passed, failed, results: [...]}``."""
    out: dict[str, Any] = {
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
        "results": [r.as_json() for r in results],
    }
    if started is not None:
        out["elapsed_s"] = round(time.perf_counter() - started, 3)
    return out
