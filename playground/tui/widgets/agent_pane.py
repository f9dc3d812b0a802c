"""One agent's live pane: a header (name, version, model, state) and its bounded output."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
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


class AgentPane(Vertical, can_focus=True):
    """Shows one :class:`~playground.tui.state.AgentView`; the screen calls :meth:`show`.

    CSS classes: ``-active`` (handling the request now), ``-held`` (the run waits at its
    gate), ``-done``, ``-failed``, ``-break`` (has a breakpoint).
    """

    def __init__(self, agent: str) -> None:
        super().__init__(id=f"pane-{agent}", classes="agent-pane")
        self.agent = agent
        self._revision = -1
        self._header = Static(classes="pane-header")
        self._lines = Static(classes="pane-lines")
        self._stream = Static(classes="pane-stream")
        self._pending = Static(classes="pane-pending")
        self._body = VerticalScroll(self._lines, self._stream, self._pending, classes="pane-body")
        self._body.can_focus = False

    def compose(self) -> ComposeResult:
        yield self._header
        yield self._body

    def show(self, view: AgentView, *, active: bool, breakpoint: bool) -> None:
        """Redraw from ``view``; the lines only when they changed."""
        marker = "▶ " if active else ""
        self.border_title = f"{marker}{view.name}"
        subtitle = [view.version[:8]]
        if view.calls:
            subtitle.insert(0, f"${view.cost_usd:.6f}")
        if breakpoint:
            subtitle.insert(0, "● break")
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
        self._header.update(header)
        at_end = self._body.scroll_y >= self._body.max_scroll_y - 1
        if view.revision != self._revision:
            self._revision = view.revision
            text = Text()
            for index, line in enumerate(view.lines):
                if index:
                    text.append("\n")
                text.append(line.text, LINE_STYLES.get(line.kind, ""))
            self._lines.update(text)
        self._stream.update(Text(view.stream))
        self._stream.display = bool(view.stream)
        self._pending.update(Text(f"⏸ next: {view.pending}", "bold yellow") if view.pending else "")
        self._pending.display = bool(view.pending)
        if at_end:
            self._body.scroll_end(animate=False, immediate=False)
