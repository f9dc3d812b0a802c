"""The TUI's blame view (issue 11 item 2): a failed run's chain from origin to manifestation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from playground.engine.clock import Clock
from playground.spec import load_system
from playground.tui.app import PlaygroundApp
from playground.tui.screens.fork import BranchScreen
from playground.tui.screens.run import RunScreen
from playground.tui.widgets.blame_chain import BlameChain
from playground.tui.widgets.timeline import Timeline
from tests.helpers import example_copy, fixed_clock
from tests.test_tui import make_app, screen_text

SIZE = (120, 40)
REQUEST = '{"amount": 120, "currency": "EUR"}'


@pytest.fixture
def clock() -> Clock:
    return fixed_clock(tick_s=0.01)


def invoice_app(tmp_path: Path, **kw: Any) -> PlaygroundApp:
    return make_app(load_system(example_copy(tmp_path, "invoice_pipeline")), tmp_path, **kw)


async def run_failing(pilot: Pilot[Any]) -> RunScreen:
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, RunScreen)
    screen.query_one("#request", Input).value = REQUEST
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return screen


async def test_a_failed_run_shows_where_the_field_was_lost_and_jumps_to_the_step(tmp_path: Path) -> None:
    app = invoice_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_failing(pilot)
        blame = screen.view.blame
        assert blame is not None and blame.field == "currency" and blame.origin == "ingest"
        assert blame.manifested == "convert"
        assert [(h.agent, h.kind, h.present) for h in blame.hops] == [
            ("request", "request", True),
            ("ingest", "input", True),
            ("ingest", "output", False),
            ("normalize", "input", False),
            ("normalize", "output", False),
            ("convert", "input", False),
        ]
        assert [h.origin for h in blame.hops] == [False, False, True, False, False, False]
        chain = screen.query_one(BlameChain)
        assert chain.display
        text = screen_text(app)
        assert "blame · currency · origin ingest → convert" in text
        assert "ingest    in      ✔ EUR" in text and "ingest    out     origin ✘ absent" in text
        assert '{"amount":120.0}  ✘ currency absent' in text  # the origin's payload, field absent

        # esc leaves the request box (enter kept the focus there), w focuses the chain: the
        # cursor starts on the origin's hop.
        await pilot.press("escape", "w")
        assert screen.focused is chain and chain.hop is blame.hops[2]
        await pilot.press("up")
        assert chain.hop is blame.hops[1]
        assert '"currency": "EUR"' in screen_text(app)  # ingest's input, the field highlighted
        await pilot.press("down", "enter")
        await pilot.pause()
        timeline = screen.query_one(Timeline)
        assert isinstance(screen.focused, Timeline)
        chosen = timeline._steps[timeline.cursor]
        assert chosen.agent == "ingest" and chosen.kind == "model_call" and chosen.step == 1
        assert "step 1 · model call" in screen_text(app)  # the inspector shows it

        await pilot.press("f")  # and fork from it, as from any selected step
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, BranchScreen)


async def test_no_blame_view_for_a_completed_run(tmp_path: Path) -> None:
    app = invoice_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, RunScreen)
        assert not screen.query_one(BlameChain).display
        assert screen.check_action("blame", ()) is False


def test_snapshot_blame_view(snap_compare: Any, tmp_path: Path, clock: Clock) -> None:
    app = invoice_app(tmp_path, clock=clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        await run_failing(pilot)
        await pilot.press("escape", "w")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
