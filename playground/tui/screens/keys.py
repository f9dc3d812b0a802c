"""The keys of the current screen (``?``), read from its active bindings so the list cannot go stale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Label, Static


@dataclass(frozen=True)
class KeyRow:
    """One action of the help list and every key bound to it."""

    keys: tuple[str, ...]
    description: str
    tooltip: str
    where: str
    """Whose key it is: the screen, the app, the focused widget (by class name), or ``typing``
    for a screen key that the focused text box takes as text until esc leaves it."""
    enabled: bool = True


def key_rows(app: App[Any], screen: Screen[Any]) -> list[KeyRow]:
    """The keys that act on ``screen`` now (Textual's ``active_bindings``, so exactly what the
    footer and the key dispatch use), grouped by action; then the screen's keys that the focused
    text box swallows while it has focus.

    Keys of Textual's own widgets (a text box's cursor keys, a table's, a container's
    scrolling) are left out: they are the ordinary editing and moving keys, not this screen's.
    """
    grouped: dict[tuple[int, str], list[str]] = {}
    info: dict[tuple[int, str], tuple[Binding, object, bool, str]] = {}
    for active in screen.active_bindings.values():
        node, binding = active.node, active.binding
        if isinstance(node, Widget) and not isinstance(node, Screen) and not _ours(node, binding):
            continue
        if binding.system or binding.key.startswith("super+"):  # super: a macOS twin of a ctrl key
            continue
        slot = (id(node), binding.action)
        grouped.setdefault(slot, []).append(app.get_key_display(binding))
        if slot not in info or (binding.id and not info[slot][0].id):  # ours (with an id) say more
            info[slot] = (binding, node, active.enabled, active.tooltip or binding.tooltip)
    rows = [
        KeyRow(
            tuple(dict.fromkeys(keys)),
            binding.description or binding.action,
            tooltip,
            _where(node, binding, screen),
            enabled,
        )
        for slot, keys in grouped.items()
        for binding, node, enabled, tooltip in [info[slot]]
    ]
    rows.sort(key=lambda row: {"screen": 0, "app": 2}.get(row.where, 1))
    active_keys = set(screen.active_bindings)
    swallowed: dict[str, list[str]] = {}
    described: dict[str, Binding] = {}
    for item in type(screen).BINDINGS:
        if not isinstance(item, Binding) or "." in item.action:
            continue
        keys = [k.strip() for k in item.key.split(",") if k.strip() not in active_keys]
        if not keys or screen.check_action(item.action, ()) is False:
            continue
        for key in keys:
            swallowed.setdefault(item.action, []).append(app.get_key_display(Binding(key, item.action)))
        described.setdefault(item.action, item)
    for action, keys in swallowed.items():
        binding = described[action]
        rows.append(KeyRow(tuple(keys), binding.description or action, binding.tooltip or "", "typing"))
    return rows


def _ours(node: Widget, binding: Binding) -> bool:
    """Whether one of the playground's own widget classes declares ``binding`` (a widget of
    ours that inherits Textual's scrolling keys keeps them out of the list)."""
    return any(
        isinstance(b, Binding) and b.action == binding.action
        for cls in type(node).__mro__
        if cls.__module__.startswith("playground.")
        for b in cls.__dict__.get("BINDINGS", [])
    )


def _where(node: object, binding: Binding, screen: Screen[Any]) -> str:
    if node is screen:
        # Textual's keys of every screen (tab, copy) are not this screen's own.
        own = type(screen).__dict__.get("BINDINGS", [])
        return "screen" if any(isinstance(b, Binding) and b.action == binding.action for b in own) else "app"
    if isinstance(node, App):
        return "app"
    return type(node).__name__


class KeysScreen(ModalScreen[None]):
    """The keys of one screen, with what each does. Any of esc, ``?``, f1 or q closes it.

    Args:
        title: The screen's name, as its header shows it.
        rows: What :func:`key_rows` found on it.
    """

    BINDINGS = [
        Binding("escape,question_mark,f1,q", "close", "Close", id="keys.close", tooltip="Back to the screen"),
    ]

    def __init__(self, title: str, rows: list[KeyRow]) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="keys-dialog", classes="dialog"):
            yield Label(f"Keys: {self.title_text}", classes="dialog-title")
            yield Static(self._table(), id="keys-table")
            yield Static("esc closes · ctrl+p lists every command", classes="dim")

    def _table(self) -> Table:
        table = Table(show_edge=False, box=None, padding=(0, 1), expand=True, show_header=False)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("does", ratio=1, overflow="fold")
        section = ""
        for row in self.rows:
            heading = _heading(row.where)
            if heading != section:
                if section:
                    table.add_row("", "")
                table.add_row("", Text(heading, "bold"))
                section = heading
            what = Text(row.description, "bold" if row.enabled else "dim")
            if row.tooltip:
                what.append(f"  {row.tooltip}", "dim")
            if not row.enabled:
                what.append("  (not now)", "dim italic")
            table.add_row(" / ".join(row.keys), what)
        if not self.rows:
            table.add_row("", Text("no keys here", "dim"))
        return table

    def action_close(self) -> None:
        self.dismiss(None)


def _heading(where: str) -> str:
    if where == "screen":
        return "this screen"
    if where == "app":
        return "everywhere"
    if where == "typing":
        return "while the text box has focus these keys type text; esc leaves it, then:"
    return f"the focused {where}"
