"""Handoffs: checking a handoff call against its route, holding it at the gate,
delivering it, and the loop checks every handoff and delegation passes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import ValidationError

from playground.engine import events as ev
from playground.engine.loops import Found
from playground.engine.messages import history, history_tokens, render_context
from playground.engine.outcomes import Escalate, Failure, Handoff, Invalid, RetryStep
from playground.engine.plans import Route, route_for
from playground.llm.base import ToolCall, approx_tokens, parse_json
from playground.spec.load import HANDOFF_PREFIX
from playground.spec.models import AgentSpec
from playground.spec.schema import format_validation_error

if TYPE_CHECKING:
    from playground.engine.plans import Plan
    from playground.engine.runtime import Runtime

Checked = tuple[Route, str, dict[str, Any], str, int]
"""A handoff call that passed its checks: route, target, clean payload, its JSON, the
history's tokens."""


def check_handoff(
    run: Runtime,
    name: str,
    agent: AgentSpec,
    plan: Plan,
    call: ToolCall,
    act: int,
    cause: int,
    messages: list[dict[str, Any]],
) -> Checked | Invalid:
    """Check a handoff call: what to deliver, or why it was refused (fed back to the model)."""
    target = call.name[len(HANDOFF_PREFIX) :]
    route = plan.routes.get(target) or route_for(run.agents, agent, plan, target)
    if route is None:
        known = ", ".join({h.to: h for h in agent.handoffs}) or "none"
        problem = run.emit(
            ev.ValidationFailed,
            agent=name,
            activation=act,
            cause=cause,
            what="handoff_target",
            errors=f"{target!r} is not a handoff target of {name!r} (targets: {known})",
            target=target,
        )
        return Invalid(
            f"Error: there is no agent {target!r} to hand off to. Choose one of: {known}.", problem
        )
    try:
        raw = parse_json(call.arguments or "{}")
        if not isinstance(raw, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as exc:
        payload: dict[str, Any] | None = None
        error: str | None = f"handoff arguments are not valid JSON: {exc}"
        what = "handoff_payload"
    else:
        payload, error, what = check_route(route, target, raw)
    if payload is None:
        problem = run.emit(
            ev.ValidationFailed,
            agent=name,
            activation=act,
            cause=cause,
            what=what,
            errors=error or "",
            target=target,
        )
        return Invalid(
            f"Error: the handoff to {target} was refused: {error}. Required: {route.described}", problem
        )
    return route, target, payload, render_context(payload), history_tokens(messages)


async def gated_handoff(
    run: Runtime,
    name: str,
    checked: Checked,
    act: int,
    cause: int,
    messages: list[dict[str, Any]],
    carried: list[dict[str, Any]] | None = None,
    filled: list[str] | None = None,
) -> Handoff | RetryStep:
    """A checked handoff held at the controller's gate before it is delivered."""
    route, target, payload, rendered, tokens = checked
    step = run.next_step()
    decision = await run.gate(
        "handoff",
        name,
        step,
        {
            "target": target,
            "context": payload,
            "schema": route.described,
            "payload_tokens": approx_tokens(rendered),
            "history": route.spec.history,
            "history_tokens": tokens,
        },
        validate=lambda p: check_route(route, target, p.get("context", {}))[1],
        can_retry=True,
    )
    if decision.action == "retry":
        run.give_back_step(step)
        return RetryStep()
    edited = decision.action == "edit" and decision.payload is not None
    if edited:
        assert decision.payload is not None
        payload = check_route(route, target, decision.payload.get("context", {}))[0] or payload
        rendered = render_context(payload)
    try:
        return deliver(
            run,
            name,
            act,
            cause,
            messages,
            (route, target, payload, rendered, tokens),
            step,
            edited,
            carried,
            filled,
        )
    except (Escalate, Failure):
        # Not delivered (a loop or the hop limit): headless, no step was taken for it.
        run.give_back_step(step)
        raise


def deliver(
    run: Runtime,
    name: str,
    act: int,
    cause: int,
    messages: list[dict[str, Any]],
    checked: Checked,
    step: int | None = None,
    edited: bool = False,
    carried: list[dict[str, Any]] | None = None,
    filled: list[str] | None = None,
) -> Handoff:
    """Deliver a checked handoff: record it and return it (it ends the activation).
    ``carried``: the history to pass (a guard's rewrite) instead of the policy's."""
    route, target, payload, rendered, tokens = checked
    policy = route.spec.history
    if carried is None:
        carried = history(messages, policy) if policy != "none" else []
    check_hops(run, name, target, payload, cause, rendered, handoff=True)
    delivered = run.emit(
        ev.HandoffDelivered,
        agent=name,
        step=step if step is not None else run.next_step(),
        activation=act,
        cause=cause,
        source=name,
        target=target,
        payload=payload,
        payload_tokens=approx_tokens(rendered),
        history=policy,
        history_tokens=tokens,
        payload_schema=route.described,
        edited=edited,
        filled=filled or [],
    )
    return Handoff(target, payload, carried, delivered.seq, rendered)


def check_hops(
    run: Runtime,
    source: str,
    target: str,
    payload: dict[str, Any],
    cause: int,
    rendered: str | None = None,
    *,
    handoff: bool = False,
) -> None:
    """Count a handoff (or a delegation), and stop or escalate the run if it makes a loop."""
    text = rendered if rendered is not None else render_context(payload)
    watch = run.loops
    found = (
        watch.handoff(source, target, text, cause)
        if handoff
        else watch.delegation(source, target, text, cause)
    )
    if found is not None:
        loop_found(run, source, target, found, cause)


def loop_found(run: Runtime, agent: str, target: str | None, found: Found, cause: int) -> NoReturn:
    """Record a loop and stop the run, or escalate it to ``on_loop`` (once)."""
    policy = run.spec.on_loop
    if run.escalated:
        policy = "stop"
    detected = run.emit(
        ev.LoopDetected,
        agent=agent,
        cause=cause,
        reason=found.reason,
        edge=[agent, target] if target else [],
        policy=policy,
        loop=found.kind,
        cycle=list(found.cycle),
    )
    if policy == "stop":
        raise Failure("loop", f"loop detected: {found.reason}", agent, agent, detected.seq)
    run.escalated = True
    escalated = run.emit(ev.Escalated, agent=agent, cause=detected.seq, target=policy, reason=found.reason)
    raise Escalate(policy, {"request": run.input, "reason": found.reason}, escalated.seq)


def check_route(
    route: Route, target: str, payload: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None, str]:
    """The clean payload of a handoff, or None, the problem and what was wrong."""
    try:
        clean = route.schema.validate(payload)
    except ValidationError as exc:
        return None, format_validation_error(exc), "handoff_payload"
    if route.target_input is not None:
        try:
            clean = route.target_input.validate(clean)
        except ValidationError as exc:
            return None, f"{target!r} rejects its input: {format_validation_error(exc)}", "input"
    return clean, None, ""
