"""One side of a comparison: the run's title, path, agent panes, timeline and its differences."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from playground.tui.state import RunView
from playground.tui.widgets.agent_pane import AgentPane
from playground.tui.widgets.handoff_path import HandoffPath
from playground.tui.widgets.pane_grid import PaneGrid
from playground.tui.widgets.timeline import Timeline


class CompareSide(Vertical):
    """A compact run view of one variant; the compare screen calls :meth:`show`.

    Only the agents that matter get a pane (the entry agent, the compared agent, and
    every agent the run reaches), so two sides fit next to each other.

    Args:
        key: ``A`` or ``B``.
    """

    def __init__(self, key: str, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="compare-side")
        self.key = key
        self._title = Static(classes="side-title")
        side = key.lower()
        self._path = HandoffPath(id=f"path-{side}")
        self._grid = PaneGrid(id=f"panes-{side}", classes="side-panes")
        self._timeline = Timeline(id=f"timeline-{side}")
        self._diff = Static(classes="side-diff")
        self._panes: dict[str, AgentPane] = {}

    def compose(self) -> ComposeResult:
        yield self._title
        yield self._path
        yield self._grid
        yield self._timeline
        yield self._diff

    def on_mount(self) -> None:
        self._timeline.border_title = f"{self.key} timeline"

    def ensure_panes(self, agents: list[str]) -> None:
        """Give each of ``agents`` a pane (in this order after those already shown)."""
        new = [AgentPane(name) for name in dict.fromkeys(agents) if name not in self._panes]
        if not new:
            return
        for pane in new:
            self._panes[pane.agent] = pane
        self._grid.mount_all(new)
        self._grid.fit(self._grid.size.width, self._grid.size.height)

    def show(self, view: RunView, title: RenderableType, diff: Text) -> None:
        """Redraw from ``view``; ``title`` and ``diff`` come from the screen, which sees both sides."""
        self.ensure_panes(view.path)
        active = set(view.active_agents)
        for name, pane in self._panes.items():
            agent = view.agents.get(name)
            if agent is not None:
                pane.show(agent, active=name in active, breakpoint=False)
        self._title.update(title)
        self._path.show(view.hops, view.handoffs, view.pending_handoff, active)
        self._timeline.show(view.steps, view.elapsed())
        self._diff.update(diff)  # always shown, at a fixed height, so both sides stay aligned
