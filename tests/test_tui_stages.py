"""Stage transitions and delegations as steps an operator can work with (issue 14 item 6,
its loose ends): a fork starts at a stage transition's own step, retry at a stage's gate
says what to do instead, a held delegation is a pending edge of the path with its payload,
and an operator's line names a stage output or a delegation for what it is.

The scripted model at zero latency; tests wait on the run worker or the controller.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import TextArea

from playground.engine import events as ev
from playground.engine.controller import Gate
from playground.errors import PlaygroundError
from playground.replay import fork_session
from playground.service import run_session
from playground.spec import System, load_system
from playground.store.store import Store
from playground.tui.screens.edit_payload import EditPayloadScreen
from playground.tui.screens.fork import BranchScreen, ForkPoint
from playground.tui.screens.run import RunScreen
from playground.tui.state import RunView
from playground.tui.widgets.inspector import Inspector
from playground.tui.widgets.timeline import Timeline
from tests.helpers import example_copy, of_kind
from tests.test_tui import finish, make_app, pane_text, run_screen, screen_text, type_request
from tests.test_tui_pipeline import NOTE, hold_at_stage

SIZE = (160, 45)


def example(tmp_path: Path, name: str) -> System:
    return load_system(example_copy(tmp_path, name))


def stage_step(events: list[ev.Event], agent: str) -> int:
    """The step of the stage transition that delivered ``agent``'s input."""
    started = next(e for e in of_kind(events, ev.AgentStarted) if e.agent == agent)
    assert started.step is not None
    return started.step


def notes(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications]


# -- 1. fork at a stage transition -----------------------------------------------------------


async def test_fork_at_a_stage_transition_delivers_the_recorded_output_live(tmp_path: Path) -> None:
    system = example(tmp_path, "content_pipeline")
    async with Store(tmp_path / "s.db") as store:
        parent = await run_session(system, NOTE, store=store)
        assert parent.status == "completed"
        step = stage_step(parent.events, "enrich")

        outcome = await fork_session(store, parent.session_id, step)
        events = outcome.result.events
        assert outcome.result.status == "completed" and outcome.forked_from_step == step
        # extract answered from the recording; enrich and format ran live from the transition.
        assert outcome.replayed_calls == 1
        assert [(e.agent, e.replayed) for e in of_kind(events, ev.ModelResponded)] == [
            ("extract", True),
            ("enrich", False),
            ("enrich", False),
            ("format", False),
        ]
        enrich = next(e for e in of_kind(events, ev.AgentStarted) if e.agent == "enrich")
        recorded = next(e for e in of_kind(parent.events, ev.AgentStarted) if e.agent == "enrich")
        assert enrich.step == step and enrich.context == recorded.context

        # With --edit: the stage's output as edited is what enrich receives.
        edited = {"product": "Forked", "change": "a new change", "audience": "operators"}
        again = await fork_session(store, parent.session_id, step, edit=edited)
        assert again.result.status == "completed"
        enrich = next(e for e in of_kind(again.result.events, ev.AgentStarted) if e.agent == "enrich")
        assert enrich.context == edited and "Forked: what's new for operators" in again.result.output

        # An edit the next stage would refuse is refused before anything runs.
        before = len(await store.sessions())
        with pytest.raises(PlaygroundError, match=r"'enrich' rejects it.*audience.*nothing was run"):
            await fork_session(store, parent.session_id, step, edit={"product": "X", "change": "y"})
        assert len(await store.sessions()) == before


def test_the_cli_forks_at_a_stage_transition(tmp_path: Path) -> None:
    from tests.test_cli_conventions import cli

    db = tmp_path / "s.db"
    system = str(example_copy(tmp_path, "content_pipeline"))
    run = json.loads(cli("run", system, "--input", NOTE, "--json", db=db).stdout)
    shown = json.loads(cli("sessions", "show", run["session_id"], "--json", db=db).stdout)
    [step] = [e["step"] for e in shown["events"] if e["kind"] == "agent_started" and e["agent"] == "format"]
    fork = cli("fork", run["session_id"], "--at", str(step), "--json", db=db)
    assert fork.returncode == 0, fork.stderr
    forked = json.loads(fork.stdout)
    assert forked["forked_from_step"] == step and forked["output"] == run["output"]
    assert forked["replayed"]["model_calls"] == 3 and forked["live"]["model_calls"] == 1


async def test_fork_after_a_parallel_group_replays_the_whole_group(tmp_path: Path) -> None:
    system = example(tmp_path, "market_brief")
    async with Store(tmp_path / "s.db") as store:
        parent = await run_session(system, "a quiet toaster", store=store)
        assert parent.status == "completed"
        step = stage_step(parent.events, "brief")
        outcome = await fork_session(store, parent.session_id, step)
    live = [e.agent for e in of_kind(outcome.result.events, ev.ModelResponded) if not e.replayed]
    assert outcome.result.status == "completed" and live == ["brief"]
    assert outcome.result.output == parent.output


async def test_the_fork_dialog_forks_at_a_selected_stage_row(tmp_path: Path) -> None:
    app = make_app(example(tmp_path, "content_pipeline"), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, NOTE)
        await pilot.press("enter")
        await finish(pilot)
        result = screen.last_result
        assert result is not None and result.status == "completed"
        step = stage_step(result.events, "format")

        # The transition's own row, not format's activation row (they share an event).
        timeline = screen.query_one(Timeline)
        timeline.focus()
        await pilot.press("home")
        while screen.view.steps[timeline.cursor].label.split(" · ")[0] != "stage → format":
            await pilot.press("down")
        await pilot.pause()
        title = str(screen.query_one(Inspector).border_title)
        assert title.startswith(f"step {step} · stage enrich → format")

        await pilot.press("f")
        await app.workers.wait_for_complete()
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, BranchScreen)
        assert dialog.at == ForkPoint(step, "stage output", "format")
        assert f"from step {step}, the stage output format receives" in screen_text(app)

        await pilot.press("enter")
        await pilot.pause()
        fork = app.screen
        assert isinstance(fork, RunScreen) and fork is not screen
        await finish(pilot)
        assert fork.last_result is not None and fork.last_result.status == "completed"
        started = fork.last_result.events[0]
        assert isinstance(started, ev.RunStarted) and started.forked_from_step == step
        live = [e.agent for e in of_kind(fork.last_result.events, ev.ModelResponded) if not e.replayed]
        assert live == ["format"]


# -- 2. retry at a stage gate ----------------------------------------------------------------


async def test_retry_at_a_stage_gate_says_what_to_do_instead(tmp_path: Path) -> None:
    app = make_app(example(tmp_path, "content_pipeline"), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, NOTE)
        await pilot.press("escape", "s")
        gate = await hold_at_stage(pilot, screen)
        produced = gate.payload["produced_at"]
        extract_call = next(e for e in screen.view.steps if e.kind == "model_call" and e.agent == "extract")
        assert produced == extract_call.step

        await pilot.press("r")
        await pilot.pause()
        said = notes(app)[-1]
        assert "no model call" not in said
        assert "a stage's output is delivered, not retried" in said
        assert "e edits it before enrich receives it" in said and "to run extract again" in said
        assert f"fork from step {produced} (its model call" in said
        assert screen.controller is not None and screen.controller.pending is gate  # still held


async def test_retry_after_a_parallel_group_names_where_to_fork(tmp_path: Path) -> None:
    app = make_app(example(tmp_path, "market_brief"), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "a quiet toaster")
        await pilot.press("escape", "s")
        controller = screen.controller
        assert controller is not None
        gate = await asyncio.wait_for(controller.wait_paused(), 10)
        while gate.payload.get("target") != "brief":
            await pilot.press("s")
            gate = await asyncio.wait_for(controller.wait_paused(), 10)
        await pilot.pause()
        # The group's output is the group's, not its first agent's.
        assert f"before step {gate.step}, the stage output of prices ∥ reviews: deliver" in screen_text(app)
        last_calls = [
            max(s.step or 0 for s in screen.view.steps if s.kind == "model_call" and s.agent == name)
            for name in ("prices", "reviews")
        ]
        assert gate.payload["produced_at"] == min(last_calls)

        await pilot.press("r")
        await pilot.pause()
        said = notes(app)[-1]
        assert "to run prices ∥ reviews again" in said
        assert f"fork from step {min(last_calls)} (where their last model calls begin" in said


# -- 3. a held delegation --------------------------------------------------------------------


async def hold_at_delegation(pilot: Pilot[Any], screen: RunScreen, worker: str) -> Gate:
    controller = screen.controller
    assert controller is not None
    gate = await asyncio.wait_for(controller.wait_paused(), 10)
    while not (gate.kind == "tool_call" and gate.payload.get("tool") == worker):
        await pilot.press("s")
        gate = await asyncio.wait_for(controller.wait_paused(), 10)
    await pilot.pause()
    return gate


async def test_a_held_delegation_is_a_pending_edge_with_its_payload(tmp_path: Path) -> None:
    app = make_app(example(tmp_path, "research_supervisor"), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "typed handoffs")
        await pilot.press("escape", "s")
        gate = await hold_at_delegation(pilot, screen, "research")
        text = screen_text(app)
        assert "supervisor ⇢ research?  (held before delivery)" in text
        assert f"before step {gate.step}, supervisor's delegation: delegate to research:" in text
        title = str(screen.query_one(Inspector).border_title)
        assert title == f"step {gate.step} · delegation supervisor → research · held"
        assert "payload ≈" in text and "the worker receives only this" in text
        assert "schema {task: str}" in text and "Find facts about: typed handoffs" in text

        # Edited there, the delegation is an edited edge and the operator's line says so.
        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, EditPayloadScreen)
        area = modal.query_one(TextArea)
        assert json.loads(area.text) == {"task": "Find facts about: typed handoffs"}
        area.text = json.dumps({"task": "Find facts about: stage gates"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("c")
        await finish(pilot)
        result = screen.last_result
        assert result is not None and result.status == "completed", result and result.error

        research = next(e for e in of_kind(result.events, ev.AgentStarted) if e.agent == "research")
        assert research.context == {"task": "Find facts about: stage gates"}
        assert "⚑ operator edit at delegation" in pane_text(screen, "supervisor")
        assert "supervisor ⇢✎ research" in screen_text(app)
        edit_row = next(s for s in screen.view.steps if s.kind == "operator" and s.label.startswith("edit"))
        assert edit_row.label == "edit (delegation)"


# -- 4. the operator's line at a stage edit --------------------------------------------------


async def test_a_stage_edit_reads_as_a_stage_output_edit(tmp_path: Path) -> None:
    app = make_app(example(tmp_path, "content_pipeline"), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, NOTE)
        await pilot.press("escape", "s")
        await hold_at_stage(pilot, screen)
        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, EditPayloadScreen)
        area = modal.query_one(TextArea)
        area.text = json.dumps({**json.loads(area.text), "audience": "operators"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("c")
        await finish(pilot)
        result = screen.last_result
        assert result is not None and result.status == "completed", result and result.error

        lines = pane_text(screen, "extract")
        assert "⚑ operator edit at stage output" in lines and "at handoff" not in lines
        edit_row = next(s for s in screen.view.steps if s.kind == "operator" and s.label.startswith("edit"))
        assert edit_row.label == "edit (stage output)"

        # Opened again from the store, the session reads the same.
        stored = RunView(screen.system)
        stored.apply_all(await app.store.events(result.session_id))
        assert any(s.label == "edit (stage output)" for s in stored.steps)
        assert "⚑ operator edit at stage output" in [line.text for line in stored.agents["extract"].lines]
