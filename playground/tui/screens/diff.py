"""The diff screen: two recorded sessions side by side, nothing run again.

Opened from the sessions browser (``d`` marks session A, enter or ``d`` on another picks
B). The comparison is :func:`playground.diff.diff_sessions`, the same one ``playground
diff A B`` prints; this screen only lays it out: the first point where the sessions
differ, each side's path, status and per-agent outputs, and per agent the calls, tokens,
cost and latency with B - A.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from playground.diff import SessionDiff, Side, diff_sessions, numbers_table
from playground.errors import PlaygroundError
from playground.store.store import Store
from playground.tui.widgets.folding_footer import FoldingFooter

STATUS_STYLES = {"completed": "green", "failed": "red", "aborted": "red", "interrupted": "yellow"}
OUTPUT_CHARS = 400
"""Characters of each agent's output a side shows."""


def first_difference(result: SessionDiff) -> RenderableType:
    """Where the sessions part ways: the step number and what each side did there."""
    if result.first_difference is None:
        colour = "green" if result.identical else "yellow"
        return Text(result.summary(), style=f"bold {colour}")
    a, b = result.difference()
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for label, step in (("A", a), ("B", b)):
        table.add_row(label, Text(step.describe() if step else "(ended)"))
    title = Text(f"first difference at step {result.first_difference + 1}", style="bold yellow")
    return Group(title, table)


def side_text(side: Side, names: list[str]) -> RenderableType:
    """One session: id, system, kind, status, path and each agent's output."""
    row = side.session
    kind = f"observed: {side.observed}" if side.observed else "run"
    text = Text()
    text.append(row.session_id, style="bold")
    text.append(f"\n{row.system} ({kind}) ")
    text.append(row.status, style=STATUS_STYLES.get(row.status, "cyan"))
    text.append("\npath: ", style="dim")
    text.append(" → ".join(row.path) or "-")
    text.append("\nrequest: ", style="dim")
    text.append(" ".join(row.input.split())[:OUTPUT_CHARS])
    for name in names:
        agent = side.agents.get(name)
        output = " ".join((agent.output if agent else "").split())
        text.append(f"\n{name}: ", style="bold")
        if agent is None:
            text.append("did not run", style="dim")
        else:
            text.append(output[:OUTPUT_CHARS] or "(no output)", style="" if output else "dim")
    if row.error:
        text.append(f"\n{row.error.get('type', 'error')}: ", style="red")
        text.append(str(row.error.get("message", ""))[:OUTPUT_CHARS])
    return text


def numbers(result: SessionDiff) -> RenderableType:
    """Per agent and side: calls, tokens, cost, latency; the totals; then B - A."""
    table = numbers_table(result)
    delta = result.as_json()["delta"]
    change = Text.assemble(
        ("B - A", "bold"),
        f": cost {delta['cost_usd']:+.6f} USD · tokens {delta['input_tokens']:+d} in / "
        f"{delta['output_tokens']:+d} out · latency {delta['latency_ms']:+.0f} ms",
    )
    same = Text("same path", "green") if result.same_path else Text("different paths", "yellow")
    return Group(same, table, change)


class DiffScreen(Screen[None]):
    """Sessions A and B compared as recorded.

    Args:
        store: The open session store.
        a: Session A's id.
        b: Session B's id.
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="diff.back", tooltip="Back to the sessions"),
    ]

    def __init__(self, store: Store, a: str, b: str) -> None:
        super().__init__()
        self.store = store
        self.a = a
        self.b = b
        self.result: SessionDiff | None = None
        """The comparison, once loaded."""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="diff-body"):
            yield Static("comparing…", id="diff-first")
            with Horizontal(id="diff-sides"):
                yield Static(id="diff-a", classes="diff-side")
                yield Static(id="diff-b", classes="diff-side")
            yield Static(id="diff-numbers")
        yield FoldingFooter()

    def on_mount(self) -> None:
        self.title = "Diff"
        self.sub_title = f"A {self.a[:12]} · B {self.b[:12]}"
        self.load()

    @work(exclusive=True, exit_on_error=False, group="diff")
    async def load(self) -> None:
        try:
            a = await self.store.session(self.a)
            b = await self.store.session(self.b)
            result = diff_sessions(
                a, await self.store.events(a.session_id), b, await self.store.events(b.session_id)
            )
        except PlaygroundError as exc:
            self.query_one("#diff-first", Static).update(Text(f"cannot compare: {exc}", style="bold red"))
            return
        self.show(result)

    def show(self, result: SessionDiff) -> None:
        self.result = result
        self.query_one("#diff-first", Static).update(first_difference(result))
        self.query_one("#diff-a", Static).update(side_text(result.a, result.agents))
        self.query_one("#diff-b", Static).update(side_text(result.b, result.agents))
        self.query_one("#diff-numbers", Static).update(numbers(result))
        self.query_one("#diff-a", Static).border_title = "A"
        self.query_one("#diff-b", Static).border_title = "B"

    def action_back(self) -> None:
        self.dismiss(None)
