"""The system file, as validated pydantic models.

Field names here are a contract (shared/DESIGN.md, "System file"): docs,
examples and outside tests use them. Add fields freely; never rename one.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)

from playground import redact
from playground.spec.schema import Schema, SchemaError


def _parse_schema(raw: Any) -> Schema | None:
    if raw is None or isinstance(raw, Schema):
        return raw
    try:
        return Schema.parse(raw)
    except SchemaError as exc:
        raise ValueError(str(exc)) from None


def _dump_schema(schema: Schema | None) -> Any:
    """A schema as written: the short map form, or JSON Schema when a field has a description
    (so descriptions, which the model sees, are part of the version)."""
    if schema is None:
        return None
    if schema.source is not None:
        return schema.source
    if any(f.description for f in schema.fields):
        return schema.json_schema
    return {f.name: f.type_name + ("?" if f.optional else "") for f in schema.fields}


SchemaField = Annotated[
    Schema | None,
    BeforeValidator(_parse_schema),
    PlainSerializer(_dump_schema, return_type=Any),
]


def _refuse_secrets(value: Any, where: str) -> None:
    """Refuse settings that would put a credential into the file, the store and exports
    (the rule is :func:`playground.redact.secret_setting`: a family of names, not a list),
    and declare every variable an ``*_env`` setting names as a secret to scrub."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if redact.is_env_setting(name):
                problem = redact.check_env_name(item)
                if problem is not None:
                    raise ValueError(f"{where}.{name} {problem}")
                redact.declare_env(item)
                continue
            if redact.secret_setting(name):
                raise ValueError(
                    f"{where}.{name} would store a secret in the system file and the session store;"
                    " set it in the environment and name the variable with 'api_key_env'"
                )
            _refuse_secrets(item, f"{where}.{name}")
    elif isinstance(value, list):
        for item in value:
            _refuse_secrets(item, where)
    elif isinstance(value, str):
        found = redact.secret_in_value(value)
        if found is not None:
            raise ValueError(
                f"{where} holds {found}, which would be stored with the system;"
                " set the key in the environment and name the variable with 'api_key_env'"
            )


_PROVIDER_KEYS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key_env",
        "api_version",
        "custom_llm_provider",
        "organization",
        "extra_headers",
    }
)
"""Settings that belong to one provider's endpoint and must not follow a fallback to another."""


def _provider(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else model


class _Spec(BaseModel):
    # ``from`` and ``validate`` are written as aliases (they clash with Python and pydantic
    # names); specs dump by alias, so a stored version reads back as it was written.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        arbitrary_types_allowed=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class Limits(_Spec):
    """Bounds on one run."""

    max_hops: int = Field(8, ge=1)
    """Most handoffs and delegations in one session before it counts as a loop."""
    max_turns: int = Field(6, ge=1)
    """Most model calls in one agent activation."""
    timeout_s: float = Field(120, gt=0)
    """Wall-clock limit of the whole run."""
    call_timeout_s: float = Field(60, gt=0)
    """Limit of one model call; a call past it is a timeout and is retried."""
    retries: int = Field(2, ge=0)
    """Retries of a failed model call (provider error, timeout) before falling back."""
    backoff_s: float = Field(0.5, ge=0)
    """First retry delay; doubles on each further retry."""
    max_validation_retries: int = Field(2, ge=0)
    """How often a malformed tool call or invalid payload is fed back before the run fails."""
    max_cost_usd: float | None = Field(None, gt=0)
    """Most a run may spend, in USD; checked before each model call (see ``on_budget``)."""
    max_tokens: int | None = Field(None, ge=1)
    """Most tokens (input and output) a run may use; checked before each model call."""
    max_tool_result_chars: int = Field(100_000, ge=1)
    """Longest tool result kept: a longer one is cut to this many characters (recorded on its
    ``tool_returned`` as ``truncated_from``), and the model is told it was cut."""
    tool_timeout_s: float = Field(60, gt=0)
    """Limit of one tool call (a tool's own ``timeout_s`` overrides it). A tool past it is
    reported to the model as an error; a synchronous tool's thread is abandoned, not waited for."""


class Loops(_Spec):
    """What counts as a loop, besides ``limits.max_hops`` (the last resort). A loop found
    is handled by ``on_loop``: escalate to that agent, or stop."""

    max_cycles: int = Field(2, ge=1)
    """Times a cycle in the handoff graph (``drafter → legal → compliance → drafter``) may
    close, whatever the contexts, before it counts as a loop."""
    max_repeats: int = Field(2, ge=1)
    """Times one agent may call one tool with the same arguments in a request."""
    no_progress: bool = True
    """An agent handed the same context again, with no tool result since, is a loop."""


class EscalateTo(_Spec):
    """``on_reject: {escalate: AGENT}``: hand the request to that agent instead."""

    escalate: str


OnReject = Literal["fail", "use_last"] | EscalateTo
"""What happens after a checkpoint's last allowed rejection: fail the run (the default),
use the last output as it is, or escalate to an agent."""


class Budget(_Spec):
    """What one agent may spend in a run; checked before each of its model calls."""

    max_cost_usd: float | None = Field(None, gt=0)
    max_tokens: int | None = Field(None, ge=1)
    max_calls: int | None = Field(None, ge=1)


OnBudget = Literal["stop", "pause"] | EscalateTo
"""When a budget would be exceeded: ``stop`` the run, ``pause`` it for the operator (a
headless run stops), or ``{escalate: AGENT}``."""


class Price(_Spec):
    """Price override in USD per million tokens (used for local and scripted models)."""

    input: float = Field(0, ge=0)
    output: float = Field(0, ge=0)


_ACTIONS = ("reply", "tool", "calls", "handoff", "fail", "review")


class ScriptCall(_Spec):
    """One call of a script step that makes several calls in one response."""

    tool: str
    """The tool or delegate called."""
    args: dict[str, Any] = {}
    """Its arguments; string values are templates."""


class ScriptStep(_Spec):
    """One step of a scripted model's script.

    Exactly one of ``reply``, ``tool``, ``calls``, ``handoff``, ``fail`` or ``review`` is set.
    """

    match: str | None = None
    """Regex searched in the agent's incoming message; absent matches anything."""
    reply: str | dict[str, Any] | None = None
    """A final answer (a template). A map is sent as JSON, each string value a template."""
    tool: str | None = None
    """Call this tool (or delegate) with ``args``."""
    args: dict[str, Any] | None = None
    """Tool arguments; string values are templates."""
    raw_args: str | None = None
    """Send these literal argument bytes instead of ``args`` (to inject a malformed tool call)."""
    calls: list[ScriptCall] | None = Field(None, min_length=1)
    """Several tool or delegate calls in one response; the engine runs them concurrently."""
    handoff: str | None = None
    """Hand off to this agent with ``context``."""
    context: dict[str, Any] | None = None
    """The handoff context; string values are templates."""
    fail: Literal["provider_error", "rate_limited", "timeout", "request_error"] | None = None
    """Inject a provider error of this kind instead of answering."""
    times: int | None = Field(None, ge=1)
    """With ``fail``: fail only this many times, then move on (absent: always)."""
    model: str | None = None
    """With ``fail``: fail only when called as this model string (so a fallback can succeed)."""
    review: Literal["accept", "reject"] | None = None
    """As a supervisor reviewing a worker's output: the verdict."""
    feedback: str | None = None
    """With ``review: reject``: what the worker should fix (a template)."""

    @field_validator("match")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_action(self) -> ScriptStep:
        actions = [k for k in _ACTIONS if getattr(self, k)]
        if len(actions) != 1:
            found = ", ".join(actions) if actions else "none"
            raise ValueError(
                "a script step needs exactly one of reply, tool, calls, handoff, fail, review"
                f" (found {found})"
            )
        if self.args is not None and self.tool is None:
            raise ValueError("'args' goes with 'tool'")
        if self.context is not None and self.handoff is None:
            raise ValueError("'context' goes with 'handoff'")
        if (self.times is not None or self.model is not None) and self.fail is None:
            raise ValueError("'times' and 'model' go with 'fail'")
        return self

    @property
    def action(self) -> str:
        for key in _ACTIONS:
            if getattr(self, key):
                return key
        raise AssertionError("unreachable: validated to have one action")


class CheckpointSpec(_Spec):
    """A deterministic check at a boundary: ``check`` is ``file.py:function`` (sync or async),
    called with the value crossing the boundary (a worker's output, a stage's output, a
    handoff's payload). It returns None or True to accept, or False or a reason (a string)
    to reject; raising rejects with the error. A rejection is fed back to the agent that
    produced the value, up to ``max_rejections`` times; then ``on_reject`` decides."""

    check: str
    max_rejections: int = Field(2, ge=0)
    on_reject: OnReject = "fail"


class HandoffSpec(_Spec):
    """A handoff an agent may make: a tool call whose arguments are the declared context."""

    to: str
    """The target agent."""
    description: str = ""
    """When to choose this target (shown to the model)."""
    context: SchemaField = None
    """The fields the target receives; absent means ``{question: str}``."""
    history: str = "none"
    """What of the source's conversation the target also sees: ``none``, ``last:N`` or ``full``."""
    checkpoint: CheckpointSpec | None = None
    """A check of the payload before it is delivered."""
    guard: str | None = None
    """``file.py:function`` run on the payload (and the history the policy would pass) before
    delivery: it allows (returns None), rewrites (returns the new payload, or a
    ``(payload, history)`` pair: e.g. to redact), or denies (returns a reason, or raises)."""
    from_: dict[str, Literal["request", "context"]] = Field({}, alias="from")
    """Fields taken from the run's request (a JSON object) or from the source agent's own
    incoming context, instead of from what the model wrote: an id cannot be invented."""

    @field_validator("history")
    @classmethod
    def _history_policy(cls, value: str) -> str:
        if value in ("none", "full") or re.fullmatch(r"last:[1-9]\d*", value):
            return value
        raise ValueError(f"history must be 'none', 'full' or 'last:N', not {value!r}")

    @property
    def schema_(self) -> Schema:
        return self.context or _DEFAULT_CONTEXT


_DEFAULT_CONTEXT = Schema.parse({"question": "str"})


class ValidatorsSpec(_Spec):
    """Python validators of what an agent receives and returns (``file.py:function`` each,
    sync or async). One returns None to accept, or a message (or raises) to refuse: a refused
    output goes back to the agent's model, a refused input to the agent that sent it."""

    input: str | None = None
    output: str | None = None


class AgentSpec(_Spec):
    """One agent of a system."""

    name: str = ""
    """Filled from the key under ``agents:``."""
    model: str = "scripted"
    """``scripted`` (offline) or any litellm model string."""
    fallbacks: list[str] = []
    """Models tried in order when the model keeps failing."""
    instructions: str = ""
    """The system prompt."""
    description: str = ""
    """What the agent does (shown to supervisors and in the TUI)."""
    tools: list[str] = []
    """Names of system tools this agent may call: its permission boundary."""
    handoffs: list[HandoffSpec] = []
    """Agents this one may hand the request to."""
    delegates: list[str] = []
    """Workers a supervisor may call as tools."""
    review: bool = False
    """Supervisor: check each worker's output at a checkpoint before using it."""
    max_reviews: int = Field(2, ge=0)
    """Supervisor: rejections of one delegation before ``on_reject`` decides."""
    on_reject: OnReject = "fail"
    """Supervisor: after a worker's output was rejected ``max_reviews`` times: ``fail`` the run,
    ``use_last`` output as it is, or ``{escalate: AGENT}``."""
    validators: ValidatorsSpec | None = Field(None, alias="validate")
    """Python validators of this agent's input and output (``validate: {input, output}``)."""
    budget: Budget | None = None
    """What this agent may spend in a run (``on_budget`` decides what happens past it)."""
    checkpoint: CheckpointSpec | None = None
    """A Python check of this agent's output (a pipeline stage: before it is passed on) or, for
    a supervisor, of each worker's output (before the model review, if ``review`` is on)."""
    input: SchemaField = None
    """What this agent accepts (a handoff context or a previous stage's output)."""
    output: SchemaField = None
    """What this agent must return: its final reply is JSON of this shape."""
    model_settings: dict[str, Any] = {}
    """Passed to the model call (temperature, max_tokens, api_base, ...)."""
    fallback_settings: dict[str, dict[str, Any]] = {}
    """Settings for a fallback model, by its model string. Without an entry, a fallback on
    another provider gets ``model_settings`` minus the provider-specific keys (``api_base``,
    ``api_key_env``, ...), so it is not sent to the primary's server."""
    price: Price | None = None
    """Price override per million tokens."""
    script: list[ScriptStep] = []
    """The scripted model's rules."""
    latency_ms: float | None = Field(None, ge=0)
    """Scripted model: delay before the first token."""
    tokens_per_s: float | None = Field(None, ge=0)
    """Scripted model: streaming rate (0 is instant)."""
    code: dict[str, str] = {}
    """An agent defined in Python: a fingerprint of each piece of code it runs, by what it is
    (``tool lookup_invoice``, ``instructions``): the signature and a hash of the source
    (``lookup_invoice(customer_id: str) -> str #3fa2b1c9d0e1``). Part of the version, so a
    changed function body is a new version; the source itself stays in the user's
    repository. Filled by the Python API, never written in a system file."""

    @field_validator("model_settings", "fallback_settings")
    @classmethod
    def _no_keys(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        _refuse_secrets(value, str(info.field_name))
        return value

    @model_validator(mode="after")
    def _fallback_settings_name_fallbacks(self) -> AgentSpec:
        for model in self.fallback_settings:
            if model not in self.fallbacks:
                raise ValueError(f"fallback_settings names {model!r}, which is not one of the fallbacks")
        return self

    def settings_for(self, model: str) -> dict[str, Any]:
        """The model settings a call to ``model`` (the agent's model or a fallback) is made with."""
        if model == self.model:
            return self.model_settings
        if model in self.fallback_settings:
            return self.fallback_settings[model]
        if _provider(model) == _provider(self.model):
            return self.model_settings
        return {k: v for k, v in self.model_settings.items() if k not in _PROVIDER_KEYS}


class ToolDecl(_Spec):
    """A tool declared as a mapping: where its function is, and how it may run."""

    function: str
    """``file.py:function``, the path relative to the system file."""
    timeout_s: float | None = Field(None, gt=0)
    """Limit of one call of this tool (default: ``limits.tool_timeout_s``)."""
    approval: Literal["required"] | None = None
    """``required``: a person approves each call before it runs. In the TUI the run holds
    and the operator approves, edits the arguments or denies with a reason (the model gets
    it); a headless run stops with the session ``waiting_approval`` (exit 4), and
    ``playground approve SESSION`` resumes it."""
    side_effects: bool = False
    """The tool changes the world (sends a mail, moves money): it never runs twice for the
    same arguments in a run (a retried step gets its first result), and a fork or replay
    serves its recorded result whatever the step it forks from; events say so."""

    @property
    def ref(self) -> str:
        return self.function


class ScriptedDefaults(_Spec):
    """Defaults of the scripted model for every agent of the system."""

    latency_ms: float = Field(0, ge=0)
    tokens_per_s: float = Field(0, ge=0)


class SystemSpec(_Spec):
    """A multi-agent system, loaded from a YAML file."""

    name: str
    """The system's name; versions and sessions are filed under it."""
    description: str = ""
    pattern: Literal["router", "supervisor", "pipeline"]
    """The shape, checked against the agents: a router hands off, a supervisor
    delegates, a pipeline lists stages."""
    entry: str | None = None
    """The agent that receives the request (a pipeline's first stage by default)."""
    limits: Limits = Limits()
    on_loop: str = "stop"
    loops: Loops = Loops()
    """What counts as a loop (cycles, repeated tool calls, no progress)."""
    on_budget: OnBudget = "stop"
    """What happens when a run's or an agent's budget would be exceeded."""
    """An agent to escalate a detected loop to, or ``stop``."""
    tools: dict[str, str | ToolDecl] = {}
    """Tool name to ``file.py:function`` (the path relative to the system file), or to a
    mapping with ``function`` and the tool's settings."""
    agents: dict[str, AgentSpec]
    pipeline: list[str | list[str]] | None = None
    """Stages in order (pipeline pattern). A stage that is a list is a parallel group: its
    agents all receive the previous stage's output, and the next stage receives one object
    with a field per agent of the group."""
    scripted: ScriptedDefaults = ScriptedDefaults()
    path: str = ""
    """Where the file was loaded from (set by the loader)."""

    @model_validator(mode="before")
    @classmethod
    def _name_agents(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("agents"), dict):
            raw_scripted = data.get("scripted")
            scripted: dict[str, Any] = raw_scripted if isinstance(raw_scripted, dict) else {}
            agents = {}
            for key, value in data["agents"].items():
                if isinstance(value, dict):
                    # The system's scripted defaults become each agent's own, so an agent
                    # version records the timing it really ran with.
                    value = {
                        "name": key,
                        **{k: v for k, v in scripted.items() if k in ("latency_ms", "tokens_per_s")},
                        **value,
                    }
                agents[key] = value
            data = {**data, "agents": agents}
        return data

    @property
    def entry_agent(self) -> str:
        if self.entry:
            return self.entry
        if self.pipeline:
            first = self.pipeline[0]
            return first if isinstance(first, str) else first[0]
        raise AssertionError("unreachable: the loader checks entry")

    @property
    def stages(self) -> list[list[str]]:
        """The pipeline's stages, each as the list of its agents (one, or a parallel group)."""
        return [[stage] if isinstance(stage, str) else list(stage) for stage in self.pipeline or []]
