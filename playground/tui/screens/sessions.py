"""The sessions screen: browse past sessions, filter and search them, open one read-only.

``/`` (or ctrl+f) goes to the search box, which takes the query syntax of
:mod:`playground.tui.query`: ``status:failed agent:billing scenario:refund system:NAME
id:PREFIX`` and free text (searched in the request, the output, the error, the path,
the id, the system and the scenario). It narrows the sessions the system and status
selectors fetched, as you type.

Opening a session posts :class:`SessionChosen`; the app loads it with
:func:`load_recorded` and shows it in a read-only run screen, rebuilt from the
stored events by the same reducer that shows live runs. ``d`` marks a session as A
and enter (or ``d``) on another picks B: the screen posts :class:`SessionsScreen.DiffChosen`
and the app shows the two side by side (:mod:`playground.tui.screens.diff`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Select, Static

from playground.errors import PlaygroundError, SpecError
from playground.spec.load import System, load_system_ref
from playground.spec.python import ref_file
from playground.store.store import SessionRow, Store
from playground.tui.query import Getter, Query, matches, parse
from playground.tui.widgets.folding_footer import FoldingFooter

SESSION_LIMIT = 200
"""Sessions the browser lists (newest first)."""
SEARCH_LIMIT = 5000
"""Sessions a search looks through (newest first): it lists the first ``SESSION_LIMIT`` that match."""
STATUSES = ["completed", "failed", "aborted", "interrupted", "running"]
STATUS_STYLES = {
    "completed": "green",
    "failed": "red",
    "aborted": "red",
    "running": "cyan",
    "interrupted": "yellow",
}


class SessionChosen(Message):
    """The operator chose a stored session to open read-only."""

    def __init__(self, session_id: str) -> None:
        super().__init__()
        self.session_id = session_id


@dataclass(frozen=True)
class RecordedSession:
    """A stored session with its events and the system it ran, ready to show."""

    session: SessionRow
    events: list[Any]
    system: System


async def load_recorded(store: Store, session_id: str) -> RecordedSession:
    """Load a session, its events and its system file.

    Raises:
        PlaygroundError: No such session, or its system file is missing or invalid.
    """
    session = await store.session(session_id)
    path = session.system_path
    file = ref_file(path) if path else None
    if not path or (file is not None and not file.exists()):
        raise PlaygroundError(
            f"session {session.session_id} ran {session.system!r} from {path!r}, which is not here"
        )
    try:
        system = load_system_ref(path)
    except SpecError as exc:
        raise PlaygroundError(f"cannot load {path!r} for session {session.session_id}: {exc}") from exc
    return RecordedSession(session, await store.events(session.session_id), system)


def _row(row: object) -> SessionRow:
    assert isinstance(row, SessionRow)
    return row


SCENARIO_CELLS = 48
"""The scenario column's width: a long name is cut (``scenario:`` searches the whole of it)."""


def scenario_label(row: SessionRow) -> Text:
    """``NAME (FILE)`` of a scenario run, the file without its folders and dim, cut to
    :data:`SCENARIO_CELLS`; empty for other runs."""
    label = Text(no_wrap=True, overflow="ellipsis")
    if row.scenario is None:
        return label
    label.append(row.scenario)
    file = (row.scenario_file or "").replace("\\", "/").rsplit("/", 1)[-1]
    if file:
        label.append(f" ({file})", "dim")
    label.truncate(SCENARIO_CELLS, overflow="ellipsis")
    return label


SESSION_FIELDS: dict[str, Getter] = {
    "agent": lambda r: (*_row(r).path, *_row(r).totals),
    "status": lambda r: (_row(r).status,),
    "system": lambda r: (_row(r).system,),
    "scenario": lambda r: (_row(r).scenario or "", _row(r).scenario_file or ""),
    "id": lambda r: (_row(r).session_id,),
}
"""The fields a sessions search takes."""


def _session_text(r: object) -> tuple[str, ...]:
    row = _row(r)
    error = row.error or {}
    return (
        row.input,
        row.output,
        str(error.get("message") or ""),
        str(error.get("type") or ""),
        " → ".join(row.path),
        row.session_id,
        row.system,
        row.scenario or "",
        row.scenario_file or "",
    )


def session_query(text: str) -> Query:
    """``text`` as a sessions search."""
    return parse(text, SESSION_FIELDS)


def session_matches(query: Query, row: SessionRow) -> bool:
    """Whether the stored session ``row`` matches ``query``."""
    return matches(query, row, SESSION_FIELDS, _session_text)


SEARCH_SYNTAX = (
    "Search the sessions: status:STATUS agent:NAME scenario:NAME system:NAME id:PREFIX and free "
    "text (request, output, error, path), all must match; field:a,b matches either; -term "
    "excludes; quotes keep spaces. enter goes to the list, esc clears the search."
)


def session_cells(row: SessionRow) -> tuple[Any, ...]:
    """One session as a table row: when, id, system, status, scenario, path, cost, origin, request."""
    when = dt.datetime.fromtimestamp(row.created_at).strftime("%m-%d %H:%M:%S")
    origin = ""
    if row.parent_session_id:
        at = f"@{row.forked_from_step}" if row.forked_from_step is not None else " (replay)"
        origin = f"⑂ {row.parent_session_id}{at}"  # whole: an id is typed back (fork, diff, show)
    return (
        when,
        row.session_id,
        row.system,
        Text(row.status, STATUS_STYLES.get(row.status, "")),
        scenario_label(row),
        " → ".join(row.path),
        f"{row.cost_usd:.6f}",
        Text(origin, "dim"),
        " ".join(row.input.split())[:60],
    )


HINT = (
    "enter opens a session read-only (then f forks from a step, R replays) · "
    "d marks it to diff against another · / searches (status:failed agent:NAME scenario:NAME text) · "
    "esc goes back"
)
MARK = "A "
"""Prefix of the marked session's id in the list."""


class SessionsScreen(Screen[None]):
    """Past sessions, newest first, filtered by system and status.

    Args:
        store: The open session store.
        system: Start filtered to this system.
    """

    class DiffChosen(Message):
        """The operator picked two sessions to compare: ``a`` (marked first) and ``b``."""

        def __init__(self, a: str, b: str) -> None:
            super().__init__()
            self.a = a
            self.b = b

    BINDINGS = [
        Binding("enter", "open", "Open", id="sessions.open", tooltip="Open the session read-only"),
        Binding(
            "d",
            "diff",
            "Diff against…",
            id="sessions.diff",
            tooltip="Mark this session as A, then pick B (enter or d) to compare them",
        ),
        Binding(
            "escape", "back", "Back", id="sessions.back", tooltip="Back (or forget the session marked A)"
        ),
        Binding("f5", "reload", "Reload", id="sessions.reload", tooltip="Read the sessions again"),
        Binding("slash,ctrl+f", "search", "Search", id="sessions.search", tooltip=SEARCH_SYNTAX),
    ]

    def __init__(self, store: Store, system: str | None = None) -> None:
        super().__init__()
        self.store = store
        self.initial_system = system
        self.sessions: list[SessionRow] = []
        self.marked: str | None = None
        """Session A of a diff, once ``d`` marked it; the next pick is B."""
        self.fetched: list[SessionRow] = []
        """The sessions the selectors fetched; ``sessions`` are those the search keeps."""
        self._fetch_limit = SESSION_LIMIT

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="session-filters"):
            yield Static("system", classes="filter-label")
            yield Select[str]([], prompt="any system", id="filter-system")
            yield Static("status", classes="filter-label")
            yield Select[str]([(s, s) for s in STATUSES], prompt="any status", id="filter-status")
            search = Input(
                placeholder="/ search: status:failed agent:NAME scenario:NAME text", id="filter-query"
            )
            search.tooltip = SEARCH_SYNTAX
            yield search
        yield DataTable(id="session-list", cursor_type="row", zebra_stripes=True)
        yield Static(HINT, id="sessions-hint")
        yield FoldingFooter()

    async def on_mount(self) -> None:
        self.title = "Sessions"
        self.sub_title = str(self.store.path)
        table = self.query_one("#session-list", DataTable)
        table.add_columns(
            "when", "session", "system", "status", "scenario", "path", "cost (USD)", "from", "request"
        )
        systems = sorted({row.system for row in await self.store.sessions(limit=1000)})
        if self.initial_system and self.initial_system not in systems:
            systems.append(self.initial_system)
        select: Select[str] = self.query_one("#filter-system", Select)
        select.set_options([(s, s) for s in systems])
        if self.initial_system:
            select.value = self.initial_system
        table.focus()
        await self.action_reload()

    def _filter(self, widget_id: str) -> str | None:
        value = self.query_one(widget_id, Select).value
        return value if isinstance(value, str) else None

    async def action_reload(self) -> None:
        system, status = self._filter("#filter-system"), self._filter("#filter-status")
        query = self._query()
        self._fetch_limit = SEARCH_LIMIT if query else SESSION_LIMIT
        self.fetched = await self.store.sessions(system=system, status=status, limit=self._fetch_limit)
        self._show()

    def _query(self) -> Query:
        return session_query(self.query_one("#filter-query", Input).value)

    def _show(self) -> None:
        """List the fetched sessions the search keeps."""
        query = self._query()
        rows = self.fetched
        if query:
            rows = [row for row in rows if session_matches(query, row)]
        self.sessions = rows[:SESSION_LIMIT]
        table = self.query_one("#session-list", DataTable)
        table.clear()
        for row in self.sessions:
            cells = list(session_cells(row))
            if row.session_id == self.marked:
                cells[1] = Text(MARK + row.session_id, "bold reverse")
            table.add_row(*cells)
        if not self.sessions:
            filtered = query or self._filter("#filter-system") or self._filter("#filter-status")
            what = " matching the filters" if filtered else " yet"
            table.add_row(Text(f"no sessions{what}", "dim"), *([""] * 8))

    async def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._query() and self._fetch_limit < SEARCH_LIMIT and len(self.fetched) >= self._fetch_limit:
            await self.action_reload()  # the list was cut at SESSION_LIMIT: search further back
        else:
            self._show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#session-list", DataTable).focus()

    def action_search(self) -> None:
        self.query_one("#filter-query", Input).focus()

    async def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        await self.action_reload()

    def _current(self) -> str | None:
        index = self.query_one("#session-list", DataTable).cursor_row
        return self.sessions[index].session_id if 0 <= index < len(self.sessions) else None

    def action_open(self) -> None:
        session_id = self._current()
        if session_id is None:
            return
        if self.marked is not None:
            self._pick(session_id)
        else:
            self.post_message(SessionChosen(session_id))

    def action_diff(self) -> None:
        """Mark the current session as A; with one marked, pick the current one as B."""
        session_id = self._current()
        if session_id is None:
            return
        if self.marked is not None:
            self._pick(session_id)
            return
        self.marked = session_id
        self.query_one("#sessions-hint", Static).update(
            f"A = {session_id}: move to session B and press enter or d · esc forgets A"
        )
        table = self.query_one("#session-list", DataTable)
        table.update_cell_at(
            Coordinate(table.cursor_row, 1), Text(MARK + session_id, "bold reverse"), update_width=True
        )

    def _pick(self, session_id: str) -> None:
        if session_id == self.marked:
            self.notify("pick another session as B", severity="warning")
            return
        assert self.marked is not None
        a, self.marked = self.marked, None
        self.query_one("#sessions-hint", Static).update(HINT)
        self._unmark_row(a)
        self.post_message(self.DiffChosen(a, session_id))

    def _unmark_row(self, session_id: str) -> None:
        table = self.query_one("#session-list", DataTable)
        for index, row in enumerate(self.sessions):
            if row.session_id == session_id:
                table.update_cell_at(Coordinate(index, 1), row.session_id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_back(self) -> None:
        search = self.query_one("#filter-query", Input)
        if search.has_focus:  # esc in the search box clears it, then leaves it
            if search.value:
                search.value = ""
            else:
                self.query_one("#session-list", DataTable).focus()
            return
        if self.marked is not None:
            marked, self.marked = self.marked, None
            self.query_one("#sessions-hint", Static).update(HINT)
            self._unmark_row(marked)
            return
        self.dismiss(None)
