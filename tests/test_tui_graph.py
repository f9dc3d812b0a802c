"""The system as a graph (issue 14 item 13): the layout of each topology, what a run has
taken of it, and the graph screen following a run live.

Like tests/test_tui.py: the scripted model at zero latency; tests wait on the controller and
workers. The graph screen reads the run screen's view on a short timer, so a test waits for
what it shows with :func:`shows` (bounded), not a fixed sleep.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.style import Style
from rich.text import Text
from textual.pilot import Pilot

from playground.engine import Runtime
from playground.engine.clock import Clock
from playground.spec import load_system
from playground.tui.graph import EdgeKind, GraphEdge, GraphState, Topology, graph_state, topology
from playground.tui.screens.graph import GraphScreen
from playground.tui.screens.run import RunScreen
from playground.tui.screens.sessions import load_recorded
from playground.tui.state import RunView
from playground.tui.widgets.system_graph import Drawing, GraphPane, SystemGraph, list_lines
from tests.helpers import example_copy, fixed_clock
from tests.test_tui import (
    AGENTS,
    finish,
    make_app,
    router_copy,
    run_screen,
    screen_text,
    start_stepping,
    step_until,
    type_request,
)


def edges_of(example: str) -> set[tuple[str, str, str]]:
    graph = topology(load_system(AGENTS / f"{example}.yaml").spec)
    return {(e.source, e.target, e.kind) for e in graph.edges}


def plain(lines: list[Text]) -> str:
    return "\n".join(line.plain for line in lines)


# -- layout ----------------------------------------------------------------------------------


def test_a_router_fans_out_from_its_entry() -> None:
    graph = topology(load_system(AGENTS / "support_router.yaml").spec)
    assert graph.layers == (("router",), ("billing", "technical", "general", "clarify"))
    assert edges_of("support_router") == {
        ("router", name, "handoff") for name in ("billing", "technical", "general", "clarify")
    }
    assert graph.roles == {"router": "entry", "clarify": "on loop"}
    drawn = plain(Drawing(graph, GraphState()).lines({}))
    # One exit from the router, a bus over the four specialists, an arrow into each.
    assert drawn.count("▼") == 4 and "┬" in drawn
    assert all(f"│   {name} │" in drawn for name in ("billing", "technical", "general"))
    assert "╭─entry" in drawn and "╭─on loop" in drawn


def test_a_supervisor_is_a_hub_with_its_workers_as_spokes() -> None:
    graph = topology(load_system(AGENTS / "research_supervisor.yaml").spec)
    assert graph.layers == (("supervisor",), ("research", "analysis", "writer"))
    assert edges_of("research_supervisor") == {
        ("supervisor", name, "delegation") for name in ("research", "analysis", "writer")
    }
    assert not any(graph.is_long(e) for e in graph.edges)


def test_a_pipelines_parallel_group_is_one_layer_fed_and_feeding_all_its_agents() -> None:
    graph = topology(load_system(AGENTS / "market_brief.yaml").spec)
    assert graph.layers == (("extract",), ("prices", "reviews"), ("brief",))
    assert edges_of("market_brief") == {
        ("extract", "prices", "stage"),
        ("extract", "reviews", "stage"),
        ("prices", "brief", "stage"),
        ("reviews", "brief", "stage"),
    }
    lines = plain(Drawing(graph, GraphState()).lines({})).splitlines()
    # prices and reviews side by side; their two lines join into one arrow into brief.
    assert any("prices" in line and "reviews" in line for line in lines)
    join = next(i for i, line in enumerate(lines) if "└" in line and "┘" in line and "┬" in line)
    assert lines[join + 1].strip() == "▼" and "brief" in lines[join + 3]


def test_a_plain_pipeline_is_a_column_of_straight_edges() -> None:
    for example, stages in (
        ("content_pipeline", ["extract", "enrich", "format"]),
        ("invoice_pipeline", ["ingest", "normalize", "convert", "report"]),
    ):
        graph = topology(load_system(AGENTS / f"{example}.yaml").spec)
        assert [list(layer) for layer in graph.layers] == [[s] for s in stages]
        assert list(graph.edges) == [GraphEdge(a, b, "stage") for a, b in itertools.pairwise(stages)]
        drawn = plain(Drawing(graph, GraphState()).lines({}))
        assert drawn.count("▼") == len(stages) - 1 and "└" not in drawn  # no bends


def test_a_cycle_runs_back_around_the_side_and_the_loop_target_hangs_below() -> None:
    graph = topology(load_system(AGENTS / "review_cycle.yaml").spec)
    assert graph.layers == (("drafter",), ("legal",), ("compliance",), ("editor",))
    back = GraphEdge("compliance", "drafter", "handoff")
    assert back in graph.edges and graph.is_long(back)
    assert graph.roles["editor"] == "on loop"
    drawn = plain(Drawing(graph, GraphState()).lines({})).splitlines()
    assert "drafter │◀─┐" in drawn[1] and "compliance ├─┘" in drawn[9]


def test_neighbours_hand_off_across_the_gap_and_a_tangle_is_a_list() -> None:
    handoff: EdgeKind = "handoff"
    fan = [GraphEdge("r", name, handoff) for name in ("a", "b", "x")]
    layers = (("r",), ("a", "b", "x"), ("c",))
    down = [GraphEdge("a", "c", handoff), GraphEdge("b", "c", handoff)]
    graph = Topology("router", "r", layers, (*fan, *down, GraphEdge("a", "b", handoff)))
    drawing = Drawing(graph, GraphState(taken=frozenset({("a", "b")})))
    assert drawing.clean and drawing.side == [GraphEdge("a", "b", handoff)]
    assert "│   a ┝━━▶│   b │" in plain(drawing.lines({}))
    # Two skips into one layer: one of them would run behind the other's box.
    skips = (GraphEdge("r", "c", handoff), GraphEdge("r", "d", handoff))
    tangled = Topology("router", "r", (*layers[:2], ("c", "d")), (*fan, *down, *skips))
    assert not Drawing(tangled, GraphState()).clean
    assert not Drawing(tangled, GraphState(), detailed=True).clean
    widget = SystemGraph(tangled)
    widget.room = 100
    assert widget.mode(500) == "list"
    drawable = SystemGraph(graph)
    drawable.room = 100
    assert drawable.mode(500) == "detailed" and drawable.mode(40) == "layered"


def test_too_narrow_for_the_layers_it_is_a_list() -> None:
    graph = topology(load_system(AGENTS / "support_router.yaml").spec)
    state = GraphState(
        nodes={"router": "done", "billing": "active"}, taken=frozenset({("router", "billing")})
    )
    assert Drawing(graph, state).width > 40
    lines = [line.plain for line in list_lines(graph, state, {})]
    assert lines[:5] == [
        "✓ router  entry",
        "  ┣━▶ billing",
        "  ├─▶ technical",
        "  ├─▶ general",
        "  └─▶ clarify",
    ]
    assert "▶ billing" in lines and max(map(len, lines)) <= 40


# -- what a run took -------------------------------------------------------------------------


async def test_a_parallel_pipeline_run_takes_every_stage_edge(tmp_path: Path) -> None:
    system = load_system(example_copy(tmp_path, "market_brief"))
    result = await Runtime(system).run("a toaster")
    assert result.status == "completed", result.error
    view = RunView(system)
    view.apply_all(result.events)
    graph = topology(system.spec)
    state = graph_state(view, graph)
    assert state.taken == graph.pairs()
    assert state.nodes == dict.fromkeys(["extract", "prices", "reviews", "brief"], "done")
    assert state.active == [] and state.jumps == ()


async def test_a_loop_escalation_is_a_jump_no_edge_declares(tmp_path: Path) -> None:
    system = load_system(example_copy(tmp_path, "review_cycle"))
    result = await Runtime(system).run("Our refund policy")
    assert result.status == "completed", result.error
    view = RunView(system)
    view.apply_all(result.events)
    state = graph_state(view, topology(system.spec))
    assert state.taken == {("drafter", "legal"), ("legal", "compliance"), ("compliance", "drafter")}
    assert state.jumps == (("compliance", "editor", "escalation"),)
    drawn = plain(Drawing(topology(system.spec), state).lines({}))
    assert "◀━┓" in drawn and "⇢ compliance → editor (escalation)" in drawn


# -- the screen ------------------------------------------------------------------------------


async def shows(pilot: Pilot[Any], condition: Callable[[], bool]) -> None:
    """Wait (a bounded while) for the graph screen's timer to pick up what the run did."""
    for _ in range(50):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("the graph screen did not follow the run")


def style_at(widget: SystemGraph, needle: str) -> Style:
    """The style the graph draws ``needle`` in (its first character)."""
    for line in widget.lines(widget.size.width):
        at = line.plain.find(needle)
        if at >= 0:
            return line.get_style_at_offset(widget.app.console, at)
    raise AssertionError(f"{needle!r} is not drawn")


async def test_the_graph_follows_the_run_live(tmp_path: Path) -> None:
    app = make_app(load_system(router_copy(tmp_path)), tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        run = await run_screen(pilot)
        gate = await start_stepping(pilot, run)
        assert (gate.kind, gate.agent) == ("model_call", "router")
        await pilot.press("g")
        screen = app.screen
        assert isinstance(screen, GraphScreen)
        graph = screen.query_one(SystemGraph)
        active = graph.get_component_rich_style("system-graph--active-name", partial=True)
        taken = graph.get_component_rich_style("system-graph--taken", partial=True)
        assert graph.state.active == ["router"] and not graph.state.taken
        assert style_at(graph, "▶ router") == active

        # s steps the run from the graph screen: held before the handoff, its edge is pending.
        assert run.controller is not None
        await pilot.press("s")
        gate = await run.controller.wait_paused()
        while gate.kind != "handoff":
            await pilot.press("s")
            gate = await run.controller.wait_paused()
        await shows(pilot, lambda: graph.state.pending == ("router", "billing"))
        assert "held before the handoff router → billing" in screen_text(app)

        # Billing handles the request now: it is highlighted, and the edge to it is taken.
        while gate.agent != "billing":
            await pilot.press("s")
            gate = await run.controller.wait_paused()
        await shows(pilot, lambda: graph.state.active == ["billing"])
        assert graph.state.taken == {("router", "billing")} and graph.state.of("router") == "done"
        assert style_at(graph, "▶ billing") == active
        assert style_at(graph, "✓ router") != active
        text = screen_text(app)
        assert "▶ billing" in text and "✓ router" in text and "  technical" in text
        assert "handling now: billing" in text
        # The taken edge is heavy from the router's exit to billing's arrow; the others light.
        assert "┏" in text and "┹" in text and style_at(graph, "┏") == taken
        assert style_at(graph, "┬") != taken

        await pilot.press("c")
        await finish(pilot)
        await shows(pilot, lambda: graph.state.status == "completed")
        assert graph.state.active == [] and graph.state.of("billing") == "done"
        assert graph.state.taken == {("router", "billing")}

        await pilot.press("g")
        assert app.screen is run
        await pilot.press("g")
        assert isinstance(app.screen, GraphScreen)
        await pilot.press("escape")
        assert app.screen is run


async def test_the_run_screen_has_a_graph_pane_only_on_a_big_screen(tmp_path: Path) -> None:
    app = make_app(load_system(router_copy(tmp_path)), tmp_path)
    async with app.run_test(size=(220, 60)) as pilot:
        run = await run_screen(pilot)
        pane = run.query_one(GraphPane)
        await shows(pilot, lambda: pane.display)
        gate = await start_stepping(pilot, run)
        while gate.agent != "billing":
            await pilot.press("s")
            assert run.controller is not None
            gate = await run.controller.wait_paused()
        await shows(pilot, lambda: pane.state.active == ["billing"])
        assert pane.state.taken == {("router", "billing")} and pane.mode(pane.size.width) == "layered"
        assert "▶ billing" in screen_text(app) and "graph · g for its own screen" in screen_text(app)
        await pilot.resize_terminal(160, 45)
        await shows(pilot, lambda: not pane.display)
        assert "graph · g" not in screen_text(app)
        await pilot.press("c")
        await finish(pilot)


async def test_the_graph_of_a_stored_session(tmp_path: Path) -> None:
    """A session opened read-only shows the graph of its run; nothing steps there."""
    app = make_app(load_system(example_copy(tmp_path, "review_cycle")), tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        run = await run_screen(pilot)
        await type_request(pilot, run, "Our refund policy")
        await pilot.press("enter")
        await finish(pilot)
        recorded = await load_recorded(app.store, run.view.session_id)
        await app.push_screen(RunScreen(run.system, app.store, recorded=recorded))
        await pilot.pause()
        stored = app.screen
        assert isinstance(stored, RunScreen) and stored.recorded is not None
        await pilot.press("g")
        screen = app.screen
        assert isinstance(screen, GraphScreen) and screen.view is stored.view
        graph = screen.query_one(SystemGraph)
        assert graph.state.status == "completed" and ("compliance", "drafter") in graph.state.taken
        assert graph.state.jumps == (("compliance", "editor", "escalation"),)
        text = screen_text(app)
        assert "⇢ compliance → editor (escalation)" in text and "✓ editor" in text
        assert "Step" not in text and "Back" in text  # the footer offers no stepping here
        await pilot.press("s")
        assert app.screen is screen and stored.controller is None


async def test_a_narrow_graph_screen_lists_the_agents(tmp_path: Path) -> None:
    app = make_app(load_system(router_copy(tmp_path)), tmp_path)
    async with app.run_test(size=(50, 24)) as pilot:
        run = await run_screen(pilot)
        await type_request(pilot, run, "my invoice is wrong")
        await pilot.press("enter")
        await finish(pilot)
        run.query_one("#pane-router").focus()
        await pilot.press("g")
        graph = app.screen.query_one(SystemGraph)
        assert graph.mode(graph.size.width) == "list"
        text = screen_text(app)
        assert "  ┣━▶ billing" in text and "✓ billing" in text and "  ├─▶ technical" in text


# -- snapshots (plain def: snap_compare runs its own loop) -----------------------------------


@pytest.fixture
def clock() -> Clock:
    return fixed_clock(tick_s=0.01)


def snapshot_app(tmp_path: Path, example: str, clock: Clock) -> Any:
    return make_app(load_system(example_copy(tmp_path, example)), tmp_path, clock=clock)


async def graph_at(pilot: Pilot[Any], kind: str, agent: str, request: str) -> None:
    """Step the run to ``agent``'s ``kind`` gate, then open the graph screen on it."""
    run = await run_screen(pilot)
    await type_request(pilot, run, request)
    await pilot.press("escape", "s")
    await step_until(pilot, run, kind, agent)
    await pilot.press("g")
    graph = pilot.app.screen.query_one(SystemGraph)
    await shows(pilot, lambda: agent in graph.state.active)


@pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=["80x24", "160x45"])
def test_snapshot_graph_of_a_supervisor(snap_compare: Any, tmp_path: Path, clock: Clock, size: Any) -> None:
    """Held at analysis's first model call: research done, the supervisor waiting on its
    worker, the two delegations taken heavy."""
    app = snapshot_app(tmp_path, "research_supervisor", clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        await graph_at(pilot, "model_call", "analysis", "typed handoffs")
        graph = pilot.app.screen.query_one(SystemGraph)
        assert graph.state.taken == {("supervisor", "research"), ("supervisor", "analysis")}
        assert graph.state.of("supervisor") == "waiting" and graph.state.of("research") == "done"

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=["80x24", "160x45"])
def test_snapshot_graph_of_a_parallel_pipeline(
    snap_compare: Any, tmp_path: Path, clock: Clock, size: Any
) -> None:
    """Held at brief's model call: the parallel group done, all four stage edges taken."""
    app = snapshot_app(tmp_path, "market_brief", clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        await graph_at(pilot, "model_call", "brief", "a toaster")
        graph = pilot.app.screen.query_one(SystemGraph)
        assert len(graph.state.taken) == 4 and graph.state.active == ["brief"]

    assert snap_compare(app, terminal_size=size, run_before=run_before)
