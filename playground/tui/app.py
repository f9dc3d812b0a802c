"""The Textual app: owns the store and the screens.

Started by ``playground`` (the home screen) or ``playground tui SYSTEM.yaml``
(the run screen). Importing this module must stay cheap: litellm is imported
only when a run needs a real model, in a thread (``run_session`` preloads it).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker

from playground.engine.clock import SYSTEM_CLOCK, Clock
from playground.engine.runtime import EventSink, LLMFactory, default_llm_factory
from playground.errors import PlaygroundError
from playground.spec.load import System
from playground.store.store import Store, default_db_path
from playground.tui.screens.home import HomeScreen
from playground.tui.screens.run import RunScreen
from playground.tui.screens.sessions import SessionChosen, SessionsScreen, load_recorded

QUIT_GRACE_S = 2.0
"""How long quitting waits for an aborted run to record itself."""


class PlaygroundApp(App[int]):
    """The playground TUI.

    Args:
        system: Open the run screen on this system; None opens the home screen.
        db_path: The session store (default: ``$PLAYGROUND_DB`` or ``sessions/playground.db``).
        agents_dir: Where the home screen looks for system files.
        llm_factory: Builds the model an agent calls; the default is scripted or litellm.
    """

    CSS_PATH = "app.tcss"
    TITLE = "Agent Playground"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Quit; a run in progress is aborted first"),
        Binding(
            "question_mark,f1",
            "show_keys",
            "Keys",
            show=False,
            id="app.keys",
            tooltip="List the keys of this screen and what each does",
        ),
        Binding(
            "H",
            "home",
            "Home",
            show=False,
            id="app.home",
            tooltip="Back to the home screen: the systems and the recent sessions",
        ),
    ]

    def __init__(
        self,
        system: System | None = None,
        *,
        db_path: str | Path | None = None,
        agents_dir: str | Path = "agents",
        llm_factory: LLMFactory = default_llm_factory,
        clock: Clock = SYSTEM_CLOCK,
        observe: int | None = None,
        observe_host: str = "127.0.0.1",
        tracer: EventSink | None = None,
    ) -> None:
        super().__init__()
        self.tracer = tracer
        """Traces every run, fork, replay and comparison started here (``--otlp`` and the
        ``OTEL_*`` variables, as for ``playground run``); its owner finishes it."""
        self.observe = observe
        """Open the observe screen serving OTLP/HTTP on this port (``tui --observe``)."""
        self.observe_host = observe_host
        self.llm_factory = llm_factory
        """Builds the model for each agent (tests pass fakes)."""
        self.clock = clock
        """The time and id sources of every run (tests pass a fixed one)."""
        self.system = system
        self.db_path = Path(db_path) if db_path is not None else default_db_path()
        self.agents_dir = Path(agents_dir)
        self.store = Store(self.db_path)
        """The session store, open while the app runs."""

    async def on_mount(self) -> None:
        try:
            await self.store.open()
        except PlaygroundError as exc:
            self.exit(1, message=f"error: {exc}")
            return
        if self.observe is not None:
            from playground.tui.screens.observe import ObserveScreen

            await self.push_screen(ObserveScreen(self.store, port=self.observe, host=self.observe_host))
        elif self.system is not None:
            await self.push_screen(
                RunScreen(self.system, self.store, llm_factory=self.llm_factory, clock=self.clock)
            )
        else:
            await self.push_screen(HomeScreen(self.store, self.agents_dir))
        from playground.heap import settle

        settle()  # what the app has loaded now lives as long as it: out of the GC's full passes

    async def on_unmount(self) -> None:
        await self.store.close()

    async def on_home_screen_system_chosen(self, message: HomeScreen.SystemChosen) -> None:
        await self.push_screen(
            RunScreen(message.system, self.store, llm_factory=self.llm_factory, clock=self.clock)
        )

    async def on_session_chosen(self, message: SessionChosen) -> None:
        """Open a stored session read-only in the run screen's layout (an observed one in the
        observe screen's: it has no system file)."""
        from playground.observe.record import observed_framework

        try:
            row = await self.store.session(message.session_id)
            if observed_framework(row.system_path) is not None:
                from playground.tui.screens.observe import ObserveScreen

                await self.push_screen(ObserveScreen(self.store, session_id=row.session_id))
                return
            recorded = await load_recorded(self.store, message.session_id)
        except PlaygroundError as exc:
            self.notify(str(exc), title="cannot open the session", severity="error", timeout=10)
            return
        screen = RunScreen(
            recorded.system, self.store, llm_factory=self.llm_factory, clock=self.clock, recorded=recorded
        )
        await self.push_screen(screen)

    async def on_sessions_screen_diff_chosen(self, message: SessionsScreen.DiffChosen) -> None:
        """Show two stored sessions side by side (what ``playground diff A B`` prints)."""
        from playground.tui.screens.diff import DiffScreen

        await self.push_screen(DiffScreen(self.store, message.a, message.b))

    @property
    def screenshot_dir(self) -> Path:
        """Where screenshots go: ``screenshots/`` beside the store, so under the workspace."""
        return self.db_path.parent.resolve() / "screenshots"

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Save an SVG of the screen in :attr:`screenshot_dir` (created if need be) unless told
        where; Textual's default, the user's Downloads folder, may not exist."""
        if path is None:
            folder = self.screenshot_dir
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.notify(f"cannot create {folder}: {exc}", title="Screenshot", severity="error")
                return None
            path = str(folder)
        return super().deliver_screenshot(filename, path, time_format)

    def action_show_keys(self) -> None:
        """Open the list of the current screen's keys (built from its active bindings)."""
        from playground.tui.screens.keys import KeysScreen, key_rows

        screen = self.screen
        if isinstance(screen, KeysScreen):
            return
        name = type(screen).__name__.removesuffix("Screen")  # ModelCall: "model call screen"
        kind = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower() or "this"
        title = f"{screen.title or self.title} · {kind} screen"
        self.push_screen(KeysScreen(title, key_rows(self, screen)))

    async def action_home(self) -> None:
        """Back to the home screen: the screens above it close (opened on one system, the
        home screen replaces them). A screen whose run is in progress is never closed."""
        stack = self.screen_stack
        home = next((s for s in stack if isinstance(s, HomeScreen)), None)
        leaving = stack[stack.index(home) + 1 :] if home is not None else stack[1:]
        if any(w.group == "run" and w.is_running and w.node in leaving for w in self.workers):
            self.notify(
                "A run is in progress: abort it (a) or let it finish, then go home.",
                title="cannot go home yet",
                severity="warning",
            )
            return
        if home is not None:
            while self.screen is not home:
                await self.pop_screen()
            return
        while len(self.screen_stack) > 2:
            await self.pop_screen()
        await self.switch_screen(HomeScreen(self.store, self.agents_dir))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "home":
            return not isinstance(self.screen, HomeScreen)
        return True

    async def action_quit(self) -> None:
        """Abort runs in progress (so their sessions record as aborted), then exit."""
        running = [s for s in self.screen_stack if isinstance(s, RunScreen) and s.controller is not None]
        for screen in running:
            if screen.controller is not None:
                screen.controller.abort()
        workers = [w for w in self.workers if w.group == "run" and w.is_running]
        if workers:
            await asyncio.wait([asyncio.ensure_future(_settle(w)) for w in workers], timeout=QUIT_GRACE_S)
        self.exit(0)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Keys of this screen (?)", "What each key does here, and where", self.action_show_keys
        )
        if not isinstance(screen, HomeScreen):
            yield SystemCommand(
                "Home (H)", "Back to the home screen: the systems and the recent sessions", self.action_home
            )
        if isinstance(screen, RunScreen):
            yield from screen.palette_commands()


async def _settle(worker: Worker[object]) -> None:
    with contextlib.suppress(Exception):
        await worker.wait()
