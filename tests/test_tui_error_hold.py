"""The error breakpoint in the TUI: a worker's fatal model error holds the run, with the error
shown, before the run fails; retrying after the fault cleared runs the call again and the run
completes (issue #14, item 8)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from playground.spec import load_system
from playground.tui.app import PlaygroundApp
from playground.tui.widgets.agent_pane import AgentPane
from tests.test_engine import WORKER_FAILS_ONCE
from tests.test_tui import AGENTS, finish, run_screen, screen_text


def make_app(tmp_path: Path) -> PlaygroundApp:
    path = tmp_path / "worker_fails.yaml"
    path.write_text(WORKER_FAILS_ONCE, encoding="utf-8")
    return PlaygroundApp(load_system(path), db_path=tmp_path / "store.db", agents_dir=AGENTS)


async def test_a_workers_fatal_error_holds_with_the_error_shown_and_retry_completes_the_run(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await run_screen(pilot)
        screen.action_toggle_breakpoint("error:*")
        screen.query_one("#request", Input).value = "sums"
        screen.query_one("#request", Input).focus()
        await pilot.press("enter")
        assert screen.controller is not None, f"not held: the run is {screen.view.status}"
        gate = await screen.controller.wait_paused()
        await pilot.pause()
        assert (gate.kind, gate.agent, gate.failure is not None) == ("model_call", "worker", True)
        text = screen_text(app)
        assert "CALL FAILED" in text and "injected provider_error" in text
        assert "r retry the call" in text
        assert screen.view.status == "paused"

        await pilot.press("r")
        await finish(pilot)
        assert screen.view.status == "completed"  # type: ignore[comparison-overlap]  # narrowed before the await
        assert screen.last_result is not None and screen.last_result.output == "boss: worker did sums"
        assert "CALL FAILED" not in screen_text(app)
        stored = await app.store.session(screen.view.session_id)
        assert stored.status == "completed"


async def test_continuing_from_the_held_error_fails_the_run_as_before(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await run_screen(pilot)
        screen.action_toggle_breakpoint("error:*")
        screen.query_one("#request", Input).value = "sums"
        screen.query_one("#request", Input).focus()
        await pilot.press("enter")
        assert screen.controller is not None, f"not held: the run is {screen.view.status}"
        await screen.controller.wait_paused()
        await pilot.pause()
        await pilot.press("c")
        await finish(pilot)
        assert screen.view.status == "failed"
        assert screen.query_one("#pane-worker", AgentPane).has_class("-failed")
        assert "injected provider_error" in screen_text(app)
