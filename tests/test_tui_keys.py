"""The run screen's keys and small terminals: typing stays text, stepping needs no race,
a click selects the row under it, the active pane and the footer fit at 80x24.

A terminal sends esc then a letter typed within Textual's escape delay (100 ms) as one
key, alt+letter, whose character is the letter; the tests post that key as the terminal
parser makes it (checked below against Textual's parser), not Pilot's ``press("alt+s")``,
which carries no character and so would not be typed into an ``Input`` in any case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Footer, Input

from playground.engine.clock import Clock
from playground.spec import System, load_system
from playground.tui.screens.run import RunScreen
from playground.tui.screens.sessions import SessionsScreen
from playground.tui.widgets.agent_pane import AgentPane
from playground.tui.widgets.folding_footer import FoldingFooter
from playground.tui.widgets.pane_grid import PaneGrid
from playground.tui.widgets.request_input import key_after_escape
from playground.tui.widgets.timeline import Timeline
from tests.helpers import example_copy, fixed_clock
from tests.test_tui import (
    REQUEST,
    SIZE,
    finish,
    make_app,
    router_copy,
    run_screen,
    screen_text,
    step_until,
    supervisor_copy,
    type_request,
)

SMALL = (80, 24)


@pytest.fixture
def system(tmp_path: Path) -> System:
    return load_system(router_copy(tmp_path))


@pytest.fixture
def clock() -> Clock:
    return fixed_clock(tick_s=0.01)


def terminal_key(key: str, character: str) -> events.Key:
    """A key as Textual's terminal parser reports it (``alt+s`` with the character ``s``)."""
    return events.Key(key, character)


async def post_key(pilot: Pilot[Any], key: str, character: str) -> None:
    pilot.app.post_message(terminal_key(key, character))
    await pilot.pause()
    await pilot.pause()


def operator_actions(screen: RunScreen) -> list[str]:
    result = screen.last_result
    assert result is not None
    return [e.action for e in result.events if e.kind == "operator_acted"]


# -- item 3: a click selects the row under the pointer ----------------------------------------


async def test_a_click_selects_the_timeline_row_under_the_pointer(tmp_path: Path) -> None:
    # Regression: the click's y counted the timeline's top border, so every click selected
    # the row below the one clicked (and fork then started from the wrong step).
    app = make_app(load_system(supervisor_copy(tmp_path)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "typed handoffs")
        await pilot.press("enter")
        await finish(pilot)
        timeline = screen.query_one(Timeline)
        steps = screen.view.steps
        top = int(timeline.scroll_y)
        assert len(steps) > top + 6
        for row in (0, 3, 5):
            # The border is the widget's first line: content row ``row`` is at y = row + 1.
            assert await pilot.click(Timeline, offset=(10, row + 1))
            await pilot.pause()
            assert timeline.cursor == top + row
            chosen = steps[top + row]
            assert screen._selected in (chosen, chosen.handoff)
        # A click on the border selects nothing new.
        assert await pilot.click(Timeline, offset=(10, 0))
        await pilot.pause()
        assert timeline.cursor == top + 5


# -- item 7: typing stays text; stepping needs no race ----------------------------------------


async def test_a_sentence_typed_after_enter_is_text_not_commands(tmp_path: Path) -> None:
    # Regression: enter moved the focus to a pane, so the next sentence typed there ran
    # its letters as keys: s stepped, a aborted, o opened the sessions browser.
    app = make_app(load_system(router_copy(tmp_path, latency_ms=200)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        box = screen.query_one("#request", Input)
        await type_request(pilot, screen)
        await pilot.press("enter")
        await pilot.pause()
        assert screen.view.running and screen.focused is box
        sentence = "so sorry, also please stop and open sessions"
        await pilot.press(*sentence)  # while the run goes on
        await finish(pilot)
        assert screen.view.status == "completed"
        assert operator_actions(screen) == []  # no step, pause, continue or abort
        await pilot.press(*" again: s a o p c")  # and after it ended
        await finish(pilot)
        assert app.screen is screen
        assert not any(isinstance(s, SessionsScreen) for s in app.screen_stack)
        assert screen.controller is None and screen.view.status == "completed"
        assert box.value == REQUEST + sentence + " again: s a o p c"
        assert len(await app.store.sessions()) == 1


async def test_ctrl_s_steps_from_the_request_box(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        box = screen.query_one("#request", Input)
        await type_request(pilot, screen)
        assert screen.focused is box
        # The box's footer offers it: the letters are text there.
        assert "^s Step" in screen_text(app)
        await pilot.press("ctrl+s")
        assert screen.controller is not None
        gate = await screen.controller.wait_paused()
        await pilot.pause()
        assert (gate.kind, gate.agent) == ("model_call", "router")
        assert box.value == REQUEST
        # Stepping left the box: the single-letter keys work now.
        assert isinstance(screen.focused, AgentPane)
        await pilot.press("s")
        await step_until(pilot, screen, "handoff", "router")
        await pilot.press("ctrl+s")  # works outside the box too
        await pilot.press("c")
        await finish(pilot)
        assert screen.view.status == "completed"
        assert operator_actions(screen) == ["step", "step", "continue"]  # s, ctrl+s, c


async def test_the_focus_a_hold_took_follows_the_next_held_agent(system: System, tmp_path: Path) -> None:
    """ctrl+s from the box gives the router's pane the focus; stepping on to billing's call
    moves it to billing's pane, so m (and E, v, b) act on the agent the banner names."""
    app = make_app(system, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen)
        await pilot.press("ctrl+s")
        assert screen.controller is not None
        await screen.controller.wait_paused()
        await pilot.pause()
        assert screen.focused is screen.query_one("#pane-router")
        await step_until(pilot, screen, "handoff", "router")
        assert screen.focused is screen.query_one("#pane-router")
        await step_until(pilot, screen, "model_call", "billing")
        while screen.view.gate is None or screen.view.gate.agent != "billing":  # the screen heard it
            await pilot.pause()
        assert screen.focused is screen.query_one("#pane-billing")
        await pilot.press("m")
        await pilot.pause()
        assert "Model for billing" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        # A pane the operator focused themselves stays focused.
        screen.query_one("#pane-technical", AgentPane).focus()
        await pilot.press("s")
        await pilot.pause()
        assert screen.controller is not None
        await screen.controller.wait_paused()
        await pilot.pause()
        assert screen.focused is screen.query_one("#pane-technical")
        await pilot.press("c")
        await finish(pilot)
        assert screen.view.status == "completed"


async def test_a_hold_takes_the_focus_unless_a_new_request_is_being_typed(tmp_path: Path) -> None:
    # The router's model call takes a second: the next request is being typed before the hold.
    app = make_app(load_system(router_copy(tmp_path, latency_ms=1000)), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        box = screen.query_one("#request", Input)
        screen.breakpoints.add("handoff:*")  # one hold: router's handoff to billing
        await type_request(pilot, screen)
        await pilot.press("enter")
        assert screen.controller is not None
        gate = await screen.controller.wait_paused()
        await pilot.pause()
        # The run asks the operator: the held pane has the focus, c answers.
        assert gate.kind == "handoff" and screen.focused is screen.query_one("#pane-router")
        await pilot.press("c")
        await finish(pilot)
        assert screen.view.status == "completed"
        while screen.controller is not None:  # the screen has heard that the run ended
            await pilot.pause()
        assert screen.focused is box  # the run ended: back to the box

        await pilot.press("enter")
        await pilot.press(*" and")  # typing the next request when the hold comes
        assert screen.controller is not None and screen.controller.pending is None
        gate = await screen.controller.wait_paused()
        await pilot.pause()
        assert screen.focused is box
        await pilot.press(*" a c")  # text, not abort or continue
        assert screen.controller is not None and screen.controller.pending is gate
        assert box.value.endswith(" and a c")  # (the focus coming back selected the old request)
        await pilot.press("escape", "c")  # esc first: the keys
        await finish(pilot)
        assert screen.view.status == "completed"


def test_textual_reads_fast_esc_s_as_alt_s_with_the_character_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the tests below post is what a terminal's ``\\x1bs`` becomes."""
    from textual import _parser
    from textual._xterm_parser import XTermParser

    parser = XTermParser()
    assert list(parser.feed("\x1bs")) == []  # esc could start a sequence: Textual waits
    monkeypatch.setattr(_parser, "get_time", lambda: float("inf"))  # the escape delay passed
    keys = [(k.key, k.character) for k in parser.tick() if isinstance(k, events.Key)]
    assert keys == [("alt+s", "s")]


def test_key_after_escape() -> None:
    assert key_after_escape("alt+s") == "s"
    assert key_after_escape("alt+shift+b") == "B"
    assert key_after_escape("alt+1") == "1"
    assert key_after_escape("s") is None
    assert key_after_escape("ctrl+s") is None
    assert key_after_escape("alt+left") is None
    assert key_after_escape("alt+ctrl+s") is None


async def test_esc_s_typed_fast_steps_and_types_nothing(system: System, tmp_path: Path) -> None:
    # Regression: the README's gesture, typed quickly, arrived as alt+s and typed an s.
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        box = screen.query_one("#request", Input)
        await type_request(pilot, screen)
        await post_key(pilot, "alt+s", "s")
        assert screen.controller is not None, "alt+s did not start a step-mode run"
        gate = await screen.controller.wait_paused()
        await pilot.pause()
        assert (gate.kind, gate.agent) == ("model_call", "router")
        assert box.value == REQUEST
        assert isinstance(screen.focused, AgentPane)
        await pilot.press("a")
        await finish(pilot)
        assert screen.view.status == "aborted"


async def test_esc_then_any_key_typed_fast_is_that_key(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        box = screen.query_one("#request", Input)
        await type_request(pilot, screen)
        await post_key(pilot, "alt+o", "o")  # esc o: the sessions browser
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)
        assert box.value == REQUEST


# -- item 4: 80x24 ----------------------------------------------------------------------------


def footer_fits(app: Any) -> None:
    footer = app.screen.query_one(Footer)
    assert isinstance(footer, FoldingFooter)
    right = max(child.region.right for child in footer.children if child.display)
    assert right <= footer.region.right
    keys = [child for child in footer.children if getattr(child, "action", None) is not None]
    assert sum(child.outer_size.width for child in keys) <= footer.size.width


async def test_the_active_pane_is_on_screen_at_80x24(tmp_path: Path) -> None:
    app = make_app(load_system(supervisor_copy(tmp_path)), tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "typed handoffs")
        await pilot.press("ctrl+s")
        await step_until(pilot, screen, "model_call", "writer")
        await pilot.pause()
        grid = screen.query_one(PaneGrid)
        writer = screen.query_one("#pane-writer", AgentPane)
        assert grid.max_scroll_y > 0  # the panes do not all fit
        assert writer.region and grid.region.contains_region(writer.region)
        footer_fits(app)
        text = screen_text(app)
        assert "▶ writer" in text and "s Step" in text and "a Abort" in text and "^p palette" in text
        # Folded keys still work, and the palette lists them.
        titles = [c.title for c in app.get_system_commands(screen)]
        assert "Versions (v)" in titles and "Model (m)" in titles
        await pilot.press("a")
        await finish(pilot)


async def test_the_footer_folds_and_unfolds_with_the_width(system: System, tmp_path: Path) -> None:
    app = make_app(system, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen)
        await pilot.press("ctrl+s")  # held: every key of the run has something to act on
        assert screen.controller is not None
        await screen.controller.wait_paused()
        screen.query_one("#pane-router", AgentPane).focus()
        await pilot.pause()
        await pilot.pause()
        footer = screen.query_one(FoldingFooter)
        assert {"versions", "swap_model"} <= footer.folded
        footer_fits(app)
        await pilot.resize_terminal(160, 45)
        await pilot.pause()
        await pilot.pause()
        assert footer.folded == frozenset()
        assert "v Versions" in screen_text(app) and "c Continue" in screen_text(app)
        await pilot.resize_terminal(*SMALL)
        await pilot.pause()
        await pilot.pause()
        assert "versions" in footer.folded
        footer_fits(app)


def test_snapshot_supervisor_held_at_its_last_worker_at_80x24(
    snap_compare: Any, tmp_path: Path, clock: Clock
) -> None:
    """research_supervisor held before writer's model call: writer's pane is on screen, the footer fits."""
    app = make_app(load_system(supervisor_copy(tmp_path)), tmp_path, clock=clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "typed handoffs")
        await pilot.press("ctrl+s")
        await step_until(pilot, screen, "model_call", "writer")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_snapshot_pipeline_last_stage_at_80x24(snap_compare: Any, tmp_path: Path, clock: Clock) -> None:
    """content_pipeline held before its last stage's model call, at 80x24."""
    app = make_app(load_system(example_copy(tmp_path, "content_pipeline")), tmp_path, clock=clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await run_screen(pilot)
        await type_request(pilot, screen, "Playground now supports typed handoffs")
        await pilot.press("ctrl+s")
        await step_until(pilot, screen, "model_call", "format")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


@pytest.mark.parametrize(
    ("key", "screen_name"),
    [
        ("v", "VersionsScreen"),
        ("g", "GraphScreen"),
        ("i", "ModelCallScreen"),
        ("E", "AgentEditorScreen"),
        ("o", "SessionsScreen"),
        ("H", "HomeScreen"),
    ],
)
async def test_every_screens_footer_fits_80_columns(
    system: System, tmp_path: Path, key: str, screen_name: str
) -> None:
    """Not only the run screen's: each screen a run screen opens folds its footer to fit."""
    app = make_app(system, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        screen = await run_screen(pilot)
        await type_request(pilot, screen)
        await pilot.press("enter")
        await finish(pilot)
        await pilot.press("escape", key)
        await finish(pilot)
        await pilot.pause()
        assert type(app.screen).__name__ == screen_name
        footer_fits(app)


async def test_the_footer_shows_the_keys_that_act_now(system: System, tmp_path: Path) -> None:
    """Between runs the footer offers what can be done then (fork, inspect once there is a
    session), not continue, retry or abort; a hold brings those back. Left out, they still
    answer (test_unavailable_actions_say_so)."""
    app = make_app(system, tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await run_screen(pilot)
        footer = screen.query_one(FoldingFooter)

        def keys() -> set[str]:
            return {str(getattr(k, "action", "")) for k in footer.children if getattr(k, "action", None)}

        await pilot.press("escape")
        await pilot.pause()
        before = keys()
        assert {"step", "toggle_breakpoint", "graph"} <= before
        assert not before & {"continue", "pause", "retry", "edit", "abort", "fork", "inspect_call"}
        await type_request(pilot, screen)
        await pilot.press("ctrl+s")
        assert screen.controller is not None
        await screen.controller.wait_paused()
        await pilot.pause()
        await pilot.pause()
        assert {"continue", "pause", "retry", "edit", "abort"} <= keys()
        await pilot.press("c")
        await finish(pilot)
        await pilot.pause()
        await pilot.pause()
        after = keys()
        assert {"fork", "inspect_call", "step"} <= after
        assert not after & {"continue", "pause", "retry", "edit", "abort"}
