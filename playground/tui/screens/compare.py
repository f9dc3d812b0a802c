"""The compare screen: one agent's two variants run the same input side by side, live.

Each input runs through both variants at once, each side a
:class:`~playground.debug.DebugSession` (as ``playground compare`` runs them) with its
own bridge (so each side streams live), its own step controller (so ``s`` can step both
in lockstep, :func:`~playground.debug.step_together`) and its own model factory (so a
scenario's faults hit both sides). Each run is a recorded session; when both finish, the
summary table shows the report :func:`playground.compare.input_report` builds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState

from playground.compare import (
    Case,
    Side,
    agents_for,
    build_report,
    input_report,
    load_cases,
    resolve_side,
    word_diff,
)
from playground.debug import DebugSession, step_together
from playground.engine.clock import SYSTEM_CLOCK, Clock
from playground.engine.runtime import LLMFactory, RunResult, default_llm_factory
from playground.service import active_agents
from playground.spec.load import System
from playground.spec.models import AgentSpec
from playground.store.store import Store
from playground.tui.bridge import Bridge
from playground.tui.screens.compare_setup import CompareChoice
from playground.tui.state import RunView
from playground.tui.widgets.compare_side import CompareSide
from playground.tui.widgets.compare_summary import CompareSummary
from playground.tui.widgets.folding_footer import FoldingFooter

STATUS_STYLES = {
    "ready": "dim",
    "running": "bold cyan",
    "paused": "bold yellow",
    "completed": "bold green",
    "failed": "bold red",
    "aborted": "bold red",
}
DIFFERS = "bold black on yellow"


@dataclass
class SideRun:
    """One variant: what it is, and its run in progress (or last run)."""

    key: str
    label: str
    view: RunView
    side: Side | None = None
    bridge: Bridge | None = None
    session: DebugSession | None = None
    """The debug session of the input running now, if any."""
    results: list[RunResult] = field(default_factory=list)

    def describe(self, agent: str) -> str:
        if self.side is None:
            return f"{agent}: {self.label}"
        if self.side.version is not None:
            return f"{agent} @ version {self.side.version[:8]}"
        version = self.view.agents[agent].version[:8] if agent in self.view.agents else ""
        return f"{agent} on {self.side.model}" + (f" ({version})" if version else "")


class CompareScreen(Screen[None]):
    """Two runs of one system, side by side: A with one variant of an agent, B with the other.

    Args:
        system: The loaded system.
        store: The open store (both runs are recorded in it).
        choice: What to compare (from the compare setup dialog).
        llm_factory: Builds the model each agent calls.
    """

    BINDINGS = [
        Binding(
            "s", "step", "Step both", id="compare.step", tooltip="Release both held runs to their next gate"
        ),
        Binding("c", "continue", "Continue both", id="compare.continue", tooltip="Run both on to the end"),
        Binding("p", "pause", "Pause both", id="compare.pause", tooltip="Hold both runs at their next gate"),
        Binding("a", "abort", "Abort", id="compare.abort", tooltip="Abort both runs at their next gate"),
        Binding("escape", "back", "Back", id="compare.back", tooltip="Back to the run screen"),
        Binding("q", "quit_app", "Quit", id="compare.quit", tooltip="Abort both runs and quit"),
    ]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    """Below 36 rows the agent panes give way to the timelines, the differences and the summary."""

    def __init__(
        self,
        system: System,
        store: Store,
        choice: CompareChoice,
        *,
        llm_factory: LLMFactory = default_llm_factory,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__()
        self.system = system
        self.store = store
        self.choice = choice
        self.llm_factory = llm_factory
        self.clock = clock
        self.sides = (
            SideRun("A", choice.a, RunView(system, clock=clock)),
            SideRun("B", choice.b, RunView(system, clock=clock)),
        )
        self.reports: list[dict[str, Any]] = []
        """One :func:`~playground.compare.input_report` per input compared so far."""
        self.cases: list[Case] = []
        self.case_index = 0
        self._leaving = False
        self._holding = False
        """The operator paused or stepped, and has not continued: each input's runs start held."""

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="compare-info")
        with Horizontal(id="compare-sides"):
            yield CompareSide("A", id="side-a")
            yield CompareSide("B", id="side-b")
        yield CompareSummary(id="compare-summary")
        yield FoldingFooter()
        self.title = f"compare {self.choice.agent} · {self.system.spec.name}"
        self.sub_title = f"A {self.choice.a} vs B {self.choice.b}"

    def on_mount(self) -> None:
        entry = self.system.spec.entry_agent
        for widget in self.query(CompareSide):
            widget.ensure_panes([entry, self.choice.agent])
        self.set_interval(0.25, self._tick)
        self._redraw()
        self.run_comparison()

    # -- drawing -----------------------------------------------------------------------------

    def _redraw(self) -> None:
        a, b = self.sides
        for run, other in ((a, b), (b, a)):
            widget = self.query_one(f"#side-{run.key.lower()}", CompareSide)
            widget.show(run.view, self._title(run), self._diff(run, other))
        self.query_one("#compare-info", Static).update(self._info())
        self.query_one(CompareSummary).show(self.reports, (a.label, b.label))

    def _title(self, run: SideRun) -> Table:
        """The side's key and status, what it runs, its tokens, and its session id.

        Narrow (80 columns: 38 a side), what it runs and its tokens give way, a word at a
        time (a version id is shown whole or not at all); the key, the status and the session
        id always show.
        """
        view = run.view
        head = Text(no_wrap=True)
        head.append(f" {run.key} ", "reverse bold")
        head.append("  ")
        head.append(f" {view.status.upper()} ", f"reverse {STATUS_STYLES.get(view.status, '')}")
        what = Text()  # wraps at words, onto a line the one-row title does not show: never a cut id
        what.append("  " + run.describe(self.choice.agent), "bold")
        tokens_in, tokens_out, cost = view.totals()
        if tokens_in or tokens_out:
            what.append(f"  {tokens_in + tokens_out} tok ${cost:.6f}", "dim")
        title = Table.grid()
        title.add_column(no_wrap=True)
        title.add_column()
        title.add_column(no_wrap=True)
        title.add_row(head, what, Text(f"  {view.session_id}" if view.session_id else "", "dim"))
        return title

    def _diff(self, run: SideRun, other: SideRun) -> Text:
        """This side's path and output, with what differs from the other side highlighted."""
        view, theirs = run.view, other.view
        text = Text()
        if view.status not in ("completed", "failed", "aborted"):
            if view.gate is not None:
                text.append("⏸ held: ", "bold yellow")
                text.append(view.agents[view.gate.agent].pending if view.gate.agent in view.agents else "")
                text.append("\ns steps both · c continues both", "dim")
            return text
        both_done = theirs.status in ("completed", "failed", "aborted")
        text.append("path ", "dim")
        for index, agent in enumerate(view.path):
            if index:
                text.append(" → ", "dim")
            same = index < len(theirs.path) and theirs.path[index] == agent
            text.append(agent, "bold" if same or not both_done else DIFFERS)
        if both_done:
            if view.path == theirs.path:
                text.append("   same path", "dim")
            else:
                text.append(f"   path differs from {other.key}", "bold yellow")
        text.append("\n")
        if view.error is not None:
            text.append(f"✘ {view.error['type']}: ", "bold red")
            text.append(" ".join(str(view.error["message"]).split()))
            return text
        text.append("output ", "dim")
        if not both_done or not theirs.output:
            text.append(view.output)
            return text
        first, second = (theirs, view) if run.key == "B" else (view, theirs)
        mine = "insert" if run.key == "B" else "delete"
        style = "bold black on green" if mine == "insert" else "bold black on red"
        pieces = [p for p in word_diff(first.output, second.output) if p["op"] in ("equal", mine)]
        for index, piece in enumerate(pieces):
            if index:
                text.append(" ")
            text.append(piece["text"], style if piece["op"] == mine else "")
        return text

    def _info(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        case = self.cases[self.case_index] if self.case_index < len(self.cases) else None
        if len(self.cases) > 1:
            text.append(f"input {self.case_index + 1}/{len(self.cases)} ", "bold")
            text.append(f"{case.name if case else ''}: ", "bold")
        else:
            text.append("input ", "dim")
        request = case.request if case is not None else (self.choice.request or "")
        text.append(" ".join(request.split()) or "(a scenario of one agent, given its context)")
        if self.choice.lockstep:
            text.append("   lockstep: s steps both", "yellow")
        return text

    def _tick(self) -> None:
        if any(run.view.running for run in self.sides):
            self._redraw()

    # -- the bridges -------------------------------------------------------------------------

    def _run_of(self, bridge: Bridge) -> SideRun | None:
        return next((run for run in self.sides if run.bridge is bridge), None)

    def on_bridge_batch(self, message: Bridge.Batch) -> None:
        run = self._run_of(message.bridge)
        if run is not None:
            run.view.apply_all(message.items)
            self._redraw()

    def on_bridge_held(self, message: Bridge.Held) -> None:
        run = self._run_of(message.bridge)
        if run is not None:
            run.view.hold(message.gate)
            self._redraw()

    # -- running -----------------------------------------------------------------------------

    async def _variants(self) -> list[tuple[dict[str, AgentSpec], dict[str, str]]]:
        """Resolve A and B, and the specs each side runs (the store's active ones, one agent swapped)."""
        choice = self.choice
        base, versions = await active_agents(self.store, self.system)
        variants = []
        for run in self.sides:
            run.side = await resolve_side(self.store, self.system, choice.agent, run.label)
            agents, vids = await agents_for(self.store, self.system, choice.agent, run.side, base, versions)
            run.view = RunView(self.system, agents, vids, clock=self.clock)
            variants.append((agents, vids))
        return variants

    def _session(
        self, run: SideRun, spec: tuple[dict[str, AgentSpec], dict[str, str]], *, stepping: bool
    ) -> DebugSession:
        """A new debug session for ``run``'s side of the next input, streaming to a new bridge."""
        bridge = Bridge(self)
        session = DebugSession(
            self.system,
            self.store,
            agents=spec[0],
            versions=spec[1],
            llm_factory=self.llm_factory,
            stepping=stepping,
            live=[bridge],
            on_pause=bridge.on_pause,
            clock=self.clock,
            tracer=getattr(self.app, "tracer", None),
        )
        run.bridge, run.session = bridge, session
        return session

    async def _run_side(self, run: SideRun, session: DebugSession, case: Case) -> RunResult:
        assert run.bridge is not None
        try:
            if self.choice.session is not None and run.side is not None:
                # Replayed from the recording: unchanged agents cost no model call.
                from playground.replay import Variant

                variant = Variant(self.choice.agent, run.side.version, run.side.model)
                return (await session.replay(self.choice.session, variant=variant)).result
            # Each side's session injects the scenario's faults into its own run.
            return await case.run_in(session)
        finally:
            run.bridge.close()

    @work(exclusive=True, exit_on_error=False, group="run")
    async def run_comparison(self) -> list[dict[str, Any]]:
        """Run every input through both variants at once, each side a debug session that
        streams through its bridge."""
        choice = self.choice
        if choice.session is not None:
            recorded = await self.store.session(choice.session)
            self.cases = [Case(f"session {recorded.session_id}", recorded.input)]
        else:
            self.cases = load_cases(self.system, request=choice.request, scenarios=choice.scenarios)
        variants = await self._variants()
        self._redraw()
        for index, case in enumerate(self.cases):
            if self._leaving:
                break
            self.case_index = index
            sessions = []
            for run, spec in zip(self.sides, variants, strict=True):
                run.view.reset()
                run.view.status = "running"
                sessions.append(self._session(run, spec, stepping=choice.lockstep or self._holding))
            self._redraw()
            runs = [
                asyncio.ensure_future(self._run_side(run, session, case))
                for run, session in zip(self.sides, sessions, strict=True)
            ]
            try:
                result_a, result_b = await asyncio.gather(*runs)
            except BaseException:
                # One side could not run (or the worker was cancelled): the other must not be
                # left held at a gate, or running on, with nobody to drive it. It is aborted.
                for session in sessions:
                    session.abort()
                await asyncio.gather(*runs, return_exceptions=True)
                raise
            for run, result in zip(self.sides, (result_a, result_b), strict=True):
                run.results.append(result)
                run.session = None
            # A pause that found no gate before this input ended holds the next input's runs.
            self._holding = self._holding or any(session.controller.stepping for session in sessions)
            self.reports.append(
                input_report(case.name, case.request, result_a, result_b, case.checks(result_a, result_b))
            )
            # The bridges' last batches are queued behind this point; the redraw after them shows both.
            self.call_later(self._redraw)
        side_a, side_b = self.sides[0].side, self.sides[1].side
        if self.reports and not self._leaving and side_a is not None and side_b is not None:
            # Stored like `playground compare`, so `playground comparisons` lists and reopens it.
            source = {"input": choice.request, "scenarios": choice.scenarios, "session": choice.session}
            report = build_report(self.system.name, choice.agent, side_a, side_b, source, self.reports)
            comparison_id = await self.store.save_comparison(
                self.system.name, choice.agent, report, comparison_id=self.clock.token_hex(6)
            )
            # Said on the summary, not in a toast: at 80x24 a toast covers the summary.
            self.query_one(CompareSummary).stored(comparison_id)
        return self.reports

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "run" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        for run in self.sides:
            run.session = None
            if run.view.running:
                run.view.status = "aborted"
        if event.state == WorkerState.ERROR:
            self.notify(str(event.worker.error), title="the comparison stopped", severity="error", timeout=10)
        self._redraw()
        if self._leaving:
            self.app.pop_screen()

    # -- operator actions --------------------------------------------------------------------

    def _live(self) -> list[tuple[SideRun, DebugSession]]:
        return [(run, run.session) for run in self.sides if run.session is not None and not run.session.done]

    def action_step(self) -> None:
        sessions = self._live()
        together = step_together([session for _, session in sessions])
        if together.action == "idle" and not self._comparing():
            self.notify("Nothing is running.")
        elif together.action in ("idle", "holding"):  # idle: between two inputs
            self._holding = True
            self.notify("Holding both runs at their next gate.")
        elif together.action == "waiting":
            waiting = ", ".join(run.key for run, session in sessions if session in together.sessions)
            self.notify(f"Lockstep: waiting for {waiting} to reach its gate.")
        else:
            for run, session in sessions:
                if session in together.sessions:
                    run.view.release()
            self._redraw()

    def action_continue(self) -> None:
        sessions = self._live()
        if not self._comparing():
            self.notify("Nothing is running.")
            return
        self._holding = False
        for run, session in sessions:
            if session.resume():
                run.view.release()
        self._redraw()

    def action_pause(self) -> None:
        if not self._comparing():
            self.notify("Nothing is running.")
            return
        self._holding = True
        for _, session in self._live():
            session.hold()
        self.notify("Holding both runs at their next gate.")

    def action_abort(self) -> None:
        sessions = self._live()
        if not sessions:
            self.notify("Nothing is running.")
            return
        for run, session in sessions:
            if session.abort():
                run.view.release()
        self._redraw()

    def _comparing(self) -> bool:
        return any(w.node is self and w.group == "run" and w.is_running for w in self.app.workers)

    def action_back(self) -> None:
        if not self._comparing():
            self.app.pop_screen()
            return
        self._leaving = True
        self.action_abort()
        self.notify("Aborting both runs…")

    async def action_quit_app(self) -> None:
        for _, session in self._live():
            session.abort()
        await self.app.action_quit()
