"""Supervisors and pipelines as first-class in the run screen (issue 14 item 6): their path's
edges (delegations, stage transitions) are selectable with a payload view, a pipeline stage's
output is held before the next stage receives it and can be edited there, and a rejected
review shows its feedback with a ✘.

The scripted model at zero latency; tests wait on the run worker or the controller, never on
the wall clock.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static, TextArea

from playground.engine import events as ev
from playground.engine.clock import Clock
from playground.engine.controller import Gate, StepController
from playground.engine.runtime import Runtime
from playground.spec import System, load_system
from playground.tui.screens.edit_payload import EditPayloadScreen
from playground.tui.screens.run import RunScreen
from playground.tui.state import HandoffView
from playground.tui.widgets.handoff_path import HandoffPath
from playground.tui.widgets.inspector import Inspector
from playground.tui.widgets.timeline import Timeline
from tests.helpers import example_copy, fixed_clock, of_kind, write_system
from tests.test_tui import (
    finish,
    make_app,
    pane_text,
    run_screen,
    screen_text,
    stored_events,
    type_request,
)

SIZE = (160, 45)
NOTE = "Playground now supports editing stage outputs"


def pipeline(tmp_path: Path) -> System:
    return load_system(example_copy(tmp_path, "content_pipeline"))


def supervisor(tmp_path: Path) -> System:
    return load_system(example_copy(tmp_path, "research_supervisor"))


async def select_edge(pilot: Pilot[Any], screen: RunScreen, kind: str, target: str) -> HandoffView:
    """Focus the path and press → until the edge ``kind`` to ``target`` is selected."""
    path = screen.query_one(HandoffPath)
    path.focus()
    edges = [e for e in screen.view.handoffs if e.kind == kind and e.target == target]
    assert edges, f"no {kind} edge to {target}: {[(e.kind, e.target) for e in screen.view.handoffs]}"
    for _ in screen.view.handoffs:
        await pilot.press("right")
        if screen.view.handoffs[path.selected] is edges[0]:
            break
    await pilot.pause()
    assert screen.view.handoffs[path.selected] is edges[0]
    return edges[0]


async def hold_at_stage(pilot: Pilot[Any], screen: RunScreen) -> Gate:
    """Press s until the run holds a stage's output (fails in seconds if it never does)."""
    controller = screen.controller
    assert controller is not None
    gate = await asyncio.wait_for(controller.wait_paused(), 10)
    while not gate.payload.get("stage"):
        await pilot.press("s")
        gate = await asyncio.wait_for(controller.wait_paused(), 10)
    await pilot.pause()
    return gate


def inspector_text(app: Any) -> tuple[str, str]:
    """The inspector's title and what it shows, as plain text."""
    inspector = app.screen.query_one(Inspector)
    return str(inspector.border_title), screen_text(app)


# -- the path's edges ------------------------------------------------------------------------


async def test_a_delegation_edge_shows_its_payload(tmp_path: Path) -> None:
    app = make_app(supervisor(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "typed handoffs")
        await pilot.press("enter")
        await finish(pilot)

        # One edge per delegation, in the order they were made: the path's stops are its workers.
        kinds = [(e.kind, e.source, e.target) for e in screen.view.handoffs]
        assert kinds == [
            ("delegation", "supervisor", "research"),
            ("delegation", "supervisor", "analysis"),
            ("delegation", "supervisor", "writer"),
        ]
        assert "supervisor ⇢ research ⇢ analysis ⇢ writer" in screen_text(app)
        assert "←/→ select a delegation" in screen_text(app)

        edge = await select_edge(pilot, screen, "delegation", "analysis")
        title, text = inspector_text(app)
        assert title == f"step {edge.step} · delegation supervisor → analysis · delivered"
        # The worker's input schema types the fields; the payload's size is an estimate.
        assert "field" in text and "type" in text
        assert "task" in text and "str" in text and "What do these facts mean?" in text
        assert f"payload ≈{edge.payload_tokens} tok · the worker receives only this" in text
        assert "schema {task: str}" in text
        tool_call = next(e for e in of_kind(screen.last_result.events, ev.ToolCalled) if e.tool == "analysis")  # type: ignore[union-attr]
        assert edge.step == tool_call.step and edge.payload == tool_call.args


async def test_a_stage_edge_shows_its_payload(tmp_path: Path) -> None:
    app = make_app(pipeline(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, NOTE)
        await pilot.press("enter")
        await finish(pilot)

        assert [(e.kind, e.source, e.target) for e in screen.view.handoffs] == [
            ("stage", "extract", "enrich"),
            ("stage", "enrich", "format"),
        ]
        assert "extract ⇢ enrich ⇢ format" in screen_text(app)

        edge = await select_edge(pilot, screen, "stage", "format")
        title, text = inspector_text(app)
        assert title == f"step {edge.step} · stage enrich → format · delivered"
        # Typed by format's input: a list[str] type shows whole (it is no markup).
        for field, type_name in (("headline", "str"), ("tags", "list[str]"), ("words", "int")):
            assert any(field in line and f" {type_name} " in line for line in text.splitlines()), field
        assert f"payload ≈{edge.payload_tokens} tok · the next stage receives only this" in text
        assert "schema {headline: str, change: str, tags: list[str], words: int}" in text
        # The transition is a step of its own: its number is on the next stage's agent_started.
        started = next(e for e in of_kind(screen.last_result.events, ev.AgentStarted) if e.agent == "format")  # type: ignore[union-attr]
        assert edge.step == started.step is not None
        row = next(s for s in screen.view.steps if s.handoff is edge)
        assert row.step == edge.step and row.label.startswith("stage → format · ≈")


async def test_a_parallel_group_is_one_stage_edge_each_way(tmp_path: Path) -> None:
    app = make_app(load_system(example_copy(tmp_path, "market_brief")), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "a quiet toaster")
        await pilot.press("enter")
        await finish(pilot)

        assert [(e.kind, e.source, e.target) for e in screen.view.handoffs] == [
            ("stage", "extract", "prices ∥ reviews"),
            ("stage", "prices ∥ reviews", "brief"),
        ]
        edge = await select_edge(pilot, screen, "stage", "brief")
        title, text = inspector_text(app)
        assert title.endswith("stage prices ∥ reviews → brief · delivered")
        assert "prices" in text and "dict" in text and "reviews" in text
        assert "schema {prices: dict, reviews: str}" in text
        assert edge.payload["prices"] == {"low": 24.0, "high": 59.0} or "low" in json.dumps(edge.payload)


# -- editing a held stage output -------------------------------------------------------------


async def test_edit_a_held_stage_output(tmp_path: Path) -> None:
    app = make_app(pipeline(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, NOTE)
        await pilot.press("escape", "s")
        gate = await hold_at_stage(pilot, screen)
        assert (gate.kind, gate.agent, gate.payload["target"]) == ("handoff", "extract", "enrich")
        text = screen_text(app)
        assert f"before step {gate.step}, extract's stage output: deliver to enrich" in text
        assert "extract ⇢ enrich?  (held before delivery)" in text
        assert f"step {gate.step} · stage extract → enrich · held" in text

        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, EditPayloadScreen)
        area = modal.query_one(TextArea)
        held = json.loads(area.text)
        assert held == {"product": "Playground", "change": NOTE, "audience": "developers"}

        # Checked against enrich's input before anything is delivered: the dialog stays open.
        area.text = json.dumps({"product": "Playground", "change": NOTE})
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is modal, "an invalid edit keeps the dialog open"
        error = str(modal.query_one("#edit-error", Static).content)
        assert "'enrich' rejects it" in error and "audience" in error

        area.text = json.dumps({**held, "product": "Playground 2", "audience": "operators"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen  # type: ignore[comparison-overlap]  # narrowed before the await
        await pilot.press("c")
        await finish(pilot)

        result = screen.last_result
        assert result is not None and result.status == "completed", result and result.error
        # What the next stage received is the edit, and so is everything after it.
        enrich = next(e for e in of_kind(result.events, ev.AgentStarted) if e.agent == "enrich")
        assert enrich.step == gate.step
        assert enrich.context == {"product": "Playground 2", "change": NOTE, "audience": "operators"}
        assert "Playground 2: what's new for operators" in result.output
        edits = [e for e in of_kind(result.events, ev.OperatorActed) if e.action == "edit"]
        assert [e.detail["step"] for e in edits] == [gate.step]
        stored = [e for e in await stored_events(app, result.session_id) if e.kind == "agent_started"]
        assert stored[1].context["product"] == "Playground 2"

        text = screen_text(app)
        assert "extract ⇢✎ enrich ⇢ format" in text
        assert "from extract: product=Playground 2" in pane_text(screen, "enrich")
        await select_edge(pilot, screen, "stage", "enrich")
        title, text = inspector_text(app)
        assert title == f"step {gate.step} · stage extract → enrich · edited"
        assert "delivered as the operator edited it" in text


async def test_a_stage_output_that_is_text_is_edited_as_text(tmp_path: Path) -> None:
    """Headless: a stage that replies plain text is held as {"text": ...}; an edit of it
    is what the next stage's model reads, and an edit of another shape is refused."""
    system = load_system(
        write_system(
            tmp_path,
            """\
name: two-steps
pattern: pipeline
pipeline: [draft, polish]
agents:
  draft:
    script: [{reply: "a rough draft of {input}"}]
  polish:
    script: [{reply: "polished: {input}"}]
""",
            "two.yaml",
        )
    )
    controller = StepController(stepping=True)
    task = asyncio.create_task(Runtime(system, controller=controller).run("tea"))
    gate: Gate = await asyncio.wait_for(controller.wait_paused(), 10)
    while gate.kind != "handoff":
        controller.step()
        gate = await asyncio.wait_for(controller.wait_paused(), 10)
    assert gate.payload["context"] == {"text": "a rough draft of tea"} and gate.payload["as_text"]
    assert controller.edit({**gate.payload, "context": {"draft": "x"}}) is not None
    assert controller.edit({**gate.payload, "context": {"text": "a better draft"}}) is None
    controller.resume()
    result = await task
    assert result.status == "completed" and result.output == "polished: a better draft"
    polish = next(e for e in of_kind(result.events, ev.AgentStarted) if e.agent == "polish")
    assert polish.incoming == "a better draft" and polish.step == gate.step


async def test_an_edit_after_a_parallel_group_is_checked_against_the_next_stage(tmp_path: Path) -> None:
    system = load_system(example_copy(tmp_path, "market_brief"))
    controller = StepController(breakpoints={"handoff:brief"})
    task = asyncio.create_task(Runtime(system, controller=controller).run("a toaster"))
    gate = await asyncio.wait_for(controller.wait_paused(), 10)
    assert gate.payload["source"] == "prices ∥ reviews" and gate.payload["target"] == "brief"
    held = gate.payload["context"]
    assert set(held) == {"prices", "reviews"}
    problem = controller.edit({**gate.payload, "context": {**held, "reviews": 3}})
    assert problem is not None and "'brief' rejects it" in problem and "reviews" in problem
    assert controller.edit({**gate.payload, "context": {**held, "reviews": "Buyers love it."}}) is None
    result = await task
    assert result.status == "completed", result.error
    brief = next(e for e in of_kind(result.events, ev.AgentStarted) if e.agent == "brief")
    assert brief.context is not None and brief.context["reviews"] == "Buyers love it."
    assert result.output.startswith("Buyers love it.")


async def test_headless_runs_number_stage_transitions_too(tmp_path: Path) -> None:
    """The same step numbers with or without a debugger: fork --at means the same step."""
    system = pipeline(tmp_path)
    free = await Runtime(system).run(NOTE)
    held = await Runtime(system, controller=StepController()).run(NOTE)

    def numbered(events: list[ev.Event]) -> list[tuple[str, str | None, int | None]]:
        return [(e.kind, e.agent, e.step) for e in events if e.step is not None]

    assert numbered(free.events) == numbered(held.events)
    steps = sorted({e.step for e in free.events if e.step is not None})
    assert steps == list(range(1, len(steps) + 1)), "one numbering, no gaps"


# -- reviews ---------------------------------------------------------------------------------


async def test_a_rejected_review_shows_its_feedback_and_no_tick(tmp_path: Path) -> None:
    app = make_app(supervisor(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "typed handoffs")
        await pilot.press("enter")
        await finish(pilot)

        feedback = "Drop the DRAFT marker and end with a recommendation."
        panes = pane_text(screen, "supervisor")
        assert f"✘ review writer: rejected — {feedback}" in panes
        assert "✔ review writer: accepted" in panes
        assert "✔ reviewed writer: reject" not in panes and "✔ review writer: rejected" not in panes

        timeline = screen.query_one(Timeline)
        row = next(s for s in screen.view.steps if s.kind == "review" and "rejected" in s.label)
        assert row.status == "failed" and feedback in row.label
        rendered = timeline._row(row, 120).plain
        assert "✘ review writer: rejected" in rendered and "✔" not in rendered
        accepted = next(s for s in screen.view.steps if s.kind == "review" and "accepted" in s.label)
        assert "✔ review" in timeline._row(accepted, 120).plain

        timeline.focus()
        timeline.select(row)
        await pilot.pause()
        title, text = inspector_text(app)
        assert title == "review"
        assert "verdict" in text and "reject" in text and feedback in text


# -- snapshots -------------------------------------------------------------------------------


def _held_at_a_stage(clock: Clock) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, NOTE)
        await pilot.press("escape", "s")
        await hold_at_stage(pilot, screen)

    return run_before


def test_snapshot_held_at_a_stage_160x45(snap_compare: Any, tmp_path: Path) -> None:
    clock = fixed_clock(tick_s=0.01)
    app = make_app(pipeline(tmp_path), tmp_path, clock=clock)
    assert snap_compare(app, terminal_size=(160, 45), run_before=_held_at_a_stage(clock))


def test_snapshot_held_at_a_stage_80x24(snap_compare: Any, tmp_path: Path) -> None:
    clock = fixed_clock(tick_s=0.01)
    app = make_app(pipeline(tmp_path), tmp_path, clock=clock)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_held_at_a_stage(clock))
