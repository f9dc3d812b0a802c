"""The blame view: where a failed run's failure started, hop by hop, from origin to manifestation."""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from playground.tui.state import Blame, BlameHop

KIND_NAMES = {
    "request": "request",
    "input": "in",
    "output": "out",
    "handoff": "handoff",
    "tool_args": "args",
}


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def payload_text(hop: BlameHop, field: str, limit: int = 600) -> Text:
    """The hop's payload with ``field`` highlighted (its key and value), or said absent."""
    text = Text()
    if hop.payload is None:
        text.append("(payload not recorded)", "dim")
    else:
        body = " ".join(_json(hop.payload).split())
        if len(body) > limit:
            body = body[: limit - 1] + "…"
        text.append(body)
        leaf = field.rsplit(".", 1)[-1]
        text.highlight_regex(
            rf'"{re.escape(leaf)}"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}}\]]*)', "bold reverse green"
        )
    if not hop.present:
        text.append(f"  ✘ {field} absent", "bold red")
    return text


class BlameChain(Static, can_focus=True):
    """Shows a :class:`~playground.tui.state.Blame`; up/down pick a hop, enter goes to its step.

    The screen calls :meth:`show`; the chosen hop comes back as :class:`HopChosen`.
    """

    BINDINGS = [
        Binding("up", "move(-1)", "Previous hop", show=False),
        Binding("down", "move(1)", "Next hop", show=False),
        Binding(
            "enter,g", "choose", "Go to step", id="blame.go", tooltip="Select the hop's step in the timeline"
        ),
    ]

    cursor: reactive[int] = reactive(0)
    """The selected hop (starts on the origin's)."""

    class HopChosen(Message):
        """The operator asked to see a hop's step in the timeline."""

        def __init__(self, hop: BlameHop) -> None:
            super().__init__()
            self.hop = hop

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._blame: Blame | None = None

    def show(self, blame: Blame | None) -> None:
        """Show ``blame`` (hidden when None); only redraws when it changed."""
        if blame is self._blame:
            return
        self._blame = blame
        self.display = blame is not None
        if blame is not None:
            self.cursor = next((i for i, hop in enumerate(blame.hops) if hop.origin), 0)
            self._draw()

    @property
    def hop(self) -> BlameHop | None:
        blame = self._blame
        if blame is None or not blame.hops:
            return None
        return blame.hops[min(self.cursor, len(blame.hops) - 1)]

    def watch_cursor(self) -> None:
        self._draw()

    def action_move(self, delta: int) -> None:
        if self._blame is not None and self._blame.hops:
            self.cursor = max(0, min(len(self._blame.hops) - 1, self.cursor + delta))

    def action_choose(self) -> None:
        hop = self.hop
        if hop is not None:
            self.post_message(self.HopChosen(hop))

    def _draw(self) -> None:
        blame = self._blame
        if blame is None:
            return
        where = f"origin {blame.origin} → {blame.manifested or '?'}" if blame.traced else "origin not traced"
        self.border_title = f"blame · {blame.field} · {where}"
        lines: list[RenderableType] = []
        if not blame.traced and blame.reason:
            lines.append(Text(blame.reason, "italic yellow"))
        width = max((len(h.agent) for h in blame.hops), default=0)
        numbered = any(h.step is not None for h in blame.hops)
        for index, hop in enumerate(blame.hops):
            row = Text(no_wrap=True, overflow="ellipsis")
            row.append("▸ " if index == self.cursor else "  ", "bold")
            if numbered:
                row.append(f"{hop.step:>3} " if hop.step is not None else "  · ", "dim")
            row.append(f"{hop.agent:<{width}} ", "bold")
            row.append(f"{KIND_NAMES.get(hop.kind, hop.kind):<7} ", "dim")
            if hop.origin:
                row.append("origin ", "bold reverse red")
            if hop.present:
                row.append("✔ ", "green")
                row.append(" ".join(_json(hop.value).split())[:60], "bold green")
            else:
                row.append("✘ absent", "bold red")
            if index == self.cursor:
                row.stylize("on grey23")
            lines.append(row)
        chosen = self.hop
        if chosen is not None:
            kind = KIND_NAMES.get(chosen.kind, chosen.kind)
            lines.append(Text(f"{chosen.agent} {kind}:" if chosen.kind != "request" else "request:", "dim"))
            lines.append(payload_text(chosen, blame.field))
        lines.append(Text("↑↓ hop · enter its step · then f forks", "dim"))
        self.update(Group(*lines))
