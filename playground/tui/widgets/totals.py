"""The run's totals: session, status, elapsed (wall) and agent time, tokens and cost, per agent;
a failure's origin."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from playground.tui.state import RunView
from playground.tui.widgets.budget_meter import meter, run_usage

STATUS_STYLES = {
    "ready": "dim",
    "running": "bold cyan",
    "paused": "bold yellow",
    "completed": "bold green",
    "failed": "bold red",
    "aborted": "bold red",
    "interrupted": "bold yellow",
}


class Totals(Static):
    """Three lines under the panes; the screen calls :meth:`show`."""

    _shown: Text | None = None

    def show(self, view: RunView) -> None:
        tokens_in, tokens_out, cost = view.totals()
        elapsed, worked = view.elapsed(), view.agent_time()
        # Agents that ran at the same time worked longer, together, than the run took.
        agent_time: list[str | tuple[str, str]] = (
            [(" · agent time ", "dim"), f"{worked:.1f} s"] if round(worked, 1) > round(elapsed, 1) else []
        )
        line = Text.assemble(
            ("session ", "dim"),
            (view.session_id or "—", "bold"),
            "  ",
            (f" {view.status.upper()} ", f"reverse {STATUS_STYLES.get(view.status, '')}"),
            ("  elapsed ", "dim"),
            f"{elapsed:.1f} s",
            *agent_time,
            ("  tokens ", "dim"),
            f"{tokens_in} in / {tokens_out} out",
            ("  cost ", "dim"),
            f"${cost:.6f}",
        )
        usage = run_usage(view, view.system.spec.limits)
        if usage is not None:
            line.append("  ")
            line.append(meter(usage, exceeded="run" in view.over_budget))
        per_agent = [a for a in view.agents.values() if a.calls]
        agents = Text()
        if per_agent:
            agents.append("per agent  ", "dim")
            for index, agent in enumerate(per_agent):
                if index:
                    agents.append(" · ", "dim")
                agents.append(agent.name, "bold")
                tokens = agent.input_tokens + agent.output_tokens
                calls = "1 call" if agent.calls == 1 else f"{agent.calls} calls"
                agents.append(f" {calls} {tokens} tok ${agent.cost_usd:.6f} {agent.latency_ms:.0f} ms")
        line.no_wrap = True
        line.overflow = "ellipsis"
        second = Text(no_wrap=True, overflow="ellipsis")
        if view.error is not None:
            error = view.error
            second.append(f"✘ {error['type']}", "bold red")
            second.append("  origin ", "dim")
            second.append(str(error.get("origin") or "-"), "bold red")
            second.append("  manifested ", "dim")
            second.append(str(error.get("manifested") or "-"), "bold red")
            second.append("  " + " ".join(str(error["message"]).split()))
        elif view.output:
            second.append("output: ", "bold green")
            second.append(" ".join(view.output.split()))
        elif view.input:
            second.append("request: ", "dim")
            second.append(view.input)
        both = Text("\n").join([line, agents, second])
        both.no_wrap = True
        both.overflow = "ellipsis"
        if both != self._shown:  # redrawn on every tick of a run: mostly the same
            self._shown = both
            self.update(both, layout=False)  # three rows, always (app.tcss)
