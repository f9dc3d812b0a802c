"""What is about to happen while the run is held at a gate."""

from __future__ import annotations

import json

from rich.text import Text
from textual.widgets import Static

from playground.engine.controller import Gate
from playground.tui.state import possessive

KIND_NAMES = {"model_call": "model call", "tool_call": "tool call", "handoff": "handoff"}


class GateBanner(Static):
    """One or two lines over the panes; hidden while nothing is held."""

    def show(self, gate: Gate | None, pending: str = "") -> None:
        self.display = gate is not None
        if gate is None:
            return
        if gate.payload.get("approval"):
            self.update(_approval(gate))
            return
        text = Text(no_wrap=False)
        text.append(" ⏸ PAUSED ", "reverse bold yellow")
        # The step's number is the engine's: the timeline, the inspector and fork use it too.
        text.append(
            f" before step {gate.step}, {possessive(gate.agent)} {KIND_NAMES.get(gate.kind, gate.kind)}",
            "bold",
        )
        text.append(f": {pending}" if pending else "")
        keys = "s step · c continue · a abort"
        if gate.kind != "model_call" or gate.payload.get("instructions") is not None:
            keys = "e edit · " + keys
        if gate.kind == "model_call":
            keys = "i what the model sees · " + keys
        if gate.can_retry:
            keys = "r retry · " + keys
        text.append(f"\n{keys}", "dim")
        self.update(text)


def call_text(gate: Gate, limit: int = 200) -> str:
    """A held tool call as one line: ``refund(order_id=A-17, amount=40)``, cut at ``limit``."""
    args = gate.payload.get("args") or {}
    fields = ", ".join(
        f"{name}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for name, value in args.items()
    )
    text = " ".join(f"{gate.payload.get('tool')}({fields})".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _approval(gate: Gate) -> Text:
    """A call of an ``approval: required`` tool: the run waits for the operator's verdict."""
    text = Text(no_wrap=False)
    text.append(" ⏸ APPROVAL NEEDED ", "reverse bold magenta")
    text.append(f" before step {gate.step}, {gate.agent} wants to run:\n", "bold")
    text.append(call_text(gate))
    text.append("\ny/enter approve · e edit the arguments · n deny with a reason · a abort", "dim")
    return text
