"""The versions screen's dialogs: confirm a rollback, name a snapshot, choose one to restore."""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from playground.store.store import SnapshotRow
from playground.tui.screens.dialog import say


class ConfirmRollbackScreen(ModalScreen[bool]):
    """Returns True when the operator confirms.

    Args:
        question: What is about to happen (one line).
        details: What it changes (the diff), shown under the question.
    """

    BINDINGS = [
        Binding("y", "confirm", "Roll back", id="rollback.confirm", tooltip="Move the active version"),
        Binding("escape,n", "cancel", "Cancel", id="rollback.cancel", tooltip="Leave the active version"),
    ]

    def __init__(self, question: str, details: Text) -> None:
        super().__init__()
        self.question = question
        self.details = details

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="rollback-dialog", classes="dialog"):  # a long diff scrolls
            yield Label(self.question, classes="dialog-title")
            yield Static(self.details, id="rollback-details")
            yield Static("The next run uses this version. Nothing is deleted.", classes="dim")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Roll back (y)", id="rollback-yes", variant="warning")
                yield Button("Cancel (n)", id="rollback-no")

    def on_mount(self) -> None:
        self.query_one("#rollback-yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "rollback-yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class SnapshotNameScreen(ModalScreen[tuple[str, bool] | None]):
    """Returns the snapshot's name and whether it replaces one of that name, or None.

    Args:
        system: The system whose active versions are named.
        taken: Names its snapshots already have.
        default: The name offered.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="snapshot.cancel", tooltip="Take no snapshot")]

    def __init__(self, system: str, taken: set[str], default: str) -> None:
        super().__init__()
        self.system = system
        self.taken = taken
        self.default = default
        self._confirmed_replace = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="snapshot-dialog", classes="dialog"):
            yield Label(f"Snapshot of {self.system}", classes="dialog-title")
            yield Static(
                "Names the active version of every agent, to restore later (o). enter takes it, esc cancels.",
                classes="dim",
            )
            yield Input(self.default, placeholder="a name, e.g. before-prompt-change", id="snapshot-name")
            yield Static("", id="snapshot-warning")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._confirmed_replace = ""
        self.query_one("#snapshot-warning", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        warning = self.query_one("#snapshot-warning", Static)
        if not name:
            say(warning, "A snapshot needs a name.")
            return
        if name in self.taken and self._confirmed_replace != name:
            self._confirmed_replace = name
            say(warning, f"A snapshot {name!r} exists: enter again to replace it, or change the name.")
            return
        self.dismiss((name, name in self.taken))

    def action_cancel(self) -> None:
        self.dismiss(None)


class RestoreSnapshotScreen(ModalScreen[str | None]):
    """Returns the name of the snapshot to restore, or None.

    Args:
        system: The system the snapshots belong to.
        snapshots: Its snapshots, newest first.
        active: Each agent's active version now (to say what a restore would move).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="restore.cancel", tooltip="Restore nothing")]

    def __init__(self, system: str, snapshots: list[SnapshotRow], active: dict[str, str]) -> None:
        super().__init__()
        self.system = system
        self.snapshots = snapshots
        self.active = active

    def compose(self) -> ComposeResult:
        with Vertical(id="restore-dialog", classes="dialog"):
            yield Label(f"Restore a snapshot of {self.system}", classes="dialog-title")
            yield OptionList(*(self._option(s) for s in self.snapshots), id="restore-choices")
            yield Static(
                "Every agent goes back to its version in the snapshot. enter restores, esc cancels.",
                classes="dim",
            )

    def _option(self, snapshot: SnapshotRow) -> Option:
        moves = [
            f"{a} {self.active.get(a, '—')[:8]} → {v[:8]}"
            for a, v in sorted(snapshot.versions.items())
            if self.active.get(a) != v
        ]
        when = dt.datetime.fromtimestamp(snapshot.created_at).strftime("%Y-%m-%d %H:%M")
        label = Text.assemble((snapshot.name, "bold"), ("  " + when, "dim"), "  ")
        if moves:
            label.append(f"moves {', '.join(moves)}", "yellow")
        else:
            label.append("same as active", "dim")
        return Option(label, id=snapshot.name)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
