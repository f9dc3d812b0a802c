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
  they lie where pytest looks (or are named on its command line); turn it off with
  ``playground_scenarios = false`` in the ini file.

Every run is recorded: in ``--playground-db PATH`` when given, else in a store under
pytest's temporary directory (kept as pytest keeps ``tmp_path``, the last three runs by
default). A failure names the session and its store, so it can be opened in the TUI,
forked or replayed (``playground sessions show ID --db PATH``); JUnit XML reports carry
each test's ``playground_session_id`` and ``playground_cost_usd`` as properties.

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


@dataclass(repr=False)
class PlaygroundResult:
    """A finished run, with the assertions people write most.

    Attributes:
        run: The engine's result (status, path, output, per-agent totals, events).
        db: The store the run is recorded in.
    """

    run: RunResult
    db: Path | None = None

    def __repr__(self) -> str:
        return (
            f"<PlaygroundResult session {self.run.session_id} {self.status} "
            f"path {' → '.join(self.path) or '-'} ${self.cost_usd:.6f}>"
        )

    @property
    def session_id(self) -> str:
        return self.run.session_id

    @property
    def where(self) -> str:
        """``session ID in PATH``: where to find the run again (for failure messages)."""
        return f"session {self.run.session_id}" + (f" in {self.db}" if self.db else "")

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
        __tracebackhide__ = True
        payloads = [p for _, t, p in self.handoffs if t == target]
        if not payloads:
            pytest.fail(
                f"nothing was handed off to {target!r}; path was {' → '.join(self.path)} ({self.where})"
            )
        return payloads[-1]

    def events_of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def assert_path(self, *agents: str) -> None:
        __tracebackhide__ = True
        if self.path != list(agents):
            pytest.fail(f"path was {' → '.join(self.path)}, expected {' → '.join(agents)} ({self.where})")

    def assert_completed(self) -> None:
        __tracebackhide__ = True
        if self.status != "completed":
            pytest.fail(f"run {self.status}: {self.error} ({self.where})")

    def assert_output(self, pattern: str) -> None:
        __tracebackhide__ = True
        if not re.search(pattern, self.output):
            pytest.fail(f"output {self.output!r} does not match /{pattern}/ ({self.where})")

    def assert_no_events(self, *kinds: str) -> None:
        __tracebackhide__ = True
        found = [(e.kind, e.agent) for e in self.events if e.kind in kinds]
        if found:
            pytest.fail(f"unexpected events: {found} ({self.where})")


class Playground:
    """What the ``playground`` fixture gives a test: run systems in a temporary store."""

    def __init__(self, db: Path, node: pytest.Item | None = None) -> None:
        self.db = db
        self.node = node
        """The test: each run's session id and cost go to its JUnit XML properties."""

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
        if self.node is not None:
            _record(self.node, result)
        return PlaygroundResult(result, self.db)


def _record(node: pytest.Item, result: RunResult) -> None:
    node.user_properties.append(("playground_session_id", result.session_id))
    node.user_properties.append(("playground_cost_usd", f"{result.cost_usd:.6f}"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("playground", "Agent Playground")
    group.addoption(
        "--playground-db",
        metavar="PATH",
        help="record every run of the playground fixture and of scenario files in this store "
        "(default: a store under pytest's temporary directory, kept as tmp_path is)",
    )
    parser.addini(
        "playground_scenarios",
        type="bool",
        default=True,
        help="collect *.scenarios.yaml files as tests (default: true)",
    )


def _kept_dir(config: pytest.Config) -> Path:
    """A new directory under pytest's base temporary directory (so pytest keeps it as it keeps
    ``tmp_path``), or under the system's when pytest does not offer its factory."""
    factory = getattr(config, "_tmp_path_factory", None)  # what the tmp_path fixture uses
    if isinstance(factory, pytest.TempPathFactory):
        return factory.mktemp("playground", numbered=True)
    import tempfile

    return Path(tempfile.mkdtemp(prefix="playground-"))


def _store_for(config: pytest.Config, fallback: Path) -> Path:
    chosen = config.getoption("--playground-db", default=None)
    return Path(chosen).resolve() if chosen else fallback


@pytest.fixture
def playground(request: pytest.FixtureRequest, tmp_path: Path) -> Playground:
    """Runs systems offline in a temporary store (see :class:`Playground`)."""
    node = request.node if isinstance(request.node, pytest.Item) else None
    return Playground(_store_for(request.config, tmp_path / "playground.db"), node)


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name.endswith(".scenarios.yaml") and parent.config.getini("playground_scenarios"):
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

        from playground.scenarios import Runner, ScenarioResult
        from playground.store import Store

        db = _store_for(self.config, _kept_dir(self.config) / "playground.db")

        async def go() -> ScenarioResult:
            async with Store(db) as store:
                return await Runner(store=store).run(self.suite, self.scenario)

        outcome = asyncio.run(go())
        _record(self, outcome.result)
        if outcome.failures:
            raise ScenarioFailed(outcome.failures, outcome.result.session_id, db)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        failed = excinfo.value
        if isinstance(failed, ScenarioFailed):
            return (
                f"scenario {self.name!r} failed (session {failed.session_id} in {failed.db}):\n"
                + "\n".join(f"  {f}" for f in failed.failures)
                + f"\n  see it: playground sessions show {failed.session_id} --db {failed.db}"
            )
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario: {self.name}"


class ScenarioFailed(Exception):
    """A scenario's expectations were not met; its session is kept in ``db``."""

    def __init__(self, failures: list[str], session_id: str = "", db: Path | None = None) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures
        self.session_id = session_id
        self.db = db
