"""Search: the timeline's filter (ctrl+f on the run screen), the sessions browser's search,
and scenario runs named in the sessions they recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from playground.spec import load_system
from playground.tui.query import parse
from playground.tui.screens.run import RunScreen
from playground.tui.widgets.timeline import Timeline
from playground.tui.widgets.timeline_filter import TimelineFilter, step_matches, step_query
from tests.test_tui import SIZE, finish, make_app, run_screen, screen_text, supervisor_copy, type_request


def timeline_lines(screen: RunScreen) -> list[str]:
    """The timeline's rows as drawn (the visible ones)."""
    timeline = screen.query_one(Timeline)
    return [timeline.render_line(y).text.strip() for y in range(timeline.size.height)]


async def filter_by(pilot: Pilot[Any], text: str) -> None:
    """Open the filter with ctrl+f, type ``text`` into it (replacing what it held)."""
    await pilot.press("ctrl+f")
    box = pilot.app.screen.query_one(TimelineFilter)
    assert box.has_focus and box.display
    box.value = ""
    await pilot.press(*text)
    await pilot.pause()


async def test_ctrl_f_filters_the_timeline_by_agent_and_by_kind(tmp_path: Path) -> None:
    app = make_app(load_system(supervisor_copy(tmp_path)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "typed handoffs")
        await pilot.press("enter")
        await finish(pilot)
        timeline = screen.query_one(Timeline)
        every = list(screen.view.steps)
        assert not screen.query_one(TimelineFilter).display  # hidden until asked for
        assert any("tool analysis" in line for line in timeline_lines(screen))

        # From the request box too: ctrl+f types no character, so it reaches the screen.
        screen.query_one("#request", Input).focus()
        await filter_by(pilot, "agent:research")
        shown = timeline._steps
        assert shown and all(step.agent == "research" for step in shown)
        assert len(shown) == sum(step.agent == "research" for step in every) < len(every)
        lines = [line for line in timeline_lines(screen) if line]
        assert any("tool web_search" in line for line in lines)
        assert not any("tool analysis" in line or "review" in line for line in lines)
        assert f"{len(shown)} of {len(every)} rows" in screen_text(app)

        # An event kind finds the rows it makes: tool_called -> the tool calls.
        await filter_by(pilot, "kind:tool_called")
        assert [step.label for step in timeline._steps] == [
            step.label for step in every if step.kind == "tool_call"
        ]
        lines = [line for line in timeline_lines(screen) if line]
        assert any("tool word_count" in line for line in lines)
        assert not any("llm scripted" in line for line in lines)

        # Fields together, and a status: the review the supervisor rejected.
        await filter_by(pilot, "agent:supervisor kind:review status:failed")
        assert [step.label for step in timeline._steps] == ["review writer: reject"]

        # enter keeps the filter and goes to the timeline; its rows are the filtered ones.
        await pilot.press("enter")
        assert timeline.has_focus and screen.query_one(TimelineFilter).display
        await pilot.press("home")
        assert timeline._steps[timeline.cursor].label == "review writer: reject"

        # esc in the box clears the filter: every row again.
        await pilot.press("ctrl+f", "escape")
        await pilot.pause()
        assert timeline._steps == every and timeline.has_focus
        assert not screen.query_one(TimelineFilter).display
        assert "rows" not in (timeline.border_subtitle or "")


def test_the_query_syntax() -> None:
    query = parse('agent:research,writer -kind:model "two words" status:FAILED free', ["agent", "kind", "status"])
    terms = {(t.field, t.values, t.negated) for t in query.terms}
    assert ("agent", ("research", "writer"), False) in terms
    assert ("kind", ("model",), True) in terms
    assert ("status", ("failed",), False) in terms
    assert (None, ("two words",), False) in terms and (None, ("free",), False) in terms
    # A field the screen does not know is free text; an open quote while typing does not raise.
    assert parse("http://x", ["agent"]).terms[0].field is None
    assert len(parse('agent:"open', ["agent"]).terms) == 1
    assert not parse("  ", ["agent"])


def test_a_timeline_query_matches_rows_by_event_kind() -> None:
    from playground.tui.state import Step

    tool = Step(1, "tool_call", "billing", 1, "tool lookup_invoice", 0.0, status="ok")
    call = Step(2, "model_call", "billing", 1, "llm scripted", 0.0, status="failed")
    assert step_matches(step_query("kind:tool_called"), tool)
    assert not step_matches(step_query("kind:tool_called"), call)
    assert step_matches(step_query("kind:model_responded status:fail"), call)
    assert step_matches(step_query("-kind:model lookup"), tool)
    assert not step_matches(step_query("agent:router"), tool)
