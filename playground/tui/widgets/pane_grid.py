"""The grid of agent panes: fills the space it has, and scrolls when panes would get too short."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.events import Resize

PANE_MIN_ROWS = 9
"""Panes never get shorter than this; with many agents the grid scrolls instead."""
PANE_MIN_COLUMNS = 32
"""Panes never get narrower than this; the grid uses fewer columns instead."""


class PaneGrid(VerticalScroll, can_focus=False):
    """A scrolling grid whose columns and row height follow its own size (focus goes to its panes)."""

    _fitted: tuple[int, int] = (0, 0)

    def on_resize(self, event: Resize) -> None:
        self.fit(event.size.width, event.size.height)

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
