"""The grid of agent panes: fills the space it has, and scrolls when panes would get too short.

When the panes do not all fit (four agents at 80x24 leave room for one and a half), the
grid scrolls to the panes of the agents handling the request whenever those change, the
way a debugger follows the current line: the active pane is on screen without the
operator looking for it, and a pane they scrolled to stays until the next agent starts.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.containers import VerticalScroll
from textual.events import Resize
from textual.geometry import Region

from playground.tui.widgets.agent_pane import AgentPane

PANE_MIN_ROWS = 9
"""Panes never get shorter than this; with many agents the grid scrolls instead."""
PANE_MIN_COLUMNS = 32
"""Panes never get narrower than this; the grid uses fewer columns instead."""


class PaneGrid(VerticalScroll, can_focus=False):
    """A scrolling grid whose columns and row height follow its own size (focus goes to its panes)."""

    _fitted: tuple[int, int] = (0, 0)
    _following: tuple[str, ...] = ()
    """The agents whose panes the grid keeps in view (those handling the request)."""

    def on_resize(self, event: Resize) -> None:
        self.fit(event.size.width, event.size.height)
        self.call_after_refresh(self._scroll_to_followed)

    def fit(self, width: int, height: int) -> None:
        """Pick columns for ``width`` and a row height that fills ``height``."""
        count = len(self.children)
        if not width or not height or not count:
            return
        columns = max(1, min(count, width // PANE_MIN_COLUMNS, 3))
        rows = -(-count // columns)
        row_height = max(PANE_MIN_ROWS, height // rows)
        if (columns, row_height) != self._fitted:  # setting them again would lay the screen out
            self._fitted = (columns, row_height)
            self.styles.grid_size_columns = columns
            self.styles.grid_rows = str(row_height)

    def follow(self, agents: Sequence[str]) -> None:
        """Keep the panes of ``agents`` in view: scroll to them if they are not the ones
        followed already (no agents, between runs, leaves the grid where it is)."""
        following = tuple(agents)
        if following == self._following:
            return
        self._following = following
        if following:
            self.call_after_refresh(self._scroll_to_followed)  # after the layout that placed them

    def _scroll_to_followed(self) -> None:
        regions = [
            pane.virtual_region_with_margin
            for pane in self.children
            if isinstance(pane, AgentPane) and pane.agent in self._following
        ]
        if regions:
            # All of them when they fit; else the top of the first (origin_visible).
            self.scroll_to_region(Region.from_union(regions), animate=False, immediate=True)
