"""The store's rows: what a session row holds, checked the same way wherever one comes from.

A session row is validated against :class:`SessionRecord` when it is imported and when
it is read back, so a row that does not fit (an import from a hostile file, a store
edited by hand, a damaged page) is one clear error about that row rather than a crash
of whatever lists it. The column list of the ``sessions`` table is the model's fields.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from playground import bounds


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]*\Z")


def _name(value: str) -> str:
    limit = bounds.ID_CHARS.value
    if not value or len(value) > limit:
        raise ValueError(f"must be 1 to {limit} characters ({bounds.ID_CHARS.env} raises the limit)")
    if not _PRINTABLE.match(value):
        raise ValueError("must not hold control characters")
    return value


Name = Annotated[str, AfterValidator(_name)]
"""An id or a name: bounded, printable."""
Count = Annotated[int, Field(ge=0, le=bounds.INT_MAX)]
Amount = Annotated[float, Field(ge=0), AfterValidator(_finite)]
Time = Annotated[float, Field(ge=0, lt=1e11), AfterValidator(_finite)]
"""Seconds since the epoch (before the year 5138)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class ErrorRecord(BaseModel):
    """A failed session's error: its type and message, where it started and where it showed."""

    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    origin: str | None = None
    manifested: str | None = None


class TokensRecord(_Record):
    input: Count = 0
    output: Count = 0


class AgentTotalsRecord(BaseModel):
    """One agent's totals in a session (``per_agent`` of ``run --json``)."""

    model_config = ConfigDict(extra="allow")

    calls: Count = 0
    tokens: TokensRecord = TokensRecord()
    cost_usd: Amount = 0
    latency_ms: Amount = 0


STATUSES = ("running", "completed", "failed", "aborted", "interrupted", "waiting_approval")
"""Statuses this playground writes; a row read back may hold another (a newer playground's)."""


class SessionRecord(_Record):
    """One row of the ``sessions`` table, its JSON columns parsed.

    The columns a session export carries, in the export's shape.
    """

    session_id: Name
    system: Name
    system_path: str = Field("", max_length=4096)
    correlation_id: Name
    status: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]
    input: str
    output: str = ""
    error: ErrorRecord | None = None
    path: list[Name] = []
    versions: dict[Name, Name] = {}
    totals: dict[Name, AgentTotalsRecord] = {}
    cost_usd: Amount = 0
    input_tokens: Count = 0
    output_tokens: Count = 0
    latency_ms: Amount = 0
    parent_session_id: Name | None = None
    forked_from_step: Count | None = None
    created_at: Time
    finished_at: Time | None = None
    scenario: str | None = Field(None, max_length=4096)
    """The scenario the run was (its name in its scenario file); None for other runs."""
    scenario_file: str | None = Field(None, max_length=4096)
    """The scenario file of ``scenario``, as it was given."""


OPTIONAL_EXPORT_COLUMNS = frozenset({"scenario", "scenario_file"})
"""Columns a session export leaves out when they are empty, so a playground that predates
them still imports the export of a run that was no scenario."""

OBSERVED_PREFIX = "observed:"
"""``system_path`` of an observed session (received as OpenTelemetry traces, not run here):
this, then the framework it came from."""

SESSION_COLUMNS = tuple(SessionRecord.model_fields)
"""The columns of a session row that a session export carries (``pid`` and ``host``, which
belong to the machine, stay behind)."""
SESSION_JSON_COLUMNS = frozenset({"error", "path", "versions", "totals"})
"""Columns stored as JSON text."""


def problem_of(exc: ValidationError) -> str:
    """The first problem of a failed validation, in one line naming the field."""
    item = exc.errors()[0]
    where = ".".join(str(p) for p in item["loc"]) or "the row"
    got = repr(item.get("input"))
    if len(got) > 60:
        got = got[:59] + "…"
    return f"{where}: {item['msg']} (got {got})"


def session_record(row: Any) -> SessionRecord:
    """A stored ``sessions`` row (a mapping of column to stored value) as a checked record.

    Raises:
        ValueError: Why the row does not fit (a JSON column that is not JSON, a field of the
            wrong type), in one line.
    """
    data: dict[str, Any] = {}
    for column in SESSION_COLUMNS:
        value = row[column]
        if column in SESSION_JSON_COLUMNS and value is not None:
            if not isinstance(value, str):
                raise ValueError(f"{column}: not JSON text (got {type(value).__name__})")
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError(f"{column}: not valid JSON") from None
        data[column] = value
    try:
        return SessionRecord.model_validate(data)
    except ValidationError as exc:
        raise ValueError(problem_of(exc)) from None


@dataclass(frozen=True)
class SessionRow:
    """One session as listed by the store.

    A row that could not be read back (``problem`` set) is listed with its id, what could
    be read of it, and status ``unreadable``.
    """

    session_id: str
    system: str
    system_path: str
    correlation_id: str
    status: str
    input: str
    output: str
    error: dict[str, Any] | None
    path: list[str]
    versions: dict[str, str]
    totals: dict[str, Any]
    cost_usd: float
    input_tokens: int
    output_tokens: int
    latency_ms: float
    parent_session_id: str | None
    forked_from_step: int | None
    created_at: float
    finished_at: float | None
    problem: str | None = None
    """Why the stored row could not be read (the row is then a placeholder)."""
    scenario: str | None = None
    """The scenario the run was (``playground test``, the pytest plugin, a compare over a
    scenario file): its name; None for other runs."""
    scenario_file: str | None = None
    """The scenario file of ``scenario``."""

    @property
    def observed(self) -> str | None:
        """The framework an observed session came from; None for a session run here."""
        path = self.system_path
        return path.removeprefix(OBSERVED_PREFIX) if path.startswith(OBSERVED_PREFIX) else None

    @classmethod
    def from_record(cls, record: SessionRecord) -> SessionRow:
        return cls(
            session_id=record.session_id,
            system=record.system,
            system_path=record.system_path,
            correlation_id=record.correlation_id,
            status=record.status,
            input=record.input,
            output=record.output,
            error=record.error.model_dump() if record.error is not None else None,
            path=list(record.path),
            versions=dict(record.versions),
            totals={name: totals.model_dump() for name, totals in record.totals.items()},
            cost_usd=record.cost_usd,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            latency_ms=record.latency_ms,
            parent_session_id=record.parent_session_id,
            forked_from_step=record.forked_from_step,
            created_at=record.created_at,
            finished_at=record.finished_at,
            scenario=record.scenario,
            scenario_file=record.scenario_file,
        )

    @classmethod
    def from_row(cls, row: Any) -> SessionRow:
        """A stored row; one that does not validate becomes an ``unreadable`` placeholder."""
        try:
            return cls.from_record(session_record(row))
        except ValueError as exc:
            return cls.unreadable(row, str(exc))

    @classmethod
    def unreadable(cls, row: Any, problem: str) -> SessionRow:
        def text(column: str) -> str:
            try:
                value = row[column]
            except (IndexError, KeyError):
                return ""
            return value if isinstance(value, str) else ""

        try:
            created = row["created_at"]
        except (IndexError, KeyError):
            created = 0.0
        return cls(
            session_id=text("session_id")[: bounds.ID_CHARS.value] or "?",
            system=text("system")[: bounds.ID_CHARS.value],
            system_path="",
            correlation_id="",
            status="unreadable",
            input=f"(unreadable row: {problem})",
            output="",
            error={"type": "unreadable_row", "message": problem},
            path=[],
            versions={},
            totals={},
            cost_usd=0.0,
            input_tokens=0,
            output_tokens=0,
            latency_ms=0.0,
            parent_session_id=None,
            forked_from_step=None,
            created_at=float(created) if isinstance(created, int | float) and math.isfinite(created) else 0.0,
            finished_at=None,
            problem=problem,
        )

    def as_json(self) -> dict[str, Any]:
        data = {
            "session_id": self.session_id,
            "system": self.system,
            "observed": self.observed,
            "status": self.status,
            "input": self.input,
            "output": self.output,
            "path": self.path,
            "error": self.error,
            "cost_usd": self.cost_usd,
            "tokens": {"input": self.input_tokens, "output": self.output_tokens},
            "latency_ms": self.latency_ms,
            "correlation_id": self.correlation_id,
            "versions": self.versions,
            "parent_session_id": self.parent_session_id,
            "forked_from_step": self.forked_from_step,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "per_agent": self.totals,
            "scenario": None
            if self.scenario is None
            else {"name": self.scenario, "file": self.scenario_file},
        }
        if self.problem is not None:
            data["problem"] = self.problem
        return data


@dataclass(frozen=True)
class VersionRow:
    """One stored version of one agent."""

    version_id: str
    agent: str
    created_at: float
    source: str
    """``file`` (recorded when a system file was loaded) or ``operator`` (an edit)."""
    note: str
    active: bool
    """Whether the agent's active pointer is on this version."""

    def as_json(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "agent": self.agent,
            "created_at": self.created_at,
            "source": self.source,
            "note": self.note,
            "active": self.active,
        }


@dataclass(frozen=True)
class SnapshotRow:
    """A named set of versions, one per agent of a system."""

    name: str
    versions: dict[str, str]
    created_at: float

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "versions": self.versions, "created_at": self.created_at}


@dataclass(frozen=True)
class VersionLogEntry:
    """One move of an agent's active pointer."""

    entry_id: int
    agent: str
    action: str
    """``recorded`` (a new version became active), ``activated``, ``rollback`` or ``restore``."""
    from_version: str | None
    to_version: str
    note: str
    created_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "agent": self.agent,
            "action": self.action,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "note": self.note,
            "created_at": self.created_at,
        }
