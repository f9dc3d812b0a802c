"""pytest integration: test your multi-agent system offline, deterministically.

Registered through the ``pytest11`` entry point, so installing the playground
makes it available. It gives you:

- the ``playground`` fixture: runs a system (or one agent in isolation) in a
  temporary store with the scripted model at zero latency and returns a
  :class:`PlaygroundResult`::

      async def test_billing_route(playground):
          result = await playground.run("agents/support_router.yaml", "I was charged twice")
          result.assert_path("router", "billing")
          assert "charged twice" in result.handoff_to("billing")["question"]
          result.assert_no_events("validation_failed", "loop_detected")

- collection of ``*.scenarios.yaml`` files as test items, one per scenario, when
  they lie where pytest looks (or are named on its command line).

This module imports nothing heavy at import time: pytest loads it in every
session of every project where the playground is installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playground.engine.events import Event
    from playground.engine.runtime import RunResult
    from playground.scenarios import Scenario, Suite


@dataclass
class PlaygroundResult:
    """A finished run, with the assertions people write most.

    Attributes:
        run: The engine's result (status, path, output, per-agent totals, events).
    """

    run: RunResult

    @property
    def status(self) -> str:
        return self.run.status

    @property
    def path(self) -> list[str]:
        return self.run.path

    @property
    def output(self) -> str:
        return self.run.output

    @property
    def events(self) -> list[Event]:
        return self.run.events

    @property
    def cost_usd(self) -> float:
        return self.run.cost_usd

    @property
    def error(self) -> dict[str, Any] | None:
        return self.run.error

    @property
    def outputs(self) -> dict[str, str]:
        """Each agent's last output."""
        from playground.engine.events import AgentFinished

        out: dict[str, str] = {}
        for event in self.events:
            if isinstance(event, AgentFinished) and event.outcome == "reply" and event.agent is not None:
                out[event.agent] = event.output
        return out

    @property
    def handoffs(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every handoff as ``(source, target, payload)``."""
        from playground.engine.events import HandoffDelivered

        return [(e.source, e.target, e.payload) for e in self.events if isinstance(e, HandoffDelivered)]

    def handoff_to(self, target: str) -> dict[str, Any]:
        """The payload of the last handoff to ``target``; fails the test if there was none."""
        payloads = [p for _, t, p in self.handoffs if t == target]
        if not payloads:
            pytest.fail(f"nothing was handed off to {target!r}; path was {' → '.join(self.path)}")
        return payloads[-1]

    def events_of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def assert_path(self, *agents: str) -> None:
        assert self.path == list(agents), f"path was {' → '.join(self.path)}, expected {' → '.join(agents)}"

    def assert_completed(self) -> None:
        assert self.status == "completed", f"run {self.status}: {self.error}"

    def assert_output(self, pattern: str) -> None:
        assert re.search(pattern, self.output), f"output {self.output!r} does not match /{pattern}/"

    def assert_no_events(self, *kinds: str) -> None:
        found = [e for e in self.events if e.kind in kinds]
        assert not found, f"unexpected events: {[(e.kind, e.agent) for e in found]}"


class Playground:
    """What the ``playground`` fixture gives a test: run systems in a temporary store."""

    def __init__(self, db: Path) -> None:
        self.db = db

    async def run(
        self,
        system: str | Path,
        request: str = "",
        *,
        agent: str | None = None,
        context: dict[str, Any] | None = None,
        models: dict[str, str] | None = None,
        realtime: bool = False,
    ) -> PlaygroundResult:
        """Run ``request`` through the system file (or ``agent`` alone on ``context``), offline.

        Args:
            models: Agent -> model string overrides.
            realtime: Keep the scripted model's declared latency.
        """
        from playground.scenarios import Runner
        from playground.service import run_session
        from playground.spec.load import load_system_ref
        from playground.store import Store

        loaded = load_system_ref(str(system))
        async with Store(self.db) as store:
            runner = Runner(store=store, models=models or {}, realtime=realtime)
            agents, versions = await runner.agents_for(loaded)
            result = await run_session(
                loaded, request, store=store, agents=agents, versions=versions, agent=agent, context=context
            )
        return PlaygroundResult(result)


@pytest.fixture
def playground(tmp_path: Path) -> Playground:
    """Runs systems offline in a temporary store (see :class:`Playground`)."""
    return Playground(tmp_path / "playground.db")


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name.endswith(".scenarios.yaml"):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """A scenario file, collected as one test item per scenario."""

    def collect(self) -> Iterator[pytest.Item]:
        from playground.scenarios import load_scenarios

        suite = load_scenarios(self.path)
        for scenario in suite.scenarios:
            yield ScenarioItem.from_parent(self, name=scenario.name, suite=suite, scenario=scenario)


class ScenarioItem(pytest.Item):
    """One scenario, run offline in a temporary store."""

    def __init__(self, *, suite: Suite, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.scenario = scenario

    def runtest(self) -> None:
        import asyncio
        import tempfile

        from playground.scenarios import Runner
        from playground.store import Store

        async def go() -> list[str]:
            with tempfile.TemporaryDirectory() as tmp:
                async with Store(Path(tmp) / "playground.db") as store:
                    return (await Runner(store=store).run(self.suite, self.scenario)).failures

        failures = asyncio.run(go())
        if failures:
            raise ScenarioFailed(failures)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return f"scenario {self.name!r} failed:\n" + "\n".join(f"  {f}" for f in excinfo.value.failures)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario: {self.name}"


class ScenarioFailed(Exception):
    """A scenario's expectations were not met."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures
