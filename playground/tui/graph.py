"""The system as a graph: its topology, laid out in layers, and what a run has taken of it.

:func:`topology` reads the system spec (handoffs, a supervisor's delegates, a pipeline's
stages and parallel groups) into layers of agents and the edges between them;
:func:`graph_state` reads a :class:`~playground.tui.state.RunView` into the agents handling
the request now and the edges taken so far. No Textual here: the widget that draws them is
:mod:`playground.tui.widgets.system_graph`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

from playground.spec.models import EscalateTo, SystemSpec
from playground.tui.state import HandoffView, RunView

EdgeKind = Literal["handoff", "delegation", "stage"]
DETAIL_CHARS = 16
"""Room for what an agent is doing, in a box of the graph (``calling a tool``)."""
HELD = {"model_call": "model", "tool_call": "tool", "handoff": "handoff"}
"""What a held gate is before, in a box's detail line."""


def figures(calls: int, tokens: int) -> str:
    """``2 calls 312 tok``, ``1 call 1.2k tok``: at most :data:`DETAIL_CHARS` for sane runs."""
    count = f"{tokens / 1000:.1f}k" if tokens >= 1000 else str(tokens)
    return f"{calls} call{'s' if calls != 1 else ''} {count} tok"


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """An edge of the system: a declared handoff, a supervisor's delegate, or one pipeline
    stage feeding the next."""

    source: str
    target: str
    kind: EdgeKind

    @property
    def pair(self) -> tuple[str, str]:
        return (self.source, self.target)


@dataclass(frozen=True)
class Topology:
    """The agents of a system in layers (the entry first) and its edges.

    An edge between neighbouring layers runs down; any other (a cycle back, a skip, a
    handoff within a layer) is a *long* edge, drawn around the side.
    """

    pattern: str
    entry: str
    layers: tuple[tuple[str, ...], ...]
    edges: tuple[GraphEdge, ...]
    roles: dict[str, str] = field(default_factory=dict)
    """A word on what an agent is there for beyond its edges (``entry``, ``on loop``)."""

    @property
    def nodes(self) -> list[str]:
        return [name for layer in self.layers for name in layer]

    def layer_of(self, name: str) -> int:
        return next(i for i, layer in enumerate(self.layers) if name in layer)

    def pairs(self) -> set[tuple[str, str]]:
        return {edge.pair for edge in self.edges}

    def is_long(self, edge: GraphEdge) -> bool:
        return self.layer_of(edge.target) != self.layer_of(edge.source) + 1


def topology(spec: SystemSpec) -> Topology:
    """Lay ``spec`` out: a pipeline's stages are its layers (a parallel group is one layer);
    a router or supervisor is layered breadth-first from the entry. Agents no edge reaches
    (an ``on_loop`` or escalation target) come last, with their role."""
    edges: list[GraphEdge] = []

    def add(source: str, target: str, kind: EdgeKind) -> None:
        edge = GraphEdge(source, target, kind)
        if target in spec.agents and source != target and edge not in edges:
            edges.append(edge)

    stages = spec.stages
    for before, after in itertools.pairwise(stages):
        for source in before:
            for target in after:
                add(source, target, "stage")
    for name, agent in spec.agents.items():
        for worker in agent.delegates:
            add(name, worker, "delegation")
        for handoff in agent.handoffs:
            add(name, handoff.to, "handoff")

    entry = spec.entry_agent
    layers: list[list[str]] = []
    placed: set[str] = set()
    if stages:
        for stage in stages:
            layers.append([name for name in stage if name not in placed])
            placed.update(stage)
    else:
        frontier = [entry]
        placed.add(entry)
        while frontier:
            layers.append(frontier)
            following: list[str] = []
            for source in frontier:
                for edge in edges:
                    if edge.source == source and edge.target not in placed:
                        placed.add(edge.target)
                        following.append(edge.target)
            frontier = following
    # Agents the stages and edges do not place (and what leads to them) hang below.
    rest = [name for name in spec.agents if name not in placed]
    while rest:
        layer = [name for name in rest if not any(e.target == name and e.source in rest for e in edges)]
        layer = layer or rest[:1]
        layers.append(layer)
        rest = [name for name in rest if name not in layer]

    roles = {entry: "entry"}
    escalations: list[tuple[str, str]] = []
    if spec.on_loop != "stop":
        escalations.append((spec.on_loop, "on loop"))
    if isinstance(spec.on_budget, EscalateTo):
        escalations.append((spec.on_budget.escalate, "on budget"))
    for agent in spec.agents.values():
        for on_reject in (agent.on_reject, agent.checkpoint.on_reject if agent.checkpoint else None):
            if isinstance(on_reject, EscalateTo):
                escalations.append((on_reject.escalate, "on reject"))
    for name, role in escalations:
        if name in spec.agents and name not in roles:
            roles[name] = role
    return Topology(
        spec.pattern,
        entry,
        tuple(tuple(layer) for layer in layers if layer),
        tuple(edges),
        roles,
    )


NodeState = Literal["idle", "active", "waiting", "done", "failed"]


@dataclass(frozen=True)
class GraphState:
    """What a run has done on the graph so far."""

    nodes: dict[str, NodeState] = field(default_factory=dict)
    """Each agent's state: ``active`` (handling the request now), ``waiting`` (its workers
    are), ``done`` (it handled the request), ``failed``; absent: it has not run."""
    taken: frozenset[tuple[str, str]] = frozenset()
    """``(source, target)`` of every edge the request went along."""
    pending: tuple[str, str] | None = None
    """The handoff the run is held before, if it is."""
    jumps: tuple[tuple[str, str, str], ...] = ()
    """``(source, target, why)`` of each move no edge of the topology declares (an escalation)."""
    details: dict[str, str] = field(default_factory=dict)
    """What each agent that has run is doing (``thinking``, ``held: tool``) or, once it is
    through, its model calls and tokens (``2 calls 312 tok``)."""
    status: str = "ready"
    hops: int = 0
    """Stops on the request's path so far."""

    def of(self, name: str) -> NodeState:
        return self.nodes.get(name, "idle")

    @property
    def active(self) -> list[str]:
        return [name for name, state in self.nodes.items() if state == "active"]


def _each_pair(edge: HandoffView) -> list[tuple[str, str]]:
    """The agent-to-agent edges of a path edge: the path has one edge each way for a whole
    parallel group, where the graph has one edge per agent."""
    return [(s, t) for s in edge.sources for t in edge.targets]


def graph_state(view: RunView, graph: Topology) -> GraphState:
    """Where ``view``'s run is on ``graph``: the agents at work and the edges taken.

    Handoffs name their edge; a delegated worker's stop names the activation that delegated
    to it; a pipeline's stage edge is taken once both of its agents have run (so a parallel
    group's edges are right whichever of its agents started first). A top-level stop started
    by an escalation is a jump from the stop before it.
    """
    pairs = graph.pairs()
    taken = {pair for h in view.handoffs for pair in _each_pair(h)}
    agent_of: dict[int, str] = {}
    reason_of: dict[int, str] = {}
    for row in view.steps:
        if row.kind == "activation" and row.agent is not None:
            agent_of[row.seq] = row.agent
            reason_of[row.seq] = dict(row.detail).get("reason", "")
    visited: set[str] = set()
    jumps: list[tuple[str, str, str]] = []
    before: list[str] = []
    for hop in view.hops:
        visited.update(hop.agents)
        if hop.parent is not None:
            delegator = agent_of.get(hop.parent)
            if delegator is not None:
                taken.update((delegator, name) for name in hop.agents)
            continue
        reason = reason_of.get(hop.activations[0], "") if hop.activations else ""
        if reason == "escalation" and before:
            for name in hop.agents:
                pair = (before[-1], name)
                if pair in pairs:
                    taken.add(pair)
                else:
                    jumps.append((*pair, "escalation"))
        before = hop.agents
    taken.update(
        e.pair for e in graph.edges if e.kind == "stage" and e.source in visited and e.target in visited
    )

    active = set(view.active_agents)
    nodes: dict[str, NodeState] = {}
    details: dict[str, str] = {}
    gate = view.gate
    for name, agent in view.agents.items():
        if gate is not None and gate.agent == name:
            details[name] = "held: " + HELD.get(gate.kind, gate.kind)
        elif agent.state in ("waiting", "thinking", "calling a tool") and view.running:
            details[name] = agent.state
        elif agent.state != "idle":
            details[name] = figures(agent.calls, agent.input_tokens + agent.output_tokens)
        if name in active:
            nodes[name] = "active"
        elif agent.state == "failed":
            nodes[name] = "failed"
        elif agent.state in ("waiting", "thinking", "calling a tool") and view.running:
            nodes[name] = "waiting"
        elif name in visited or agent.state != "idle":
            nodes[name] = "done"
    pending = view.pending_handoff
    held = None
    if pending is not None:
        each = _each_pair(pending)
        held = next((pair for pair in each if pair in pairs), each[0])
    return GraphState(
        nodes,
        frozenset(taken),
        held,
        tuple(jumps),
        details,
        view.status,
        len(view.hops),
    )


class Follower:
    """Reads a :class:`RunView` into a :class:`GraphState` only when something the graph
    shows has changed (a widget polls it on a timer; most polls cost a tuple compare).

    Args:
        view: The view of the run to follow.
        graph: The topology it runs on.
    """

    def __init__(self, view: RunView, graph: Topology) -> None:
        self.view = view
        self.graph = graph
        self._seen: object = None

    def poll(self) -> GraphState | None:
        """The graph's state now, or None when nothing it shows changed since the last poll."""
        view = self.view
        gate = view.gate
        seen = (
            view.status,
            len(view.hops),
            len(view.handoffs),
            len(view.steps),
            tuple(view.active_agents),
            (gate.agent, gate.step, gate.kind) if gate is not None else None,
            view.pending_handoff is not None,
            tuple((agent.state, agent.calls) for agent in view.agents.values()),
        )
        if seen == self._seen:
            return None
        self._seen = seen
        return graph_state(view, self.graph)
