"""The run screen: send a request, watch every agent work, and debug the run step by step."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any, Literal

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, Input
from textual.worker import Worker, WorkerState

from playground.debug import DebugSession
from playground.engine.clock import SYSTEM_CLOCK, Clock
from playground.engine.controller import Gate, StepController
from playground.engine.events import Event
from playground.engine.runtime import LLMFactory, RunResult, default_llm_factory
from playground.errors import PlaygroundError
from playground.replay import Variant
from playground.service import active_agents
from playground.spec.identity import canonical_spec, version_id_of_json
from playground.spec.load import System
from playground.spec.models import AgentSpec
from playground.store.store import Store
from playground.tui.bridge import Bridge
from playground.tui.metric_breakpoints import MetricController, MetricPoint
from playground.tui.screens.agent_editor import AgentEditorScreen
from playground.tui.screens.breakpoint_dialog import BreakpointScreen
from playground.tui.screens.call_edit import CallEdit, CallEditScreen
from playground.tui.screens.deny_reason import DenyReasonScreen
from playground.tui.screens.edit_payload import Edited, EditPayloadScreen
from playground.tui.screens.fork import Branch, BranchMode, BranchScreen, fork_point
from playground.tui.screens.home import HomeScreen
from playground.tui.screens.model_call import ModelCallScreen
from playground.tui.screens.model_swap import ModelChoice, ModelSwapScreen, swapped_spec
from playground.tui.screens.sessions import RecordedSession, SessionsScreen
from playground.tui.screens.versions import VersionsScreen
from playground.tui.state import HandoffView, RunView, Step, TextChunk, possessive
from playground.tui.widgets.agent_pane import AgentPane, pane_id
from playground.tui.widgets.blame_chain import BlameChain
from playground.tui.widgets.budget_meter import agent_usage, meter_text
from playground.tui.widgets.folding_footer import FoldingFooter
from playground.tui.widgets.gate_banner import GateBanner, call_text
from playground.tui.widgets.handoff_path import HandoffPath
from playground.tui.widgets.inspector import Inspector
from playground.tui.widgets.pane_grid import PaneGrid
from playground.tui.widgets.request_input import RequestInput
from playground.tui.widgets.system_graph import GraphPane
from playground.tui.widgets.timeline import Timeline
from playground.tui.widgets.timeline_filter import SYNTAX as TIMELINE_FILTER_SYNTAX
from playground.tui.widgets.timeline_filter import TimelineFilter
from playground.tui.widgets.totals import Totals

READ_ONLY_DISABLED = frozenset(
    {
        "step",
        "continue",
        "pause",
        "retry",
        "edit",
        "approve",
        "deny",
        "toggle_breakpoint",
        "break_on",
        "swap_model",
        "edit_agent",
        "abort",
        "focus_input",
    }
)
"""Actions a read-only session screen hides: nothing runs there."""
FOOTER_FOLD = (
    "versions",
    "swap_model",
    "graph",
    "toggle_breakpoint",
    "inspect_call",
    "blame",
    "pause",
    "retry",
    "edit",
)
"""The keys a narrow footer leaves out first, in this order (they stay in the palette)."""


class RunScreen(Screen[None]):
    """One system: its agents' panes, the handoff path, inspector, timeline and totals.

    Args:
        system: The loaded system.
        store: The open session store.
        llm_factory: Builds the model each agent calls.
        recorded: Show this stored session read-only, rebuilt from its events.
        branch: Run this fork or replay of a stored session as soon as the screen opens.
    """

    BINDINGS = [
        Binding(
            "s,ctrl+s",
            "step",
            "Step",
            id="run.step",
            tooltip="Run to the next gate and pause (starts the typed request in step mode); "
            "ctrl+s works in the request box too",
        ),
        Binding(
            "c", "continue", "Continue", id="run.continue", tooltip="Run on to the next breakpoint or the end"
        ),
        Binding("p", "pause", "Pause", id="run.pause", tooltip="Pause the run at the next gate"),
        Binding("r", "retry", "Retry", id="run.retry", tooltip="Run the held agent's last model call again"),
        Binding(
            "e",
            "edit",
            "Edit",
            id="run.edit",
            tooltip="Edit what the run holds: a handoff context, a stage's output, a delegated task, "
            "tool arguments, or a model call's messages and instructions",
        ),
        Binding(
            "y,enter",
            "approve",
            "Approve",
            id="run.approve",
            tooltip="Run the held tool call that needs approval",
        ),
        Binding(
            "n",
            "deny",
            "Deny",
            id="run.deny",
            tooltip="Refuse the held tool call that needs approval, with a reason the model is told",
        ),
        Binding(
            "b",
            "toggle_breakpoint",
            "Break",
            id="run.breakpoint",
            tooltip="Toggle a breakpoint on the focused agent",
        ),
        Binding(
            "B",
            "break_on",
            "Break on…",
            show=False,
            id="run.break_on",
            tooltip="Break when an agent's cost or latency passes a value (cost:AGENT>USD, latency:AGENT>MS)",
        ),
        Binding(
            "m",
            "swap_model",
            "Model",
            id="run.model",
            tooltip="Swap the focused agent's model (a new version)",
        ),
        Binding("a", "abort", "Abort", id="run.abort", tooltip="Abort the run at the next gate"),
        Binding(
            "v",
            "versions",
            "Versions",
            id="run.versions",
            tooltip="Versions of the focused agent: history, diff, roll back, snapshot, restore",
        ),
        Binding(
            "w",
            "blame",
            "Blame",
            id="run.blame",
            tooltip="Where the failure started: the failing field's hops, origin to manifestation",
        ),
        Binding("f", "fork", "Fork", id="run.fork", tooltip="Fork the session from the selected step"),
        Binding(
            "x",
            "compare",
            "Compare",
            show=False,
            id="run.compare",
            tooltip="Compare two versions side by side",
        ),
        Binding(
            "R",
            "replay",
            "Replay",
            show=False,
            id="run.replay",
            tooltip="Replay the session: answered from its recording until a request differs",
        ),
        Binding(
            "g",
            "graph",
            "Graph",
            id="run.graph",
            tooltip="The system as a graph: who handles the request now, the edges taken so far",
        ),
        Binding(
            "o",
            "open_sessions",
            "Sessions",
            show=False,
            id="run.sessions",
            tooltip="Browse past sessions and open one read-only",
        ),
        Binding("escape", "leave_input", "Leave input", id="run.panes", tooltip="Focus the agent panes"),
        Binding("escape", "back", "Back", id="run.back", tooltip="Back to the previous screen"),
        Binding("slash", "focus_input", "Request", show=False, id="run.input", tooltip="Type a request"),
        Binding(
            "ctrl+f",
            "filter_timeline",
            "Filter timeline",
            show=False,
            id="run.filter",
            tooltip=TIMELINE_FILTER_SYNTAX,
        ),
        Binding(
            "i",
            "inspect_call",
            "Inspect",
            id="run.inspect_call",
            tooltip="What the model saw: the full request and response of the selected (or held) model call",
        ),
        Binding(
            "E",
            "edit_agent",
            "Edit agent",
            show=False,
            id="run.edit_agent",
            tooltip="Edit the focused agent's instructions, model and settings: a new version, after a diff",
        ),
    ]

    def __init__(
        self,
        system: System,
        store: Store,
        *,
        llm_factory: LLMFactory = default_llm_factory,
        recorded: RecordedSession | None = None,
        branch: Branch | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__()
        self.recorded = recorded
        """The stored session this screen shows read-only (nothing runs here), if any."""
        self.branch = branch
        """A fork or replay this screen runs live as soon as it opens, if any."""
        self.caption = ""
        """What the subtitle says instead of the system's description (read-only, fork of …)."""
        self.system = system
        self.store = store
        self.llm_factory = llm_factory
        self.clock = clock
        self.view = RunView(system, clock=clock)
        self.breakpoints: set[str] = set()
        """Breakpoints (``agent:NAME``, ``handoff:*``, ``tool:*``), shared with the running controller."""
        self.metric_points: set[MetricPoint] = set()
        """Breakpoints on an agent's cost or latency so far, shared with the running controller."""
        self.debug: DebugSession | None = None
        self._run_worker: Worker[RunResult] | None = None
        """The worker of the run in progress: a previous run's worker ending late (its notice
        queued behind a new run's start) must not end the new one."""
        """The debug session of the run in progress, if any: the operator's actions drive it."""
        self.specs: dict[str, AgentSpec] = dict(system.spec.agents)
        """The active spec of each agent (what the next run uses)."""
        self.last_result: RunResult | None = None
        self._bridge: Bridge | None = None
        self._selected: HandoffView | Step | None = None
        self._leaving = False
        """Back was pressed during a run: close once the aborted run has recorded itself."""
        self._approval_keys = False
        """Whether y and n are offered (the run is held at a call that needs approval)."""
        self._blame_key = False
        """Whether w is offered (the run failed over a field the engine traced)."""
        self._submitted = ""
        """What the request box held when enter ran it (the box changed since: a new request)."""
        self._hold_took_focus = False
        """The focus left the box for a hold by itself: it goes back when the run ends."""
        self._focus_given: str | None = None
        """The agent whose pane the screen focused itself (a hold, esc): a later hold moves it on."""

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        spec = self.system.spec
        yield Header()
        yield RequestInput(
            placeholder="Type a request · enter runs it · ctrl+s runs it step by step",
            id="request",
        )
        yield HandoffPath(id="path")
        yield GateBanner(id="gate")
        with Horizontal(id="main"):
            with PaneGrid(id="panes"):
                for name in self._pane_order():
                    yield AgentPane(name)
            with Vertical(id="side"):
                yield GraphPane(self.view, id="graph-pane")  # only on big screens
                yield BlameChain(id="blame")
                yield Inspector(id="inspector")
                yield TimelineFilter(id="timeline-filter")
                yield Timeline(id="timeline")
        yield Totals(id="totals")
        yield FoldingFooter(fold=FOOTER_FOLD)
        self.title = f"{spec.name} ({spec.pattern})"
        self.sub_title = spec.description

    def _pane_order(self) -> list[str]:
        entry = self.system.spec.entry_agent
        return [entry, *(n for n in self.system.spec.agents if n != entry)]

    async def on_mount(self) -> None:
        self.query_one("#timeline", Timeline).border_title = "timeline"
        self.query_one(Inspector).show_empty()
        self.set_interval(0.25, self._tick)
        if self.recorded is not None:
            self._show_recorded(self.recorded)
            return
        self.query_one("#request", Input).focus()
        self._redraw()
        await self._load_versions()
        # Another process (`playground rollback`) may move an active version while this screen
        # is open: read them again whenever the operator comes back to it (see also run_request).
        self.watch(self.app, "app_focus", self._on_app_focus, init=False)
        if self.branch is not None:
            self._start_branch(self.branch)

    def on_screen_resume(self) -> None:
        if self.recorded is None and not self.view.running:
            self.refresh_versions()

    def _on_app_focus(self, focused: bool) -> None:
        if focused and self.is_current and not self.view.running:
            self.refresh_versions()

    @work(exclusive=True, exit_on_error=False, group="active-versions")
    async def refresh_versions(self) -> None:
        """Read the active versions from the store again (not from this process's cache)."""
        await self._load_versions(fresh=True)

    async def _load_versions(self, *, fresh: bool = False) -> None:
        try:
            agents, versions = await active_agents(self.store, self.system, fresh=fresh)
        except PlaygroundError as exc:
            self.notify(str(exc), title="cannot use the active versions", severity="error", timeout=10)
            return
        self.specs = agents
        for name, view in self.view.agents.items():
            view.version = versions.get(name, view.version)
            view.model = agents[name].model if name in agents else view.model
        self._redraw()

    # -- drawing -----------------------------------------------------------------------------

    def _redraw(self) -> None:
        view = self.view
        self._show_panes()
        self.query_one(PaneGrid).follow(view.active_agents)
        self.query_one(HandoffPath).show(view.hops, view.handoffs, view.pending_handoff, view.active_agents)
        self.query_one(BlameChain).show(view.blame)
        pending = view.agents[view.gate.agent].pending if view.gate and view.gate.agent in view.agents else ""
        self.query_one(GateBanner).show(view.gate, pending, view.held_what(view.gate) if view.gate else None)
        self._show_inspector()
        self.query_one(Timeline).show(view.steps, view.elapsed())
        self.query_one(Totals).show(view)
        self.sub_title = self._breakpoint_summary()
        if (view.blame is not None) != self._blame_key:
            self._blame_key = view.blame is not None
            self.refresh_bindings()  # w shows in the footer only when there is a chain to see
        approval = view.gate is not None and bool(view.gate.payload.get("approval"))
        if approval != self._approval_keys:
            self._approval_keys = approval
            self.refresh_bindings()  # y and n show in the footer only while a call waits
        self.query_one(FoldingFooter).leave_out(self._idle_keys())

    def _idle_keys(self) -> set[str]:
        """The footer's keys with nothing to act on now: the run's keys between runs, retry and
        edit while nothing is held, fork and the model call before there is a session. They
        still work (and say why they do nothing); the footer shows the ones that matter now."""
        idle: set[str] = set()
        session = self.debug
        if session is None:
            idle |= {"continue", "pause", "abort", "retry", "edit"}
        elif session.pending is None:
            idle |= {"retry", "edit"}
        if session is not None or not (self.recorded is not None or self.view.session_id):
            idle.add("fork")
        if not (self.recorded is not None or self.view.session_id):
            idle.add("inspect_call")
        return idle

    def _show_panes(self, agents: set[str] | None = None) -> None:
        """Redraw the agents' panes (only those of ``agents`` when given)."""
        view = self.view
        active = set(view.active_agents)  # several when agents run at once
        for pane in self.query(AgentPane):
            if agents is not None and pane.agent not in agents:
                continue
            agent = view.agents.get(pane.agent)
            if agent is not None:
                spec = self.specs.get(pane.agent)
                usage = agent_usage(agent, spec.budget if spec is not None else None)
                budget = meter_text(usage, exceeded=pane.agent in view.over_budget) if usage else ""
                pane.show(
                    agent,
                    active=pane.agent in active,
                    breakpoint=f"agent:{pane.agent}" in self.breakpoints,
                    budget=budget,
                )

    def _breakpoint_summary(self) -> str:
        points = sorted(self.breakpoints) + sorted(str(p) for p in self.metric_points)
        if not points:
            return self.caption or self.system.spec.description
        return "breakpoints: " + ", ".join(points)

    @property
    def controller(self) -> StepController | None:
        """The step controller of the run in progress, if any (its debug session's)."""
        return self.debug.controller if self.debug is not None else None

    def _session(self, *, stepping: bool, bridge: Bridge) -> DebugSession:
        """A debug session for the next run, its events and pauses streaming to ``bridge``."""
        controller = MetricController(
            stepping=stepping, breakpoints=self.breakpoints, metric_points=self.metric_points
        )
        return DebugSession(
            self.system,
            self.store,
            llm_factory=self.llm_factory,
            controller=controller,
            live=[bridge, controller.observe],
            on_pause=bridge.on_pause,
            clock=self.clock,
            tracer=getattr(self.app, "tracer", None),
        )

    def _show_inspector(self) -> None:
        inspector = self.query_one(Inspector)
        selected = self._selected
        if self.view.pending_handoff is not None:
            inspector.show_handoff(self.view.pending_handoff, self.system)
        elif isinstance(selected, HandoffView):
            inspector.show_handoff(selected, self.system)
        elif isinstance(selected, Step):
            inspector.show_step(selected)
        elif (asked := self._approval_asked()) is not None:
            inspector.show_step(asked)  # the held call that waits for the operator's verdict
        elif self.view.handoffs:
            inspector.show_handoff(self.view.handoffs[-1], self.system)
        else:
            inspector.show_empty()

    def _approval_asked(self) -> Step | None:
        """The timeline's row of the call held for approval, while one is held."""
        gate = self.view.gate
        if gate is None or not gate.payload.get("approval"):
            return None
        return next((s for s in reversed(self.view.steps) if s.kind == "approval"), None)

    def _tick(self) -> None:
        if self.view.status == "running":
            self.query_one(Totals).show(self.view)
            self.query_one(Timeline).show(self.view.steps, self.view.elapsed())

    # -- the bridge --------------------------------------------------------------------------

    def on_bridge_batch(self, message: Bridge.Batch) -> None:
        if message.bridge is not self._bridge:
            return  # a batch of a run that was replaced
        self.view.apply_all(message.items)
        if all(isinstance(item, TextChunk) for item in message.items):
            # Only streamed text (the common case while agents talk): it changes nothing but
            # the streaming panes; the timeline and totals follow on the screen's tick.
            self._show_panes({item.agent for item in message.items if isinstance(item, TextChunk)})
        else:
            self._redraw()

    def on_bridge_held(self, message: Bridge.Held) -> None:
        if message.bridge is not self._bridge:
            return
        self.view.hold(message.gate)
        controller = self.controller
        if isinstance(controller, MetricController) and controller.last_hit is not None:
            point, controller.last_hit = controller.last_hit, None
            cost, latency = controller.figures.get(message.gate.agent, (0.0, 0.0))
            spent = f"${cost:.6f}" if point.metric == "cost" else f"{latency:.0f} ms"
            self.notify(f"Breakpoint {point}: {message.gate.agent} is at {spent}.", timeout=8)
        self._redraw()
        self._focus_the_hold(message.gate.agent)

    def _clear_selection(self) -> None:
        """A new run: nothing selected, the timeline follows its newest step."""
        self._selected = None
        self.query_one(Timeline).cursor = -1
        self.query_one(HandoffPath).selected = -1

    def on_timeline_step_selected(self, message: Timeline.StepSelected) -> None:
        step = message.step
        self._selected = step.handoff if step.handoff is not None else step
        self._show_inspector()

    def on_blame_chain_hop_chosen(self, message: BlameChain.HopChosen) -> None:
        hop = message.hop
        row = self.view.step_at(hop.seq, None if hop.kind == "request" else hop.agent)
        if row is None:
            self.notify("That hop has no step in the timeline.", severity="warning")
            return
        timeline = self.query_one(Timeline)
        timeline.select(row)
        timeline.focus()

    def action_blame(self) -> None:
        if self.view.blame is None:
            self.notify("Nothing to blame: the run has not failed over a field.", severity="warning")
            return
        self.query_one(BlameChain).focus()

    def on_handoff_path_edge_selected(self, message: HandoffPath.EdgeSelected) -> None:
        self._selected = message.handoff
        self._show_inspector()

    # -- running -----------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submitted = event.value
        self._start(stepping=False)

    def _start(self, *, stepping: bool) -> None:
        request = self.query_one("#request", Input).value.strip()
        if not request:
            self.notify("Type a request first.", severity="warning")
            self.query_one("#request", Input).focus()
            return
        if self.view.running:
            self.notify("A run is in progress: c continues it, a aborts it.", severity="warning")
            return
        bridge = Bridge(self)
        session = self._session(stepping=stepping, bridge=bridge)
        self._bridge, self.debug = bridge, session
        self._clear_selection()
        self.caption = ""
        self.view.reset()
        self.view.status = "running"
        self._redraw()
        if stepping:  # a step key left the box (esc s, ctrl+s): the letters are commands now
            self.query_one(f"#pane-{self.system.spec.entry_agent}", AgentPane).focus()
            self._focus_given = self.system.spec.entry_agent
        # enter keeps the focus in the box: what is typed next is text, not s, a or o
        self._run_worker = self.run_request(request, session, bridge)

    @work(exclusive=True, exit_on_error=False, group="run")
    async def run_request(self, request: str, session: DebugSession, bridge: Bridge) -> RunResult:
        """Run ``request`` in ``session``; events come back through ``bridge``."""
        await self._load_versions(fresh=True)  # what the screen shows is what runs
        try:
            return await session.run(request)
        finally:
            bridge.close()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "run" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        if event.worker is not self._run_worker:
            return  # an earlier run's worker, ending after the run now in progress started
        self._run_worker = None
        self.debug = None
        if event.state == WorkerState.SUCCESS:
            result = event.worker.result
            self.last_result = result if isinstance(result, RunResult) else None
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            self.view.status = "failed"
            self.view.error = {
                "type": type(error).__name__,
                "message": str(error),
                "origin": None,
                "manifested": None,
            }
            self.notify(str(error), title="the run could not start", severity="error", timeout=10)
        if self.view.status in ("running", "paused"):
            self.view.status = "aborted"
        self._redraw()
        self._focus_back_to_the_box()
        if self._leaving:
            self.dismiss(None)

    # -- operator actions --------------------------------------------------------------------

    def _held(self) -> DebugSession | None:
        session = self.debug
        return session if session is not None and session.pending is not None else None

    def action_step(self) -> None:
        session = self.debug
        if session is None:
            self._start(stepping=True)
        elif session.step():
            self.view.release()
            self._redraw()
        else:
            self.notify("Pausing at the next gate.")

    def action_continue(self) -> None:
        session = self.debug
        if session is None:
            self._start(stepping=False)
            return
        session.resume()
        self.view.release()
        self._redraw()

    def action_pause(self) -> None:
        session = self.debug
        if session is None:
            self.notify("Nothing is running. s runs the typed request step by step.")
        elif session.pending is not None:
            self.notify("Already paused: s steps, c continues.")
        else:
            session.hold()
            self.notify("Pausing at the next gate.")

    def action_retry(self) -> None:
        session = self._held()
        if session is None:
            self.notify("Retry works on a held step: pause (p) or step (s) first.", severity="warning")
            return
        error = session.retry()
        if error is not None:
            self.notify(f"Cannot retry: {error}.", severity="warning")
            return
        self.view.release()
        self._redraw()

    def action_edit(self) -> None:
        session = self._held()
        gate = session.pending if session is not None else None
        if session is None or gate is None:
            self.notify(
                "Nothing is held to edit: step (s) to a handoff or tool call first.", severity="warning"
            )
            return
        if gate.kind == "model_call":
            self._edit_held_call(session.controller, gate)
            return
        field = "context" if gate.kind == "handoff" else "args"
        payload = dict(gate.payload)
        if payload.get("stage"):
            what = f"Output of stage {payload.get('source')}, before {payload.get('target')} receives it"
        elif gate.kind == "handoff":
            what = f"Handoff context {gate.agent} → {payload.get('target')}"
        elif self.view.held_what(gate) == "delegation":
            what = f"Delegation {gate.agent} → {payload.get('tool')}: the task the worker receives"
        elif payload.get("approval"):
            what = f"Approve {possessive(gate.agent)} call to {payload.get('tool')} with these arguments"
        else:
            what = f"Arguments of {possessive(gate.agent)} call to {payload.get('tool')}"

        def validate(value: dict[str, Any]) -> str | None:
            return gate.validate({**payload, field: value})

        def deliver(edited: Edited | None) -> None:
            if edited is None or self.debug is not session or session.pending is not gate:
                return
            if not edited.changed:  # saved as it was: no edit; the held step runs as it would have
                if payload.get("approval"):
                    session.approve()
                elif session.controller.stepping:
                    session.step()
                else:
                    session.resume()
                self.view.release()
                self._redraw()
                self.notify("Nothing changed: no edit recorded, the held step runs as it was.")
                return
            error = session.edit({**payload, field: edited.value})
            if error is not None:
                self.notify(f"Edit rejected: {error}", severity="error")
                return
            self.view.release()
            self._redraw()
            self.notify("Edit delivered.")

        self.app.push_screen(EditPayloadScreen(what, dict(payload.get(field) or {}), validate), deliver)

    # -- what the model saw, and editing agents ---------------------------------------------

    def action_inspect_call(self) -> None:
        """Show the full request and response of the selected model call (the held one, when
        the run is held before a model call and no other call is selected)."""
        controller = self.controller
        gate = controller.pending if controller is not None else None
        selected = self._selected if isinstance(self._selected, Step) else None
        held = controller is not None and gate is not None and gate.kind == "model_call"
        if held and (selected is None or selected.kind != "model_call"):
            assert controller is not None and gate is not None
            screen = ModelCallScreen(held=gate)
            self.app.push_screen(screen, partial(self._deliver_call_edit, controller, gate))
            return
        if self.recorded is None and not self.view.session_id:
            self.notify("No model call yet: run a request, or open a past session (o).", severity="warning")
            return
        seq = selected.seq if selected is not None else None
        agent = selected.agent if selected is not None else None
        self.app.push_screen(ModelCallScreen(load=self._session_events, seq=seq, agent=agent))

    async def _session_events(self) -> Sequence[Event]:
        if self.recorded is not None:
            return self.recorded.events
        await self.store.flush()  # a live run's latest events may still be queued
        return await self.store.events(self.view.session_id)

    def _edit_held_call(self, controller: StepController, gate: Gate) -> None:
        if gate.payload.get("instructions") is None:
            if gate.failure is not None:  # held before the run fails: the banner's keys apply
                retry = "r retries, " if gate.can_retry else ""
                said = f"Nothing to edit here: {retry}c or s lets the run fail, a aborts."
            else:
                said = "This hold (a budget's) has nothing to edit: c goes on, a aborts."
            self.notify(said, severity="warning")
            return
        self.app.push_screen(CallEditScreen(gate), partial(self._deliver_call_edit, controller, gate))

    def _deliver_call_edit(self, controller: StepController, gate: Gate, edit: CallEdit | None) -> None:
        if edit is None or self.controller is not controller or controller.pending is not gate:
            return
        error = controller.edit(edit.payload)
        if error is not None:
            self.notify(f"Edit rejected: {error}", severity="error")
            return
        self.view.release()
        self._redraw()
        self.notify(f"{possessive(gate.agent).capitalize()} call at step {gate.step} is made with the edit.")
        if edit.save:
            where = f"step {gate.step} of session {self.view.session_id}"
            self._open_agent_editor(gate.agent, instructions=edit.instructions, note=f"edited at {where}")

    def action_edit_agent(self) -> None:
        focused = self.focused
        self._open_agent_editor(
            focused.agent if isinstance(focused, AgentPane) else self.system.spec.entry_agent
        )

    def _open_agent_editor(self, agent: str, *, instructions: str | None = None, note: str = "") -> None:
        async def closed(version: str | None) -> None:
            if version is not None:
                await self._load_versions()

        editor = AgentEditorScreen(self.system, self.store, agent, instructions=instructions, note=note)
        self.app.push_screen(editor, closed)

    def _held_approval(self) -> DebugSession | None:
        """The debug session, when the run is held at a tool call that needs approval."""
        session = self._held()
        if session is None or session.pending is None or not session.pending.payload.get("approval"):
            self.notify("No tool call is waiting for approval.", severity="warning")
            return None
        return session

    def action_approve(self) -> None:
        session = self._held_approval()
        if session is None:
            return
        error = session.approve()
        if error is not None:
            self.notify(f"Cannot approve: {error}.", severity="warning")
            return
        self.view.release()
        self._redraw()

    def action_deny(self) -> None:
        session = self._held_approval()
        gate = session.pending if session is not None else None
        if session is None or gate is None:
            return

        def deliver(reason: str | None) -> None:
            if reason is None or self.debug is not session or session.pending is not gate:
                return
            error = session.deny(reason)
            if error is not None:
                self.notify(f"Cannot deny: {error}.", severity="warning")
                return
            self.view.release()
            self._redraw()
            self.notify(f"Denied {gate.payload.get('tool')}: the model is told why.")

        self.app.push_screen(DenyReasonScreen(call_text(gate, 120)), deliver)

    def action_abort(self) -> None:
        session = self.debug
        if session is None:
            self.notify("Nothing is running.")
            return
        if session.abort():
            self.view.release()
            self._redraw()
        else:
            self.notify("Aborting at the next gate.")

    def _focused_agent(self) -> str | None:
        focused = self.focused
        if isinstance(focused, AgentPane):
            return focused.agent
        self.notify("Focus an agent pane first (tab, or click it).", severity="warning")
        return None

    def action_toggle_breakpoint(self, point: str = "") -> None:
        if not point:
            agent = self._focused_agent()
            if agent is None:
                return
            point = f"agent:{agent}"
        if point in self.breakpoints:
            self.breakpoints.discard(point)
            self.notify(f"Breakpoint off: {point}")
        else:
            self.breakpoints.add(point)
            self.notify(f"Breakpoint on: {point}")
        self._redraw()

    def action_break_on(self) -> None:
        current = sorted(str(p) for p in self.metric_points)

        def chosen(point: MetricPoint | None) -> None:
            if point is None:
                return
            if point in self.metric_points:
                self.metric_points.discard(point)
                self.notify(f"Breakpoint off: {point}")
            else:
                self.metric_points.add(point)
                self.notify(f"Breakpoint on: {point}")
            self._redraw()

        self.app.push_screen(BreakpointScreen(list(self.system.spec.agents), current), chosen)

    def action_swap_model(self) -> None:
        agent = self._focused_agent()
        if agent is None:
            return
        spec = self.specs[agent]
        in_use = {"scripted"}
        for other in self.specs.values():
            in_use.update([other.model, *other.fallbacks])
        choices = sorted(in_use)

        def swap(choice: ModelChoice | None) -> None:
            if choice is not None:
                self.swap_model(agent, choice.model, choice.api_key_env)

        self.app.push_screen(ModelSwapScreen(agent, spec, choices), swap)

    @work(exclusive=True, exit_on_error=False, group="versions")
    async def swap_model(self, agent: str, model: str, api_key_env: str | None = None) -> None:
        """Record a new operator version of ``agent`` running ``model`` (its key from
        ``api_key_env``: "" drops it, None keeps it) and make it active."""
        spec = self.specs[agent]
        try:
            new_spec = swapped_spec(spec, model, api_key_env)
        except ValueError as exc:
            self.notify(
                str(exc), title=f"cannot swap {possessive(agent)} model", severity="error", timeout=10
            )
            return
        new_json = canonical_spec(new_spec)
        if new_json == canonical_spec(spec):
            self.notify(f"{agent} already runs {model} so: nothing changed.")
            return
        wanted = version_id_of_json(new_json)
        changes = [f"model {spec.model} -> {model}"] if model != spec.model else []
        key_env = new_spec.model_settings.get("api_key_env")
        if key_env != spec.model_settings.get("api_key_env"):
            changes.append(f"api_key_env {key_env or 'none'}")
        try:
            active = await self.store.record_versions(
                self.system.name,
                {agent: new_json},
                source="operator",
                note=f"{', '.join(changes)} (swapped in the TUI)",
                activate=True,  # an operator's edit: active even when the store knew this version
            )
        except PlaygroundError as exc:  # this worker does not exit on error: say it here or nowhere
            self.notify(
                str(exc), title=f"cannot swap {possessive(agent)} model", severity="error", timeout=10
            )
            return
        assert active.get(agent) == wanted
        await self._load_versions()
        later = " from the next run" if self.view.running else ""
        key = f", its key from ${key_env}" if key_env else ""
        self.notify(f"{agent} now runs {model}{key}{later} (version {wanted[:8]}).")

    def action_versions(self) -> None:
        """Open the versions screen on the focused agent (the entry agent when none is focused)."""
        focused = self.focused
        agent = focused.agent if isinstance(focused, AgentPane) else self.system.spec.entry_agent

        async def closed(_: None) -> None:
            await self._load_versions()  # a rollback or restore changes what the next run uses

        self.app.push_screen(VersionsScreen(self.system, self.store, agent), closed)

    # -- stored sessions: read-only view, fork and replay -------------------------------------

    def _show_recorded(self, recorded: RecordedSession) -> None:
        """Rebuild the view from the stored events, through the same reducer as a live run."""
        session = recorded.session
        self.view.apply_all(recorded.events)
        self.view.interrupt()  # if the recording ends mid-run (its process was killed)
        request = self.query_one("#request", Input)
        request.value = session.input
        request.disabled = True
        origin = ""
        if session.parent_session_id:
            at = f" at step {session.forked_from_step}" if session.forked_from_step is not None else ""
            origin = f" · from {session.parent_session_id}{at}"
        self.caption = f"read-only{origin} · f forks from the selected step · R replays"
        self.title = f"{self.system.spec.name} · session {session.session_id}"
        self.query_one(Timeline).focus()
        self._redraw()

    def _branch_source(self) -> str | None:
        """The session f and R start from: the one shown, or the one this screen ran."""
        if self.recorded is not None:
            return self.recorded.session.session_id
        if self.view.running:
            self.notify("Wait for the run to finish (or abort it with a) first.", severity="warning")
            return None
        if not self.view.session_id:
            self.notify("Nothing to fork yet: run a request, or open a past session (o).", severity="warning")
            return None
        return self.view.session_id

    def action_fork(self) -> None:
        session_id = self._branch_source()
        if session_id is None:
            return
        selected = self._selected
        seq = selected.seq if selected is not None else None
        if seq is None:
            self.query_one(Timeline).focus()
            self.notify("Select the step to fork from in the timeline (↑/↓), then press f again.")
            return
        # A stage transition's row shares its event with the next stage's: fork at its own step.
        stage = selected.step if isinstance(selected, HandoffView) and selected.kind == "stage" else None
        self.prepare_branch("fork", session_id, seq, stage)

    def action_replay(self) -> None:
        session_id = self._branch_source()
        if session_id is not None:
            self.prepare_branch("replay", session_id, None)

    @work(exclusive=True, exit_on_error=False, group="branch")
    async def prepare_branch(
        self, mode: BranchMode, session_id: str, seq: int | None, step: int | None = None
    ) -> None:
        """Find where a fork goes live, ask for an optional model swap, then open it running."""
        try:
            session = await self.store.session(session_id)
            at = fork_point(await self.store.events(session_id), seq, step) if seq is not None else None
        except PlaygroundError as exc:
            self.notify(str(exc), title=f"cannot {mode}", severity="error", timeout=10)
            return
        if mode == "fork" and at is None:
            self.notify("Nothing runs after this step: select an earlier one.", severity="warning")
            return
        models = sorted({"scripted", *(spec.model for spec in self.specs.values())})

        def chosen(variant: Variant | Literal[False] | None) -> None:
            if variant is None:
                return
            branch = Branch(mode, session.session_id, session.input, at, variant or None)
            screen = RunScreen(
                self.system, self.store, llm_factory=self.llm_factory, branch=branch, clock=self.clock
            )
            self.app.push_screen(screen)

        dialog = BranchScreen(mode, session.session_id, at, list(self.system.spec.agents), models)
        self.app.push_screen(dialog, chosen)

    def _start_branch(self, branch: Branch) -> None:
        self.query_one("#request", Input).value = branch.request
        bridge = Bridge(self)
        # Forks and replays run under the same debugger as any run: s, c, p, a work on them.
        session = self._session(stepping=False, bridge=bridge)
        self._bridge, self.debug = bridge, session
        self._clear_selection()
        self.view.reset()
        self.view.status = "running"
        self.caption = branch.describe()
        self._redraw()
        self.query_one(f"#pane-{self.system.spec.entry_agent}", AgentPane).focus()
        self._focus_given = self.system.spec.entry_agent
        self._run_worker = self.run_branch(branch, bridge, session)

    @work(exclusive=True, exit_on_error=False, group="run")
    async def run_branch(self, branch: Branch, bridge: Bridge, session: DebugSession) -> RunResult:
        """Run a fork or replay live in ``session``; its events come back through ``bridge``."""
        try:
            outcome = await branch.start(session)
        finally:
            bridge.close()
            if self.debug is session:
                self.debug = None
        self.notify(branch.summary(outcome), timeout=8)
        return outcome.result

    def action_graph(self) -> None:
        # Imported here: the graph screen is this action's alone.
        from playground.tui.screens.graph import GraphScreen

        act = self.run_action if self.recorded is None else None  # nothing runs on a stored session
        self.app.push_screen(GraphScreen(self.system, self.view, act=act))

    def action_open_sessions(self) -> None:
        self.app.push_screen(SessionsScreen(self.store, self.system.name))

    def action_back(self) -> None:
        if self.debug is None:
            self.dismiss(None)
            return
        # Leaving would cancel the run's worker before it records the session (it would stay
        # "running" in the store): abort it, and close once it has ended.
        self._leaving = True
        self.action_abort()
        self.notify("Aborting the run…")

    def action_compare(self) -> None:
        # Imported here: the compare screens are this action's alone.
        from playground.tui.screens.compare import CompareScreen
        from playground.tui.screens.compare_setup import CompareChoice, CompareSetupScreen

        focused = self.focused
        agent = focused.agent if isinstance(focused, AgentPane) else self.system.spec.entry_agent
        request = self.query_one("#request", Input).value.strip()

        def open_compare(choice: CompareChoice | None) -> None:
            if choice is not None:
                screen = CompareScreen(
                    self.system, self.store, choice, llm_factory=self.llm_factory, clock=self.clock
                )
                self.app.push_screen(screen)

        self.app.push_screen(CompareSetupScreen(self.system, self.store, agent, request), open_compare)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_input":
            return isinstance(self.focused, Input)
        if action == "back":
            opened_from_a_session = self.recorded is not None or self.branch is not None
            # Opened from home, esc goes back there once nothing runs (it never aborts a run).
            from_home = self.controller is None and isinstance(self._below(), HomeScreen)
            return (opened_from_a_session or from_home) and not isinstance(self.focused, Input)
        if action == "blame":
            return self._blame_key
        if action in ("approve", "deny"):
            return self.recorded is None and self._approval_keys
        return self.recorded is None or action not in READ_ONLY_DISABLED

    def _below(self) -> Screen[Any] | None:
        """The screen this one was opened from, if any."""
        stack = self.app.screen_stack
        return stack[stack.index(self) - 1] if self in stack and stack.index(self) > 0 else None

    def action_leave_input(self) -> None:
        """Focus the pane of the agent handling the request (between runs, the last agent
        that handled one; the entry agent's before any)."""
        if isinstance(self.focused, Input):
            # After a run, the agent that handled it last: its version, model and reply.
            last = next((name for name in reversed(self.view.path) if name in self.view.agents), None)
            agent = self.view.active or last or self.system.spec.entry_agent
            self.query_one(f"#{pane_id(agent)}", AgentPane).focus()
            self._focus_given = agent

    def on_request_input_key_after_escape(self, message: RequestInput.KeyAfterEscape) -> None:
        """Esc then a letter, typed quickly (the box got alt+letter): leave the box, then the letter."""
        message.stop()
        self.action_leave_input()
        # From the app, as a terminal's key comes (a key sent from here would stop bubbling at
        # this screen, short of the app that checks the bindings), after the focus has moved.
        self.app.call_later(self.app.simulate_key, message.key)

    def _focus_the_hold(self, agent: str) -> None:
        """The run holds for the operator: unless they are typing a new request, the held
        agent's pane takes the focus from the box, so s, c, y, e and a act on the hold."""
        box = self.query_one("#request", Input)
        focused = self.focused
        if focused is box and box.value == self._submitted:
            self.query_one(f"#{pane_id(agent)}", AgentPane).focus()
            self._hold_took_focus = True
            self._focus_given = agent
            self.notify("The run holds: the keys act on it now (/ goes back to the request box).")
        elif isinstance(focused, AgentPane) and focused.agent == self._focus_given != agent:
            # The focus is where an earlier hold (or esc) put it: it goes on to this agent, so
            # m, E, v and b act on the agent the banner names, not on one scrolled out of view.
            self.query_one(f"#{pane_id(agent)}", AgentPane).focus()
            self._focus_given = agent

    def _focus_back_to_the_box(self) -> None:
        """The run ended: the focus a hold took from the box goes back to it (what is typed
        next is text again); focus the operator moved themselves stays where they put it."""
        if self._hold_took_focus and isinstance(self.focused, AgentPane):
            self.query_one("#request", Input).focus()
        self._hold_took_focus = False

    def action_focus_input(self) -> None:
        self.query_one("#request", Input).focus()

    def action_filter_timeline(self) -> None:
        self.query_one(TimelineFilter).open()

    # -- command palette ---------------------------------------------------------------------

    def palette_commands(self) -> Iterable[SystemCommand]:
        """This screen's actions for the command palette (the app adds them)."""
        for binding in self.BINDINGS:
            if (
                isinstance(binding, Binding)
                and binding.key not in ("escape", "slash")
                and self.check_action(binding.action, ()) is not False
            ):
                yield SystemCommand(
                    f"{binding.description} ({binding.key.replace(',', ' or ')})",
                    binding.tooltip,
                    partial(self.run_action, binding.action),
                )
        for point, what in (
            ("handoff:*", "any handoff"),
            ("tool:*", "any tool call"),
            ("error:*", "any error"),
        ):
            state = "off" if point in self.breakpoints else "on"
            yield SystemCommand(
                f"Breakpoint {state}: {what}",
                f"Stop before {what} ({point})",
                partial(self.action_toggle_breakpoint, point),
            )
