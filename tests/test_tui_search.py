"""Search: the timeline's filter (ctrl+f on the run screen), the sessions browser's search,
and scenario runs named in the sessions they recorded."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from playground.scenarios import load_scenarios
from playground.spec import load_system
from playground.tui.app import PlaygroundApp
from playground.tui.query import parse
from playground.tui.screens.run import RunScreen
from playground.tui.screens.sessions import SessionsScreen
from playground.tui.widgets.timeline import Timeline
from playground.tui.widgets.timeline_filter import TimelineFilter, step_matches, step_query
from tests.test_tui import (
    FAILING,
    ROOT,
    SIZE,
    finish,
    make_app,
    run_screen,
    screen_text,
    supervisor_copy,
    type_request,
)
from tests.test_tui_sessions import make_app as home_app
from tests.test_tui_sessions import record, router_system, settle

pytest_plugins = ["pytester"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


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


REJECTED = "review writer: rejected — Drop the DRAFT marker and end with a recommendation."
"""The timeline row of the supervisor's review that rejected the writer, with its feedback."""


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
        assert any(step.label == "tool analysis" for step in every)

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
        assert [step.label for step in timeline._steps] == [REJECTED]

        # enter keeps the filter and goes to the timeline; its rows are the filtered ones.
        await pilot.press("enter")
        assert timeline.has_focus and screen.query_one(TimelineFilter).display
        await pilot.press("home")
        assert timeline._steps[timeline.cursor].label == REJECTED

        # esc in the box clears the filter: every row again.
        await pilot.press("ctrl+f", "escape")
        await pilot.pause()
        assert timeline._steps == every and timeline.has_focus
        assert not screen.query_one(TimelineFilter).display
        assert "rows" not in (timeline.border_subtitle or "")


def test_the_query_syntax() -> None:
    query = parse(
        'agent:research,writer -kind:model "two words" status:FAILED free', ["agent", "kind", "status"]
    )
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


# -- the sessions browser --------------------------------------------------------------------


async def open_browser(pilot: Pilot[Any]) -> SessionsScreen:
    """From the home screen, o opens the sessions browser."""
    await settle(pilot)
    await pilot.press("o")
    await settle(pilot)
    browser = pilot.app.screen
    assert isinstance(browser, SessionsScreen)
    return browser


async def search(pilot: Pilot[Any], browser: SessionsScreen, text: str) -> None:
    """``/`` from the list, then type ``text`` into the search box (replacing what it held)."""
    browser.query_one("#session-list", DataTable).focus()
    await pilot.press("slash")
    box = browser.query_one("#filter-query", Input)
    assert box.has_focus
    box.value = ""
    await pilot.press(*text)
    await settle(pilot)


async def test_the_sessions_search_filters_by_status_and_text(tmp_path: Path) -> None:
    system = router_system(tmp_path)
    invoice = await record(tmp_path, system)  # "I was charged twice on my last invoice"
    outage = await record(tmp_path, system, "the app is down, an outage?")
    failing_path = tmp_path / "failing.yaml"
    failing_path.write_text(FAILING, encoding="utf-8")
    failed = await record(tmp_path, load_system(failing_path), "help with my invoice")
    app = home_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        assert [row.session_id for row in browser.sessions] == [failed, outage, invoice]

        await search(pilot, browser, "status:failed")
        assert [row.session_id for row in browser.sessions] == [failed]
        text = screen_text(app)
        assert failed in text and invoice not in text and outage not in text

        await search(pilot, browser, "invoice")  # free text: the request
        assert [row.session_id for row in browser.sessions] == [failed, invoice]
        await search(pilot, browser, "invoice -status:failed")
        assert [row.session_id for row in browser.sessions] == [invoice]
        await search(pilot, browser, "agent:technical")  # on the handling path
        assert [row.session_id for row in browser.sessions] == [outage]
        await search(pilot, browser, "no such words")
        assert browser.sessions == [] and "no sessions matching the filters" in screen_text(app)

        # enter goes to the list, the search kept; enter there opens the session it found.
        await search(pilot, browser, "outage")
        await pilot.press("enter")
        assert browser.query_one("#session-list", DataTable).has_focus
        await pilot.press("enter")
        await settle(pilot)
        opened = app.screen
        assert isinstance(opened, RunScreen) and opened.view.session_id == outage
        await pilot.press("escape")
        await settle(pilot)
        assert pilot.app.screen is browser and [row.session_id for row in browser.sessions] == [outage]

        # esc in the box clears the search, a second esc leaves the box (not the screen).
        await pilot.press("slash", "escape")
        await settle(pilot)
        assert browser.query_one("#filter-query", Input).value == ""
        assert len(browser.sessions) == 3
        await pilot.press("escape")
        assert pilot.app.screen is browser and browser.query_one("#session-list", DataTable).has_focus


def test_playground_test_records_the_scenario_names_the_sessions_screen_shows(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ran = cli("test", "agents/support_router.scenarios.yaml", "--db", str(db))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    names = [
        scenario.name
        for scenario in load_scenarios(ROOT / "agents" / "support_router.scenarios.yaml").scenarios
    ]

    listed = cli("sessions", "--json", "--limit", "100", "--db", str(db))
    rows = json.loads(listed.stdout)
    assert sorted(row["scenario"]["name"] for row in rows) == sorted(names)
    assert {row["scenario"]["file"] for row in rows} == {"agents/support_router.scenarios.yaml"}
    table = cli("sessions", "--limit", "100", "--db", str(db))
    assert "scenario" in table.stdout and "double charge goes to billing" in " ".join(table.stdout.split())

    async def browse() -> None:
        app = PlaygroundApp(None, db_path=db, agents_dir=tmp_path)
        async with app.run_test(size=(220, 50)) as pilot:
            browser = await open_browser(pilot)
            cells = browser.query_one("#session-list", DataTable)
            column = sorted(str(cells.get_row_at(i)[4]) for i in range(cells.row_count))
            labels = sorted(f"{name} (support_router.scenarios.yaml)" for name in names)
            assert len(column) == len(labels)
            for cell, label in zip(column, labels, strict=True):  # long ones cut, with an ellipsis
                assert cell == label or (cell.endswith("…") and label.startswith(cell[:-1]))
            assert "refund question goes to billing (support_router" in screen_text(app)
            await search(pilot, browser, "scenario:refund")
            assert [row.scenario for row in browser.sessions] == ["refund question goes to billing"]
            await search(pilot, browser, 'scenario:"billing outage"')
            assert [row.status for row in browser.sessions] == ["failed"]

    asyncio.run(browse())


def test_compare_over_a_scenario_file_and_the_pytest_plugin_record_the_scenario(
    tmp_path: Path, pytester: Any
) -> None:
    from tests.test_compare import playground, workspace

    workspace(tmp_path)
    report = json.loads(
        playground(
            tmp_path,
            "compare",
            "support_router.yaml",
            "--agent",
            "billing",
            "--a",
            "scripted",
            "--b",
            "scripted/b",
            "--scenarios",
            "support_router.scenarios.yaml",
            "--json",
        )
    )
    rows = {
        row["session_id"]: row
        for row in json.loads(playground(tmp_path, "sessions", "--json", "--limit", "100"))
    }
    for item in report["inputs"]:
        for side in ("a", "b"):  # both sides of every input name the scenario they ran
            scenario = rows[item[side]["session_id"]]["scenario"]
            assert scenario == {"name": item["name"], "file": "support_router.scenarios.yaml"}

    # A scenario file collected by the pytest plugin: its run names the scenario too.
    from tests.test_pytest_plugin import FAILING_SCENARIO, project

    project(pytester, scenarios=FAILING_SCENARIO)
    db = tmp_path / "plugin.db"
    pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--playground-db={db}").assert_outcomes(failed=1)
    listed = cli("sessions", "--json", "--db", str(db))
    [row] = json.loads(listed.stdout)
    assert row["scenario"]["name"] == "billing goes to technical"
    assert row["scenario"]["file"].endswith("router.scenarios.yaml")
