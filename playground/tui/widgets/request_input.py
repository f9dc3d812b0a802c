"""The run screen's request box: letters typed here are text, never commands.

A terminal sends esc as a lone byte, and esc followed by a key as that key with alt: when
esc and a letter are typed in quick succession (Textual waits 100 ms, ``ESCDELAY``, to tell
them apart), the box receives ``alt+s``, whose character is ``s``, and a plain ``Input``
would type it. Here such a key means what the operator typed: leave the box, then the
letter (:class:`RequestInput.KeyAfterEscape`); the screen decides what the letter does.
"""

from __future__ import annotations

from textual.events import Key
from textual.message import Message
from textual.widgets import Input


def key_after_escape(key: str) -> str | None:
    """The letter or digit of ``alt+s`` or ``alt+shift+b`` (``s``, ``B``); None for other keys."""
    modifiers, _, name = key.rpartition("+")
    if modifiers not in ("alt", "alt+shift") or len(name) != 1 or not name.isascii() or not name.isalnum():
        return None
    return name.upper() if modifiers == "alt+shift" else name


class RequestInput(Input):
    """An ``Input`` that reads esc-then-a-letter, sent as alt+letter, as leaving the box with that key."""

    class KeyAfterEscape(Message):
        """Esc then ``key`` arrived together (as alt+key): the operator left the box and pressed ``key``."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def on_key(self, event: Key) -> None:
        key = key_after_escape(event.key)
        if key is None:
            return
        # Before Input's own handler, which would type the letter.
        event.prevent_default()
        event.stop()
        self.post_message(self.KeyAfterEscape(key))
