"""The graph screen: the system's agents and edges, following the run live.

Opened with ``g`` from the run screen (a live run or a stored session); ``g`` or ``esc``
goes back. It reads the run screen's :class:`~playground.tui.state.RunView`, which the run
screen keeps folding events into while this screen is on top; ``s``, ``c`` and ``p`` step,
continue and pause the run from here, so the operator can watch the graph while stepping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from playground.spec.load import System
from playground.tui.graph import Follower, GraphState, topology
from playground.tui.state import RunView
from playground.tui.widgets.folding_footer import FoldingFooter
from playground.tui.widgets.system_graph import FOLLOW_S, LEGEND, SystemGraph

PATH_STOPS = 8
"""Stops of the path the status line names; a longer path shows its first and latest."""


def status_text(state: GraphState, view: RunView) -> Text:
    """One line under the graph: the run's status, who handles it now, and its path."""
    text = Text(no_wrap=False)
    text.append(state.status, "bold")
    if view.error is not None:
        origin = view.error.get("origin")
        text.append(f": {view.error.get('type')}" + (f" (origin: {origin})" if origin else ""), "bold")
    if state.active:
        text.append(" · handling now: ")
        text.append(", ".join(state.active), "bold")
    if state.pending is not None:
        text.append(f" · held before the handoff {state.pending[0]} → {state.pending[1]}")
    if view.hops:
        stops = [h.agents[0] if len(h.agents) == 1 else f"[{' ∥ '.join(h.agents)}]" for h in view.hops]
        if len(stops) > PATH_STOPS:  # a long cycle: its start and its latest stops
            stops = [stops[0], f"… {len(stops) - PATH_STOPS} more", *stops[1 - PATH_STOPS :]]
        text.append(f" · path {' → '.join(stops)}", "dim")
    elif state.status == "ready":
        text.append(" · no run yet: type a request on the run screen", "dim")
    return text


class GraphScreen(Screen[None]):
    """The system as a graph, following ``view``.

    Args:
        system: The loaded system.
        view: The run screen's view of the run (live or rebuilt from a stored session).
        act: Runs an action of the run screen (``step``, ``continue``, ``pause``); None where
            nothing runs (a stored session).
    """

    CSS_PATH = "graph.tcss"

    BINDINGS = [
        Binding("g", "back", "Back", id="graph.back", tooltip="Back to the run"),
        Binding("escape", "back", "Back", show=False, id="graph.escape", tooltip="Back to the run"),
        Binding("s", "run('step')", "Step", id="graph.step", tooltip="Run to the next gate and pause"),
        Binding(
            "c", "run('continue')", "Continue", id="graph.continue", tooltip="Run on to the next breakpoint"
        ),
        Binding("p", "run('pause')", "Pause", id="graph.pause", tooltip="Pause the run at the next gate"),
    ]

    def __init__(
        self,
        system: System,
        view: RunView,
        *,
        act: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        super().__init__()
        self.system = system
        self.view = view
        self.act = act
        self.graph = topology(system.spec)
        self.follower = Follower(view, self.graph)

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="graph-body"):
            yield SystemGraph(self.graph, id="graph")
        yield Static(id="graph-status")
        yield Static(Text(LEGEND), id="graph-legend")
        yield FoldingFooter()

    def on_mount(self) -> None:
        spec = self.system.spec
        self.title = f"{spec.name} ({spec.pattern}) · graph"
        self.sub_title = spec.description
        self.follow()
        self.set_interval(FOLLOW_S, self.follow)

    def follow(self) -> None:
        """Redraw from the view if anything the graph shows has changed."""
        state = self.follower.poll()
        if state is not None:
            self.query_one(SystemGraph).show(state)
            self.query_one("#graph-status", Static).update(status_text(state, self.view))

    def action_back(self) -> None:
        self.dismiss(None)

    async def action_run(self, action: str) -> None:
        """Step, continue or pause the run on the run screen; the graph follows."""
        if self.act is not None:
            await self.act(action)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "run" or self.act is not None
