"""Limits on what the outside world hands the playground (shared/STYLE.md, 18).

Every input another person or program controls (a system file, a scenario file, an
operator's ``--edit`` JSON, a session export being imported) is checked against a
size, depth and count limit before any work that could grow with it starts. Each
limit has a default that ordinary files are far below, and an environment variable
that raises it; an error names the limit, the value found and that variable.

This module imports nothing of the playground, so the spec loader, the store and
the command line can all use it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any


class LimitExceeded(ValueError):
    """An input is over one of the limits below; the message names the limit and how to raise it."""


@dataclass(frozen=True)
class Limit:
    """One bound: its default, and the environment variable that overrides it."""

    env: str
    default: int
    unit: str
    """What is counted, for messages: ``bytes``, ``levels``, ``aliases``, ``nodes``, ..."""

    @property
    def value(self) -> int:
        """The limit in force: the environment's value if it is a positive integer, else the default."""
        raw = os.environ.get(self.env, "")
        try:
            value = int(raw.replace("_", "")) if raw.strip() else self.default
        except ValueError:
            return self.default
        return value if value > 0 else self.default

    def check(self, found: int, what: str) -> None:
        """Raise :class:`LimitExceeded` if ``found`` is over the limit."""
        limit = self.value
        if found > limit:
            raise LimitExceeded(self.message(what, found, limit))

    def message(self, what: str, found: int | None = None, limit: int | None = None) -> str:
        limit = self.value if limit is None else limit
        amount = f" ({_amount(found, self.unit)})" if found is not None else ""
        return (
            f"{what} is over the limit of {_amount(limit, self.unit)}{amount};"
            f" raise it with {self.env}={_suggest(limit)} if the input is trusted"
        )


def _amount(n: int, unit: str) -> str:
    if unit == "bytes" and n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n:,} {unit}"


def _suggest(limit: int) -> int:
    return limit * 4


SPEC_FILE_BYTES = Limit("PLAYGROUND_MAX_SPEC_BYTES", 4 << 20, "bytes")
"""Size of a system or scenario file."""
SPEC_DEPTH = Limit("PLAYGROUND_MAX_SPEC_DEPTH", 64, "levels")
"""Nesting of a system or scenario file, aliases expanded."""
SPEC_ALIASES = Limit("PLAYGROUND_MAX_SPEC_ALIASES", 1_000, "aliases")
"""YAML alias uses (``*name`` and ``<<: *name``) in one file."""
SPEC_NODES = Limit("PLAYGROUND_MAX_SPEC_NODES", 200_000, "nodes")
"""Values in a file once its aliases are expanded (a "billion laughs" file is tiny but expands
to billions)."""

EDIT_BYTES = Limit("PLAYGROUND_MAX_EDIT_BYTES", 1 << 20, "bytes")
"""Size of an operator's edit of a handoff context or tool arguments (``--edit`` JSON)."""
JSON_DEPTH = Limit("PLAYGROUND_MAX_JSON_DEPTH", 64, "levels")
"""Nesting of JSON from outside: an ``--edit`` payload, each record of an import."""

IMPORT_BYTES = Limit("PLAYGROUND_MAX_IMPORT_BYTES", 256 << 20, "bytes")
"""Size of a session export being imported."""
IMPORT_LINE_BYTES = Limit("PLAYGROUND_MAX_IMPORT_LINE_BYTES", 64 << 20, "bytes")
"""Size of one record (line) of a session export."""
IMPORT_RECORDS = Limit("PLAYGROUND_MAX_IMPORT_RECORDS", 1_000_000, "records")
"""Records (lines) of a session export."""
ID_CHARS = Limit("PLAYGROUND_MAX_ID_CHARS", 128, "characters")
"""Length of an id or a name in an imported record (a session id, an agent's name)."""

TOOL_IMPORT_S = Limit("PLAYGROUND_TOOL_IMPORT_TIMEOUT_S", 30, "seconds")
"""How long importing a tools file may take before it is reported as hanging."""

INT_MAX = (1 << 63) - 1
"""The largest integer SQLite stores; imported numbers beyond it are refused."""


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON text, outside strings, without parsing it."""
    if text.count("[") + text.count("{") <= 1:
        return 1 if ("[" in text or "{" in text) else 0
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def loads_bounded(text: str, what: str, *, size: Limit = EDIT_BYTES, depth: Limit = JSON_DEPTH) -> Any:
    """``json.loads`` after checking the text's size and nesting against the limits.

    Raises:
        LimitExceeded: The text is over a limit (the message says which and how to raise it).
        ValueError: The text is not JSON (``json.JSONDecodeError``, with line and column).
    """
    size.check(len(text.encode("utf-8", "surrogatepass")), what)
    limit = depth.value
    if text.count("[") + text.count("{") > limit:  # else it cannot be deeper than the limit
        depth.check(json_depth(text), f"the nesting of {what}")
    return json.loads(text)
