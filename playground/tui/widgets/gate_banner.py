"""What is about to happen while the run is held at a gate."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from playground.engine.controller import Gate

KIND_NAMES = {"model_call": "model call", "tool_call": "tool call", "handoff": "handoff"}


class GateBanner(Static):
    """One or two lines over the panes; hidden while nothing is held."""

    def show(self, gate: Gate | None, pending: str = "") -> None:
        self.display = gate is not None
        if gate is None:
            return
        text = Text(no_wrap=False)
        text.append(" ⏸ PAUSED ", "reverse bold yellow")
        # The step's number is the engine's: the timeline, the inspector and fork use it too.
        text.append(
            f" before step {gate.step}, {gate.agent}'s {KIND_NAMES.get(gate.kind, gate.kind)}", "bold"
        )
        text.append(f": {pending}" if pending else "")
        keys = "s step · c continue · a abort"
        if gate.kind != "model_call":
            keys = "e edit · " + keys
        if gate.can_retry:
            keys = "r retry · " + keys
        text.append(f"\n{keys}", "dim")
        self.update(text)
