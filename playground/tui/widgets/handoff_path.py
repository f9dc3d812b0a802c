"""The handoff path so far (router → billing → …), each edge selectable."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.events import Click
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from playground.tui.state import HandoffView


class HandoffPath(Widget, can_focus=True):
    """One line: the agents in handling order; left/right select a handoff edge."""

    BINDINGS = [
        Binding("left", "move(-1)", "Previous handoff", show=False),
        Binding("right", "move(1)", "Next handoff", show=False),
    ]

    selected: reactive[int] = reactive(-1)
    """Index of the selected edge in the handoffs; -1 selects none."""

    class EdgeSelected(Message):
        """An edge of the path was selected."""

        def __init__(self, handoff: HandoffView) -> None:
            super().__init__()
            self.handoff = handoff

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._path: list[str] = []
        self._edges: list[HandoffView] = []
        self._pending: HandoffView | None = None
        self._spans: list[tuple[int, int]] = []

    def show(self, path: list[str], edges: list[HandoffView], pending: HandoffView | None) -> None:
        self._path, self._edges, self._pending = path, edges, pending
        if self.selected >= len(edges):
            self.selected = -1
        self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("path ", "dim")
        self._spans = []
        if not self._path:
            text.append("— (no run yet)", "dim")
            return text
        edge = 0
        for index, agent in enumerate(self._path):
            if index:
                start = len(text)
                style = "reverse bold" if edge == self.selected else "bold blue"
                arrow = " ⇢ " if edge < len(self._edges) else " → "
                label = arrow
                if edge < len(self._edges) and self._edges[edge].edited:
                    label = " ⇢✎ "
                text.append(label, style)
                self._spans.append((start, len(text)))
                edge += 1
            text.append(agent, "bold")
        if self._pending is not None:
            text.append(" ⇢ ", "bold yellow")
            text.append(f"{self._pending.target}?", "bold yellow")
            text.append("  (held before delivery)", "yellow")
        if self._edges:
            text.append("   ←/→ select a handoff", "dim")
        return text

    def action_move(self, delta: int) -> None:
        if not self._edges:
            return
        current = self.selected if self.selected >= 0 else (len(self._edges) if delta < 0 else -1)
        self.selected = max(0, min(len(self._edges) - 1, current + delta))
        self.post_message(self.EdgeSelected(self._edges[self.selected]))

    def on_click(self, event: Click) -> None:
        for index, (start, end) in enumerate(self._spans):
            if start - 3 <= event.x < end + 3 and index < len(self._edges):
                self.selected = index
                self.post_message(self.EdgeSelected(self._edges[index]))
                return
