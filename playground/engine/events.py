"""The typed event stream: the single source of truth of a run.

The runtime emits these; the store persists them, the tracer turns them into
spans, the TUI renders them and the CLI prints them. Event kinds are stored
forever: add kinds and optional fields freely, never rename one.

Every event names its session, its number in the session (``seq``), the agent
and agent version it concerns, the step it belongs to, the event that caused
it (``cause``) and the activation it happened in (``activation``: the ``seq``
of that activation's :class:`AgentStarted`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    @classmethod
    def trusted(cls, data: dict[str, Any]) -> Self:
        """Build an event from data the runtime already typed, skipping validation.

        The runtime emits several events per hop; validating each costs ~3 µs and
        ``model_construct`` ~10 µs, this under 1 µs. Events read back from the store or
        an export are validated in full by :data:`EVENT_ADAPTER`.

        Like an event read back, its ``model_fields_set`` is every field: one set shared
        by the class's trusted events (never changed: events are frozen).
        """
        defaults, fields = TRUSTED.get(cls) or _trusted(cls)
        event = new_event(cls)
        # The slots' own setters: what ``object.__setattr__`` ends up calling, minus the lookup.
        set_dict(event, {**defaults, **data})
        set_fields_set(event, fields)
        set_extra(event, None)
        set_private(event, None)
        return event

    session_id: str
    """The session this event belongs to."""
    seq: int
    """1-based number of the event within its session."""
    ts: float
    """Unix time in seconds when the event happened."""
    agent: str | None = None
    """The agent concerned, if any."""
    version: str | None = None
    """The id of the agent version that ran."""
    step: int | None = None
    """The step (model call, tool call or handoff) this event belongs to."""
    cause: int | None = None
    """``seq`` of the event that caused this one."""
    activation: int | None = None
    """``seq`` of the :class:`AgentStarted` of the activation this happened in."""


def _trusted(cls: type[_Event]) -> tuple[dict[str, Any], set[str]]:
    defaults = {name: field.default for name, field in cls.model_fields.items() if not field.is_required()}
    TRUSTED[cls] = defaults, set(cls.model_fields)
    return TRUSTED[cls]


# :meth:`_Event.trusted` in pieces, for the runtime's ``_emit`` to inline: it builds five
# events a hop, and the call alone would be a fifth of each event's cost.
TRUSTED: dict[type[_Event], tuple[dict[str, Any], set[str]]] = {}
"""Per event class: its optional fields' defaults in declaration order, and its fields."""
new_event = object.__new__
set_dict = BaseModel.__dict__["__dict__"].__set__
set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
set_private = BaseModel.__dict__["__pydantic_private__"].__set__


class RunStarted(_Event):
    """A request entered the system."""

    kind: Literal["run_started"] = "run_started"
    system: str
    input: str
    correlation_id: str
    """The OpenTelemetry trace id of this session (32 hex digits)."""
    versions: dict[str, str] = {}
    """Agent name to the version id it runs with."""
    parent_session_id: str | None = None
    forked_from_step: int | None = None
    observed: str | None = None
    """Set when the session was rebuilt from another program's OpenTelemetry spans (``playground
    observe``): the framework they came from (``openai-agents``, ``pydantic-ai``, ``langgraph``,
    ...). Nothing of such a session ran here: it can be shown, exported and compared, not replayed."""
    system_path: str = ""
    """The system file the run loaded (empty when it was not loaded from a file)."""
    scenario: str | None = None
    """The scenario this run is (``playground test``, the pytest plugin, ``compare --scenarios``):
    its name in its scenario file; None for any other run."""
    scenario_file: str | None = None
    """The scenario file of ``scenario``, as it was given (like ``system_path``)."""


class AgentStarted(_Event):
    """An agent activation began: it received a request, a handoff, a delegation or a stage input."""

    kind: Literal["agent_started"] = "agent_started"
    reason: Literal["entry", "handoff", "delegation", "stage", "escalation", "review"]
    incoming: str
    """The incoming message exactly as the agent's model sees it."""
    context: dict[str, Any] | None = None
    """The validated context it received, when it received one."""
    model: str = ""
    parent_activation: int | None = None
    """For a delegated worker: the supervisor's activation."""


class ModelRequested(_Event):
    """A model call is being sent."""

    kind: Literal["model_requested"] = "model_requested"
    model: str
    messages: list[dict[str, Any]]
    tools: list[str] = []
    attempt: int = 1
    tool_schemas: list[dict[str, Any]] = []
    """The tools offered, as sent: each ``{name, description, parameters}`` with ``parameters``
    a JSON Schema. Empty in events recorded before it was (``tools`` names them there)."""
    settings: dict[str, Any] = {}
    """The model settings the call was made with (``temperature``, ``max_tokens``, ...;
    ``api_key_env`` names a variable, no key is ever here). Empty when there are none, and in
    events recorded before it was."""


class TokenDelta(_Event):
    """Streamed text of a model call in flight. Delivered live; never stored one by one."""

    kind: Literal["token_delta"] = "token_delta"
    text: str


class ModelResponded(_Event):
    """A model call returned."""

    kind: Literal["model_responded"] = "model_responded"
    model: str
    text: str = ""
    tool_calls: list[dict[str, Any]] = []
    """Each ``{id, name, arguments}`` with the arguments as sent (a JSON string)."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    first_token_ms: float | None = None
    retry_of: int | None = None
    """When an operator retried the step: ``seq`` of the response this one replaces."""
    replayed: bool = False
    """Answered from a recorded session (fork or replay), not by a live call."""


class ModelFailed(_Event):
    """A model call failed (provider error, rate limit, timeout, script error)."""

    kind: Literal["model_failed"] = "model_failed"
    model: str
    error_type: str
    message: str
    attempt: int = 1
    retryable: bool = False
    latency_ms: float = 0.0


class RetryScheduled(_Event):
    """A failed model call will be sent again after a delay."""

    kind: Literal["retry_scheduled"] = "retry_scheduled"
    model: str
    attempt: int
    """The attempt about to be made (2 is the first retry)."""
    delay_s: float


class FallbackUsed(_Event):
    """The agent's model kept failing; the next model of its fallbacks takes over."""

    kind: Literal["fallback_used"] = "fallback_used"
    from_model: str
    to_model: str


class ToolCalled(_Event):
    """A permitted tool (or delegate) is being run with validated arguments."""

    kind: Literal["tool_called"] = "tool_called"
    tool: str
    call_id: str
    args: dict[str, Any]


class ApprovalRequested(_Event):
    """A tool that needs a person's approval is about to run: the run holds (the TUI), or
    stops with the session ``waiting_approval`` (headless) until ``playground approve``."""

    kind: Literal["approval_requested"] = "approval_requested"
    tool: str
    call_id: str
    args: dict[str, Any]


class ApprovalDecided(_Event):
    """A person approved (maybe with edited arguments) or denied a tool call."""

    kind: Literal["approval_decided"] = "approval_decided"
    tool: str
    call_id: str
    verdict: Literal["approved", "denied"]
    reason: str = ""
    edited: bool = False
    args: dict[str, Any] = {}
    """The arguments the tool runs with (after an edit)."""


class ToolReturned(_Event):
    """A tool returned or raised."""

    kind: Literal["tool_returned"] = "tool_returned"
    tool: str
    call_id: str
    result: str = ""
    error: str | None = None
    latency_ms: float = 0.0
    replayed: bool = False
    """Taken from a recorded session: the tool did not run."""
    truncated_from: int | None = None
    """The result's length when it was longer than ``limits.max_tool_result_chars`` and cut."""
    side_effect_served: bool = False
    """A tool with ``side_effects`` was asked again with the same arguments (a retried step,
    a fork or a replay): its earlier result was served, and it did not run again."""


class PermissionDenied(_Event):
    """The model called a tool this agent may not run. It was not run."""

    kind: Literal["permission_denied"] = "permission_denied"
    tool: str
    call_id: str
    allowed: list[str]
    args: str = ""
    """The arguments as sent, for the record."""


class HandoffDelivered(_Event):
    """A handoff's validated context was delivered to its target."""

    kind: Literal["handoff_delivered"] = "handoff_delivered"
    source: str
    target: str
    payload: dict[str, Any]
    payload_tokens: int
    history: str = "none"
    """The history policy applied."""
    history_tokens: int = 0
    """What the source's full conversation would have cost the target, in tokens."""
    payload_schema: str = ""
    """The schema the payload was validated against, e.g. ``{question: str}``."""
    edited: bool = False
    """An operator changed the payload before delivery."""
    filled: list[str] = []
    """Fields taken from the request or the source's own context (``from:``), not the model."""


class ValidationFailed(_Event):
    """Something an agent produced was rejected: it is fed back, or fails the run."""

    kind: Literal["validation_failed"] = "validation_failed"
    what: Literal["handoff_target", "handoff_payload", "tool_args", "output", "input", "review"]
    errors: str
    attempt: int = 1
    target: str | None = None
    """The agent or tool the rejected thing was meant for."""


class GuardAllowed(_Event):
    """A handoff's guard let its payload through unchanged."""

    kind: Literal["guard_allowed"] = "guard_allowed"
    source: str
    target: str
    guard: str
    """The guard's ``file.py:function``."""


class GuardRewrote(_Event):
    """A handoff's guard rewrote what is delivered (e.g. redacted it); both versions kept."""

    kind: Literal["guard_rewrote"] = "guard_rewrote"
    source: str
    target: str
    guard: str
    before: dict[str, Any]
    after: dict[str, Any]
    changed: list[str] = []
    """The payload fields whose values changed."""
    history_changed: bool = False
    """The guard also rewrote the conversation history the target receives."""


class GuardDenied(_Event):
    """A handoff's guard refused its payload; the reason goes back to the source's model."""

    kind: Literal["guard_denied"] = "guard_denied"
    source: str
    target: str
    guard: str
    reason: str


class CheckpointReviewed(_Event):
    """A checkpoint checked a value crossing a boundary before it was used: a worker's
    output (a supervisor's review), a stage's output, or a handoff's payload."""

    kind: Literal["checkpoint_reviewed"] = "checkpoint_reviewed"
    worker: str
    """The agent whose output (or payload) was checked."""
    verdict: Literal["accept", "reject", "limit"]
    """``limit``: rejected as often as allowed; ``on_reject`` decides what happens."""
    feedback: str = ""
    round: int = 1
    boundary: Literal["delegation", "stage", "handoff"] = "delegation"
    by: Literal["model", "check"] = "model"
    """A model's review, or a Python check."""
    on_reject: str = ""
    """With ``limit``: ``fail``, ``use_last`` or ``escalate:AGENT``."""


class LoopDetected(_Event):
    """The run is going round: a cycle, a repeated call, no progress, or the hop limit."""

    kind: Literal["loop_detected"] = "loop_detected"
    reason: str
    edge: list[str] = []
    policy: str
    """``stop`` or the agent escalated to."""
    loop: Literal["cycle", "repeat", "no_progress", "hops"] | None = None
    """``cycle``: a cycle of handoffs closed more than ``loops.max_cycles`` times;
    ``repeat``: the same handoff, delegation or tool call with the same context again;
    ``no_progress``: an agent handed the same context with nothing new since;
    ``hops``: more than ``limits.max_hops`` handoffs and delegations."""
    cycle: list[str] = []
    """With ``cycle``: the agents of the cycle, its first one again at the end."""


class BudgetExceeded(_Event):
    """A model call would take a run or an agent past its declared budget."""

    kind: Literal["budget_exceeded"] = "budget_exceeded"
    scope: Literal["run", "agent"]
    """The run's ``limits`` or the agent's ``budget``."""
    limit: Literal["max_cost_usd", "max_tokens", "max_calls"]
    allowed: float
    spent: float
    """What had been spent when the call was about to be made."""
    estimated: float = 0.0
    """What the call itself was estimated to add (its input tokens, or their cost)."""
    policy: str
    """``stop``, ``pause`` or ``escalate:AGENT`` (``on_budget``)."""


class Escalated(_Event):
    """The run was handed to the ``on_loop`` agent."""

    kind: Literal["escalated"] = "escalated"
    target: str
    reason: str


class AgentFinished(_Event):
    """An agent activation ended."""

    kind: Literal["agent_finished"] = "agent_finished"
    outcome: Literal["reply", "handoff", "failed", "aborted"]
    output: str = ""
    handoff_to: str | None = None


class OperatorActed(_Event):
    """An operator acted on the run at a gate (step, continue, edit, retry, abort, ...)."""

    kind: Literal["operator_acted"] = "operator_acted"
    action: str
    gate: str = ""
    detail: dict[str, Any] = {}
    held_ms: float | None = None
    """How long the run was held at the gate before this action, in milliseconds: left out of
    the run's time (its final event's ``latency_ms``, the TUI's elapsed), live and stored alike.
    None in events written before it was recorded."""


class RunFinished(_Event):
    """The run completed with an output."""

    kind: Literal["run_finished"] = "run_finished"
    output: str
    path: list[str]
    totals: dict[str, Any]
    latency_ms: float | None = None
    """Wall-clock time of the run so far, less the time it was held at gates (the operator's
    ``held_ms``), in milliseconds (None in events written before it was recorded)."""


class RunFailed(_Event):
    """The run failed or was aborted."""

    kind: Literal["run_failed"] = "run_failed"
    status: Literal["failed", "aborted"] = "failed"
    error_type: str
    message: str
    origin: str | None = None
    """The agent whose output first went wrong."""
    manifested: str | None = None
    """The agent where the failure showed."""
    path: list[str] = []
    totals: dict[str, Any] = {}
    lineage: dict[str, Any] | None = None
    """For a failure over a field: the hops the field went through (``field``, ``traced``,
    ``origin``, ``reason``, ``hops``), as :mod:`playground.engine.lineage` traced them."""
    latency_ms: float | None = None
    """Wall-clock time of the run so far, less the time it was held at gates (the operator's
    ``held_ms``), in milliseconds (None in events written before it was recorded)."""


Event = Annotated[
    RunStarted
    | AgentStarted
    | ModelRequested
    | TokenDelta
    | ModelResponded
    | ModelFailed
    | RetryScheduled
    | FallbackUsed
    | ToolCalled
    | ApprovalRequested
    | ApprovalDecided
    | ToolReturned
    | PermissionDenied
    | HandoffDelivered
    | ValidationFailed
    | GuardAllowed
    | GuardRewrote
    | GuardDenied
    | CheckpointReviewed
    | LoopDetected
    | BudgetExceeded
    | Escalated
    | AgentFinished
    | OperatorActed
    | RunFinished
    | RunFailed,
    Field(discriminator="kind"),
]
"""Any event of a session."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
"""Reads and writes events as JSON."""

EVENT_TYPES: dict[str, type[_Event]] = {
    cls.model_fields["kind"].default: cls for cls in _Event.__subclasses__()
}
"""Event class by its ``kind``."""

for _cls in EVENT_TYPES.values():
    _trusted(_cls)

EventBase = _Event
