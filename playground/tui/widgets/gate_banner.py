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

    def show(self, gate: Gate | None, pending: str = "", what: str | None = None) -> None:
        """Show ``gate`` (hide when None); ``what``: what it holds, when the gate's kind says
        less (a supervisor's ``delegation`` is held at a tool call's gate)."""
        self.display = gate is not None
        if gate is None:
            return
        if gate.payload.get("approval"):
            self.update(_approval(gate))
            return
        if gate.failure is not None:
            self.update(_failed(gate, self.size.width))
            return
        text = Text(no_wrap=False)
        text.append(" ⏸ PAUSED ", "reverse bold yellow")
        # The step's number is the engine's: the timeline, the inspector and fork use it too.
        text.append(
            f" before step {gate.step}, {_held_thing(gate, what or _kind_name(gate))}",
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


def _held_thing(gate: Gate, what: str) -> str:
    """``billing's tool call``; a parallel group's output: ``the stage output of a ∥ b``."""
    source = str(gate.payload.get("source") or "")
    if gate.payload.get("stage") and " ∥ " in source:
        return f"the {what} of {source}"
    return f"{possessive(gate.agent)} {what}"


def _kind_name(gate: Gate) -> str:
    if gate.payload.get("stage"):
        return "stage output"  # a pipeline stage's output, held before the next stage gets it
    return KIND_NAMES.get(gate.kind, gate.kind)


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


FAILED_TITLES = {
    "model_call": ("CALL FAILED", "model call failed for good"),
    "invalid_output": ("INVALID OUTPUT", "output is still invalid"),
    "invalid_calls": ("INVALID CALLS", "calls are still refused"),
    "max_turns": ("OUT OF TURNS", "calls hit limits.max_turns"),
    "loop": ("LOOP", "calls go round (on_loop: stop)"),
    "checkpoint": ("REJECTED", "output was rejected for good"),
    "budget": ("OVER BUDGET", "next call would pass a budget"),
    "error": ("ERROR", "step failed"),
}
"""Per kind of failure held before the run fails: the banner's title and what happened."""


def _failed(gate: Gate, width: int) -> Text:
    """A failure held before the run fails (an ``error:*`` breakpoint): four lines at most,
    the error cut to the two in the middle, then what each key does (``retry`` differs by
    kind, and where nothing can be retried the banner says why)."""
    title, what = FAILED_TITLES.get(str(gate.payload.get("failed", "model_call")), FAILED_TITLES["error"])
    text = Text(no_wrap=False)
    text.append(f" ✖ {title} ", "reverse bold red")
    text.append(f" before step {gate.step}: {possessive(gate.agent)} {what}\n", "bold")
    failure = " ".join((gate.failure or "").split())
    limit = max(40, 2 * (width - 2) - 1) if width > 0 else 240
    text.append(failure if len(failure) <= limit else failure[: limit - 1] + "…", "red")
    if gate.can_retry:
        retry = gate.payload.get("on_retry") or "retry the call"
        text.append(f"\nr {retry} · c or s: the run fails · a abort", "dim")
    else:
        why = gate.payload.get("no_retry") or "nothing to retry"
        text.append(f"\nno retry ({why}) · c or s: the run fails · a abort", "dim")
    return text
