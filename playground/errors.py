"""The playground's own error tree.

Third-party errors (litellm, aiosqlite, YAML) are translated into these at the
module boundary, so callers (the CLI, the TUI, tests) catch only our types.
"""

from __future__ import annotations


class PlaygroundError(Exception):
    """Base class of every error the playground raises on purpose."""


class SpecError(PlaygroundError):
    """A system or scenario file is broken.

    Attributes:
        path: The file.
        line: 1-based line of the offending node, when known.
        field: Dotted path of the offending field, e.g. ``agents.billing.tools``.
        problem: What is wrong, in one sentence.
    """

    def __init__(self, path: str, line: int | None, field: str, problem: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


class StoreError(PlaygroundError):
    """The store cannot be opened or is from a newer version of the playground."""


class ConfigError(PlaygroundError):
    """Options or environment variables ask for what the playground cannot do (e.g.
    ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` without the gRPC exporter). The CLI exits 2."""


class ModelError(PlaygroundError):
    """A model call failed.

    Attributes:
        model: The model string that was called.
        retryable: Whether retrying the same call may succeed.
    """

    error_type = "model_error"
    retryable = False

    def __init__(self, message: str, *, model: str = "") -> None:
        super().__init__(message)
        self.model = model


class ProviderError(ModelError):
    """The provider answered with a server-side error (5xx, connection refused)."""

    error_type = "provider_error"
    retryable = True


class RateLimited(ProviderError):
    """The provider answered 429."""

    error_type = "rate_limited"


class ModelTimeout(ProviderError):
    """The provider did not answer within the call's timeout."""

    error_type = "timeout"


class ModelRequestError(ModelError):
    """The request itself was refused (bad model name, auth, bad request): retrying won't help."""

    error_type = "request_error"


class ScriptError(ModelError):
    """A scripted model's script could not answer (ran out of steps, bad template)."""

    error_type = "script_error"


class ReplayMismatch(ModelError):
    """The replay model has no recorded answer for this request."""

    error_type = "replay_mismatch"
