"""What every dialog shares: a message line that is always brought into view.

A ``.dialog`` scrolls when it does not fit the terminal (80x24), with its
``.dialog-buttons`` docked at the bottom (``app.tcss``). A message set below the fold
would be set but unseen, so the dialogs set theirs with :func:`say`.
"""

from __future__ import annotations

from rich.console import RenderableType
from textual.widgets import Static


def say(line: Static, message: RenderableType) -> None:
    """Show ``message`` in a dialog's message ``line`` and scroll the dialog to it once it
    is laid out (a long message wraps onto several rows; all of them come into view)."""
    line.update(message)
    if message:
        line.call_after_refresh(line.scroll_visible, animate=False)
