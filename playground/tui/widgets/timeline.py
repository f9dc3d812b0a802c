"""The trace timeline: every step of the run, nested, with a latency bar and its cost.

Each row starts with its step number, the one ``playground fork --at`` takes (model
calls, tool calls and delegations, handoffs; other rows have none). Bars share one
time axis, the run's: steps that ran at the same time have bars that overlap.

Drawn with the line API (only visible rows are rendered), so a session of
thousands of steps scrolls as cheaply as one of ten.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.binding import Binding
from textual.events import Click, Resize
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from playground.tui.state import Step

ICONS = {
    "activation": "▸",
    "model_call": "◆",
    "tool_call": "⚙",
    "handoff": "⇢",
    "retry": "↻",
    "fallback": "⤳",
    "validation": "✘",
    "permission": "⛔",
    "loop": "⟲",
    "budget": "$",
    "guard": "⛨",
    "approval": "✋",
    "escalation": "⇑",
    "review": "✔",
    "operator": "⚑",
    "run": "■",
}
COST_MIN_WIDTH = 48
"""Narrower than this, rows leave out their cost (the inspector and the totals show it)."""
BAR_STYLES = {
    "activation": "blue",
    "model_call": "cyan",
    "tool_call": "magenta",
    "handoff": "bold blue",
    "operator": "yellow",
}


class Timeline(ScrollView, can_focus=True):
    """Rows of :class:`~playground.tui.state.Step`; up/down select, enter shows the step."""

    # Rows are cut to the width they have (render_line): nothing to scroll sideways.
    DEFAULT_CSS = """
    Timeline {
        overflow-x: hidden;
    }
    """

    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "choose", "Show step", show=False),
    ]

    cursor: reactive[int] = reactive(-1)
    """Index of the selected row; -1 follows the newest step."""

    class StepSelected(Message):
        """A step was selected."""

        def __init__(self, step: Step) -> None:
            super().__init__()
            self.step = step

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._steps: list[Step] = []
        self._t0 = 0.0
        self._t1 = 0.0
        self._chosen: Step | None = None
        """The selected row: rows of a branch running beside others may be added above it."""
        self._numbers = 0
        """Cells of the step number column (0: no row has a step number)."""
        self._numbered: tuple[int, int] = (0, 0)
        """``(id, length)`` of the rows ``_numbers`` was measured on."""
        self._all: list[Step] = []
        """Every row given to :meth:`show`; ``_steps`` are those the filter keeps."""
        self._keep: Callable[[Step], bool] | None = None
        """The filter (:meth:`filter`); None shows every row."""

    def show(self, steps: list[Step], span_s: float) -> None:
        """Redraw with ``steps``; the bars' scale spans ``span_s`` seconds of run time."""
        self._all = steps
        if self._keep is not None:
            keep = self._keep
            steps = [step for step in steps if keep(step)]
            self.border_subtitle = f"{len(steps)} of {len(self._all)} rows · ctrl+f"
        self._steps = steps
        if (id(steps), len(steps)) != self._numbered:  # rows are only ever added
            self._numbered = (id(steps), len(steps))
            last = max((s.step for s in steps if s.step is not None), default=0)
            self._numbers = len(str(last)) + 1 if last else 0
        chosen = self._chosen
        if (
            self.cursor >= 0
            and chosen is not None
            and (self.cursor >= len(steps) or steps[self.cursor] is not chosen)
        ):
            self.cursor = next((i for i in range(len(steps) - 1, -1, -1) if steps[i] is chosen), -1)
        if self.cursor >= len(steps):
            self.cursor = -1
        self._t0 = 0.0
        self._t1 = span_s
        self.virtual_size = Size(self.size.width, len(steps))
        if self.cursor == -1 and steps:
            # force: the scrollbar that allows scrolling appears only at the next layout, and the
            # run's last redraw comes before it (the newest rows would stay hidden).
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
        self.refresh()

    def filter(self, keep: Callable[[Step], bool] | None, query: str = "") -> None:
        """Show only the rows ``keep`` accepts (None: every row); ``query`` is said in the border."""
        self._keep = keep
        self.border_title = f"timeline: {query}" if keep is not None and query else "timeline"
        if keep is None:
            self.border_subtitle = ""
        self.show(self._all, self._t1)

    def on_resize(self, event: Resize) -> None:
        # Following the newest step: stay at the end when the timeline gets shorter (the
        # inspector above it grew), else the newest rows end up below its bottom edge.
        if self.cursor == -1 and self._steps:
            self.call_after_refresh(
                self.scroll_to, y=self.max_scroll_y, animate=False, immediate=True, force=True
            )

    def watch_cursor(self, old: int, new: int) -> None:
        if 0 <= new < len(self._steps):
            self._chosen = self._steps[new]
            self._scroll_into_view(new)
        else:
            self._chosen = None
        self.refresh()

    def _scroll_into_view(self, row: int) -> None:
        top = int(self.scroll_y)
        height = self.size.height
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True, force=True)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True, force=True)

    def select(self, step: Step) -> None:
        """Put the cursor on ``step``'s row (and say it was selected)."""
        index = next((i for i, row in enumerate(self._steps) if row is step), -1)
        if index >= 0:
            self.cursor = index
            self.post_message(self.StepSelected(step))

    def action_move(self, delta: int) -> None:
        if not self._steps:
            return
        current = self.cursor if self.cursor >= 0 else len(self._steps)
        self.cursor = max(0, min(len(self._steps) - 1, current + delta))
        self.post_message(self.StepSelected(self._steps[self.cursor]))

    def action_first(self) -> None:
        if self._steps:
            self.cursor = 0
            self.post_message(self.StepSelected(self._steps[0]))

    def action_last(self) -> None:
        self.cursor = -1
        if self._steps:
            self.post_message(self.StepSelected(self._steps[-1]))

    def action_choose(self) -> None:
        if self._steps and self.cursor < len(self._steps):
            self.post_message(self.StepSelected(self._steps[self.cursor]))

    def on_click(self, event: Click) -> None:
        # The event's y counts from the widget's top edge, its border included: the rows
        # start below the border (None: the click was on the border).
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = int(self.scroll_y) + offset.y
        if 0 <= row < len(self._steps):
            self.cursor = row
            self.post_message(self.StepSelected(self._steps[row]))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width  # without the scrollbar
        row = int(self.scroll_y) + y
        if row >= len(self._steps):
            return Strip.blank(width, self.rich_style)
        step = self._steps[row]
        text = self._row(step, width)
        if row == self.cursor:
            text.stylize("reverse" if self.has_focus else "on grey23")
        segments = list(text.render(self.app.console))
        return Strip(segments).adjust_cell_length(width, self.rich_style).simplify()

    def _row(self, step: Step, width: int) -> Text:
        bar_width = max(6, min(30, width // 6))
        costs = width >= COST_MIN_WIDTH
        tail_width = bar_width + (18 if costs else 8)
        label_width = max(8, width - tail_width)
        colour = "red" if step.status == "failed" else ("" if step.status != "running" else "bold")
        label = Text(no_wrap=True, overflow="ellipsis")
        if self._numbers:
            number = "" if step.step is None else str(step.step)
            label.append(f"{number:>{self._numbers - 1}} ", "dim")
        label.append("  " * step.depth)
        icon = "✘" if step.kind == "review" and step.status == "failed" else ICONS.get(step.kind, "·")
        label.append(icon + " ", colour or BAR_STYLES.get(step.kind, "dim"))
        label.append(step.label, colour or ("bold" if step.kind == "activation" else ""))
        label.truncate(label_width, overflow="ellipsis", pad=True)
        span = max(self._t1 - self._t0, 1e-6)
        end = step.end if step.end is not None else self._t1
        first = int(max(0.0, step.start - self._t0) / span * bar_width)
        last = int(max(0.0, end - self._t0) / span * bar_width)
        first = min(first, bar_width - 1)
        last = max(first + 1, min(last, bar_width))
        bar_style = "red" if step.status == "failed" else BAR_STYLES.get(step.kind, "dim")
        char = "█" if step.end is None or step.end > step.start else "│"
        bar = Text(no_wrap=True)
        bar.append(" " * first)
        bar.append(char * (last - first) if char == "█" else char, bar_style)
        bar.truncate(bar_width, pad=True)
        latency = step.latency_ms
        ms = "…" if latency is None else (f"{latency:.0f} ms" if step.end != step.start else "")
        cost = f"${step.cost_usd:.6f}" if step.cost_usd else ""
        out = Text(no_wrap=True)
        out.append_text(label)
        out.append(" ")
        out.append_text(bar)
        out.append(f"{ms:>7}", "dim")
        if costs:
            out.append(f"{cost:>10}", "dim")
        return out
