"""The system as a graph, drawn with box characters: the agent handling the request now
highlighted, the edges taken so far in heavy lines.

Layers run top to bottom (a router's fan-out, a supervisor's workers, a pipeline's stages
with a parallel group side by side); an edge between neighbours of one layer runs in the gap
between them, and any other that is not between neighbouring layers (a cycle back, a skip)
runs around the right. Too narrow for that, or too tangled to draw without crossing a box,
it is a list: each agent and the edges out of it.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Literal

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from playground.tui.graph import (
    DETAIL_CHARS,
    Follower,
    GraphEdge,
    GraphState,
    NodeState,
    Topology,
    topology,
)
from playground.tui.state import RunView

GAP = 3
"""Columns between two agents of one layer."""

MARKERS: dict[NodeState, str] = {"idle": " ", "active": "▶", "waiting": "⋯", "done": "✓", "failed": "✘"}
"""What stands before an agent's name, so its state reads without colour too."""

LEGEND = "▶ handling now  ⋯ waiting on a worker  ✓ done  ✘ failed  ┃ edge taken"

GraphMode = Literal["detailed", "layered", "list"]
Point = tuple[int, int]
_DIRECTIONS = {"UP": "u", "DOWN": "d", "LEFT": "l", "RIGHT": "r", "VERTICAL": "ud", "HORIZONTAL": "lr"}
_STEP = {"u": (0, -1), "d": (0, 1), "l": (-1, 0), "r": (1, 0)}
_OPPOSITE = {"u": "d", "d": "u", "l": "r", "r": "l"}
_RANK = {"edge": 1, "pending": 2, "taken": 3}


@cache
def _glyphs() -> dict[frozenset[tuple[str, bool]], str]:
    """Box-drawing characters by the directions they reach and which of those are heavy,
    read from their Unicode names (``BOX DRAWINGS DOWN HEAVY AND HORIZONTAL LIGHT``)."""
    table: dict[frozenset[tuple[str, bool]], str] = {}
    for code in range(0x2500, 0x2580):
        words = unicodedata.name(chr(code), "").removeprefix("BOX DRAWINGS ").split()
        if not words or not set(words) <= {*_DIRECTIONS, "LIGHT", "HEAVY", "AND"}:
            continue  # double, dashed, arc and diagonal lines
        key: set[tuple[str, bool]] = set()
        weight: str | None = None
        for part in " ".join(words).split(" AND "):
            named = [w for w in part.split() if w in ("LIGHT", "HEAVY")]
            weight = named[0] if named else weight
            for word in part.split():
                key.update((d, weight == "HEAVY") for d in _DIRECTIONS.get(word, ""))
        table.setdefault(frozenset(key), chr(code))
    return table


def glyph(reach: dict[str, bool]) -> str:
    """The character of a line cell reaching ``reach`` (direction: heavy?)."""
    found = _glyphs().get(frozenset(reach.items()))
    if found is not None:
        return found
    heavy = any(reach.values())
    return ("┃" if heavy else "│") if set(reach) <= {"u", "d"} else ("━" if heavy else "─")


def jump_text(source: str, target: str, why: str) -> str:
    """A move along no declared edge (an escalation), as the line under the graph says it."""
    return f"⇢ {source} → {target} ({why})"


class _Canvas:
    """Cells of text and lines; lines meeting in a cell join into one character."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.text: dict[Point, tuple[str, str]] = {}
        """Fixed characters (boxes, names, arrows) and their component class."""
        self.reach: dict[Point, dict[str, bool]] = {}
        self.rank: dict[Point, int] = {}
        self.solid: set[Point] = set()
        """Cells of boxes: a line passes behind them."""

    def put(self, x: int, y: int, text: str, style: str) -> None:
        for offset, char in enumerate(text):
            self.text[(x + offset, y)] = (char, style)

    def box(
        self, x: int, y: int, width: int, label: str, role: str, state: NodeState, detail: str | None
    ) -> None:
        """An agent's box: its role in the top border, its name, and (when ``detail`` is not
        None) a line of detail under the name."""
        border, name = f"system-graph--{state}", f"system-graph--{state}-name"
        top = "─" + role if role else ""
        self.put(x, y, "╭" + top + "─" * (width - 2 - len(top)) + "╮", border)
        if role:
            self.put(x + 2, y, role, "system-graph--role")
        rows = [(label, name)] if detail is None else [(label, name), ("  " + detail, "system-graph--detail")]
        for row, (text, style) in enumerate(rows, start=y + 1):
            self.put(x, row, "│ ", border)
            self.put(x + 2, row, text[: width - 4].ljust(width - 4), style)
            self.put(x + width - 2, row, " │", border)
        bottom = y + len(rows) + 1
        self.put(x, bottom, "╰" + "─" * (width - 2) + "╯", border)
        self.solid.update((x + i, y + j) for i in range(width) for j in range(bottom - y + 1))

    def line(self, points: list[Point], kind: str) -> None:
        """A line through ``points`` (each a step up, down, left or right of the one before);
        its two ends are left to the caller (a box's border, an arrow)."""
        heavy = kind == "taken"
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            way = next(d for d, step in _STEP.items() if step == (x1 - x0, y1 - y0))
            self._reach((x0, y0), way, heavy, kind)
            self._reach((x1, y1), _OPPOSITE[way], heavy, kind)

    def _reach(self, at: Point, way: str, heavy: bool, kind: str) -> None:
        if at in self.solid:
            return
        reach = self.reach.setdefault(at, {})
        reach[way] = reach.get(way, False) or heavy
        self.rank[at] = max(self.rank.get(at, 0), _RANK[kind])

    def lines(self, classes: dict[str, Style]) -> list[Text]:
        out: list[Text] = []
        edge_class = {rank: f"system-graph--{kind}" for kind, rank in _RANK.items()}
        for y in range(self.height):
            text = Text(no_wrap=True, overflow="crop")
            for x in range(self.width):
                char, cls = self.text.get((x, y), ("", ""))
                if not char and (x, y) in self.reach:
                    char, cls = glyph(self.reach[(x, y)]), edge_class[self.rank[(x, y)]]
                text.append(char or " ", classes.get(cls, Style()))
            text.rstrip()
            out.append(text)
        return out


def _walk(start: Point, *moves: tuple[str, int]) -> list[Point]:
    """The points from ``start`` going each ``(direction, cells)`` in turn (a direction of
    ``x`` or ``y`` goes to that absolute coordinate)."""
    points = [start]
    for way, to in moves:
        x, y = points[-1]
        if way == "x":
            step, count = (1 if to > x else -1, 0), abs(to - x)
        else:
            step, count = (0, 1 if to > y else -1), abs(to - y)
        for _ in range(count):
            x, y = x + step[0], y + step[1]
            points.append((x, y))
    return points


@dataclass(frozen=True, slots=True)
class _Place:
    x: int
    y: int
    width: int

    @property
    def centre(self) -> int:
        return self.x + self.width // 2


class Drawing:
    """One topology drawn in layers, for one state of a run.

    Args:
        graph: The topology.
        state: Where the run is.
        detailed: Give each box a second line, what its agent is doing (``state.details``).
    """

    def __init__(self, graph: Topology, state: GraphState, *, detailed: bool = False) -> None:
        self.graph = graph
        self.state = state
        self.detailed = detailed
        self.box_height = 4 if detailed else 3
        self.widths = {name: self._box_width(name) for name in graph.nodes}
        down = [e for e in graph.edges if not graph.is_long(e)]
        others = [e for e in graph.edges if graph.is_long(e)]
        # Agents a long edge leaves or enters go last in their layer: the edge runs around
        # the right side, clear of their neighbours.
        ends = {name for e in others for name in e.pair}
        self.rows = [sorted(layer, key=lambda name: name in ends) for layer in graph.layers]
        self.side = [e for e in others if self._neighbours(e)]
        """Edges between neighbours of one layer, drawn in the gap between them."""
        self.long = [e for e in others if e not in self.side]
        """Edges around the right side (a cycle back, a skip), each in a lane of its own."""
        self.clean = self._clean()
        """Whether every edge can be drawn without crossing a box or another edge's end."""
        layer_widths = [sum(self.widths[n] for n in row) + GAP * (len(row) - 1) for row in self.rows]
        self.body = max(layer_widths, default=0)
        self.width = self.body + (2 * len(self.long) + 1 if self.long else 0)
        self.places: dict[str, _Place] = {}
        self.buses: list[tuple[list[GraphEdge], int, int]] = []
        """The down edges of each pair of neighbouring layers, their first bus row and how many."""
        y = 0
        for index, (row, width) in enumerate(zip(self.rows, layer_widths, strict=True)):
            x = self._left(width)
            for name in row:
                self.places[name] = _Place(x, y, self.widths[name])
                x += self.widths[name] + GAP
            y += self.box_height
            if index == len(self.rows) - 1:
                break
            edges = [e for e in down if graph.layer_of(e.source) == index]
            sources = list(dict.fromkeys(e.source for e in edges))
            targets = {e.target for e in edges}
            bent = any(self._centre_x(e.source) != self._centre_x(e.target) for e in edges)
            buses = (1 if len(sources) <= 1 or len(targets) <= 1 else len(sources)) if bent else 0
            self.buses.append((edges, y, buses))
            y += buses + 1
        self.height = y + len(state.jumps)
        self.width = max([self.width, *(len(jump_text(*jump)) for jump in state.jumps)])

    def _neighbours(self, edge: GraphEdge) -> bool:
        row = self.rows[self.graph.layer_of(edge.source)]
        return edge.target in row and abs(row.index(edge.source) - row.index(edge.target)) == 1

    def _clean(self) -> bool:
        """Long edges leave and enter their agents' boxes on the right: each such agent must
        be the last of its layer, and a box of one line has room for only one of leaving and
        entering. Between two neighbours, each direction has its own end of the gap."""
        leaving = {e.source for e in self.long}
        entering = {e.target for e in self.long}
        for name in leaving | entering:
            if self.rows[self.graph.layer_of(name)][-1] != name:
                return False
        if not self.detailed and leaving & entering:
            return False
        return not any(self.graph.layer_of(e.source) == self.graph.layer_of(e.target) for e in self.long)

    def _centre_x(self, name: str) -> int:
        if name in self.places:
            return self.places[name].centre
        # A node of the next layer, not placed yet: where it will be.
        row = self.rows[self.graph.layer_of(name)]
        x = self._left(sum(self.widths[n] for n in row) + GAP * (len(row) - 1))
        for other in row:
            if other == name:
                return x + self.widths[name] // 2
            x += self.widths[other] + GAP
        raise AssertionError("unreachable: the node is in its layer")

    def _left(self, width: int) -> int:
        """Where a layer ``width`` wide starts: its middle on the body's, so the centres of
        lone agents line up (an edge between them is straight)."""
        return self.body // 2 - width // 2

    def _box_width(self, name: str) -> int:
        role = self.graph.roles.get(name, "")
        inner = max(len(name) + 2, DETAIL_CHARS + 2 if self.detailed else 0)
        return max(inner + 4, len(role) + 4 if role else 0)

    def _kind(self, edge: GraphEdge) -> str:
        if edge.pair in self.state.taken:
            return "taken"
        return "pending" if edge.pair == self.state.pending else "edge"

    def lines(self, classes: dict[str, Style]) -> list[Text]:
        canvas = _Canvas(self.width, self.height)
        for name, place in self.places.items():
            state = self.state.of(name)
            label = f"{MARKERS[state]} {name}"
            role = self.graph.roles.get(name, "")
            detail = self.state.details.get(name, "") if self.detailed else None
            canvas.box(place.x, place.y, place.width, label, role, state, detail)
        for edges, top, buses in self.buses:
            sources = list(dict.fromkeys(e.source for e in edges))
            arrow_row = top + buses
            # The edges taken last go on top, where lines share cells.
            for edge in sorted(edges, key=lambda e: _RANK[self._kind(e)]):
                kind = self._kind(edge)
                source, target = self.places[edge.source], self.places[edge.target]
                bus = top + (sources.index(edge.source) if buses > 1 else 0)
                start = (source.centre, source.y + self.box_height - 1)
                points = _walk(start, ("y", bus), ("x", target.centre), ("y", arrow_row))
                if buses == 0:
                    points = _walk(start, ("y", arrow_row))
                canvas.line(points, kind)
                self._end(canvas, start, "d", kind, border="lr")
                canvas.put(target.centre, arrow_row, "▼", f"system-graph--{kind}")
        for edge in self.side:
            kind = self._kind(edge)
            source, target = self.places[edge.source], self.places[edge.target]
            row = source.y + 1
            if source.x < target.x:  # → along the gap, into the right neighbour
                start, end, arrow = (source.x + source.width - 1, row), (target.x - 1, row), "▶"
            else:
                start, end, arrow = (source.x, row), (target.x + target.width, row), "◀"
            canvas.line(_walk(start, ("x", end[0])), kind)
            self._end(canvas, start, "r" if arrow == "▶" else "l", kind, border="ud")
            canvas.put(end[0], end[1], arrow, f"system-graph--{kind}")
        for lane, edge in enumerate(self.long):
            kind = self._kind(edge)
            source, target = self.places[edge.source], self.places[edge.target]
            x = self.body + 1 + 2 * lane
            start = (source.x + source.width - 1, source.y + 1)
            end = (target.x + target.width, target.y + self.box_height - 2)
            canvas.line(_walk(start, ("x", x), ("y", end[1]), ("x", end[0])), kind)
            self._end(canvas, start, "r", kind, border="ud")
            canvas.put(end[0], end[1], "◀", f"system-graph--{kind}")
        y = self.height - len(self.state.jumps)
        for offset, jump in enumerate(self.state.jumps):
            canvas.put(0, y + offset, jump_text(*jump), "system-graph--taken")
        return canvas.lines(classes)

    def _end(self, canvas: _Canvas, at: Point, way: str, kind: str, *, border: str) -> None:
        """Where a line leaves a box: its border gets a branch toward the line."""
        reach = {d: False for d in border} | {way: kind == "taken"}
        style = canvas.text[at][1]
        canvas.text[at] = (glyph(reach), f"system-graph--{kind}" if kind != "edge" else style)


def list_lines(graph: Topology, state: GraphState, classes: dict[str, Style]) -> list[Text]:
    """The graph as a list, for widths too narrow for the layers: each agent (with its state
    marker and role) and under it the edges out of it, heavy where taken."""
    out: list[Text] = []

    def style(cls: str) -> Style:
        return classes.get(f"system-graph--{cls}", Style())

    for name in graph.nodes:
        node = state.of(name)
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{MARKERS[node]} {name}", style(f"{node}-name"))
        role = graph.roles.get(name)
        if role:
            line.append(f"  {role}", style("role"))
        out.append(line)
        edges = [e for e in graph.edges if e.source == name]
        for index, edge in enumerate(edges):
            last = index == len(edges) - 1
            kind = (
                "taken" if edge.pair in state.taken else "pending" if edge.pair == state.pending else "edge"
            )
            heavy = kind == "taken"
            branch = ("┗" if last else "┣") if heavy else ("└" if last else "├")
            arrow = "━▶ " if heavy else "─▶ "
            back = " ↺" if graph.is_long(edge) and graph.layer_of(edge.target) <= graph.layer_of(name) else ""
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"  {branch}{arrow}", style(kind))
            line.append(edge.target + back, style(f"{state.of(edge.target)}-name"))
            out.append(line)
    for source, target, why in state.jumps:
        out.append(Text(jump_text(source, target, why), style("taken"), no_wrap=True))
    return out


class SystemGraph(Widget):
    """The system's agents and edges; the agents handling the request now highlighted, the
    edges taken so far heavy. Feed it with :meth:`show`.

    Args:
        graph: The system's topology.
        detailed: Whether boxes may get a detail line (when the graph fits with them).
    """

    COMPONENT_CLASSES = {
        "system-graph--idle",
        "system-graph--idle-name",
        "system-graph--active",
        "system-graph--active-name",
        "system-graph--waiting",
        "system-graph--waiting-name",
        "system-graph--done",
        "system-graph--done-name",
        "system-graph--failed",
        "system-graph--failed-name",
        "system-graph--role",
        "system-graph--detail",
        "system-graph--edge",
        "system-graph--taken",
        "system-graph--pending",
    }

    DEFAULT_CSS = """
    SystemGraph {
        width: 1fr;
        height: auto;
    }
    SystemGraph > .system-graph--idle { color: $text-muted; }
    SystemGraph > .system-graph--idle-name { color: $text-muted; }
    SystemGraph > .system-graph--active { color: $accent; text-style: bold; }
    SystemGraph > .system-graph--active-name { color: $accent; text-style: bold reverse; }
    SystemGraph > .system-graph--waiting { color: $warning; }
    SystemGraph > .system-graph--waiting-name { color: $warning; text-style: bold; }
    SystemGraph > .system-graph--done { color: $success; }
    SystemGraph > .system-graph--done-name { color: $success; }
    SystemGraph > .system-graph--failed { color: $error; text-style: bold; }
    SystemGraph > .system-graph--failed-name { color: $error; text-style: bold; }
    SystemGraph > .system-graph--role { color: $text-muted; text-style: italic; }
    SystemGraph > .system-graph--detail { color: $text-muted; }
    SystemGraph > .system-graph--edge { color: $text-muted; }
    SystemGraph > .system-graph--taken { color: $success; text-style: bold; }
    SystemGraph > .system-graph--pending { color: $warning; text-style: bold; }
    """

    def __init__(self, graph: Topology, *, detailed: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.graph = graph
        self.detailed = detailed
        """Whether boxes may get a detail line (when the graph fits with them)."""
        self.state = GraphState()
        self.room = 0
        """Lines the container has for the graph (a box's detail line shows only if all fit)."""
        self._cache: tuple[int, int, GraphState, list[Text]] | None = None

    def show(self, state: GraphState) -> None:
        """Draw the run at ``state``."""
        if state == self.state:
            return
        grew = len(state.jumps) != len(self.state.jumps)
        self.state = state
        self.refresh(layout=grew)

    def mode(self, width: int) -> GraphMode:
        """How the graph fits ``width`` columns (and :attr:`room` lines): layers of boxes with
        a detail line, layers of boxes, or (too narrow for layers) a list."""
        detailed = Drawing(self.graph, self.state, detailed=True)
        if self.detailed and detailed.clean and detailed.width <= width and detailed.height <= self.room:
            return "detailed"
        compact = Drawing(self.graph, self.state)
        return "layered" if compact.clean and compact.width <= width else "list"

    def lines(self, width: int) -> list[Text]:
        """The graph's lines at ``width`` columns, centred."""
        if self._cache is not None and self._cache[:3] == (width, self.room, self.state):
            return self._cache[3]
        classes = {cls: self.get_component_rich_style(cls, partial=True) for cls in self.COMPONENT_CLASSES}
        mode = self.mode(width)
        if mode == "list":
            lines = list_lines(self.graph, self.state, classes)
        else:
            drawing = Drawing(self.graph, self.state, detailed=mode == "detailed")
            pad = " " * ((width - drawing.width) // 2)
            lines = [Text(pad) + line if line.plain else line for line in drawing.lines(classes)]
        self._cache = (width, self.room, self.state, lines)
        return lines

    def render(self) -> Text:
        return Text("\n", no_wrap=True).join(self.lines(self.size.width))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self.room = container.height
        return len(self.lines(width))


PANE_MIN = (200, 50)
"""The smallest screen (columns, lines) the run screen's graph pane shows on."""
FOLLOW_S = 0.1
"""How often a graph following a run looks for news in its view (it redraws only on news)."""


class GraphPane(SystemGraph):
    """The graph as a pane of the run screen, following its view of the run; it shows only
    on a screen of at least :data:`PANE_MIN` (smaller ones have the graph screen, ``g``).

    Args:
        view: The run screen's view of the run.
    """

    DEFAULT_CSS = """
    GraphPane {
        display: none;
        height: auto;
        max-height: 45%;
        border: round $panel;
        border-title-color: $text;
    }
    """

    def __init__(self, view: RunView, *, id: str | None = None) -> None:
        super().__init__(topology(view.system.spec), detailed=False, id=id)
        self.follower = Follower(view, self.graph)

    def on_mount(self) -> None:
        self.border_title = "graph · g for its own screen"
        self.follow()
        self.set_interval(FOLLOW_S, self.follow)

    def follow(self) -> None:
        """Show the pane when the screen is big enough, and redraw it on news."""
        size = self.screen.size
        wide = size.width >= PANE_MIN[0] and size.height >= PANE_MIN[1]
        if wide != self.display:
            self.display = wide
        if wide:
            state = self.follower.poll()
            if state is not None:
                self.show(state)
