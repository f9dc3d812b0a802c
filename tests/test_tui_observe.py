"""The observe screen (``playground tui --observe``), driven with Pilot."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import DataTable, Static

from playground.observe import build_session
from playground.observe.record import put_sessions
from playground.store import Store
from playground.tui.app import PlaygroundApp
from playground.tui.screens.observe import READ_ONLY, ObserveScreen
from playground.tui.screens.sessions import SessionChosen
from playground.tui.widgets.agent_pane import AgentPane, pane_id
from playground.tui.widgets.totals import Totals
from tests.test_observe import capture_spans, post, posts


def status_of(screen: ObserveScreen) -> str:
    assert screen.view is not None
    return screen.view.status


async def settled(screen: ObserveScreen) -> None:
    """Wait until every span posted so far is published and the screen has taken it."""
    assert screen.observer is not None
    await screen.observer.settle()
    await screen.app.workers.wait_for_complete()
    for _ in range(3):  # the update message, then the redraw it schedules
        await asyncio.sleep(0)
        await screen.app.animator.wait_until_complete()


async def test_sessions_and_agents_appear_as_spans_arrive(tmp_path: Path) -> None:
    app = PlaygroundApp(db_path=tmp_path / "s.db", observe=0)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ObserveScreen)
        assert screen.receiver is not None
        banner = str(screen.query_one("#observe-banner", Static).render())
        assert screen.receiver.url in banner and "read-only" in banner
        bodies = posts("openai-agents-openinference-handoff")
        # The first post holds triage's spans (handed off to billing); the root is not in yet.
        assert (await post(screen.receiver.url, *bodies[0]))[0] == 200
        await settled(screen)
        await pilot.pause()
        table = screen.query_one("#observed", DataTable)
        assert table.row_count == 1
        assert status_of(screen) == "running"
        assert [p.agent for p in screen.query(AgentPane)] == ["triage"]
        assert screen.view is not None
        assert screen.view.path == ["triage"] and [h.target for h in screen.view.handoffs] == ["billing"]
        for body in bodies[1:]:
            assert (await post(screen.receiver.url, *body))[0] == 200
        await settled(screen)
        await pilot.pause()
        view = screen.view
        assert view is not None and view.status == "completed"
        assert [p.agent for p in screen.query(AgentPane)] == ["triage", "billing"]
        assert view.agents["billing"].calls == 2 and view.agents["billing"].input_tokens == 340
        assert [h.target for h in view.handoffs] == ["billing"]
        assert any(s.kind == "tool_call" for s in view.steps)
        totals = str(screen.query_one(Totals).render())
        assert "COMPLETED" in totals and "460 in / 50 out" in totals
        # A second framework's trace becomes a second session, and is followed.
        for body in posts("pydantic-ai-error"):
            assert (await post(screen.receiver.url, *body))[0] == 200
        await settled(screen)
        await pilot.pause()
        assert table.row_count == 2
        assert status_of(screen) == "failed"
        assert (
            screen.view is not None
            and screen.view.error is not None
            and screen.view.error["origin"] == "billing"
        )
        # Nothing here runs: the run screen's keys say so.
        await pilot.press("s")
        await pilot.pause()
        assert any(READ_ONLY in str(n.message) for n in app._notifications)
        # Back to the first session: its panes again.
        screen.follow = False
        table.move_cursor(row=0)
        await pilot.pause()
        await settled(screen)
        assert status_of(screen) == "completed"
        assert [p.agent for p in screen.query(AgentPane)] == ["triage", "billing"]


async def test_an_observed_session_opens_from_the_store(tmp_path: Path) -> None:
    session = build_session(capture_spans("openai-agents-genai-error"))
    app = PlaygroundApp(db_path=tmp_path / "s.db")
    async with app.run_test(size=(160, 40)) as pilot:
        await put_sessions(app.store, [session])
        app.post_message(SessionChosen(session.session_id))
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ObserveScreen) and screen.receiver is None
        assert screen.view is not None and screen.view.status == "failed"
        assert [p.agent for p in screen.query(AgentPane)] == ["triage", "billing"]


async def test_waiting_then_following_at_80_columns(tmp_path: Path) -> None:
    """What a user sees in a small terminal: where to send traces until one comes, then the
    newest session, followed, with the list narrowed to its ids."""
    stored = build_session(capture_spans("pydantic-ai-error"))
    app = PlaygroundApp(db_path=tmp_path / "s.db", observe=0)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ObserveScreen) and screen.receiver is not None
        assert screen.has_class("-narrow")
        waiting = screen.query_one("#observe-waiting", Static)
        assert waiting.display and "OTEL_EXPORTER_OTLP_ENDPOINT=" in str(waiting.render())
        assert not screen.query_one("#main").display
        banner = str(screen.query_one("#observe-banner", Static).render())
        endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT=" + screen.receiver.url.removesuffix("/v1/traces")
        assert banner.index("read-only") + len("read-only") < 78 and banner.index(endpoint) < 20
        for body in posts("openai-agents-openinference-handoff"):
            assert (await post(screen.receiver.url, *body))[0] == 200
        await settled(screen)
        await pilot.pause()
        assert not waiting.display and screen.query_one("#main").display
        assert screen.query_one("#observed", DataTable).size.width == 16
        assert all(p.size.width >= 28 for p in screen.query(AgentPane))
        first = screen.selected
    # Opened again on the same store: the stored sessions listed, the newest shown, and a
    # new session still followed (the list's first row lighting up is no choice of the user's).
    async with Store(tmp_path / "s.db") as store:
        await put_sessions(store, [stored])
    app = PlaygroundApp(db_path=tmp_path / "s.db", observe=0)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ObserveScreen) and screen.receiver is not None
        await pilot.pause()
        assert not screen.query_one("#observe-waiting").display
        newest = (await app.store.sessions())[0].session_id
        assert newest in (first, stored.session_id)
        assert screen.selected == newest and screen.follow
        table = screen.query_one("#observed", DataTable)
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == newest
        for body in posts("langgraph-openinference-error"):
            assert (await post(screen.receiver.url, *body))[0] == 200
        await settled(screen)
        await pilot.pause()
        assert screen.follow and screen.selected not in (first, stored.session_id)
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == screen.selected
        await pilot.press("up")
        await pilot.pause()
        assert not screen.follow and screen.selected == table.get_row_at(1)[0].plain


def test_pane_ids_of_names_that_are_not_identifiers() -> None:
    assert pane_id("billing") == "pane-billing"
    odd = pane_id("OpenAI Agent")
    assert odd.startswith("pane-OpenAI_Agent-") and odd != pane_id("OpenAI_Agent")
