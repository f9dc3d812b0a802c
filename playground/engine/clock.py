"""Where the engine gets the time and its ids: passed in, so a test can fix them."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Clock:
    """The time and id sources of a run.

    Attributes:
        wall: Unix time in seconds (events' ``ts``).
        perf: A monotonic clock in seconds (latencies).
        token_hex: ``n`` random bytes as hex (session and correlation ids).
        now: Unix time as a display reads it (a live run's elapsed time). A display reads
            it at every redraw, so a test clock that moves on each event keeps this still.
    """

    wall: Callable[[], float] = time.time
    perf: Callable[[], float] = time.perf_counter
    token_hex: Callable[[int], str] = secrets.token_hex
    now: Callable[[], float] = time.time


SYSTEM_CLOCK = Clock()
"""The real clock and random ids."""
