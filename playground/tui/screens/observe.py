"""The observe screen: sessions of systems the playground does not run, live, per agent.

``playground tui --observe`` opens it: the screen serves OTLP/HTTP
(:class:`~playground.observe.server.OtlpReceiver`) into an
:class:`~playground.observe.observer.Observer`, which records each trace as a session
and tells this screen whenever one changes. Sessions appear in the list as their first
spans arrive; the selected one is shown as the run screen shows a run, rebuilt from its
events by the same reducer (:class:`~playground.tui.state.RunView`) and widgets: a pane
per agent as agents appear, the current handler, the handoff path, the inspector, the
timeline and the totals. Without a port it shows observed sessions from the store (a
session opened from the sessions browser).

It is read-only: the keys that step, pause, retry or edit a run say so instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from playground.engine import events as ev
from playground.errors import PlaygroundError
from playground.llm.litellm_model import preload
from playground.observe.mapping import ObservedSession
from playground.observe.observer import Observer
from playground.observe.record import observed_framework
from playground.observe.server import OtlpReceiver
from playground.observe.system import observed_agents, observed_system
from playground.store import Store
from playground.tui.state import HandoffView, RunView, Step
from playground.tui.widgets.agent_pane import AgentPane
from playground.tui.widgets.folding_footer import FoldingFooter
from playground.tui.widgets.handoff_path import HandoffPath
from playground.tui.widgets.inspector import Inspector
from playground.tui.widgets.pane_grid import PaneGrid
from playground.tui.widgets.timeline import Timeline
from playground.tui.widgets.totals import Totals

READ_ONLY = "read-only: this session runs in another process; the playground can watch it, not step it"
STATUS_STYLES = {"running": "cyan", "completed": "green", "failed": "red", "interrupted": "yellow"}


@dataclass
class Shown:
    """One session of the list: what the list shows and the events the view is built from."""

    session_id: str
    system: str
    framework: str
    status: str
    path: list[str]
    cost_usd: float
    events: list[ev.Event]


class ObserveScreen(Screen[None]):
    """Observed sessions, live.

    Args:
        store: The open session store (observed sessions are recorded there).
        port: Serve OTLP/HTTP on this port (0 picks a free one); None serves nothing
            and shows the observed sessions already in the store.
        host: The address to listen on.
        session_id: Select this session first.
    """

    CSS_PATH = "observe.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    """Below 120 columns the session list shows ids only, so the panes keep some width."""
    BINDINGS = [
        Binding("f", "follow", "Follow", id="observe.follow", tooltip="Show each new session as it arrives"),
        Binding("escape", "back", "Back", id="observe.back", tooltip="Back to the previous screen"),
        *(
            Binding(key, "read_only", show=False, id=f"observe.read_only.{key}", tooltip=READ_ONLY)
            for key in ("s", "c", "p", "r", "e", "a", "m", "b")
        ),
    ]

    class SessionUpdated(Message):
        """A session changed (spans arrived); only the latest of one session waits in the queue."""

        def __init__(self, session: ObservedSession) -> None:
            super().__init__()
            self.session = session

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ObserveScreen.SessionUpdated) and (
                message.session.session_id == self.session.session_id
            )

    def __init__(
        self, store: Store, *, port: int | None = None, host: str = "127.0.0.1", session_id: str | None = None
    ) -> None:
        super().__init__()
        self.store = store
        self.port = port
        self.host = host
        self.sessions: dict[str, Shown] = {}
        self.selected: str | None = session_id
        self.follow = session_id is None
        """Select each new session as it appears (until the operator picks one)."""
        self.observer: Observer | None = None
        self.receiver: OtlpReceiver | None = None
        self.view: RunView | None = None
        self._panes: list[str] = []
        self._chosen: HandoffView | Step | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="observe-banner")
        with Horizontal(id="observe-body"):
            yield DataTable(id="observed", cursor_type="row", zebra_stripes=True)
            with Vertical(id="observe-run"):
                yield Static(id="observe-waiting")
                yield HandoffPath(id="path")
                with Horizontal(id="main"):
                    yield PaneGrid(id="panes")
                    with Vertical(id="side"):
                        yield Inspector(id="inspector")
                        yield Timeline(id="timeline")
        yield Totals(id="totals")
        yield FoldingFooter()

    async def on_mount(self) -> None:
        self.title = "Observe"
        self.query_one("#timeline", Timeline).border_title = "timeline"
        self.query_one(Inspector).show_empty()
        table = self.query_one("#observed", DataTable)
        # What tells sessions apart first: a narrow list still shows the id and the status.
        table.add_columns("session", "status", "from", "system", "path", "cost (USD)")
        banner = self.query_one("#observe-banner", Static)
        if self.port is not None:
            self.observer = Observer(self.store)
            self.observer.start()
            self.observer.subscribe(self._updated)
            receiver = OtlpReceiver(self.observer, host=self.host, port=self.port)
            try:
                await receiver.start()
            except OSError as exc:
                banner.update(
                    Text(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}", "bold red")
                )
                self.notify(str(exc), title="observe", severity="error", timeout=10)
            else:
                self.receiver = receiver
                endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT=" + receiver.url.removesuffix("/v1/traces")
                # What to set first: it fits 80 columns; the full URL follows where there is room.
                banner.update(
                    Text.assemble(
                        ("observing ", "bold"),
                        (endpoint, "bold cyan"),
                        ("  ·  read-only", "yellow"),
                        ("  ·  OTLP/HTTP: POST " + receiver.url, "dim"),
                    )
                )
                self.query_one("#observe-waiting", Static).update(
                    Text.assemble(
                        ("Waiting for traces.\n\n", "bold"),
                        "Point an application's OpenTelemetry exporter here:\n  ",
                        (endpoint, "bold cyan"),
                        "\n(OTLP/HTTP, protobuf or JSON). Each trace becomes a session as its spans "
                        "arrive: a pane per agent, the handoff path, the timeline and the totals.\n\n"
                        "The README's 'Observe any framework' says how, for the OpenAI Agents SDK, "
                        "pydantic-ai, LangGraph and the playground itself.",
                    )
                )
                # Prices come from litellm's cost map: import it now, not when the first spans come.
                self.run_worker(preload(), group="observe-preload", exit_on_error=False)
        else:
            banner.update(Text(READ_ONLY, "yellow"))
        await self._load_stored()
        self._waiting(not self.sessions and self.receiver is not None)
        self.set_interval(0.25, self._tick)
        table.focus()

    async def on_unmount(self) -> None:
        if self.receiver is not None:
            await self.receiver.close()
        if self.observer is not None:
            await self.observer.close()

    async def _load_stored(self) -> None:
        """Observed sessions already in the store (newest 200), oldest first."""
        try:
            rows = [r for r in await self.store.sessions(limit=200) if observed_framework(r.system_path)]
        except PlaygroundError as exc:
            self.notify(str(exc), title="cannot read the store", severity="error")
            return
        for row in reversed(rows):
            shown = Shown(
                row.session_id,
                row.system,
                observed_framework(row.system_path) or "",
                row.status,
                row.path,
                row.cost_usd,
                [],
            )
            if row.session_id == self.selected or self.port is None:
                shown.events = await self.store.events(row.session_id)
            self._put(shown)
        if self.selected is None and self.sessions:  # the newest, as following would
            self.selected = next(reversed(self.sessions))
            newest = self.sessions[self.selected]
            newest.events = newest.events or await self.store.events(self.selected)
            self._put(newest)
        await self._show_selected(rebuild=True)

    def _waiting(self, waiting: bool) -> None:
        """Say where to send traces until the first session comes, in place of the run's widgets."""
        self.query_one("#observe-waiting").display = waiting
        for selector in ("#path", "#main", "#totals"):
            self.query_one(selector).display = not waiting

    # -- sessions coming in -------------------------------------------------------------------

    def _updated(self, session: ObservedSession) -> None:
        """The observer's subscriber (on this event loop): queue the session for the screen."""
        self.post_message(self.SessionUpdated(session))

    async def on_observe_screen_session_updated(self, message: SessionUpdated) -> None:
        session = message.session
        result = session.result
        if self.follow or self.selected is None:
            self.selected = session.session_id
        self._put(
            Shown(
                session.session_id,
                session.system,
                session.framework,
                session.status,
                result.path,
                result.cost_usd,
                session.events,
            )
        )
        if session.session_id == self.selected:
            await self._show_selected(rebuild=True)

    def _put(self, shown: Shown) -> None:
        table = self.query_one("#observed", DataTable)
        style = STATUS_STYLES.get(shown.status, "")
        cells = (
            Text(shown.session_id, style),  # the status at a glance where the list is narrow
            Text(shown.status, style),
            shown.framework,
            shown.system,
            " → ".join(shown.path),
            f"{shown.cost_usd:.6f}",
        )
        if shown.session_id in self.sessions:
            old = self.sessions[shown.session_id]
            shown.events = shown.events or old.events
            for column, value in zip(table.ordered_columns, cells, strict=True):
                table.update_cell(shown.session_id, column.key, value)
        else:
            table.add_row(*cells, key=shown.session_id)
            self._waiting(False)
        self.sessions[shown.session_id] = shown
        if shown.session_id == self.selected:
            table.move_cursor(row=table.get_row_index(shown.session_id), animate=False)

    # -- the selected session -----------------------------------------------------------------

    async def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        key = message.row_key.value
        if key is None or key == self.selected or key not in self.sessions:
            return
        if message.cursor_row != message.data_table.cursor_row:
            return  # the cursor moved on since (following a burst of new sessions)
        # The first row is highlighted by itself as it is added: that is no choice of the operator's.
        if self.selected is not None:
            self.follow = False
        self.selected = key
        shown = self.sessions[key]
        if not shown.events:
            shown.events = await self.store.events(key)
        self._chosen = None
        await self._show_selected(rebuild=True)

    async def _show_selected(self, *, rebuild: bool) -> None:
        shown = self.sessions.get(self.selected or "")
        if shown is None or not shown.events:
            return
        agents = observed_agents(shown.events)
        if rebuild or self.view is None:
            view = RunView(observed_system(shown.events, agents))
            view.apply_all(shown.events)
            if view.running and shown.status != "running":  # the recording ends mid-run
                view.status = "aborted"
            self.view = view
        await self._sync_panes(list(agents))
        self.sub_title = f"{shown.system} · {shown.framework} · session {shown.session_id}"
        self._redraw()

    async def _sync_panes(self, agents: list[str]) -> None:
        """A pane per agent of the selected session, as agents appear."""
        grid = self.query_one("#panes", PaneGrid)
        if agents[: len(self._panes)] != self._panes:
            await grid.remove_children()
            self._panes = []
        new = agents[len(self._panes) :]
        if new:
            await grid.mount_all([AgentPane(name) for name in new])
            self._panes.extend(new)
            self.call_after_refresh(lambda: grid.fit(grid.size.width, grid.size.height))

    def _redraw(self) -> None:
        view = self.view
        if view is None:
            return
        active = view.active
        for pane in self.query(AgentPane):
            agent = view.agents.get(pane.agent)
            if agent is not None:
                pane.show(agent, active=pane.agent == active, breakpoint=False)
        self.query_one(HandoffPath).show(view.hops, view.handoffs, None, view.active_agents)
        inspector = self.query_one(Inspector)
        chosen = self._chosen
        if isinstance(chosen, HandoffView):
            inspector.show_handoff(chosen, view.system)
        elif isinstance(chosen, Step):
            inspector.show_step(chosen)
        elif view.handoffs:
            inspector.show_handoff(view.handoffs[-1], view.system)
        else:
            inspector.show_empty()
        self.query_one(Timeline).show(view.steps, view.elapsed())
        self.query_one(Totals).show(view)

    def _tick(self) -> None:
        if self.view is not None and self.view.running:
            self.query_one(Totals).show(self.view)
            self.query_one(Timeline).show(self.view.steps, self.view.elapsed())

    def on_timeline_step_selected(self, message: Timeline.StepSelected) -> None:
        step = message.step
        self._chosen = step.handoff if step.handoff is not None else step
        self._redraw()

    def on_handoff_path_edge_selected(self, message: HandoffPath.EdgeSelected) -> None:
        self._chosen = message.handoff
        self._redraw()

    # -- actions ------------------------------------------------------------------------------

    async def action_follow(self) -> None:
        self.follow = not self.follow
        if self.follow and self.sessions:
            self.selected = next(reversed(self.sessions))
            self._put(self.sessions[self.selected])
            await self._show_selected(rebuild=True)
        self.notify("Following new sessions." if self.follow else "Staying on the selected session.")

    def action_read_only(self) -> None:
        self.notify(READ_ONLY, severity="warning")

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.dismiss(None)
        else:
            self.app.exit(0)

    def check_action(self, action: str, parameters: tuple[Any, ...]) -> bool | None:
        return True
