"""The error breakpoint in the TUI: a worker's fatal model error holds the run, with the error
shown, before the run fails; retrying after the fault cleared runs the call again and the run
completes (issue #14, item 8). Other fatal errors (an invalid output, a loop) hold with a banner
of their own, saying what retry does there, or why there is none."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from playground.spec import load_system
from playground.tui.app import PlaygroundApp
from playground.tui.screens.run import RunScreen
from playground.tui.widgets.agent_pane import AgentPane
from tests.test_engine import WORKER_FAILS_ONCE
from tests.test_error_holds import INVALID_OUTPUT
from tests.test_loops import CYCLE
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
        screen = await held_at_error(pilot, "sums")
        assert screen.controller is not None
        gate = screen.controller.pending
        assert gate is not None
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
        screen = await held_at_error(pilot, "sums")
        await pilot.press("c")
        await finish(pilot)
        assert screen.view.status == "failed"
        assert screen.query_one("#pane-worker", AgentPane).has_class("-failed")
        assert "injected provider_error" in screen_text(app)


def app_for(tmp_path: Path, text: str) -> PlaygroundApp:
    path = tmp_path / "system.yaml"
    path.write_text(text, encoding="utf-8")
    return PlaygroundApp(load_system(path), db_path=tmp_path / "store.db", agents_dir=AGENTS)


async def held_at_error(pilot: Pilot[Any], request: str) -> RunScreen:
    screen = await run_screen(pilot)
    screen.action_toggle_breakpoint("error:*")
    screen.query_one("#request", Input).value = request
    screen.query_one("#request", Input).focus()
    await pilot.press("enter")
    assert screen.controller is not None, f"not held: the run is {screen.view.status}"
    await asyncio.wait_for(screen.controller.wait_paused(), 10)
    await pilot.pause()
    return screen


async def test_an_invalid_output_holds_with_its_own_banner_and_retry_asks_again(tmp_path: Path) -> None:
    app = app_for(tmp_path, INVALID_OUTPUT)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await held_at_error(pilot, "sum 1 2")
        text = screen_text(app)
        assert "✖ INVALID OUTPUT" in text and "sum's output is still invalid" in text
        assert "does not match its output checks" in text  # the error itself
        assert "r ask sum again, told why · c or s: the run fails · a abort" in text
        assert "CALL FAILED" not in text
        assert screen.view.status == "paused"
        await pilot.press("r")
        await finish(pilot)
        assert screen.view.status == "completed"  # type: ignore[comparison-overlap]  # narrowed before the await
        assert "INVALID OUTPUT" not in screen_text(app)


async def test_a_held_loop_says_it_cannot_be_retried_and_continue_fails_the_run(tmp_path: Path) -> None:
    app = app_for(tmp_path, CYCLE.replace("ON_LOOP", "stop"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await held_at_error(pilot, "policy")
        text = screen_text(app)
        assert "✖ LOOP" in text and "calls go round (on_loop: stop)" in text
        assert "no retry (a loop would go round again) · c or s: the run fails" in text
        await pilot.press("r")  # refused: the run stays held
        await pilot.pause()
        assert screen.view.status == "paused"
        await pilot.press("c")
        await finish(pilot)
        assert screen.view.status == "failed"  # type: ignore[comparison-overlap]  # narrowed before the await
        assert "✖ LOOP" not in screen_text(app)


async def test_e_at_a_held_failure_says_what_the_keys_do_not_that_it_is_a_budget(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await held_at_error(pilot, "sums")
        assert screen.controller is not None
        gate = screen.controller.pending
        assert gate is not None
        assert gate.failure is not None and gate.payload["failed"] == "model_call"
        said: list[str] = []
        notify = app.notify

        def heard(message: str, **kw: Any) -> None:
            said.append(message)
            notify(message, **kw)

        app.notify = heard  # type: ignore[method-assign]
        await pilot.press("e")
        await pilot.pause()
        assert said == ["Nothing to edit here: r retries, c or s lets the run fail, a aborts."]
        assert screen.controller is not None and screen.controller.pending is gate  # still held
        await pilot.press("a")
        await finish(pilot)
