"""The search box's query: ``field:value`` terms and free text, matched against rows.

One syntax for the timeline filter (run screen, ctrl+f) and the sessions browser's search::

    agent:research kind:tool_called status:failed invoice

- ``field:value`` keeps rows whose field contains ``value`` (case-insensitive); the
  fields are the screen's own (the timeline: ``agent``, ``kind``, ``status``; the
  sessions: ``agent``, ``status``, ``system``, ``scenario``, ``id``).
- A field given twice, or ``field:a,b``, keeps rows matching any of the values.
- Different fields, and free text, all have to match.
- ``-`` before a term keeps the rows that do not match it (``-kind:token``, ``-refund``).
- Quotes keep spaces in a value or a phrase: ``scenario:"double charge"``.
- A word whose ``field:`` the screen does not know is free text (``http://...``).

Nothing here imports Textual: the matching is plain functions over plain values.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Term:
    """One term of a query: a field (None: free text), the values any of which match, negated."""

    field: str | None
    values: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class Query:
    """A parsed query: every term must hold for a row to match."""

    text: str
    terms: tuple[Term, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.terms)


def parse(text: str, fields: Iterable[str]) -> Query:
    """``text`` as a query over ``fields`` (see the module docstring)."""
    known = set(fields)
    try:
        words = shlex.split(text)
    except ValueError:  # an unclosed quote while typing: split on spaces
        words = text.split()
    merged: dict[tuple[str, bool], list[str]] = {}
    terms: list[Term] = []
    for word in words:
        negated = word.startswith("-") and len(word) > 1
        body = word[1:] if negated else word
        name, sep, value = body.partition(":")
        name = name.lower()
        if sep and name in known:
            values = [v.strip().lower() for v in value.split(",") if v.strip()]
            if values:
                if negated:
                    terms.append(Term(name, tuple(values), True))
                else:
                    merged.setdefault((name, negated), []).extend(values)
            continue
        terms.append(Term(None, (body.lower(),), negated))
    terms[:0] = [Term(name, tuple(values)) for (name, _), values in merged.items()]
    return Query(text, tuple(terms))


Getter = Callable[[object], Iterable[str]]
"""A field's texts on one row (a term matches when its value is in any of them)."""


def matches(query: Query, row: object, fields: Mapping[str, Getter], text: Getter) -> bool:
    """Whether ``row`` matches every term of ``query``.

    Args:
        fields: Field name to the row's texts for that field.
        text: The row's texts that free text is searched in.
    """
    for term in query.terms:
        getter = text if term.field is None else fields[term.field]
        haystack = [s.lower() for s in getter(row) if s]
        found = any(value in s for value in term.values for s in haystack)
        if found == term.negated:
            return False
    return True
