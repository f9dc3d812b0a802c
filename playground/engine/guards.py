"""Guards and validators an operator declares in Python (``file.py:function``).

- A handoff's ``from:`` fills fields from the run's request or the source's own incoming
  context instead of from what the model wrote, so an id cannot be invented.
- A handoff's ``guard`` sees the payload and the history the policy would pass, before
  delivery, and allows it, rewrites it (e.g. redacts a card number) or denies it with a
  reason that goes back to the source's model. Every verdict is an event; a rewrite keeps
  both versions.
- An agent's ``validate: {input, output}`` refuses what it receives (back to the sender's
  model) or what it returns (back to its own model), like a schema error.

A synchronous function runs in a thread of its own, bounded by ``limits.tool_timeout_s``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from playground.engine import events as ev
from playground.engine.handoffs import Checked, check_route
from playground.engine.messages import history, parse_or_text, render_context
from playground.engine.outcomes import Invalid
from playground.engine.threads import in_thread

if TYPE_CHECKING:
    from playground.engine.runtime import Runtime


async def call_user(run: Runtime, ref: str, *args: Any) -> Any:
    """Call the system's function ``ref`` with ``args``; a sync one in a thread."""
    function = run.system.checks[ref]
    async with asyncio.timeout(run.spec.limits.tool_timeout_s):
        if function.is_async:
            return await function.func(*args)
        return await in_thread(lambda: function.func(*args), f"call-{ref}")


async def verdict_of(run: Runtime, ref: str, value: Any) -> str | None:
    """A validator's verdict on ``value``: None to accept, else why not."""
    try:
        verdict = await call_user(run, ref, value)
    except TimeoutError:
        return f"{ref} did not answer within limits.tool_timeout_s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    if verdict is None or verdict is True:
        return None
    return f"rejected by {ref}" if verdict is False else str(verdict)


def fill_from(
    run: Runtime, checked: Checked, context: dict[str, Any] | None
) -> tuple[Checked, list[str]] | str:
    """Take the handoff's ``from:`` fields from the request or the source's own context: the
    filled handoff and the fields filled, or why it cannot be."""
    route, target, payload, _rendered, tokens = checked
    sources: dict[str, Any] = {"request": parse_or_text(run.input), "context": context or {}}
    filled = dict(payload)
    for name, source in route.spec.from_.items():
        origin = sources[source]
        if not isinstance(origin, dict) or name not in origin:
            return f"{name!r} is to come from the {source}, which has no {name!r}"
        filled[name] = origin[name]
    clean, problem, _ = check_route(route, target, filled)
    if clean is None:
        return f"the value of {', '.join(route.spec.from_)} from the {source} does not fit: {problem}"
    return (route, target, clean, render_context(clean), tokens), list(route.spec.from_)


async def guard_handoff(
    run: Runtime, name: str, checked: Checked, messages: list[dict[str, Any]], act: int, cause: int
) -> tuple[Checked, list[dict[str, Any]] | None] | Invalid:
    """Run the handoff's guard: the (possibly rewritten) handoff and history to deliver, or
    the denial that goes back to the model."""
    route, target, payload, _rendered, tokens = checked
    guard = route.spec.guard
    assert guard is not None
    carried = history(messages, route.spec.history) if route.spec.history != "none" else []
    try:
        verdict = await call_user(run, guard, dict(payload), [dict(m) for m in carried])
    except TimeoutError:
        verdict = f"the guard {guard} did not answer within limits.tool_timeout_s"
    except Exception as exc:
        verdict = f"{type(exc).__name__}: {exc}"
    if verdict is None or verdict is True:
        run.emit(
            ev.GuardAllowed, agent=name, activation=act, cause=cause, source=name, target=target, guard=guard
        )
        return checked, None
    new_payload, new_history = None, None
    if isinstance(verdict, dict):
        new_payload = verdict
    elif isinstance(verdict, tuple) and len(verdict) == 2 and isinstance(verdict[0], dict):
        new_payload, new_history = verdict[0], list(verdict[1])
    if new_payload is None:
        reason = f"rejected by {guard}" if verdict is False else str(verdict)
        denied = run.emit(
            ev.GuardDenied,
            agent=name,
            activation=act,
            cause=cause,
            source=name,
            target=target,
            guard=guard,
            reason=reason,
        )
        return Invalid(f"Error: the handoff to {target} was denied: {reason}", denied)
    clean, problem, _ = check_route(route, target, new_payload)
    if clean is None:
        reason = f"the guard's rewrite does not fit the handoff's schema: {problem}"
        denied = run.emit(
            ev.GuardDenied,
            agent=name,
            activation=act,
            cause=cause,
            source=name,
            target=target,
            guard=guard,
            reason=reason,
        )
        return Invalid(f"Error: the handoff to {target} was denied: {reason}", denied)
    changed = [k for k in {**payload, **clean} if payload.get(k) != clean.get(k)]
    run.emit(
        ev.GuardRewrote,
        agent=name,
        activation=act,
        cause=cause,
        source=name,
        target=target,
        guard=guard,
        before=dict(payload),
        after=clean,
        changed=changed,
        history_changed=new_history is not None and new_history != carried,
    )
    return (route, target, clean, render_context(clean), tokens), new_history


async def refuse_input(
    run: Runtime, sender: str, target: str, value: Any, act: int, cause: int
) -> Invalid | None:
    """``target``'s input validator on what ``sender`` is about to give it."""
    validators = run.agents[target].validators
    if validators is None or validators.input is None:
        return None
    why = await verdict_of(run, validators.input, value)
    if why is None:
        return None
    refused = run.emit(
        ev.ValidationFailed,
        agent=sender,
        activation=act,
        cause=cause,
        what="input",
        errors=why,
        target=target,
    )
    return Invalid(f"Error: {target} refused its input: {why}", refused)
