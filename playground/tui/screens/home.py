"""The home screen: the systems in ``agents/`` and the store's recent sessions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from playground.errors import SpecError
from playground.spec.load import System, load_system
from playground.store.store import SessionRow, Store
from playground.tui.screens.sessions import SessionChosen, SessionsScreen
from playground.tui.widgets.folding_footer import FoldingFooter

STATUS_STYLES = {
    "completed": "green",
    "failed": "red",
    "aborted": "red",
    "running": "cyan",
    "interrupted": "yellow",
}


@dataclass(frozen=True)
class FoundSystem:
    """A system file found in the workspace: loaded, or why it could not be."""

    path: Path
    system: System | None
    error: str = ""


def discover_systems(folder: Path) -> list[FoundSystem]:
    """Every ``*.yaml`` in ``folder`` except scenario files, loaded."""
    found: list[FoundSystem] = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        if path.name.endswith((".scenarios.yaml", ".scenarios.yml")):
            continue
        try:
            found.append(FoundSystem(path, load_system(path)))
        except SpecError as exc:
            found.append(FoundSystem(path, None, str(exc)))
    return found


class HomeScreen(Screen[None]):
    """Pick a system to run; see what ran recently.

    Args:
        store: The open session store.
        agents_dir: The folder of system files.
    """

    BINDINGS = [
        Binding("enter", "open", "Open", id="home.open", tooltip="Open the selected system's run screen"),
        Binding("tab", "app.focus_next", "Switch list", show=False),
        Binding("o", "sessions", "Sessions", id="home.sessions", tooltip="Browse and filter past sessions"),
        Binding("f5", "reload", "Reload", id="home.reload", tooltip="Look for systems and sessions again"),
    ]

    class SystemChosen(Message):
        """The operator chose a system to run."""

        def __init__(self, system: System) -> None:
            super().__init__()
            self.system = system

    def __init__(self, store: Store, agents_dir: Path) -> None:
        super().__init__()
        self.store = store
        self.agents_dir = agents_dir
        self.systems: list[FoundSystem] = []
        self.sessions: list[SessionRow] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Systems in {self.agents_dir}/", classes="section-title")
        yield DataTable(id="systems", cursor_type="row", zebra_stripes=True)
        yield Static("Recent sessions", classes="section-title")
        yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
        yield Static(
            "enter opens the selected system, or a session read-only · tab switches lists · "
            "o all sessions · ? keys · ctrl+p commands",
            id="home-hint",
        )
        yield FoldingFooter()

    async def on_mount(self) -> None:
        self.title = "Agent Playground"
        self.sub_title = str(self.store.path)
        systems = self.query_one("#systems", DataTable)
        systems.add_columns("system", "pattern", "agents", "description")
        sessions = self.query_one("#sessions", DataTable)
        sessions.add_columns("when", "session", "system", "status", "path", "cost (USD)", "request")
        systems.focus()
        self._load_systems()

    async def on_screen_resume(self) -> None:
        """Shown again (back from a run, say): what ran meanwhile is listed without f5."""
        await self._load_sessions()

    async def action_reload(self) -> None:
        self._load_systems()
        await self._load_sessions()

    def _load_systems(self) -> None:
        self.systems = discover_systems(self.agents_dir)
        table = self.query_one("#systems", DataTable)
        table.clear()
        for found in self.systems:
            if found.system is None:
                table.add_row(Text(found.path.name, "bold red"), "", "", Text(found.error, "red"))
                continue
            spec = found.system.spec
            table.add_row(
                Text(spec.name, "bold"),
                spec.pattern,
                Text(", ".join(spec.agents), overflow="ellipsis"),
                spec.description,
            )
        if not self.systems:
            table.add_row(Text(f"no system files in {self.agents_dir}/", "dim"), "", "", "")

    async def _load_sessions(self) -> None:
        self.sessions = await self.store.sessions(limit=30)
        rows = self.query_one("#sessions", DataTable)
        cursor = rows.cursor_row
        rows.clear()
        for row in self.sessions:
            when = dt.datetime.fromtimestamp(row.created_at).strftime("%m-%d %H:%M:%S")
            rows.add_row(
                when,
                # Whole, never cut: it is what `playground replay`, `diff` and `export` take.
                Text(row.session_id, "cyan", no_wrap=True, overflow="ignore"),
                row.system,
                Text(row.status, STATUS_STYLES.get(row.status, "")),
                " → ".join(row.path),
                f"{row.cost_usd:.6f}",
                " ".join(row.input.split())[:60],
            )
        if not self.sessions:
            rows.add_row(Text("no sessions yet", "dim"), "", "", "", "", "", "")
        elif cursor > 0:
            rows.move_cursor(row=min(cursor, len(self.sessions) - 1))

    def action_open(self) -> None:
        if self.focused is self.query_one("#sessions"):
            index = self.query_one("#sessions", DataTable).cursor_row
            if 0 <= index < len(self.sessions):
                self.post_message(SessionChosen(self.sessions[index].session_id))
            return
        index = self.query_one("#systems", DataTable).cursor_row
        if not 0 <= index < len(self.systems):
            return
        found = self.systems[index]
        if found.system is None:
            self.notify(found.error, title="cannot open this system", severity="error", timeout=10)
            return
        self.post_message(self.SystemChosen(found.system))

    def action_sessions(self) -> None:
        self.app.push_screen(SessionsScreen(self.store))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()
