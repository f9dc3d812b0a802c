"""Step gates: before every model call, tool call and handoff delivery the
runtime asks a controller what to do.

Headless runs pass no controller (the runtime then never waits). The TUI and
tests use :class:`StepController`, which pauses at gates and resumes when an
operator steps, continues, edits, retries or aborts.

An error that would fail the run is held first (:func:`hold_failure`; an ``error:*``
breakpoint or step mode stops there), with the error on the gate. ``continue`` and ``step``
let the run fail exactly as it would have; ``abort`` aborts; ``retry`` depends on what failed:

- a model call that failed for good: the call again;
- invalid output, or calls refused, after ``limits.max_validation_retries``: the agent is
  asked once more, told why (one more validation retry);
- ``limits.max_turns``: one more model call;
- a handoff's or a pipeline stage's checkpoint rejecting for good (``on_reject: fail``): the
  rejection goes back to the agent, for one more attempt;
- a budget (``on_budget: stop``): the call is made past it (waived from then on);
- a worker's output rejected for good at a delegation, a worker that handed off: the
  supervisor's last model call again;
- a loop (``on_loop: stop``): none; the same calls would go round again.

Not held: ``limits.timeout_s`` (the clock is the limit, and time held at a gate does not
count against it), and a tool's error, which is never fatal (it goes back to the model).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from playground.engine.call_edits import check_failed_call_edit
from playground.engine.outcomes import Failure

if TYPE_CHECKING:
    from playground.engine.runtime import Runtime

GateKind = Literal["model_call", "tool_call", "handoff"]
Action = Literal["continue", "edit", "retry", "abort", "deny"]


@dataclass
class Gate:
    """A step about to happen, held for the controller.

    Attributes:
        kind: What is about to happen.
        agent: The agent doing it.
        step: The step number it will have.
        payload: What is about to be sent: ``{model, messages}`` for a model
            call, ``{tool, args}`` for a tool call, ``{target, context}`` for a
            handoff. ``args`` and ``context`` may be edited.
        validate: Checks an edited payload; returns an error message or None.
        can_retry: Whether a model call of this activation can be retried now.
    """

    kind: GateKind
    agent: str
    step: int
    payload: dict[str, Any]
    validate: Callable[[dict[str, Any]], str | None] = lambda _payload: None
    can_retry: bool = False
    hold: bool = False
    """Stop here whatever the breakpoints: the run itself asks the operator (a budget's
    ``on_budget: pause``)."""
    errors: list[str] = field(default_factory=list)
    """Kinds of the error events since the previous gate (``model_failed``, ``validation_failed``,
    ``permission_denied``, ``loop_detected``, ...): an ``error:*`` breakpoint stops here."""
    failure: str | None = None
    """Held before the run fails (see :func:`hold_failure`): why it fails. ``payload["failed"]``
    says what failed (:data:`FailedKind`), ``payload["on_retry"]`` what ``retry`` does, or
    ``payload["no_retry"]`` why there is nothing to retry. ``continue`` or ``step`` lets the
    run fail as it would have without the hold."""

    def describe(self) -> str:
        if self.failure is not None:
            if self.payload.get("failed", "model_call") == "model_call":
                return f"{self.agent} failed calling {self.payload.get('model')}: {self.failure}"
            return f"{self.agent} failed: {self.failure}"
        if self.kind == "model_call":
            return f"{self.agent} calls {self.payload.get('model')}"
        if self.kind == "tool_call":
            return f"{self.agent} calls tool {self.payload.get('tool')}({self.payload.get('args')})"
        return f"{self.agent} hands off to {self.payload.get('target')}: {self.payload.get('context')}"


@dataclass(frozen=True)
class Decision:
    """What to do at a gate.

    Attributes:
        action: ``continue``, ``edit`` (use ``payload``), ``retry`` (run the last
            model call again), ``deny`` (a tool call that needs approval, with
            ``payload["reason"]``) or ``abort``.
        payload: The edited payload, with ``edit``.
        operator: The operator action that led here (``step``, ``continue``, ...),
            recorded as an event; None for an automatic decision.
    """

    action: Action = "continue"
    payload: dict[str, Any] | None = None
    operator: str | None = None


CONTINUE = Decision()


class Controller(Protocol):
    """Decides at each gate."""

    async def decide(self, gate: Gate) -> Decision: ...


@dataclass
class StepController:
    """A debugger controller: runs freely, or stops at every gate (step mode)
    or at breakpoints, and waits for the operator.

    Attributes:
        stepping: Stop at every gate.
        breakpoints: ``agent:NAME``, ``tool:NAME``, ``handoff:TARGET``, or with
            ``*`` as the name for any (``handoff:*``, ``tool:*``); ``error:*`` stops at the
            first gate after any error (a failed model call, an invalid call, a refused
            tool, a loop) and before any error fails the run.
        on_pause: Called with the gate when the run stops at it.
    """

    stepping: bool = False
    breakpoints: set[str] = field(default_factory=set)
    on_pause: Callable[[Gate], None] | None = None
    pending: Gate | None = None
    _waiter: asyncio.Future[Decision] | None = None
    _abort_requested: bool = False
    _paused_event: asyncio.Event | None = None

    def should_stop(self, gate: Gate) -> bool:
        if self.stepping or gate.hold:
            return True
        points = self.breakpoints
        if not points:
            return False
        if f"agent:{gate.agent}" in points:
            return True
        if (gate.errors or gate.failure is not None) and "error:*" in points:
            return True
        if gate.kind == "tool_call":
            return "tool:*" in points or f"tool:{gate.payload.get('tool')}" in points
        if gate.kind == "handoff":
            return "handoff:*" in points or f"handoff:{gate.payload.get('target')}" in points
        return False

    async def decide(self, gate: Gate) -> Decision:
        if self._abort_requested:
            return Decision("abort", operator="abort")
        if not self.should_stop(gate):
            return CONTINUE
        self.pending = gate
        self._waiter = asyncio.get_running_loop().create_future()
        if self._paused_event is not None:
            self._paused_event.set()
        if self.on_pause is not None:
            self.on_pause(gate)
        try:
            return await self._waiter
        finally:
            self.pending = None
            self._waiter = None
            if self._paused_event is not None:
                self._paused_event.clear()

    async def wait_paused(self) -> Gate:
        """Wait until the run stops at a gate; returns that gate."""
        while self.pending is None:
            if self._paused_event is None:
                self._paused_event = asyncio.Event()
            # A gate released before this wakes (an ``on_pause`` that decides at once) is
            # gone by then: wait for the next one.
            await self._paused_event.wait()
        return self.pending

    def _resolve(self, decision: Decision) -> bool:
        if self._waiter is None or self._waiter.done():
            return False
        self._waiter.set_result(decision)
        # The gate is released now, even though the run resumes only on its next tick.
        self.pending = None
        if self._paused_event is not None:
            self._paused_event.clear()
        return True

    def step(self) -> bool:
        """Run the held step and stop at the next gate."""
        self.stepping = True
        return self._resolve(Decision(operator="step"))

    def resume(self) -> bool:
        """Run on to the next breakpoint or the end."""
        self.stepping = False
        return self._resolve(Decision(operator="continue"))

    def pause(self) -> None:
        """Stop at the next gate."""
        self.stepping = True

    def edit(self, payload: dict[str, Any]) -> str | None:
        """Replace the held payload (tool ``args`` or handoff ``context``) and run it.

        Returns:
            An error message if the edit does not validate (the run stays held), else None.
        """
        if self.pending is None:
            return "nothing is held to edit"
        error = self.pending.validate(payload)
        if error is not None:
            return error
        self._resolve(Decision("edit", payload, operator="edit"))
        return None

    def retry(self) -> str | None:
        """Run the last model call of the held agent again. Returns an error message if it can't."""
        if self.pending is None:
            return "nothing is held"
        if not self.pending.can_retry:
            return self.pending.payload.get("no_retry") or "no model call of this agent to retry yet"
        self._resolve(Decision("retry", operator="retry"))
        return None

    def approve(self) -> str | None:
        """Run a held tool call that needs approval, then go on as before (stepping or not);
        recorded as the operator's ``approve``. Returns an error message if nothing that needs
        approval is held."""
        if self.pending is None or not self.pending.payload.get("approval"):
            return "nothing that needs approval is held"
        self._resolve(Decision(operator="approve"))
        return None

    def deny(self, reason: str) -> str | None:
        """Refuse a held tool call that needs approval; the model is told ``reason``.
        Returns an error message if nothing that needs approval is held."""
        if self.pending is None or not self.pending.payload.get("approval"):
            return "nothing that needs approval is held"
        self._resolve(Decision("deny", {"reason": reason}, operator="deny"))
        return None

    def abort(self) -> None:
        """Stop the run at the next gate (now, if one is held)."""
        self._abort_requested = True
        self._resolve(Decision("abort", operator="abort"))


FailedKind = Literal[
    "model_call", "invalid_output", "invalid_calls", "max_turns", "loop", "checkpoint", "budget", "error"
]
"""What failed, at a gate held before the run fails (``Gate.payload["failed"]``)."""


_LET_GO: weakref.WeakSet[Failure] = weakref.WeakSet()
"""Failures already held and let go (or not stopped at): they fail the run without a second
hold where they pass through another agent's activation (a supervisor's review call)."""


async def hold_failure(
    run: Runtime,
    agent: str,
    failure: Failure,
    failed: FailedKind,
    payload: dict[str, Any],
    *,
    step: int | None = None,
    on_retry: str | None = None,
    no_retry: str | None = None,
    editable: bool = True,
) -> list[dict[str, Any]]:
    """Hold ``failure`` at a gate before it fails the run, with the error to show: an
    ``error:*`` breakpoint (or step mode) stops there; otherwise the run goes on failing at once.

    Args:
        run: The run; it has a controller (headless runs never come here).
        agent: The agent that failed.
        failure: What fails the run, raised unless the operator retries.
        failed: What failed, for the banner.
        payload: ``{model, messages}`` of the model call a retry would make.
        step: The step the gate shows; by default the next one, given back when the gate
            does not lead to that step (the retried call then takes it).
        on_retry: What ``retry`` does (it may not when None).
        no_retry: Why nothing can be retried (shown, and told to an operator who tries).
        editable: Whether the retry makes the model call with the gate's ``messages``, so an
            operator may edit them (else an edit is refused: the run would not use it).

    Returns:
        The messages to make the model call with: the payload's, or the operator's edit.

    Raises:
        Failure: ``failure``, when the operator lets the run fail (``continue``, ``step``)
            or no breakpoint stops here.
        Aborted: The operator aborted.
    """
    if failure in _LET_GO:
        raise failure
    given = step is None
    held = run.next_step() if step is None else step
    extra: dict[str, Any] = {"failed": failed}
    if on_retry is not None:
        extra["on_retry"] = on_retry
    elif no_retry is not None:
        extra["no_retry"] = no_retry
    try:
        decision = await run.gate(
            "model_call",
            agent,
            held,
            {**payload, **extra},
            can_retry=on_retry is not None,
            failure=failure.message,
            validate=check_failed_call_edit(editable and on_retry is not None),
        )
    finally:
        if given:
            run.give_back_step(held)
    if on_retry is not None:
        if decision.action == "retry":
            return list(payload.get("messages") or [])
        edited = decision.payload.get("messages") if decision.action == "edit" and decision.payload else None
        if edited:
            return list(edited)
    _LET_GO.add(failure)
    raise failure
