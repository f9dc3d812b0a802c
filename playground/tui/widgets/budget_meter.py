"""Budget meters: how much of a declared budget an agent, or the run, has spent."""

from __future__ import annotations

from rich.text import Text

from playground.spec.models import Budget, Limits
from playground.tui.state import AgentView, RunView

BARS = 8


def _tightest(used: list[tuple[str, float, float]]) -> tuple[str, float, float] | None:
    """The limit closest to being reached: ``(name, spent, allowed)``."""
    return max(used, key=lambda u: u[1] / u[2], default=None)


def agent_usage(agent: AgentView, budget: Budget | None) -> tuple[str, float, float] | None:
    """The agent's tightest budget limit, if it declares one."""
    if budget is None:
        return None
    used: list[tuple[str, float, float]] = []
    if budget.max_cost_usd is not None:
        used.append(("cost", agent.cost_usd, budget.max_cost_usd))
    if budget.max_tokens is not None:
        used.append(("tokens", agent.input_tokens + agent.output_tokens, budget.max_tokens))
    if budget.max_calls is not None:
        used.append(("calls", agent.calls, budget.max_calls))
    return _tightest(used)


def run_usage(view: RunView, limits: Limits) -> tuple[str, float, float] | None:
    """The run's tightest budget limit (``limits.max_cost_usd`` / ``max_tokens``), if declared."""
    tokens_in, tokens_out, cost = view.totals()
    used: list[tuple[str, float, float]] = []
    if limits.max_cost_usd is not None:
        used.append(("cost", cost, limits.max_cost_usd))
    if limits.max_tokens is not None:
        used.append(("tokens", tokens_in + tokens_out, limits.max_tokens))
    return _tightest(used)


def _amount(name: str, value: float) -> str:
    return f"${value:.4f}" if name == "cost" else f"{value:g}"


def meter_text(usage: tuple[str, float, float], *, exceeded: bool = False) -> str:
    """``budget ▰▰▰▱▱▱▱▱ 42% cost $0.0042/$0.0100`` (plain text, for a border subtitle)."""
    name, spent, allowed = usage
    share = spent / allowed if allowed else 0.0
    filled = min(BARS, round(share * BARS))
    mark = "⚠ " if exceeded or share >= 1 else ""
    return (
        f"{mark}budget {'▰' * filled}{'▱' * (BARS - filled)} {share:.0%} "
        f"{name} {_amount(name, spent)}/{_amount(name, allowed)}"
    )


def meter(usage: tuple[str, float, float], *, exceeded: bool = False) -> Text:
    """:func:`meter_text`, coloured: green, yellow from 75%, red from 100% (or exceeded)."""
    _, spent, allowed = usage
    share = spent / allowed if allowed else 0.0
    style = "bold red" if exceeded or share >= 1 else ("yellow" if share >= 0.75 else "green")
    return Text(meter_text(usage, exceeded=exceeded), style)
