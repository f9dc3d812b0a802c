"""One headless debug session: one run under a step controller, driven by an operator.

A :class:`DebugSession` runs one request (a scenario of a scenario file, a fork or a
replay of a recorded session) through :func:`playground.service.run_session`, and owns
the :class:`~playground.engine.controller.StepController` it runs under. The operator
drives it with :meth:`~DebugSession.hold`, :meth:`~DebugSession.step`,
:meth:`~DebugSession.resume` (continue), :meth:`~DebugSession.retry`,
:meth:`~DebugSession.edit`, :meth:`~DebugSession.approve`, :meth:`~DebugSession.deny` and
:meth:`~DebugSession.abort`, and awaits :meth:`~DebugSession.wait_paused` (held at a gate,
or ended) and :meth:`~DebugSession.wait_finished`.

The TUI's run and compare screens and the CLI's ``compare`` and ``run`` all run through it:
the screens subscribe to its events (their bridge is a live sink and takes its pauses), and
a comparison of two variants is two sessions, stepped together in lockstep
(:func:`step_together`) or left to run free. Each run builds its own model factory, with the
scenario's faults wrapped around it, so each side of a comparison meets every fault the
scenario declares: a fault's ``times`` counts the calls of one run, never of two.

Nothing here imports Textual: tests drive a session without a terminal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from playground.engine.clock import SYSTEM_CLOCK, Clock
from playground.engine.controller import Gate, StepController
from playground.engine.runtime import EventSink, LLMFactory, RunResult, default_llm_factory
from playground.errors import PlaygroundError
from playground.spec.load import System
from playground.spec.models import AgentSpec
from playground.store.store import Store

if TYPE_CHECKING:
    from playground.replay import ReplayOutcome, Variant
    from playground.scenarios import Fault, Scenario

T = TypeVar("T")

SessionStatus = Literal["ready", "running", "held", "finished"]
OnPause = Callable[[Gate], None]


def stage_not_retried(gate: Gate) -> str:
    """Why retry does nothing at a pipeline's stage gate, and what to do instead."""
    payload = gate.payload
    source, target = payload.get("source") or gate.agent, payload.get("target") or "the next stage"
    produced = payload.get("produced_at")
    group = " ∥ " in str(source)
    if produced:
        call = (
            f"step {produced} (where their last model calls begin: "
            if group
            else f"step {produced} (its model call: "
        )
    else:
        call = "their last model calls (" if group else "its model call ("
    return (
        f"a stage's output is delivered, not retried: e edits it before {target} receives it; "
        f"to run {source} again, end this run (c, or a to abort) and fork from {call}"
        "select it in the timeline, f)"
    )


class DebugSession:
    """One run of ``system`` under a step controller, driven by an operator.

    A session runs once: :meth:`run`, :meth:`run_scenario`, :meth:`fork` or :meth:`replay`
    (each runs to the end; start it in a task or a worker, and drive it meanwhile).

    Args:
        system: The loaded system.
        store: Where the run is recorded (None: not recorded).
        agents: The specs to run instead of the store's active versions (with ``versions``).
        versions: The version id of each of ``agents``.
        llm_factory: Builds each agent's model; a scenario's faults wrap it, per run.
        controller: The controller to run under (a subclass with more breakpoints); default
            a new :class:`StepController` with ``stepping`` and ``breakpoints``.
        stepping: Stop at the first gate (and every gate after it, until :meth:`resume`).
        breakpoints: Breakpoints of the new controller (shared: the caller may change them
            while the run goes on).
        attended: Whether an operator may answer its gates. False (the CLI): the engine runs
            with no controller at all, as a headless run does: a call that needs approval ends
            the run ``waiting_approval`` instead of waiting for an answer nobody gives.
        live: Receive every event and token delta as they happen (the TUI's bridge).
        on_pause: Called with the gate when the run stops at one.
        clock: The run's time and id sources.
        tracer: Traces the run.
    """

    def __init__(
        self,
        system: System,
        store: Store | None = None,
        *,
        agents: dict[str, AgentSpec] | None = None,
        versions: dict[str, str] | None = None,
        llm_factory: LLMFactory = default_llm_factory,
        controller: StepController | None = None,
        stepping: bool = False,
        breakpoints: set[str] | None = None,
        attended: bool = True,
        live: Sequence[EventSink] = (),
        on_pause: OnPause | None = None,
        clock: Clock = SYSTEM_CLOCK,
        tracer: EventSink | None = None,
    ) -> None:
        self.system = system
        self.store = store
        self.agents = agents
        self.versions = versions
        self.llm_factory = llm_factory
        self.attended = attended
        self.clock = clock
        self.tracer = tracer
        if controller is None:
            controller = StepController(stepping=stepping, breakpoints=breakpoints or set())
        self.controller = controller
        """The controller the run stops at (unused when not ``attended``)."""
        controller.on_pause = self._paused
        self.live: list[EventSink] = list(live)
        self._on_pause: list[OnPause] = [on_pause] if on_pause is not None else []
        self._started = False
        self._finished = asyncio.Event()
        self.result: RunResult | None = None
        """The run's result, once it ended."""
        self.outcome: ReplayOutcome | None = None
        """A fork's or a replay's outcome (what it answered from the recording), once it ended."""
        self.error: BaseException | None = None
        """What stopped the run from starting or ending (a broken store, a refused fork)."""

    # -- watching ----------------------------------------------------------------------------

    def subscribe(self, sink: EventSink | None = None, on_pause: OnPause | None = None) -> None:
        """Receive the run's events and token deltas (``sink``) and its pauses (``on_pause``).
        Subscribe before the run starts: a sink added later misses what came before."""
        if sink is not None:
            self.live.append(sink)
        if on_pause is not None:
            self._on_pause.append(on_pause)

    def _paused(self, gate: Gate) -> None:
        for callback in self._on_pause:
            callback(gate)

    @property
    def pending(self) -> Gate | None:
        """The gate the run is held at, if it is."""
        return self.controller.pending

    @property
    def status(self) -> SessionStatus:
        if self._finished.is_set():
            return "finished"
        if not self._started:
            return "ready"
        return "held" if self.controller.pending is not None else "running"

    @property
    def done(self) -> bool:
        """Whether the run has ended (or could not start)."""
        return self._finished.is_set()

    async def wait_paused(self) -> Gate | None:
        """Wait until the run is held at a gate (returns it) or has ended (returns None)."""
        if self.controller.pending is not None or self.done:
            return self.controller.pending
        paused = asyncio.ensure_future(self.controller.wait_paused())
        finished = asyncio.ensure_future(self._finished.wait())
        try:
            await asyncio.wait((paused, finished), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (paused, finished):
                waiter.cancel()
        return self.controller.pending

    async def wait_finished(self) -> RunResult:
        """Wait until the run has ended; its result (raises what stopped it, if it did not end)."""
        await self._finished.wait()
        if self.result is None:
            raise self.error if self.error is not None else PlaygroundError("the run did not end")
        return self.result

    # -- running -----------------------------------------------------------------------------

    def _factory(self, faults: Sequence[Fault]) -> LLMFactory:
        """This run's model factory: a scenario's faults count the calls of this run alone."""
        if not faults:
            return self.llm_factory
        from playground.scenarios import faulty_factory

        return faulty_factory(list(faults), self.llm_factory)

    async def _running(self, run: Awaitable[T]) -> T:
        try:
            return await run
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self._finished.set()

    def _start(self) -> None:
        if self._started:
            raise PlaygroundError("a debug session runs once: start a new one for the next run")
        self._started = True

    def _sinks(self) -> list[EventSink]:
        return list(self.live)

    async def run(
        self,
        request: str,
        *,
        agent: str | None = None,
        context: dict[str, Any] | None = None,
        faults: Sequence[Fault] = (),
        scenario: str | None = None,
        scenario_file: str | None = None,
    ) -> RunResult:
        """Run ``request`` (or ``agent`` alone on ``context``) to the end, recorded.

        Args:
            faults: A scenario's faults, injected into this run's model calls.
            scenario: The name of the scenario this run is (recorded on the session).
            scenario_file: The scenario file it comes from.
        """
        from playground.service import run_session

        self._start()
        self.result = await self._running(
            run_session(
                self.system,
                request,
                store=self.store,
                tracer=self.tracer,
                controller=self.controller if self.attended else None,
                live=self._sinks(),
                llm_factory=self._factory(faults),
                agents=self.agents,
                versions=self.versions,
                agent=agent,
                context=context,
                clock=self.clock,
                scenario=scenario,
                scenario_file=scenario_file,
            )
        )
        return self.result

    def run_scenario(self, scenario: Scenario, *, file: str | None = None) -> Awaitable[RunResult]:
        """Run one scenario of a scenario file (``file``): its request or agent and context,
        and its faults; the session records the scenario's name and file."""
        return self.run(
            scenario.input if scenario.input is not None else "",
            agent=scenario.agent,
            context=scenario.context,
            faults=scenario.faults,
            scenario=scenario.name,
            scenario_file=file,
        )

    async def fork(self, session_id: str, step: int, *, variant: Variant | None = None) -> ReplayOutcome:
        """Fork recorded session ``session_id`` at ``step``: answered from the recording before
        it, live from there (with ``variant``'s agent changed)."""
        from playground.replay import fork_session

        self._start()
        outcome = await self._running(
            fork_session(
                self.store_or_fail(),
                session_id,
                step,
                variant=variant,
                live=self._sinks(),
                base=self.llm_factory,
                controller=self.controller if self.attended else None,
                clock=self.clock,
                tracer=self.tracer,
            )
        )
        self.outcome, self.result = outcome, outcome.result
        return outcome

    async def replay(
        self, session_id: str, *, variant: Variant | None = None, force: bool = False
    ) -> ReplayOutcome:
        """Replay recorded session ``session_id``: answered from the recording until a request
        differs (``variant``'s agent changed); ``force`` replays versions that no longer fit."""
        from playground.replay import replay_session

        self._start()
        outcome = await self._running(
            replay_session(
                self.store_or_fail(),
                session_id,
                variant=variant,
                force=force,
                live=self._sinks(),
                base=self.llm_factory,
                controller=self.controller if self.attended else None,
                clock=self.clock,
                tracer=self.tracer,
            )
        )
        self.outcome, self.result = outcome, outcome.result
        return outcome

    def store_or_fail(self) -> Store:
        if self.store is None:
            raise PlaygroundError("a fork or a replay reads its recording from a store; none is open")
        return self.store

    # -- the operator ------------------------------------------------------------------------

    def hold(self) -> None:
        """Stop at the next gate (pause)."""
        self.controller.pause()

    def step(self) -> bool:
        """Run the held step and stop at the next gate. Nothing held: stop at the next one.

        Returns:
            Whether a held step was released.
        """
        return self.controller.step()

    def resume(self) -> bool:
        """Continue: run on to the next breakpoint or the end. Returns whether a held step was
        released."""
        return self.controller.resume()

    def retry(self) -> str | None:
        """Run the held agent's last model call again. Returns why it can't, or None."""
        gate = self.controller.pending
        if gate is not None and gate.payload.get("stage"):
            return stage_not_retried(gate)
        return self.controller.retry()

    def edit(self, payload: dict[str, Any]) -> str | None:
        """Run the held step with ``payload`` (a handoff's ``context`` or a tool call's ``args``
        changed). Returns why the edit was refused (the run stays held), or None."""
        return self.controller.edit(payload)

    def approve(self) -> str | None:
        """Run the held tool call that needs approval. Returns why it can't, or None."""
        return self.controller.approve()

    def deny(self, reason: str) -> str | None:
        """Refuse the held tool call that needs approval; the model is told ``reason``.
        Returns why it can't, or None."""
        return self.controller.deny(reason)

    def abort(self) -> bool:
        """Abort the run at the next gate (now, if one is held). Returns whether a held step
        was released."""
        held = self.controller.pending is not None
        self.controller.abort()
        return held


@dataclass(frozen=True)
class Together:
    """What :func:`step_together` did.

    Attributes:
        action: ``stepped`` (every live session was held and stepped), ``holding`` (none was
            held: each stops at its next gate), ``waiting`` (some are held, ``waiting`` not yet)
            or ``idle`` (nothing runs).
        sessions: The sessions stepped (``stepped``) or still on their way to a gate (``waiting``).
    """

    action: Literal["stepped", "holding", "waiting", "idle"]
    sessions: tuple[DebugSession, ...] = ()


def step_together(sessions: Sequence[DebugSession]) -> Together:
    """Lockstep: step the live sessions only when every one is held at a gate."""
    live = [s for s in sessions if not s.done]
    if not live:
        return Together("idle")
    held = [s for s in live if s.pending is not None]
    if not held:
        for session in live:
            session.hold()
        return Together("holding")
    if len(held) < len(live):
        return Together("waiting", tuple(s for s in live if s.pending is None))
    for session in held:
        session.step()
    return Together("stepped", tuple(held))
