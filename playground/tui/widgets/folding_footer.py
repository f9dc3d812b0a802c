"""A footer that folds: on a narrow terminal it shows the keys that fit, not a cut-off row.

Textual's ``Footer`` lays every shown binding out in one row and cuts what does not fit
(at 80 columns the run screen's row ended in ``a A▏``). This one leaves keys out, the
least needed first, until the row fits; the keys left out still work, and every one of
them is in the command palette (ctrl+p), whose key the footer always shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Footer

KEY_CELLS = 3
"""Cells a footer key takes besides its key and description: a space each side of the key,
one after the description (Textual's ``FooterKey`` padding)."""
PALETTE_CELLS = 2
"""What the palette key takes besides that: its left border and right padding."""


class FoldingFooter(Footer):
    """A ``Footer`` showing only the keys that fit its width.

    Args:
        fold: Actions whose keys are left out first, in this order, when the row is too
            wide; then keys are left out from the right.
    """

    def __init__(self, *, fold: Sequence[str] = (), id: str | None = None) -> None:
        super().__init__(id=id)
        self.fold = tuple(fold)
        self.folded: frozenset[str] = frozenset()
        """The actions whose keys the footer leaves out now."""
        self.idle: frozenset[str] = frozenset()
        """Actions with nothing to act on now (the screen says which): left out whatever the
        width. Their keys still work, and say why they do nothing."""

    def leave_out(self, idle: Iterable[str]) -> None:
        """Leave out the keys of ``idle`` actions (and show the others again)."""
        idle = frozenset(idle)
        if idle != self.idle:
            self.idle = idle
            if self.is_attached:
                self.call_later(self.recompose)  # in the footer's own message loop, as compose needs

    def _widths(self) -> dict[str, int]:
        """Cells of each shown action's key, in footer order (the palette's key left out)."""
        widths: dict[str, int] = {}
        for binding in (active.binding for active in self.screen.active_bindings.values()):
            if binding.show and binding.action not in widths and binding.action not in self.idle:
                key = self.app.get_key_display(binding)
                widths[binding.action] = cell_len(key) + cell_len(binding.description) + KEY_CELLS
        return widths

    def _palette_width(self) -> int:
        if not (self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE):
            return 0
        active = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if active is None:
            return 0
        binding = active.binding
        key = self.app.get_key_display(binding)
        return cell_len(key) + cell_len(binding.description) + KEY_CELLS + PALETTE_CELLS

    def _to_fold(self, width: int) -> frozenset[str]:
        widths = self._widths()
        room = width - self._palette_width()
        used = sum(widths.values())
        folded: list[str] = []
        order = [a for a in self.fold if a in widths] + [a for a in reversed(widths) if a not in self.fold]
        for action in order:
            if used <= room:
                break
            folded.append(action)
            used -= widths[action]
        return frozenset(folded)

    def compose(self) -> ComposeResult:
        width = self.size.width or self.app.size.width
        self.folded = self._to_fold(width)
        yield from _without(super().compose(), self.folded | self.idle)

    def on_resize(self, event: Resize) -> None:
        if self.is_attached and self._to_fold(event.size.width) != self.folded:
            self.call_after_refresh(self.recompose)


def _without(widgets: Iterable[Widget], actions: frozenset[str]) -> Iterable[Widget]:
    """``widgets`` but the footer keys of ``actions`` (a ``FooterKey`` names its ``action``)."""
    for widget in widgets:
        if getattr(widget, "action", None) not in actions:
            yield widget
