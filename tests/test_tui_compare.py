"""The compare screen (``x``): two variants of one agent run side by side, live, then a summary.

The support router runs with the scripted model at zero latency; tests wait on the
comparison worker or on the sides' debug sessions, never on the wall clock.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Select

from playground.engine.clock import Clock
from playground.spec import System, load_system
from playground.spec.identity import canonical_spec, version_id
from playground.spec.models import AgentSpec
from playground.tui.app import PlaygroundApp
from playground.tui.screens.compare import CompareScreen
from playground.tui.screens.compare_setup import CompareSetupScreen
from playground.tui.widgets.agent_pane import AgentPane
from tests.helpers import fixed_clock
from tests.test_tui import AGENTS, REQUEST, SIZE, make_app, router_copy, run_screen, screen_text


@pytest.fixture
def system(tmp_path: Path) -> System:
    return load_system(router_copy(tmp_path))


def misrouting_router(system: System) -> AgentSpec:
    """The router with a script that sends everything to general."""
    router = system.spec.agents["router"]
    script = [step for step in router.script if step.handoff == "general"]
    return router.model_copy(update={"script": script})


async def record_variant(app: PlaygroundApp, system: System, spec: AgentSpec) -> str:
    """Store ``spec`` as a new, inactive version; returns its id."""
    await app.store.record_versions(
        system.name, {spec.name: canonical_spec(spec)}, source="operator", note="misroutes", activate=False
    )
    return version_id(spec)


async def open_setup(pilot: Pilot[Any], agent: str) -> CompareSetupScreen:
    """Focus ``agent``'s pane on the run screen, press x: the setup dialog opens on it."""
    screen = await run_screen(pilot)
    screen.query_one("#request", Input).value = REQUEST
    screen.query_one(f"#pane-{agent}", AgentPane).focus()
    await pilot.press("x")
    await pilot.pause()
    setup = pilot.app.screen
    assert isinstance(setup, CompareSetupScreen)
    assert setup.query_one("#compare-agent", Select).value == agent
    return setup


async def start(pilot: Pilot[Any], setup: CompareSetupScreen, a: str, b: str, **kw: Any) -> CompareScreen:
    """Type A and B into the dialog and run it."""
    setup.query_one("#compare-a-typed", Input).value = a
    setup.query_one("#compare-b-typed", Input).value = b
    for name, value in kw.items():
        setup.query_one(f"#compare-{name}", Input).value = value
    await pilot.press("ctrl+r")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, CompareScreen)
    return screen


async def finish(pilot: Pilot[Any]) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_compare_two_models_of_billing(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        setup = await open_setup(pilot, "billing")
        assert setup.query_one("#compare-request", Input).value == REQUEST
        screen = await start(pilot, setup, "scripted", "scripted/b")
        await finish(pilot)
        a, b = screen.sides
        assert [a.view.status, b.view.status] == ["completed", "completed"]
        assert a.view.agents["billing"].model == "scripted"
        assert b.view.agents["billing"].model == "scripted/b"
        sessions = [a.results[0].session_id, b.results[0].session_id]
        stored = [await app.store.session(s) for s in sessions]
        assert [s.status for s in stored] == ["completed", "completed"]
        assert stored[0].versions["billing"] != stored[1].versions["billing"]
        (report,) = screen.reports
        assert not report["path_changed"] and not report["output_changed"]
        stored_reports = await app.store.comparisons()  # listed by `playground comparisons`
        assert [(c["agent"], c["a"], c["b"]) for c in stored_reports] == [
            ("billing", "scripted", "scripted/b")
        ]
        text = screen_text(app)
    assert "A scripted" in text and "B scripted/b" in text
    assert "same path" in text and "outputs identical" in text
    assert sessions[0][:12] in text and sessions[1][:12] in text


async def test_compare_over_a_recorded_session_replays_the_unchanged_agents(
    system: System, tmp_path: Path
) -> None:
    from playground.service import run_session

    app = make_app(system, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        recorded = await run_session(system, REQUEST, store=app.store)
        setup = await open_setup(pilot, "billing")
        screen = await start(pilot, setup, "scripted/a", "scripted/b", session=recorded.session_id[:8])
        await finish(pilot)
        a, b = screen.sides
        assert [a.view.status, b.view.status] == ["completed", "completed"]
        for run in (a, b):
            events = await app.store.events(run.results[0].session_id)
            responded = [(e.agent, e.replayed) for e in events if e.kind == "model_responded"]
            assert responded == [("router", True), ("billing", False), ("billing", False)]
            assert (
                await app.store.session(run.results[0].session_id)
            ).parent_session_id == recorded.session_id
        (stored,) = await app.store.comparisons()
        assert (await app.store.comparison(stored["comparison_id"]))["source"][
            "session"
        ] == recorded.session_id[:8]


async def test_compare_two_versions_shows_where_they_differ(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        setup = await open_setup(pilot, "router")
        other = await record_variant(app, system, misrouting_router(system))
        setup._versions = await app.store.versions(system.name)
        setup._fill("router")
        await pilot.pause()
        # The dialog offers the agent's versions: B defaults to the one that is not active.
        assert setup.query_one("#compare-b-choice", Select).value == other
        await pilot.press("ctrl+r")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await finish(pilot)
        a, b = screen.sides
        assert a.results[0].path == ["router", "billing"]
        assert b.results[0].path == ["router", "general"]
        (report,) = screen.reports
        assert report["path_changed"] and report["output_changed"]
        assert any(p["op"] == "insert" for p in report["output_diff"])
        text = screen_text(app)
    assert "path differs from B" in text and "path differs from A" in text
    assert "path changed" in text


async def test_compare_a_scenario_file_agrees_with_the_cli(system: System, tmp_path: Path) -> None:
    """The compare screen and `playground compare` (:func:`playground.compare.compare`) over
    one scenario file: the same verdict, path and watched events for every input and side.
    The file's faults name no model, so B (billing on "scripted/b") meets them as A does."""
    from playground.compare import compare

    shutil.copy(AGENTS / "support_router.scenarios.yaml", tmp_path / "support_router.scenarios.yaml")
    scenarios = str(tmp_path / "support_router.scenarios.yaml")
    app = make_app(system, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        setup = await open_setup(pilot, "billing")
        screen = await start(pilot, setup, "scripted", "scripted/b", scenarios=scenarios)
        await finish(pilot)
        cli = await compare(app.store, system, "billing", "scripted", "scripted/b", scenarios=scenarios)
        text = screen_text(app)

    def verdicts(inputs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (i["name"], side, i[side]["passed"], i[side]["status"], i[side]["path"], i[side]["events"])
            for i in inputs
            for side in ("a", "b")
        ]

    count = len(screen.cases)
    assert len(screen.reports) == count > 3
    assert verdicts(screen.reports) == verdicts(cli["inputs"])
    assert cli["summary"]["a"]["passed"] == cli["summary"]["b"]["passed"] == count
    assert sum(1 for i in cli["inputs"] if i["b"]["events"]) >= 3  # B met the file's faults
    assert f"{count} inputs" in text
    assert f"A passed {count}/{count}" in text and f"B passed {count}/{count}" in text


async def test_lockstep_steps_both_runs(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        setup = await open_setup(pilot, "billing")
        setup.query_one("#compare-lockstep", Checkbox).value = True
        screen = await start(pilot, setup, "scripted", "scripted/b")
        steps = 0
        while True:
            live = [r.session for r in screen.sides if r.session is not None and not r.session.done]
            if not live:
                break
            gates = [await session.wait_paused() for session in live]
            if not all(gates):
                continue  # a side ended: the next turn steps what is still held
            await pilot.pause()
            assert all(r.view.status == "paused" for r in screen.sides if r.session in live)
            await pilot.press("s")
            steps += 1
            if steps > 50:
                pytest.fail("the runs never finished")
        await finish(pilot)
        a, b = screen.sides
        assert a.view.status == b.view.status == "completed"
        events = [await app.store.events(r.results[0].session_id) for r in screen.sides]
    acted = [sum(1 for e in evs if e.kind == "operator_acted") for evs in events]
    assert acted[0] == acted[1] == steps


async def test_escape_goes_back_to_the_run_screen(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        setup = await open_setup(pilot, "billing")
        await pilot.press("escape")
        await pilot.pause()
        screen = await run_screen(pilot)
        screen.query_one("#pane-billing", AgentPane).focus()
        setup = await open_setup(pilot, "billing")
        await start(pilot, setup, "scripted", "scripted/b")
        await finish(pilot)
        await pilot.press("escape")
        await run_screen(pilot)


# -- snapshot (plain def: snap_compare runs its own loop) ------------------------------------


@pytest.fixture
def clock() -> Clock:
    """Session ids from a counter, and a clock that stands still.

    Both runs interleave with the store's writer thread, so a ticking clock would give
    latencies that vary from run to run.
    """
    counter = itertools.count(1)
    return fixed_clock(ids=lambda n: f"{next(counter):0{2 * n}x}")


def test_snapshot_compare_finished(snap_compare: Any, system: System, tmp_path: Path, clock: Clock) -> None:
    app = make_app(system, tmp_path, clock=clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        setup = await open_setup(pilot, "router")
        other = await record_variant(app, system, misrouting_router(system))
        await start(pilot, setup, "active", other[:8])
        await finish(pilot)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


async def test_compare_a_scenario_file_injects_its_faults_into_both_sides(
    system: System, tmp_path: Path
) -> None:
    """Issue #14 item 1: A = the router's active version, B = the router on scripted/alt, over
    the scenario file. Each side's run of a scenario gets the scenario's faults (its own fault
    counts), so both pass every scenario, as `playground compare` reports."""
    shutil.copy(AGENTS / "support_router.scenarios.yaml", tmp_path / "support_router.scenarios.yaml")
    app = make_app(system, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        setup = await open_setup(pilot, "router")
        scenarios = str(tmp_path / "support_router.scenarios.yaml")
        screen = await start(pilot, setup, "active", "scripted/alt", scenarios=scenarios)
        await finish(pilot)
        count = len(screen.cases)
        assert len(screen.reports) == count > 3
        faulted = [r for r in screen.reports if "rate limit" in r["name"] or "malformed" in r["name"]]
        assert len(faulted) == 2
        for report in faulted:  # B's session met the fault too, not only A's
            assert report["a"]["events"] == report["b"]["events"] != {}
        assert [r["name"] for r in screen.reports if not (r["a"]["passed"] and r["b"]["passed"])] == []
        text = screen_text(app)
    assert f"A passed {count}/{count}" in text and f"B passed {count}/{count}" in text


async def test_pause_holds_both_sides_until_continue(system: System, tmp_path: Path) -> None:
    """p holds both sides at their next gate; s steps both; an input that ends while the
    operator steps leaves the next input's runs held at their first gate too (they do not run
    off to the end); c runs on. Both sides still meet the file's faults."""
    shutil.copy(AGENTS / "support_router.scenarios.yaml", tmp_path / "support_router.scenarios.yaml")
    app = make_app(system, tmp_path)

    async def held(screen: CompareScreen) -> list[Any]:
        """Wait until every side still running is held at a gate; their gates."""
        for _ in range(200):
            live = [r.session for r in screen.sides if r.session is not None and not r.session.done]
            if live and all(s.pending is not None for s in live):
                await pilot.pause()
                return [s.pending for s in live]
            await asyncio.gather(*(s.wait_paused() for s in live))
            await pilot.pause()
        pytest.fail("the runs were never held")

    async with app.run_test(size=(160, 45)) as pilot:
        setup = await open_setup(pilot, "router")
        scenarios = str(tmp_path / "support_router.scenarios.yaml")
        screen = await start(pilot, setup, "active", "scripted/alt", scenarios=scenarios)
        await pilot.press("p")
        await held(screen)
        first = screen.case_index
        assert first < len(screen.cases) - 1
        assert "paused" in [r.view.status for r in screen.sides]
        while screen.case_index == first:
            await pilot.press("s")
            gates = await held(screen)
        # The next input's runs, held at their first gate: they did not run off to the end.
        assert [(g.kind, g.step) for g in gates] == [("model_call", 1)] * 2
        await pilot.press("c")
        await finish(pilot)
        count = len(screen.cases)
        text = screen_text(app)
    assert len(screen.reports) == count
    assert f"A passed {count}/{count}" in text and f"B passed {count}/{count}" in text


async def test_a_side_that_cannot_run_aborts_the_other_instead_of_leaving_it_held(
    system: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Side B's run raises (it could not start) while side A is held at its first gate in
    lockstep: A is aborted, recorded as such, and not left held with nobody to step it."""
    from playground.compare import Case
    from playground.debug import DebugSession
    from playground.errors import PlaygroundError

    sessions: list[DebugSession] = []
    run_in = Case.run_in

    async def b_cannot_start(case: Case, session: DebugSession) -> Any:
        sessions.append(session)
        if len(sessions) == 1:
            return await run_in(case, session)
        await asyncio.wait_for(sessions[0].wait_paused(), 10)  # A is held now
        raise PlaygroundError("side B could not start")

    monkeypatch.setattr(Case, "run_in", b_cannot_start)
    app = make_app(system, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        setup = await open_setup(pilot, "billing")
        setup.query_one("#compare-lockstep", Checkbox).value = True
        await start(pilot, setup, "scripted", "scripted/b")
        a = sessions[0]
        await asyncio.wait_for(a.wait_paused(), 10)
        for _ in range(100):
            if a.done:
                break
            await pilot.pause(0.02)
        assert a.done and a.pending is None
        result = await a.wait_finished()
        assert result.status == "aborted"
        await app.store.flush()
        assert (await app.store.session(result.session_id)).status == "aborted"
