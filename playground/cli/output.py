"""What runs print: a line per step as it happens, and the summary after.

Shared by ``run``, ``fork``, ``replay`` and ``sessions show`` (the CLI's view of the
event stream). Rich is imported only when something is printed.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, assert_never

if TYPE_CHECKING:
    from playground.engine.events import Event


def console(*, stderr: bool = False) -> Any:
    """A Rich console whose printed text has every secret (:mod:`playground.redact`) scrubbed:
    a model or a tool may echo a key, and the terminal is no place for it either."""
    from rich.console import Console

    from playground import redact

    class Scrubbed(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:
            cleaned = [
                redact.scrub(o, replacement="\\[redacted]") if isinstance(o, str) else o for o in objects
            ]
            super().print(*cleaned, **kwargs)

    made = Scrubbed(stderr=stderr, highlight=False)
    if not made.is_terminal and not os.environ.get("COLUMNS", "").strip():
        # Piped or redirected: lines as long as they are. Rich would hard-wrap at 80
        # columns and cut table cells (ids too) with an ellipsis.
        made.width = PIPED_WIDTH
    return made


PIPED_WIDTH = 100_000
"""The width the CLI prints at when its output is not a terminal (no wrapping, no cutting)."""


def print_table(out: Any, table: Any) -> None:
    """``table`` when its words fit ``out``'s width; narrower, one block per row instead (its
    first cell, then ``column value`` pairs that wrap as text does), so an 80-column
    terminal never squeezes a table into one-letter columns or cuts ids."""
    from rich.measure import Measurement

    # Measured at any width (at the console's own, the measure is capped to it); the minimum
    # is each column at its longest word: below it Rich breaks words and cuts cells.
    headers = [str(column.header) for column in table.columns]
    columns = [list(column.cells) for column in table.columns]
    if Measurement.get(out, out.options.update_width(PIPED_WIDTH), table).minimum <= out.width:
        with out.capture() as drawn:
            out.print(table)
        cut = "…" in drawn.get() and not any("…" in str(cell) for column in columns for cell in column)
        if not cut:  # Rich squeezes to the minimum, then cuts cells with an ellipsis
            out.print(table)
            return
    if table.title:
        out.print(f"[bold]{table.title}[/]")
    for row in range(table.row_count):
        cells = [" ".join(str(column[row]).split("\n")) for column in columns]
        lead = 0
        while lead < len(cells) - 1 and not headers[lead]:  # a marker column (●) goes first
            lead += 1
        head = " ".join(c for c in cells[: lead + 1] if c)
        rest = "  ".join(
            f"[dim]{h}[/] {c}" for h, c in zip(headers[lead + 1 :], cells[lead + 1 :], strict=True) if c
        )
        out.print(f"[bold]{head}[/]  {rest}" if rest else f"[bold]{head}[/]")


def scrubbed_json(data: Any) -> str:
    """``data`` as one line of JSON, secrets scrubbed (what ``--json`` prints)."""
    from playground import redact

    return redact.scrub(json.dumps(data, ensure_ascii=False))


class StepPrinter:
    """Prints one line per step as the run goes (the CLI's view of the event stream)."""

    def __init__(self) -> None:
        self.console = console(stderr=True)

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if line:
            self.console.print(line)


def describe(event: Event) -> str | None:
    """One line for a step worth printing; None for the events that are not one."""
    from rich.markup import escape

    from playground.engine import events as ev

    who = f"[bold]{escape(event.agent or '')}[/]"
    match event:
        case ev.AgentStarted():
            return f"{who} [dim]started ({event.reason})[/]"
        case ev.ModelResponded():
            what = ", ".join(c["name"] for c in event.tool_calls) or "reply"
            return (
                f"  {who} {escape(event.model)} -> {escape(what)} "
                f"[dim]{event.latency_ms:.0f} ms, {event.input_tokens}+{event.output_tokens} tok, "
                f"${event.cost_usd:.6f}[/]"
            )
        case ev.ModelFailed():
            return f"  {who} [red]{escape(event.error_type)}[/]: {escape(event.message)}"
        case ev.RetryScheduled():
            return f"  {who} [yellow]retry {event.attempt} in {event.delay_s:.2f} s[/]"
        case ev.FallbackUsed():
            return f"  {who} [yellow]fallback {escape(event.from_model)} -> {escape(event.to_model)}[/]"
        case ev.ToolReturned():
            result = escape((event.error or event.result)[:80])
            colour = "red" if event.error else "dim"
            return f"  {who} tool {escape(event.tool)} [{colour}]-> {result}[/]"
        case ev.HandoffDelivered():
            return (
                f"  {who} [cyan]handoff -> {escape(event.target)}[/] "
                f"{escape(json.dumps(event.payload, ensure_ascii=False)[:100])} "
                f"[dim]{event.payload_tokens} tok[/]"
            )
        case ev.PermissionDenied():
            allowed = escape(", ".join(event.allowed))
            return f"  {who} [red]permission denied[/]: {escape(event.tool)} (allowed: {allowed})"
        case ev.ValidationFailed():
            return f"  {who} [red]invalid {escape(event.what)}[/]: {escape(event.errors)}"
        case ev.LoopDetected():
            return f"  [red]loop detected[/]: {escape(event.reason)} -> {escape(event.policy)}"
        case ev.GuardAllowed():
            return None
        case ev.GuardRewrote():
            return f"  {who} guard {escape(event.guard)} rewrote {', '.join(event.changed) or 'the history'}"
        case ev.ApprovalRequested():
            return f"  [yellow]approval needed[/]: {who} {escape(event.tool)}({escape(str(event.args))})"
        case ev.ApprovalDecided():
            why = f": {escape(event.reason)}" if event.reason else ""
            return f"  {who} {escape(event.tool)} {event.verdict}{' (edited)' if event.edited else ''}{why}"
        case ev.GuardDenied():
            return f"  [red]guard denied[/] {who} -> {escape(event.target)}: {escape(event.reason)}"
        case ev.BudgetExceeded():
            return (
                f"  [red]budget exceeded[/]: {who} {event.scope} {event.limit} = {event.allowed:g}"
                f" (spent {event.spent:g}) -> {escape(event.policy)}"
            )
        case ev.CheckpointReviewed():
            return f"  {who} reviewed {escape(event.worker)}: {event.verdict} {escape(event.feedback)}"
        case (
            ev.RunStarted()
            | ev.ModelRequested()
            | ev.TokenDelta()
            | ev.ToolCalled()
            | ev.Escalated()
            | ev.AgentFinished()
            | ev.OperatorActed()
            | ev.RunFinished()
            | ev.RunFailed()
        ):
            return None  # the summary after the run says how it ended
        case _:
            assert_never(event)


def print_summary(result: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    colour = {"completed": "green", "failed": "red"}.get(result.status, "yellow")
    out.print(
        f"\n[bold]{escape(result.system)}[/] session [bold]{result.session_id}[/] "
        f"[{colour}]{result.status}[/]  path: {' → '.join(result.path) or '-'}"
    )
    table = Table(show_edge=False, header_style="bold")
    for column in ("agent", "calls", "tokens in", "tokens out", "cost (USD)", "latency (ms)"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    for name, totals in result.per_agent.items():
        table.add_row(
            name,
            str(totals.calls),
            str(totals.input_tokens),
            str(totals.output_tokens),
            f"{totals.cost_usd:.6f}",
            f"{totals.latency_ms:.0f}",
        )
    tokens = result.tokens
    table.add_row(
        "[bold]total[/]",
        str(sum(t.calls for t in result.per_agent.values())),
        str(tokens["input"]),
        str(tokens["output"]),
        f"{result.cost_usd:.6f}",
        f"{result.latency_ms:.0f}",
    )
    out.print(table)
    if result.output:
        out.print(f"\n[bold]output[/]\n{escape(result.output)}")
    if result.error:
        error = result.error
        out.print(f"\n[red bold]{escape(error['type'])}[/]: {escape(error['message'])}")
        out.print(
            f"  origin: [bold]{escape(str(error.get('origin') or '-'))}[/]   "
            f"manifested: [bold]{escape(str(error.get('manifested') or '-'))}[/]"
        )
