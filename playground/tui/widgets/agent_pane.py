"""One agent's live pane: a header (name, version, model, state) and its bounded output.

A pane is redrawn on every bridge flush while its agent streams (8 agents at 200
tokens/s each), so the hot path stays cheap: the streaming reply is wrapped
incrementally (only the new text, against the last unfinished row) and only the rows
that fit in the pane are handed to Textual; once those fill the pane, its height no
longer changes and an update repaints the pane without laying the screen out again.
Nothing is updated that did not change.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.events import Resize
from textual.widgets import Static

from playground.tui.state import AgentView

STATE_STYLES = {
    "idle": "dim",
    "waiting": "bold yellow",
    "thinking": "bold cyan",
    "calling a tool": "bold magenta",
    "handed off": "blue",
    "done": "bold green",
    "failed": "bold red",
    "aborted": "bold red",
    "interrupted": "bold yellow",
}

LINE_STYLES = {
    "incoming": "cyan",
    "text": "",
    "tool": "magenta",
    "result": "dim",
    "handoff": "bold blue",
    "error": "bold red",
    "note": "italic yellow",
    "operator": "bold yellow",
}


_WORD = re.compile(r"\S+\s*|\s+")


def wrap_rows(text: str, width: int) -> list[str]:
    """``text`` (one paragraph, no newlines) cut into rows of at most ``width`` cells.

    Greedy, word by word: the spaces after a word stay on its row, a word wider than a
    row is folded. A row boundary is where wrapping restarts, so wrapping the last row
    plus text appended later gives the same rows as wrapping everything again.
    """
    rows: list[str] = []
    row: list[str] = []
    used = 0
    for match in _WORD.finditer(text):
        word = match.group()
        bare = cell_len(word.rstrip())
        if row and used + bare > width:
            rows.append("".join(row))
            row, used = [], 0
        while bare > width:  # fold a word longer than a row
            cut = len(word)
            while cut > 1 and cell_len(word[:cut]) > width:
                cut -= 1
            rows.append(word[:cut])
            word = word[cut:]
            bare = cell_len(word.rstrip())
        row.append(word)
        used += cell_len(word)
    rows.append("".join(row))
    return rows


class StreamRows:
    """The streaming reply of one model call, wrapped as it arrives; keeps the last rows only."""

    def __init__(self, width: int, keep: int) -> None:
        self.width = width
        self.done: deque[str] = deque(maxlen=keep)
        """Finished rows, oldest first."""
        self.last = ""
        """The source text of the unfinished last row (new text continues it)."""
        self.count = 1
        """Rows so far (finished ones, including those dropped, and the last)."""

    def feed(self, text: str) -> None:
        paragraphs = (self.last + text).split("\n")
        for index, paragraph in enumerate(paragraphs):
            rows = wrap_rows(paragraph, self.width)
            if index < len(paragraphs) - 1:
                self.done.extend(rows)
                self.count += len(rows)
            else:
                self.done.extend(rows[:-1])
                self.count += len(rows) - 1
                self.last = rows[-1]

    def tail(self, rows: int) -> str:
        """The last ``rows`` rows, as lines."""
        shown = list(self.done)[-(rows - 1) :] if rows > 1 else []
        shown.append(self.last)
        return "\n".join(row.rstrip() for row in shown)


_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def pane_id(agent: str) -> str:
    """The widget id of ``agent``'s pane: ``pane-<agent>``, or for a name that is not an
    identifier (an observed framework's "OpenAI Agent") a safe spelling with a short hash."""
    if _ID.match(agent):
        return f"pane-{agent}"
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", agent)[:40]
    return f"pane-{safe}-{hashlib.sha1(agent.encode()).hexdigest()[:8]}"


class PaneBody(VerticalScroll, can_focus=False):
    """The scrolling part of a pane: follows the newest line unless the operator scrolled up.

    Whether to follow is decided when the scroll position moves (the geometry is current
    then), not when lines are added (the new lines are not laid out yet), and the scroll to
    the end happens once the layout that changed the content's height is done. Scrolling
    when the lines are added instead raced the layout, so a pane could stop short of its
    last lines; :meth:`Widget.anchor` would settle that but pushes short content to the
    bottom of the pane.
    """

    follow: bool = True
    """Keep the last line in view (False once the operator scrolls away from the end)."""

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.follow = new_value >= self.max_scroll_y - 1

    def watch_virtual_size(self) -> None:
        # Called from the layout that measured the new content: scroll when it is done.
        self._follow_end()

    def on_resize(self, event: Resize) -> None:
        self._follow_end()

    def _follow_end(self) -> None:
        if self.follow:
            self.call_after_refresh(self._scroll_to_end)

    def _scroll_to_end(self) -> None:
        if self.follow:  # the operator may have scrolled up in the meantime
            self.scroll_end(animate=False, immediate=True)


class AgentPane(Vertical, can_focus=True):
    """Shows one :class:`~playground.tui.state.AgentView`; the screen calls :meth:`show`.

    CSS classes: ``-active`` (handling the request now), ``-held`` (the run waits at its
    gate), ``-done``, ``-failed``, ``-break`` (has a breakpoint).
    """

    def __init__(self, agent: str) -> None:
        super().__init__(id=pane_id(agent), classes="agent-pane")
        self.agent = agent
        self._view: AgentView | None = None
        self._revision = -1
        self._drawn: tuple[object, ...] = ()
        self._rows: StreamRows | None = None
        self._rows_of: tuple[AgentView, int] | None = None
        """The view and stream epoch ``_rows`` wrap."""
        self._streamed = 0
        self._stream_height = -1
        self._pending_text = ""
        self._header = Static(classes="pane-header")
        self._lines = Static(classes="pane-lines")
        self._stream = Static(classes="pane-stream")
        self._pending = Static(classes="pane-pending")
        self._body = PaneBody(self._lines, self._stream, self._pending, classes="pane-body")

    def compose(self) -> ComposeResult:
        yield self._header
        yield self._body

    def show(self, view: AgentView, *, active: bool, breakpoint: bool, budget: str = "") -> None:
        """Redraw from ``view``: only what changed, and the screen's layout only when a height did.

        ``budget``: the agent's budget meter, when it declares a budget."""
        fresh = view is not self._view
        self._view = view
        subtitle = [view.version[:8]]
        if budget:
            subtitle.insert(0, budget)
        if view.calls:
            subtitle.insert(0, f"${view.cost_usd:.6f}")
        if breakpoint:
            subtitle.insert(0, "● break")
        drawn = (active, breakpoint, view.name, view.state, view.model, bool(view.pending), *subtitle)
        if drawn != self._drawn:
            self._drawn = drawn
            marker = "▶ " if active else ""
            self.border_title = f"{marker}{view.name}"
            self.border_subtitle = " · ".join(s for s in subtitle if s)
            self.set_class(active, "-active")
            self.set_class(bool(view.pending), "-held")
            self.set_class(view.state == "done", "-done")
            self.set_class(view.state in ("failed", "aborted"), "-failed")
            self.set_class(breakpoint, "-break")
            header = Text.assemble(
                (f" {view.state.upper()} ", f"reverse {STATE_STYLES.get(view.state, '')}"),
                " ",
                (view.model, "bold"),
            )
            header.no_wrap = True
            header.overflow = "ellipsis"
            self._header.update(header, layout=False)  # one row, always
        if fresh or view.revision != self._revision:
            self._revision = view.revision
            text = Text()
            for index, line in enumerate(view.lines):
                if index:
                    text.append("\n")
                text.append(line.text, LINE_STYLES.get(line.kind, ""))
            self._lines.update(text)
        self._show_stream(view)
        if view.pending != self._pending_text or fresh:
            self._pending_text = view.pending
            self._pending.update(Text(f"⏸ next: {view.pending}", "bold yellow") if view.pending else "")
            self._pending.display = bool(view.pending)

    def _show_stream(self, view: AgentView) -> bool:
        """Show the rows of the streaming reply that fit; True when the stream's height changed."""
        region = self._body.scrollable_content_region
        width, rows = region.width, region.height
        if not width or not rows:  # not laid out yet: Textual wraps it, on_resize redraws
            width, rows = 10_000, 1_000
        current = self._rows
        new = view.streamed - self._streamed
        if (
            current is None
            or self._rows_of != (view, view.stream_epoch)
            or current.width != width
            or current.done.maxlen != rows
            or new < 0
            or new > len(view.stream)
        ):
            current = self._rows = StreamRows(width, keep=rows)
            self._rows_of = (view, view.stream_epoch)
            current.feed(view.stream)
        elif new:
            current.feed(view.stream[-new:])
        elif self._stream_height >= 0:
            return False  # nothing new
        self._streamed = view.streamed
        height = min(current.count, rows) if view.stream else 0
        changed = height != self._stream_height or width == 10_000
        self._stream_height = height
        self._stream.update(Text(current.tail(rows)) if view.stream else "", layout=changed)
        self._stream.display = bool(view.stream)
        return changed

    def on_resize(self, event: Resize) -> None:
        if self._view is not None:
            self.call_after_refresh(self._redraw_stream)

    def _redraw_stream(self) -> None:
        if self._view is not None:
            self._show_stream(self._view)
