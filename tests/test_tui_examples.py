"""The run screen of every bundled example, finished, at 80x24 and at 160x45: what a new
user sees first, at the smallest terminal and a roomy one (SVG snapshots).

Each runs the first request of its scenario file on the instant scripted model with a
fixed clock, so the figures on screen are the same every time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.pilot import Pilot
from textual.widgets import Input

from playground.spec import load_system
from playground.tui.app import PlaygroundApp
from playground.tui.screens.run import RunScreen
from tests.helpers import EXAMPLES, example_copy, fixed_clock

EXAMPLE_NAMES = sorted(
    p.name.removesuffix(".yaml") for p in EXAMPLES.glob("*.yaml") if ".scenarios" not in p.name
)


def first_request(example: str) -> str:
    """The first scenario of the example's scenario file that sends a request."""
    suite = yaml.safe_load((EXAMPLES / f"{example}.scenarios.yaml").read_text(encoding="utf-8"))
    return next(str(sc["input"]) for sc in suite["scenarios"] if sc.get("input"))


def test_every_example_is_covered() -> None:
    assert {"support_router", "research_supervisor", "content_pipeline", "market_brief"} <= set(EXAMPLE_NAMES)


@pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=["80x24", "160x45"])
@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_snapshot_run_screen(snap_compare: Any, tmp_path: Path, example: str, size: tuple[int, int]) -> None:
    system = load_system(example_copy(tmp_path, example))
    app = PlaygroundApp(
        system, db_path=tmp_path / "store.db", agents_dir=tmp_path, clock=fixed_clock(tick_s=0.01)
    )
    request = first_request(example)

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        screen.query_one("#request", Input).value = request
        await pilot.pause()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.view.status in ("completed", "failed")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_a_long_path_keeps_its_newest_hops_at_80_columns(tmp_path: Path) -> None:
    """review_cycle's path (ten hops) does not fit 80 columns: its start gives way, behind
    'path …', so the agent that ended the run and the hint stay on screen."""
    system = load_system(example_copy(tmp_path, "review_cycle"))
    app = PlaygroundApp(system, db_path=tmp_path / "store.db", agents_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        screen.query_one("#request", Input).value = first_request("review_cycle")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        line = next(s.text for s in app.screen._compositor.render_strips() if s.text.startswith(" path"))
        assert line.startswith(" path …") and "→ editor" in line and "select a handoff" in line
        # After the run, esc leaves the box for the agent that handled it last.
        await pilot.press("escape")
        assert screen.focused is not None and screen.focused.id == "pane-editor"
