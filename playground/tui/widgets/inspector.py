"""The inspector: an edge's payload (a handoff's context, a delegation's task, a stage's output)
as typed fields, or the details of a selected step."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from playground.spec.load import System
from playground.tui.state import HandoffView, Step


class Inspector(Static):
    """Shows a :class:`HandoffView` (:meth:`show_handoff`) or a :class:`Step` (:meth:`show_step`)."""

    _empty = False
    """Shows the empty hint now (the screen asks again on every redraw: nothing to do then)."""

    def show_empty(self) -> None:
        if self._empty:
            return
        self.border_title = "inspector"
        self.update(
            Text(
                "Handoff contexts and step details show here.\n"
                "Select a step in the timeline, or a handoff in the path.",
                "dim",
            )
        )
        self._empty = True

    def show_handoff(self, handoff: HandoffView, system: System) -> None:
        # Short, so the title shows whole beside its step number; the body says more.
        state = "held" if handoff.pending else ("edited" if handoff.edited else "delivered")
        self._empty = False
        number = f"step {handoff.step} · " if handoff.step is not None else ""
        self.border_title = f"{number}{handoff.kind} {handoff.source} → {handoff.target} · {state}"
        table = Table(show_edge=False, box=None, padding=(0, 1), expand=True, header_style="bold")
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("type", style="cyan", no_wrap=True)
        table.add_column("value", overflow="fold", ratio=1)
        for name, type_name, value in handoff.typed_fields(system):
            # Text, not markup: a type such as list[str] would read as a style tag and vanish.
            table.add_row(Text(name), Text(type_name), Text(value))
        # Token figures are estimates (about four characters a token, no tokenizer): ≈ says so.
        if handoff.kind != "handoff":
            # A worker and a stage get only this payload: no history goes with it.
            receives = "the worker receives" if handoff.kind == "delegation" else "the next stage receives"
            sizes = Text.assemble(
                ("payload ", "dim"),
                (f"≈{handoff.payload_tokens} tok", "bold green"),
                (f" · {receives} only this", "dim"),
            )
        else:
            history = handoff.history_tokens
            if history is None:
                history = handoff.history_estimate
            sizes = Text.assemble(
                ("payload ", "dim"),
                (f"≈{handoff.payload_tokens} tok", "bold green"),
                (" · full history ", "dim"),
                (f"≈{history} tok", "bold"),
                (f" · history policy: {handoff.history}", "dim"),
            )
        schema = Text.assemble(("schema ", "dim"), (handoff.schema, "cyan"))
        parts: list[RenderableType] = [table, Text(), sizes, schema]
        if handoff.edited and not handoff.pending:
            parts.append(Text("delivered as the operator edited it", "yellow"))
        if handoff.pending:
            retry = "" if handoff.kind == "stage" else " · r retry"
            parts.append(Text(f"e edit · s deliver and step · c continue{retry}", "yellow"))
        self.update(Group(*parts))

    def show_step(self, step: Step) -> None:
        if step.handoff is not None:
            return
        self._empty = False
        kind = step.kind.replace("_", " ")
        # The engine's step number, the one fork takes; rows that are no step get none.
        self.border_title = f"step {step.step} · {kind}" if step.step is not None else kind
        table = Table(show_edge=False, show_header=False, box=None, padding=(0, 1), expand=True)
        table.add_column("name", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold", ratio=1)
        table.add_row("what", step.label)
        latency = step.latency_ms
        if latency is not None and step.end != step.start and step.kind != "model_call":
            table.add_row("latency", f"{latency:.0f} ms")
        for name, value in step.detail:
            table.add_row(name, value)
        self.update(table)
