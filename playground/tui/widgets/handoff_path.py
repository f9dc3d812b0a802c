"""The handoff path so far (router → billing → …), each edge selectable: a handoff, a
supervisor's delegation to a worker, a pipeline's stage transition."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.binding import Binding
from textual.events import Click
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from playground.tui.state import HandoffView, Hop


class HandoffPath(Widget, can_focus=True):
    """One line: the agents in handling order; left/right select a handoff edge.

    Agents that ran at once share a stop, in brackets (``lead → [prices ∥ reviews]``);
    the agents working now are highlighted, all of them.
    """

    COMPONENT_CLASSES = {"handoff-path--working"}
    """The agents handling the request now."""

    DEFAULT_CSS = """
    HandoffPath > .handoff-path--working {
        color: $accent;
        text-style: bold;
    }
    """

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
        self._hops: list[Hop] = []
        self._edges: list[HandoffView] = []
        self._pending: HandoffView | None = None
        self._working: frozenset[str] = frozenset()
        self._spans: list[tuple[int, int, int]] = []
        """``(start, end, edge index)`` of each selectable arrow, in cells of the line."""

    def show(
        self,
        hops: list[Hop],
        edges: list[HandoffView],
        pending: HandoffView | None,
        working: Iterable[str] = (),
    ) -> None:
        """Draw ``hops``; ``edges`` are the run's handoffs, ``working`` the agents handling it now."""
        self._hops, self._edges, self._pending = hops, edges, pending
        self._working = frozenset(working)
        if self.selected >= len(edges):
            self.selected = -1
        self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("path ", "dim")
        self._spans = []
        if not self._hops:
            text.append("— (no run yet)", "dim")
            return text
        working = self.get_component_rich_style("handoff-path--working", partial=True)
        for index, hop in enumerate(self._hops):
            if index:
                edge = next((i for i, e in enumerate(self._edges) if e is hop.handoff), -1)
                start = len(text)
                if edge >= 0:
                    label = " ⇢✎ " if self._edges[edge].edited else " ⇢ "
                    text.append(label, "reverse bold" if edge == self.selected else "bold blue")
                    self._spans.append((start, len(text), edge))
                else:
                    text.append(" → ", "bold blue")
            group = len(hop.agents) > 1
            if group:
                text.append("[", "dim")
            for position, agent in enumerate(hop.agents):
                if position:
                    text.append(" ∥ ", "dim")
                text.append(agent, working if agent in self._working else "bold")
            if group:
                text.append("]", "dim")
        if self._pending is not None:
            text.append(" ⇢ ", "bold yellow")
            text.append(f"{self._pending.target}?", "bold yellow")
            text.append("  (held before delivery)", "yellow")
        if any(len(hop.agents) > 1 for hop in self._hops):
            text.append("   ∥ ran at once", "dim")
        if self._edges:
            kinds = {edge.kind for edge in self._edges}
            text.append(f"   ←/→ select a {kinds.pop() if len(kinds) == 1 else 'path edge'}", "dim")
        return self._fitted(text)

    def _fitted(self, text: Text) -> Text:
        """``text`` cut to the width from the left, behind ``path …``: the newest hops (who
        handles the request now) matter more than the first ones."""
        width = self.content_size.width
        if not width or text.cell_len <= width:
            return text
        head = len("path ")
        cut = len(text) - (width - head - 1)
        if cut <= head:
            return text
        # At an edge, not inside a name: the line then reads "path … ⇢ legal ⇢ ...".
        cut = min((start for start, _, _ in self._spans if start >= cut), default=cut)
        fitted = Text(no_wrap=True, overflow="ellipsis")
        fitted.append("path ", "dim")
        fitted.append("…", "dim")
        fitted.append_text(text[cut:])
        shift = head + 1 - cut
        self._spans = [(start + shift, end + shift, edge) for start, end, edge in self._spans if start >= cut]
        return fitted

    def action_move(self, delta: int) -> None:
        if not self._edges:
            return
        current = self.selected if self.selected >= 0 else (len(self._edges) if delta < 0 else -1)
        self.selected = max(0, min(len(self._edges) - 1, current + delta))
        self.post_message(self.EdgeSelected(self._edges[self.selected]))

    def on_click(self, event: Click) -> None:
        for start, end, edge in self._spans:
            if start - 3 <= event.x < end + 3:
                self.selected = edge
                self.post_message(self.EdgeSelected(self._edges[edge]))
                return
