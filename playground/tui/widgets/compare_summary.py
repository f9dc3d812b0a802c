"""The comparison's summary table: per input, both sides and the deltas."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

STATUS_STYLES = {"completed": "green", "failed": "bold red", "aborted": "bold red"}


def _signed(value: float, fmt: str, unit: str = "") -> Text:
    text = format(value, fmt)
    if not value or text.strip("-+0.") == "":
        return Text("=", "dim")
    return Text(("+" if value > 0 else "") + text + unit, "yellow")


def _tokens(side: dict[str, Any]) -> int:
    tokens = side["tokens"]
    return int(tokens["input"]) + int(tokens["output"])


class CompareSummary(VerticalScroll):
    """Hidden until an input is compared; then one A, B and Δ row per input.

    It scrolls (a scenario file's table is longer than a small terminal's summary).
    """

    def compose(self) -> ComposeResult:
        yield Static(id="compare-summary-table")

    def stored(self, comparison_id: str) -> None:
        """Say where the comparison is stored (its whole id: it is typed back)."""
        self.border_subtitle = f"stored: playground comparisons show {comparison_id}"

    def show(self, inputs: list[dict[str, Any]], labels: tuple[str, str]) -> None:
        self.display = bool(inputs)
        if not inputs:
            return
        checked = "passed" in inputs[0]["a"]
        table = Table(box=None, padding=(0, 1), expand=True, header_style="bold", show_edge=False)
        table.add_column("input", ratio=2, no_wrap=True, overflow="ellipsis")
        table.add_column("", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("path", ratio=3, no_wrap=True, overflow="ellipsis")
        table.add_column("tokens", justify="right", no_wrap=True)
        table.add_column("cost", justify="right", no_wrap=True)
        table.add_column("latency", justify="right", no_wrap=True)
        if checked:
            table.add_column("checks", no_wrap=True)
        for item in inputs:
            a, b = item["a"], item["b"]
            for key, side in (("A", a), ("B", b)):
                label = labels[0] if key == "A" else labels[1]
                row: list[RenderableType] = [
                    item["name"] if key == "A" else "",
                    Text(f"{key} {label}", "bold"),
                    Text(side["status"], STATUS_STYLES.get(side["status"], "")),
                    Text(" → ".join(side["path"]), "bold yellow" if item["path_changed"] else ""),
                    str(_tokens(side)),
                    f"${side['cost_usd']:.6f}",
                    f"{side['latency_ms']:.0f} ms",
                ]
                if checked:
                    ok = side["passed"]
                    row.append(Text("pass" if ok else "FAIL", "green" if ok else "bold red"))
                table.add_row(*row)
            delta: list[RenderableType] = [
                "",
                Text("Δ B-A", "dim"),
                Text("same" if a["status"] == b["status"] else "changed", "dim"),
                Text("path changed", "bold yellow") if item["path_changed"] else Text("same path", "dim"),
                _signed(_tokens(b) - _tokens(a), "d"),
                _signed(b["cost_usd"] - a["cost_usd"], ".6f"),
                _signed(b["latency_ms"] - a["latency_ms"], ".0f", " ms"),
            ]
            if checked:
                delta.append("")
            table.add_row(*delta, end_section=True)
        parts: list[RenderableType] = [table]
        notes = Text(no_wrap=True, overflow="ellipsis")
        if len(inputs) == 1:
            item = inputs[0]
            moved = {
                k: v
                for k, v in item["deltas"].items()
                if v["tokens"] or v["cost_usd"] or abs(v["latency_ms"]) >= 1
            }
            if moved:
                notes.append("per agent Δ  ", "dim")
                for index, (name, d) in enumerate(moved.items()):
                    if index:
                        notes.append(" · ", "dim")
                    notes.append(name, "bold")
                    notes.append(
                        f" {d['tokens']:+.0f} tok ${d['cost_usd']:+.6f} {round(d['latency_ms']):+d} ms"
                    )
            if not item["output_changed"]:
                notes.append("   outputs identical", "dim")
        else:
            changed = [i["name"] for i in inputs if i["path_changed"]]
            notes.append(f"{len(inputs)} inputs · path changed in {len(changed)}", "bold")
            if checked:
                for key in ("a", "b"):
                    passed = sum(1 for i in inputs if i[key]["passed"])
                    notes.append(f" · {key.upper()} passed {passed}/{len(inputs)}")
        new: dict[str, int] = {}
        for item in inputs:
            for kind, count in item["new_in_b"].items():
                new[kind] = new.get(kind, 0) + count
        if new:
            notes.append("   new in B: ", "bold red")
            notes.append(", ".join(f"{k.replace('_', ' ')} x{v}" for k, v in new.items()), "red")
        if notes.plain:
            parts.insert(0, notes)  # the totals first: a long table scrolls
        self.border_title = "summary"
        self.query_one("#compare-summary-table", Static).update(Group(*parts))
