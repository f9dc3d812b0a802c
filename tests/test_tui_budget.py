"""Budgets in the TUI (issue 10 item 3): a meter per agent and for the run, and breakpoints
on an agent's cost or latency so far that the operator types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, Static

from playground.spec import System
from playground.tui.metric_breakpoints import MetricPoint, parse_metric_point
from playground.tui.screens.breakpoint_dialog import BreakpointScreen
from playground.tui.screens.run import RunScreen
from playground.tui.widgets.agent_pane import AgentPane
from tests.helpers import system_from
from tests.test_tui import make_app, screen_text

SIZE = (120, 40)

BUDGETED = """
name: budgeted-router
description: Routes to billing, which has a budget.
pattern: router
entry: router
limits: {max_cost_usd: 0.01, max_tokens: 100000}
agents:
  router:
    handoffs:
      - to: billing
        context: {question: str}
    script:
      - handoff: billing
        context: {question: "{input}"}
  billing:
    input: {question: str}
    price: {input: 0.15, output: 0.60}
    budget: {max_calls: 4}
    tools: [lookup]
    script:
      - tool: lookup
        args: {q: "{question}"}
      - reply: "Refund on its way."
tools:
  lookup: tools.py:lookup
"""

TOOLS = "def lookup(q: str) -> str:\n    return 'found ' + q\n"


def budgeted(tmp_path: Path) -> System:
    (tmp_path / "tools.py").write_text(TOOLS, encoding="utf-8")
    return system_from(tmp_path, BUDGETED)


async def run_screen(pilot: Pilot[Any]) -> RunScreen:
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, RunScreen)
    return screen


def subtitle(screen: RunScreen, agent: str) -> str:
    return str(screen.query_one(f"#pane-{agent}", AgentPane).border_subtitle)


async def test_budget_meters_per_agent_and_for_the_run(tmp_path: Path) -> None:
    app = make_app(budgeted(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        screen.query_one("#request", Input).value = "charged twice"
        await pilot.press("enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.view.status == "completed"
        assert "budget ▰▰▰▰▱▱▱▱ 50% calls 2/4" in subtitle(screen, "billing")
        assert "budget" not in subtitle(screen, "router")  # declares none
        totals = str(screen.query_one("#totals", Static).render())
        assert "budget ▱▱▱▱▱▱▱▱" in totals and "/$0.0100" in totals


def test_metric_breakpoints_parse_and_refuse_with_a_reason() -> None:
    agents = ["router", "billing"]
    assert parse_metric_point("cost:billing>0.01", agents) == MetricPoint("cost", "billing", 0.01)
    assert parse_metric_point(" latency:*>500 ", agents) == MetricPoint("latency", "*", 500)
    assert "no agent 'nobody'" in str(parse_metric_point("cost:nobody>1", agents))
    assert "write cost:AGENT>USD" in str(parse_metric_point("cost billing 1", agents))


async def test_a_typed_cost_breakpoint_stops_the_run_once_the_agent_passed_it(tmp_path: Path) -> None:
    app = make_app(budgeted(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        screen.query_one("#request", Input).value = "charged twice"
        await pilot.press("escape", "B")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, BreakpointScreen)
        dialog.query_one(Input).value = "cost:nobody>0"
        await pilot.press("enter")
        await pilot.pause()
        assert "no agent 'nobody'" in screen_text(app)  # the dialog stays, says why
        dialog.query_one(Input).value = "cost:billing>0.000001"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert screen.metric_points == {MetricPoint("cost", "billing", 0.000001)}
        assert "cost:billing>1e-06" in str(screen.sub_title)

        await pilot.press("c")  # run freely: it stops after billing's first paid call
        assert screen.controller is not None
        gate = await screen.controller.wait_paused()
        await pilot.pause()
        assert gate.agent == "billing" and gate.kind == "tool_call"
        assert screen.view.agents["billing"].cost_usd > 0.000001
        assert screen.view.gate is gate  # held there

        await pilot.press("c")  # each point stops once: the run finishes
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.view.status == "completed"


async def test_a_latency_breakpoint_on_any_agent(tmp_path: Path) -> None:
    app = make_app(budgeted(tmp_path), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_screen(pilot)
        screen.metric_points.add(MetricPoint("latency", "*", -1))  # any latency at all
        screen.query_one("#request", Input).value = "charged twice"
        await pilot.press("enter")
        assert screen.controller is not None
        gate = await screen.controller.wait_paused()
        assert gate.agent == "router"  # after its first call
        await pilot.press("c")
        await pilot.app.workers.wait_for_complete()
        assert screen.view.status == "completed"
