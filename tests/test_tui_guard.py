"""The inspector on a handoff whose guard rewrote the payload (issue 10 item 2)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from playground.spec import load_system
from playground.tui.screens.run import RunScreen
from playground.tui.widgets.timeline import Timeline
from tests.helpers import example_copy
from tests.test_tui import make_app, screen_text


async def test_the_inspector_shows_what_a_guard_changed(tmp_path: Path) -> None:
    app = make_app(load_system(example_copy(tmp_path)), tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        request = "I was charged twice on my invoice, card 4111 1111 1111 1111"
        screen.query_one("#request", Input).value = request
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        rewrote = next(s for s in screen.view.steps if s.kind == "guard")
        changed = dict(rewrote.detail)
        assert changed["guard"] and changed["handoff"] == "router → billing"
        before, after = changed["question"].split(" → ")
        assert "4111 1111 1111 1111" in before and "4111 1111 1111 1111" not in after
        screen.query_one(Timeline).select(rewrote)
        await pilot.pause()
        text = screen_text(app)
        assert "guard rewrote question" in text and "4111 1111 1111 1111" in text and " → " in text
