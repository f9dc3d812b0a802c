"""Loop detection: does the run converge, or go round?

Checked before every handoff, delegation and tool call, per request:

- ``repeat``: the same handoff or delegation with the same context again, or one agent
  calling one tool with the same arguments more than ``loops.max_repeats`` times;
- ``cycle``: a cycle in the handoff graph (``drafter → legal → compliance → drafter``)
  closing more than ``loops.max_cycles`` times, whatever the contexts;
- ``no_progress``: an agent handed the very context it got last time, with no tool
  result anywhere since;
- ``hops``: more than ``limits.max_hops`` handoffs and delegations (the last resort).

A call made by a model response that an operator retried does not count: retrying a
step is the operator's action, and must never look like the system going round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from playground.spec.models import SystemSpec

LoopKind = Literal["cycle", "repeat", "no_progress", "hops"]


@dataclass(slots=True, frozen=True)
class Found:
    """A loop: its kind, a readable reason, and the cycle when it is one."""

    kind: LoopKind
    reason: str
    cycle: tuple[str, ...] = ()


@dataclass(slots=True)
class LoopWatch:
    """What one run has done so far, as far as loops are concerned."""

    spec: SystemSpec
    hops: int = 0
    edges: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """Handoffs and delegations made, with their context, to the response that made them."""
    calls: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    """Tool calls (agent, tool, arguments as JSON) to the responses that made them."""
    chain: list[str] = field(default_factory=list)
    """The agents handoffs went to, in order (the entry first)."""
    cycles: dict[tuple[str, ...], int] = field(default_factory=dict)
    incoming: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Per agent handed a context: that context and the tool results there had been then."""
    tool_results: int = 0
    retried: set[int] = field(default_factory=set)
    """Model responses an operator retried: the calls they made do not count."""

    def handoff(self, source: str, target: str, rendered: str, response: int) -> Found | None:
        """A handoff ``source → target`` with this context, made by ``response``."""
        found = self._edge(source, target, rendered, response)
        if not self.chain:
            self.chain.append(source)
        chain = self.chain
        if found is None and target in chain:
            start = len(chain) - 1 - chain[::-1].index(target)
            cycle = (*chain[start:], target)
            closed = self.cycles[cycle] = self.cycles.get(cycle, 0) + 1
            if closed > self.spec.loops.max_cycles:
                found = Found(
                    "cycle",
                    f"the cycle {' → '.join(cycle)} closed {closed} times "
                    f"(loops.max_cycles = {self.spec.loops.max_cycles})",
                    cycle,
                )
        chain.append(target)
        last = self.incoming.get(target)
        if found is None and self.spec.loops.no_progress and last == (rendered, self.tool_results):
            found = Found(
                "no_progress",
                f"{target} was handed the same context again with nothing new since (loops.no_progress)",
            )
        self.incoming[target] = (rendered, self.tool_results)
        return found or self._hop_limit()

    def delegation(self, source: str, worker: str, rendered: str, response: int) -> Found | None:
        """A delegation ``source → worker`` with this task, made by ``response``."""
        return self._edge(source, worker, rendered, response) or self._hop_limit()

    def tool_call(self, agent: str, tool: str, args: str, response: int) -> Found | None:
        """``agent`` is about to call ``tool`` with these arguments (as JSON), made by ``response``."""
        key = (agent, tool, args)
        made = [r for r in self.calls.get(key, ()) if r not in self.retried]
        made.append(response)
        self.calls[key] = made
        limit = self.spec.loops.max_repeats
        if len(made) > limit:
            return Found(
                "repeat",
                f"{agent} called {tool} with the same arguments {len(made)} times"
                f" (loops.max_repeats = {limit})",
            )
        return None

    def _edge(self, source: str, target: str, rendered: str, response: int) -> Found | None:
        edge = (source, target, rendered)
        before = self.edges.get(edge)
        forgiven = before is not None and before in self.retried
        if not forgiven:
            self.hops += 1
        self.edges[edge] = response
        if before is not None and not forgiven:
            return Found("repeat", f"{source} -> {target} repeated with the same context")
        return None

    def _hop_limit(self) -> Found | None:
        limit = self.spec.limits.max_hops
        if self.hops > limit:
            return Found("hops", f"more than limits.max_hops = {limit} handoffs")
        return None
