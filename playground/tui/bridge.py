"""The one place engine events become Textual messages.

The engine calls :class:`Bridge` (a ``live`` sink of
:func:`playground.service.run_session`) for every event and every token
delta, on the app's event loop. Posting a message per delta would schedule
work per token (shared/FACTS.md: the UI falls behind and memory grows), so the
bridge buffers: consecutive deltas of one model call merge into one
:class:`~playground.tui.state.TextChunk`, and everything buffered goes out as
one :class:`Bridge.Batch` on a timer (``interval``), or at once when the run
stops at a gate or ends.
"""

from __future__ import annotations

import asyncio

from textual.message import Message
from textual.message_pump import MessagePump

from playground.engine import events as ev
from playground.engine.controller import Gate
from playground.tui.state import RunItem, TextChunk

FLUSH_INTERVAL_S = 0.04
"""How long token deltas and events may wait before the screen sees them."""


class Bridge:
    """Buffers a run's events and posts them to ``target`` in batches.

    Args:
        target: Receives :class:`Bridge.Batch` and :class:`Bridge.Held` messages.
        interval: Seconds between flushes while events arrive.
    """

    class Batch(Message):
        """Events of the run since the last batch, in order; token deltas coalesced."""

        def __init__(self, items: list[RunItem], bridge: Bridge) -> None:
            super().__init__()
            self.items = items
            self.bridge = bridge
            """The bridge of the run they belong to."""

    class Held(Message):
        """The run stopped at a gate and waits for the operator."""

        def __init__(self, gate: Gate, bridge: Bridge) -> None:
            super().__init__()
            self.gate = gate
            self.bridge = bridge

    def __init__(self, target: MessagePump, interval: float = FLUSH_INTERVAL_S) -> None:
        self.target = target
        self.interval = interval
        self._items: list[RunItem] = []
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, event: ev.Event) -> None:
        """The engine's live sink: buffer one event or token delta."""
        items = self._items
        if isinstance(event, ev.TokenDelta):
            last = items[-1] if items else None
            if isinstance(last, TextChunk) and last.step == event.step and last.agent == event.agent:
                items[-1] = TextChunk(last.agent, last.activation, last.step, last.text + event.text)
            else:
                items.append(TextChunk(event.agent or "", event.activation, event.step, event.text))
        else:
            items.append(event)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)

    def on_pause(self, gate: Gate) -> None:
        """The controller's ``on_pause``: show everything so far, then the held gate."""
        self.flush()
        self.target.post_message(self.Held(gate, self))

    def flush(self) -> None:
        """Post what is buffered now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._items:
            items, self._items = self._items, []
            self.target.post_message(self.Batch(items, self))

    def close(self) -> None:
        """Flush and stop the timer (the run ended)."""
        self.flush()
