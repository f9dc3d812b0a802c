"""The versions screen: one agent's versions, a diff against the active one, rollback and snapshots.

Opened with ``v`` from the run screen on the focused agent. Every change moves the
store's active pointers; the run screen reloads its active specs when this screen
closes, so the next run uses what was chosen here. Both screens read the store again
when they are shown again or the terminal regains focus, and the run screen before
each run: a ``playground rollback`` from a shell shows, and runs, at once.
"""

from __future__ import annotations

import datetime as dt

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static, Tab, Tabs

from playground.errors import PlaygroundError
from playground.spec.load import System, misfit
from playground.spec.models import AgentSpec
from playground.store.store import Store, VersionLogEntry, VersionRow
from playground.tui.screens.agent_editor import AgentEditorScreen
from playground.tui.screens.version_dialogs import (
    ConfirmRollbackScreen,
    RestoreSnapshotScreen,
    SnapshotNameScreen,
)
from playground.tui.state import possessive
from playground.tui.widgets.folding_footer import FoldingFooter
from playground.tui.widgets.spec_diff import SpecDiff, diff_text
from playground.versions import diff_specs, spec_to_yaml

NOTE_WIDTH = 34
"""Notes longer than this are cut in the table; the selected version's full note shows above the diff."""


def when(ts: float, *, seconds: bool = True) -> str:
    """A stored timestamp as the operator's local date and time."""
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def cut(note: str) -> str:
    return note if len(note) <= NOTE_WIDTH else note[: NOTE_WIDTH - 1] + "…"


def short(version: str | None) -> str:
    return version[:8] if version else "—"


class VersionsScreen(Screen[None]):
    """One agent's versions at a time, with the diff and YAML of the selected one.

    Args:
        system: The loaded system.
        store: The open session store.
        agent: The agent shown first.
    """

    CSS_PATH = "versions.tcss"
    BINDINGS = [
        Binding(
            "r", "rollback", "Roll back", id="versions.rollback", tooltip="Make the selected version active"
        ),
        Binding(
            "n", "snapshot", "Snapshot", id="versions.snapshot", tooltip="Name every agent's active version"
        ),
        Binding(
            "o", "restore", "Restore", id="versions.restore", tooltip="Restore a snapshot of every agent"
        ),
        Binding("a", "next_agent", "Agent", id="versions.agent", tooltip="Show the next agent's versions"),
        Binding(
            "e",
            "edit_agent",
            "Edit",
            show=False,
            id="versions.edit",
            tooltip="Edit the agent's instructions, model and settings: a new version, after a diff",
        ),
        Binding("escape,v", "close", "Back", id="versions.close", tooltip="Back to the run screen"),
    ]

    agent: reactive[str] = reactive("", init=False)
    """The agent whose versions are shown."""

    def __init__(self, system: System, store: Store, agent: str) -> None:
        super().__init__()
        self.system = system
        self.store = store
        self.set_reactive(VersionsScreen.agent, agent)
        self.rows: list[VersionRow] = []
        """The shown agent's versions, newest first."""
        self.pointer_log: list[VersionLogEntry] = []
        """The moves of the shown agent's active pointer, newest first."""
        self.selected: str | None = None
        """The version id under the table's cursor."""
        self._specs: dict[tuple[str, str], AgentSpec] = {}

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Tabs(
            *(Tab(name, id=f"agent-{name}") for name in self.system.spec.agents),
            active=f"agent-{self.agent}",
            id="versions-agents",
        )
        with Horizontal(id="versions-main"):
            with Vertical(id="versions-left"):
                yield DataTable(id="versions-table", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="versions-log", cursor_type="none", show_cursor=False)
            with Vertical(id="versions-right"):
                yield Static(id="versions-info")
                with VerticalScroll(id="versions-diff-box"):
                    yield SpecDiff(id="versions-diff")
                with VerticalScroll(id="versions-yaml-box"):
                    yield Static(id="versions-yaml")
        yield FoldingFooter()

    def on_mount(self) -> None:
        self.title = f"Versions · {self.system.spec.name}"
        self.sub_title = self.system.spec.description
        table = self.query_one("#versions-table", DataTable)
        table.add_column("", key="active", width=1)
        table.add_column("version", key="version")
        table.add_column("created", key="created")
        table.add_column("source", key="source")
        table.add_column("note", key="note")
        log = self.query_one("#versions-log", DataTable)
        log.add_column("when", key="when")
        log.add_column("action", key="action")
        log.add_column("from → to", key="moved")
        log.add_column("note", key="note")
        log.border_title = "history of the active pointer"
        self.query_one("#versions-diff-box").border_title = "diff"
        self.query_one("#versions-yaml-box").border_title = "YAML"
        table.focus()
        self.load()
        # Another process (`playground rollback`) may move an active version while this screen
        # is open: read the store again whenever the operator comes back to it.
        self.watch(self.app, "app_focus", self._on_app_focus, init=False)

    def on_screen_resume(self) -> None:
        self.load(self.selected)

    def _on_app_focus(self, focused: bool) -> None:
        if focused and self.is_current:
            self.load(self.selected)

    def watch_agent(self) -> None:
        self.query_one(Tabs).active = f"agent-{self.agent}"
        self.selected = None
        self.load()

    # -- loading -----------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="versions-load")
    async def load(self, select: str | None = None) -> None:
        """Read the agent's versions, their specs and its pointer log, then redraw."""
        agent = self.agent
        try:
            rows = await self.store.versions(self.system.name, agent)
            log = await self.store.version_log(self.system.name, agent)
            for row in rows:
                if (agent, row.version_id) not in self._specs:
                    spec_json = await self.store.version_spec(self.system.name, agent, row.version_id)
                    self._specs[(agent, row.version_id)] = AgentSpec.model_validate_json(spec_json)
        except PlaygroundError as exc:
            self.notify(str(exc), title="cannot read the versions", severity="error", timeout=10)
            return
        if agent != self.agent:
            return  # the operator switched agents meanwhile; that load redraws
        self.rows, self.pointer_log = rows, log
        self._show_rows(select or self.selected)
        self._show_log(log)

    def _show_rows(self, select: str | None) -> None:
        table = self.query_one("#versions-table", DataTable)
        table.border_title = f"versions of {self.agent} ({len(self.rows)})"
        table.clear()
        for row in self.rows:
            table.add_row(
                Text("●", "bold green") if row.active else "",
                Text(short(row.version_id), "bold" if row.active else ""),
                when(row.created_at, seconds=False),
                row.source,
                cut(row.note),
                key=row.version_id,
            )
        ids = [r.version_id for r in self.rows]
        if select not in ids:
            active = self.active_row()
            select = active.version_id if active is not None else (ids[0] if ids else None)
        if select is not None:
            table.move_cursor(row=ids.index(select), animate=False)
        self.show_version(select)

    def _show_log(self, log: list[VersionLogEntry]) -> None:
        table = self.query_one("#versions-log", DataTable)
        table.clear()
        for entry in log:
            table.add_row(
                when(entry.created_at, seconds=False),
                entry.action,
                f"{short(entry.from_version)} → {short(entry.to_version)}",
                cut(entry.note),
            )

    def active_row(self) -> VersionRow | None:
        return next((r for r in self.rows if r.active), None)

    def _spec(self, version: str) -> AgentSpec:
        return self._specs[(self.agent, version)]

    # -- the selected version ----------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "versions-table" and event.row_key.value is not None:
            self.show_version(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "versions-table":
            self.action_rollback()

    def show_version(self, version: str | None) -> None:
        """Show the diff of ``version`` against the active one, and its YAML."""
        self.selected = version
        info = self.query_one("#versions-info", Static)
        diff = self.query_one("#versions-diff", SpecDiff)
        diff_box = self.query_one("#versions-diff-box")
        yaml_box = self.query_one("#versions-yaml-box")
        yaml = self.query_one("#versions-yaml", Static)
        row = next((r for r in self.rows if r.version_id == version), None)
        if version is None or row is None:
            info.update(Text(f"{self.agent} has no stored versions yet: run the system once.", "dim"))
            diff.show("")
            yaml.update("")
            return
        spec = self._spec(version)
        info.update(self._info(row))
        active = self.active_row()
        if active is None:
            diff_box.border_title = "diff"
            diff.show("no active version to compare with")
        elif active.version_id != version:
            diff_box.border_title = (
                f"active {short(active.version_id)} → selected {short(version)} (what r changes)"
            )
            diff.show(
                diff_specs(
                    self._spec(active.version_id),
                    spec,
                    a_label=f"active {short(active.version_id)}",
                    b_label=f"selected {short(version)}",
                )
            )
        else:
            before = self._replaced(version)
            if before is None:
                diff_box.border_title = f"active {short(version)}"
                diff.show(
                    "The only version of this agent: nothing to compare with."
                    if len(self.rows) == 1
                    else "The first version recorded. Select another to see what rolling back to it changes."
                )
            else:
                diff_box.border_title = f"what active {short(version)} changed from {short(before)}"
                diff.show(
                    diff_specs(
                        self._spec(before), spec, a_label=short(before), b_label=f"active {short(version)}"
                    )
                )
        yaml_box.border_title = f"{self.agent} @ {short(version)} · YAML"
        yaml.update(Syntax(spec_to_yaml(spec), "yaml", theme="ansi_dark", word_wrap=True))

    def _replaced(self, version: str) -> str | None:
        """The version the active pointer last moved from onto ``version`` (still stored), if any."""
        for entry in self.pointer_log:
            moved_here = entry.to_version == version and entry.from_version not in (None, version)
            if moved_here and (self.agent, entry.from_version) in self._specs:
                return entry.from_version
        return None

    def _info(self, row: VersionRow) -> Text:
        text = Text.assemble(
            ("version ", "dim"),
            (row.version_id, "bold"),
            ("  ", ""),
            ("ACTIVE" if row.active else "inactive", "bold green" if row.active else "dim"),
            ("\n", ""),
            (f"{row.source}, {when(row.created_at)}", "dim"),
        )
        if row.note:
            text.append("  ")
            text.append(row.note, "italic")
        problem = self._misfit(self._spec(row.version_id))
        if problem:
            text.append(f"\n{problem}", "bold red")
        return text

    def _misfit(self, spec: AgentSpec) -> str:
        """Why ``spec`` cannot run in this system file, or ''."""
        return misfit(self.system, spec)

    # -- actions -----------------------------------------------------------------------------

    def action_next_agent(self) -> None:
        names = list(self.system.spec.agents)
        self.agent = names[(names.index(self.agent) + 1) % len(names)]

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        tab_id = event.tab.id or ""
        name = tab_id.removeprefix("agent-")
        if name in self.system.spec.agents and name != self.agent:
            self.agent = name

    def action_rollback(self) -> None:
        version, active = self.selected, self.active_row()
        if version is None:
            self.notify("No version selected.", severity="warning")
            return
        if active is not None and active.version_id == version:
            self.notify(f"{short(version)} is already {possessive(self.agent)} active version.")
            return
        agent = self.agent
        spec = self._spec(version)
        details = diff_text(
            diff_specs(
                self._spec(active.version_id),
                spec,
                a_label=f"active {short(active.version_id)}",
                b_label=f"selected {short(version)}",
            )
            if active is not None
            else "no active version"
        )
        problem = self._misfit(spec)
        if problem:
            details.append(f"\n\nThis version {problem}: the next run will refuse it.", "bold red")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.rollback(agent, version)

        self.app.push_screen(
            ConfirmRollbackScreen(f"Roll {agent} back to version {short(version)}?", details), confirmed
        )

    @work(exclusive=True, exit_on_error=False, group="versions-change")
    async def rollback(self, agent: str, version: str) -> None:
        """Point ``agent`` at ``version`` in the store."""
        try:
            before, after = await self.store.rollback(
                self.system.name, agent, version, note="rolled back in the TUI"
            )
        except PlaygroundError as exc:
            self.notify(str(exc), title="rollback failed", severity="error", timeout=10)
            return
        self.notify(
            f"{agent} now runs version {short(after)} (was {short(before)}); the next run uses it.",
            title="rolled back",
        )
        if agent == self.agent:
            self.load(select=after)

    def action_snapshot(self) -> None:
        self._ask_snapshot_name()

    @work(exclusive=True, exit_on_error=False, group="versions-change")
    async def _ask_snapshot_name(self) -> None:
        taken = {s.name for s in await self.store.snapshots(self.system.name)}
        default = dt.datetime.now().strftime("%Y-%m-%d-%H%M")
        answer = await self.app.push_screen_wait(SnapshotNameScreen(self.system.name, taken, default))
        if answer is None:
            return
        name, replace = answer
        try:
            versions = await self.store.snapshot(self.system.name, name, replace=replace)
        except PlaygroundError as exc:
            self.notify(str(exc), title="no snapshot taken", severity="error", timeout=10)
            return
        listed = ", ".join(f"{a} {short(v)}" for a, v in sorted(versions.items()))
        self.notify(
            f"{listed}. o restores it.", title=f"snapshot {name!r} {'replaced' if replace else 'taken'}"
        )

    def action_restore(self) -> None:
        self._restore()

    @work(exclusive=True, exit_on_error=False, group="versions-change")
    async def _restore(self) -> None:
        snapshots = await self.store.snapshots(self.system.name)
        if not snapshots:
            self.notify("No snapshots of this system yet: n takes one.", severity="warning")
            return
        active = await self.store.active_versions(self.system.name)
        name = await self.app.push_screen_wait(RestoreSnapshotScreen(self.system.name, snapshots, active))
        if name is None:
            return
        try:
            changes = await self.store.restore_snapshot(self.system.name, name)
        except PlaygroundError as exc:
            self.notify(str(exc), title="restore failed", severity="error", timeout=10)
            return
        if not changes:
            self.notify(f"Every agent already runs its version in {name!r}.", title="nothing to restore")
            return
        moved = ", ".join(f"{a} {short(old)} → {short(new)}" for a, (old, new) in sorted(changes.items()))
        self.notify(f"{moved}; the next run uses them.", title=f"restored {name!r}")
        self.load()

    def action_edit_agent(self) -> None:
        agent = self.agent

        def saved(version: str | None) -> None:
            if version is not None and agent == self.agent:
                # Selected first: the reload on coming back to this screen keeps it too.
                self.selected = version
                self.load(select=version)

        self.app.push_screen(AgentEditorScreen(self.system, self.store, agent), saved)

    def action_close(self) -> None:
        self.dismiss(None)
