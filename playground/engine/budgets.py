"""Budgets: what a run (``limits.max_cost_usd``, ``limits.max_tokens``) and an agent
(``budget: {max_cost_usd, max_tokens, max_calls}``) may spend.

Checked before each model call, with what was spent so far plus what the call is
estimated to add (its input tokens, priced with the agent's ``price`` when it has one).
Past a budget, ``on_budget`` decides: ``stop`` the run, ``pause`` it at the call's gate
for the operator (who may continue past the budget, once, or abort; a headless run
stops), or ``{escalate: AGENT}`` (that agent's own calls are then let through, so it can
wrap up). Under a debugger, ``stop`` holds the call first (an ``error:*`` breakpoint stops
there): retry makes the call past the budget; continue stops the run as before. A system
that declares no budget pays one attribute test per model call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from playground.engine import events as ev
from playground.engine.controller import hold_failure
from playground.engine.outcomes import Escalate, Failure
from playground.spec.models import AgentSpec, SystemSpec

if TYPE_CHECKING:
    from playground.engine.runtime import Runtime

Over = tuple[Literal["run", "agent"], Literal["max_cost_usd", "max_tokens", "max_calls"], float, float, float]
"""scope, limit, allowed, spent, estimated."""


def declares_budget(spec: SystemSpec, agents: dict[str, AgentSpec]) -> bool:
    limits = spec.limits
    return (
        limits.max_cost_usd is not None
        or limits.max_tokens is not None
        or any(agent.budget is not None for agent in agents.values())
    )


def over_budget(run: Runtime, name: str, agent: AgentSpec, messages: list[dict[str, Any]]) -> Over | None:
    """The first budget the next model call of ``name`` would break, or None."""
    estimate = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) and content:
            estimate += (len(content) + 3) // 4
    price = agent.price
    estimate_usd = estimate * price.input / 1e6 if price is not None else 0.0
    totals = run.totals
    limits = run.spec.limits
    waived = run.budget_waived
    if limits.max_cost_usd is not None and "run:max_cost_usd" not in waived:
        spent = sum(t.cost_usd for t in totals.values())
        if spent + estimate_usd > limits.max_cost_usd:
            return "run", "max_cost_usd", limits.max_cost_usd, spent, estimate_usd
    if limits.max_tokens is not None and "run:max_tokens" not in waived:
        used = sum(t.input_tokens + t.output_tokens for t in totals.values())
        if used + estimate > limits.max_tokens:
            return "run", "max_tokens", limits.max_tokens, used, estimate
    budget = agent.budget
    if budget is None:
        return None
    mine = totals.get(name)
    calls, cost, tokens = (
        (mine.calls, mine.cost_usd, mine.input_tokens + mine.output_tokens) if mine else (0, 0.0, 0)
    )
    if budget.max_calls is not None and calls + 1 > budget.max_calls and f"{name}:max_calls" not in waived:
        return "agent", "max_calls", budget.max_calls, calls, 1
    if (
        budget.max_cost_usd is not None
        and cost + estimate_usd > budget.max_cost_usd
        and f"{name}:max_cost_usd" not in waived
    ):
        return "agent", "max_cost_usd", budget.max_cost_usd, cost, estimate_usd
    if (
        budget.max_tokens is not None
        and tokens + estimate > budget.max_tokens
        and f"{name}:max_tokens" not in waived
    ):
        return "agent", "max_tokens", budget.max_tokens, tokens, estimate
    return None


async def check_budget(
    run: Runtime, name: str, agent: AgentSpec, messages: list[dict[str, Any]], act: int, cause: int, step: int
) -> None:
    """Before a model call: let it through, or record the budget it breaks and act on it."""
    over = over_budget(run, name, agent, messages)
    if over is None:
        return
    scope, limit, allowed, spent, estimated = over
    on_budget = run.spec.on_budget
    policy = on_budget if isinstance(on_budget, str) else f"escalate:{on_budget.escalate}"
    exceeded = run.emit(
        ev.BudgetExceeded,
        agent=name,
        activation=act,
        cause=cause,
        scope=scope,
        limit=limit,
        allowed=allowed,
        spent=spent,
        estimated=estimated,
        policy=policy,
    )
    whose = "the run's limits" if scope == "run" else f"{name!r}'s budget"
    reason = f"the next model call of {name!r} would pass {whose}.{limit} = {allowed:g} (spent {spent:g})"
    key = f"{'run' if scope == 'run' else name}:{limit}"
    if on_budget == "pause" and run.controller is not None:
        # The operator decides at the call's gate: continue (past this budget, from now on) or abort.
        await run.gate(
            "model_call",
            name,
            step,
            {
                "model": agent.model,
                "messages": messages,
                "budget": {"limit": limit, "allowed": allowed, "spent": spent},
            },
            hold=True,
        )
        run.budget_waived.add(key)
        return
    if not isinstance(on_budget, str) and not run.escalated:
        run.escalated = True
        run.budget_waived.update(
            {"run:max_cost_usd", "run:max_tokens"}
            | {f"{on_budget.escalate}:{k}" for k in ("max_cost_usd", "max_tokens", "max_calls")}
        )
        escalated = run.emit(
            ev.Escalated, agent=name, cause=exceeded.seq, target=on_budget.escalate, reason=reason
        )
        raise Escalate(on_budget.escalate, {"request": run.input, "reason": reason}, escalated.seq)
    failure = Failure("budget_exceeded", reason, name, name, exceeded.seq)
    if run.controller is not None:
        # Held before the run fails (an ``error:*`` breakpoint): retry makes the call past
        # this budget, from now on, as ``continue`` does at ``on_budget: pause``.
        await hold_failure(
            run,
            name,
            failure,
            "budget",
            {
                "model": agent.model,
                "messages": messages,
                "budget": {"limit": limit, "allowed": allowed, "spent": spent},
            },
            step=step,
            on_retry="call past the budget",
            editable=False,  # the call is made as it was asked, past the budget
        )
        run.budget_waived.add(key)
        return
    raise failure
