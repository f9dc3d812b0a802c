"""Every real provider, through litellm: the only module that imports litellm.

litellm is imported lazily, on the first real model call (or by :func:`preload`),
in a worker thread so an event loop driving a UI keeps running: the import
takes about 3 s. Before the import the environment is made offline and quiet:

* ``LITELLM_LOCAL_MODEL_COST_MAP=True``: use the bundled price map instead of
  fetching one (and the other ``LITELLM_LOCAL_*`` switches for its other
  remote files);
* ``HF_HUB_OFFLINE=1``: token counting never reaches for a tokenizer hub;
* ``LITELLM_MODE=PRODUCTION``: litellm does not load a ``.env`` file into
  the process environment behind our back;
* its loggers write to ``litellm.log`` under ``PLAYGROUND_LOG_DIR`` (default
  ``sessions/``), never to stderr, which a running Textual app swallows.

Each of these is a default: a variable already set in the environment wins.

Calls always stream (``stream_options.include_usage`` so usage and cost are
real), with litellm's and the openai SDK's own retries off: the engine retries
and falls back. litellm's exceptions become :mod:`playground.errors` here.
Each call runs litellm's synchronous API in a thread of its own, so the library's
CPU work never runs on the caller's event loop and ``timeout_s`` always fires.

Model settings (an agent's ``model_settings``) are passed to
``litellm.acompletion`` as they are, except:

* ``api_key_env: NAME``: the API key is read from ``os.environ[NAME]`` at call
  time and passed on; it is never stored, logged or returned.
* ``stream: false``: ask for one plain response instead of a stream (for
  servers that cannot stream); its text is still given to ``on_delta``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.errors import (
    ModelError,
    ModelRequestError,
    ModelTimeout,
    ProviderError,
    RateLimited,
)
from playground.llm.base import ModelRequest, ModelResponse, OnDelta, ToolCall, approx_tokens

OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "HF_HUB_OFFLINE": "1",
    "LITELLM_MODE": "PRODUCTION",
}
"""Environment defaults set before litellm is imported (shared/FACTS.md)."""

LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
"""litellm's loggers, routed to ``litellm.log``."""

RESERVED_SETTINGS = {
    "model": "the agent's 'model'",
    "messages": "the engine",
    "tools": "the agent's 'tools', 'handoffs' and 'delegates'",
    "stream_options": "the playground (usage is always requested)",
    "timeout": "limits.call_timeout_s",
    "request_timeout": "limits.call_timeout_s",
    "max_retries": "limits.retries",
    "num_retries": "limits.retries",
    "fallbacks": "the agent's 'fallbacks'",
}
"""Model settings the playground owns, and where to set them instead."""

_MAX_DETAIL = 240
_PREFIX = re.compile(r"^(?:litellm\.)?[A-Za-z_]*(?:Error|Exception|Timeout)\s*[:\-]\s*")

_module: Any = None
_lock = threading.Lock()
log = logging.getLogger("playground.llm.litellm")


def log_path() -> Path:
    """Where litellm's log lines go: ``$PLAYGROUND_LOG_DIR/litellm.log``, else ``sessions/``."""
    return Path(os.environ.get("PLAYGROUND_LOG_DIR") or "sessions") / "litellm.log"


class _LogFile(logging.FileHandler):
    """A file handler that creates its folder on the first record and never complains."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8", delay=True)

    def _open(self) -> Any:
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:
        # A log file we cannot write must not print tracebacks over the TUI.
        pass


def _log_handler() -> logging.Handler:
    handler = _LogFile(log_path())
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    return handler


def _route_logs(handler: logging.Handler) -> None:
    for name in LITELLM_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            if old is not handler:
                logger.removeHandler(old)
        if handler not in logger.handlers:
            logger.addHandler(handler)
        logger.propagate = False


def load_litellm() -> Any:
    """Import litellm once, offline and quiet, and return the module.

    Blocks for about 3 s the first time: call it from a worker thread (see
    :func:`preload`), never from an event loop that draws a UI.
    """
    global _module
    if _module is not None:
        return _module
    with _lock:
        if _module is None:
            for key, value in OFFLINE_ENV.items():
                os.environ.setdefault(key, value)
            handler = _log_handler()
            _route_logs(handler)  # before the import, so its import-time records go to the file
            module: Any = importlib.import_module("litellm")
            _route_logs(handler)  # the import adds its own stderr handler: drop it
            module.telemetry = False  # gone from recent litellm; harmless, and off if it returns
            module.suppress_debug_info = True  # else it prints "Give Feedback / Get Help" on errors
            module.success_callback = []
            module.failure_callback = []
            module.callbacks = []
            _warm_up()
            _module = module
            from playground.heap import settle

            settle()  # litellm's tables live as long as the process
    return _module


def _warm_up() -> None:
    # The first call imports a few hundred openai SDK modules lazily (~0.4 s on the
    # event loop); building a client, which opens no socket, imports most of them now.
    try:
        openai: Any = importlib.import_module("openai")
        client = openai.AsyncOpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
        _ = client.chat.completions.with_raw_response
        importlib.import_module("litellm.llms.openai.openai")
    except Exception:  # only an optimisation
        log.debug("litellm warm-up failed", exc_info=True)


async def preload() -> None:
    """Import litellm in a worker thread; the event loop keeps running meanwhile.

    The CLI and the TUI may call this when a system with a real model is loaded,
    so the first model call does not spend its timeout on the import.
    """
    if _module is None:
        await asyncio.to_thread(load_litellm)


def resolve_model(model: str) -> str:
    """``model`` as an agent should record it: with its provider in front.

    ``ollama/llama3.1`` stays as written; a bare name litellm knows gets the provider litellm
    infers (``gpt-4o`` -> ``openai/gpt-4o``), so the version says which provider it calls.
    Asks ``litellm.get_llm_provider``, so it blocks for litellm's import the first time:
    call it from a thread.

    Raises:
        ModelRequestError: litellm cannot tell which provider serves ``model``.
    """
    litellm = load_litellm()
    try:
        name, provider, _, _ = litellm.get_llm_provider(model=model)
    except Exception:  # litellm raises its BadRequestError, or others on odd input
        prefix = model.split("/", 1)[0] if "/" in model else ""
        what = f"{prefix!r} is not a provider litellm knows" if prefix else f"litellm does not know {model!r}"
        raise ModelRequestError(
            f"{what}: write provider/model, e.g. openai/gpt-4o-mini or ollama/llama3.1", model=model
        ) from None
    return model if model.startswith(f"{provider}/") else f"{provider}/{name}"


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


class _ToolCallAssembler:
    """Joins streamed tool-call fragments (id and name first, arguments in pieces) by index."""

    def __init__(self) -> None:
        self.calls: list[_PartialCall] = []
        self._by_index: dict[int, _PartialCall] = {}

    def add(self, fragment: Any) -> None:
        index = _get(fragment, "index")
        call_id = _get(fragment, "id") or ""
        function = _get(fragment, "function")
        name = (_get(function, "name") or "") if function is not None else ""
        arguments = (_get(function, "arguments") or "") if function is not None else ""
        key = index if isinstance(index, int) else len(self.calls)
        current = self._by_index.get(key)
        # Some servers number every call 0; a new id under a used index is a new call.
        if current is None or (call_id and current.id and call_id != current.id):
            current = _PartialCall()
            self.calls.append(current)
            self._by_index[key] = current
        if call_id and not current.id:
            current.id = call_id
        if name and not current.name:
            current.name = name
        if isinstance(arguments, str):
            current.arguments += arguments
        elif arguments:  # a provider that sends parsed arguments
            current.arguments += json.dumps(arguments)

    def result(self, model: str) -> list[ToolCall]:
        calls: list[ToolCall] = []
        for number, call in enumerate(self.calls, 1):
            if not call.name:
                raise ProviderError(f"{model!r} sent a tool call without a name", model=model)
            calls.append(ToolCall(call.id or f"call_{number}", call.name, call.arguments or "{}"))
        return calls


class _Abandoned(Exception):
    """The caller stopped waiting (a timeout, a cancellation, its ``on_delta`` failed)."""


class LiteLLM:
    """A model called through litellm: OpenAI, Anthropic, Ollama, any OpenAI-compatible server.

    The model string is the request's (``openai/gpt-4o-mini``, ``ollama/llama3``, ...);
    settings come from the agent's ``model_settings``. Stateless: one instance may
    serve any number of agents and models.

    Each call runs litellm's synchronous API in a daemon thread of its own: litellm does
    CPU work per response on the caller's thread (2.2 s for a 256 KB error body, 14 s for
    2 MB, measured), and an event loop that runs it cannot keep a UI drawing or a
    timeout firing. Text deltas come back to the caller's loop in order, before the
    result. ``timeout_s`` is enforced on the caller's side whatever the provider or the
    library does; a call past it is abandoned (its thread ends with the HTTP timeout).
    """

    async def complete(self, request: ModelRequest, on_delta: OnDelta | None = None) -> ModelResponse:
        litellm = _module if _module is not None else await asyncio.to_thread(load_litellm)
        kwargs, api_key = _call_kwargs(request)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ModelResponse] = loop.create_future()
        stop = threading.Event()
        """Set when the caller stops waiting: the thread stops at its next chunk."""
        failed: list[BaseException] = []
        """An exception raised by the caller's ``on_delta``: theirs, not the provider's."""

        def deliver(text: str) -> None:  # on the caller's loop
            if on_delta is None or failed or future.done():
                return
            try:
                on_delta(text)
            except Exception as exc:
                failed.append(exc)
                stop.set()  # the thread stops at its next chunk and settles nothing
                future.set_exception(exc)

        def forward(text: str) -> None:  # in the call's thread
            if stop.is_set():
                raise _Abandoned
            if on_delta is not None:
                loop.call_soon_threadsafe(deliver, text)

        def settle(response: ModelResponse | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                assert response is not None
                future.set_result(response)

        def work() -> None:
            response: ModelResponse | None = None
            error: BaseException | None = None
            try:
                response = _call(litellm, request, kwargs, forward)
            except _Abandoned:
                return
            except ModelError as exc:
                error = exc
            except Exception as exc:
                api_base = kwargs.get("api_base") or kwargs.get("base_url")
                error = translate_error(
                    exc, request.model, secret=api_key, api_base=str(api_base) if api_base else None
                )
            try:
                loop.call_soon_threadsafe(settle, response, error)
            except RuntimeError:  # the caller's loop is closed: nobody waits any more
                pass

        threading.Thread(target=work, name=f"playground-llm-{request.model}", daemon=True).start()
        try:
            async with asyncio.timeout(request.timeout_s):
                response = await future
        except TimeoutError as exc:
            stop.set()
            raise ModelTimeout(
                f"{request.model!r} did not answer within {request.timeout_s:g} s",
                model=request.model,
            ) from exc
        except BaseException:  # cancelled: let the thread stop at its next chunk
            stop.set()
            raise
        if failed:
            raise failed[0]
        return response


def _call(litellm: Any, request: ModelRequest, kwargs: dict[str, Any], forward: OnDelta) -> ModelResponse:
    """One call through litellm's synchronous API (in the call's own thread)."""
    started = time.perf_counter()
    if kwargs["stream"]:
        return _stream(litellm, request, kwargs, forward, started)
    return _plain(litellm, request, kwargs, forward, started)


def _stream(
    litellm: Any, request: ModelRequest, kwargs: dict[str, Any], forward: OnDelta, started: float
) -> ModelResponse:
    stream = litellm.completion(**kwargs)
    text: list[str] = []
    calls = _ToolCallAssembler()
    usage: Any = None
    first_token_ms: float | None = None
    try:
        for chunk in stream:
            chunk_usage = _get(chunk, "usage")
            if chunk_usage:
                usage = chunk_usage
            for choice in _get(chunk, "choices") or ():
                if (_get(choice, "index") or 0) != 0:
                    continue
                delta = _get(choice, "delta")
                if delta is None:
                    continue
                content = _get(delta, "content")
                fragments = _get(delta, "tool_calls") or ()
                if (content or fragments) and first_token_ms is None:
                    first_token_ms = (time.perf_counter() - started) * 1000
                if content:
                    text.append(content)
                    forward(content)
                for fragment in fragments:
                    calls.add(fragment)
    finally:
        _close(stream)
    # litellm ends every stream with a finish chunk of its own, even when the
    # connection closed cleanly halfway; only its record of the provider's
    # finish reason tells a finished answer from a cut one.
    sentinel = object()
    received = getattr(stream, "received_finish_reason", sentinel)
    intermittent = getattr(stream, "intermittent_finish_reason", sentinel)
    if received is None and intermittent is None:
        raise ProviderError(
            f"the stream from {request.model!r} ended before the model finished"
            f" ({len(''.join(text))} characters received)",
            model=request.model,
        )
    return _response(litellm, request, "".join(text), calls.result(request.model), usage, first_token_ms)


def _close(stream: Any) -> None:
    """Release a stream's connection (best effort: a stream may have no ``close``)."""
    for holder in (stream, getattr(stream, "completion_stream", None)):
        close = getattr(holder, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.debug("closing a stream failed", exc_info=True)
            return


def _plain(
    litellm: Any, request: ModelRequest, kwargs: dict[str, Any], forward: OnDelta, started: float
) -> ModelResponse:
    kwargs = {k: v for k, v in kwargs.items() if k != "stream_options"}
    response = litellm.completion(**kwargs)
    first_token_ms = (time.perf_counter() - started) * 1000
    choices = _get(response, "choices") or []
    if not choices:
        raise ProviderError(f"{request.model!r} answered without a choice", model=request.model)
    message = _get(choices[0], "message")
    text = (_get(message, "content") or "") if message is not None else ""
    calls = _ToolCallAssembler()
    for index, call in enumerate((_get(message, "tool_calls") or []) if message is not None else []):
        calls.add({"index": index, "id": _get(call, "id"), "function": _get(call, "function")})
    if text:
        forward(text)
    return _response(
        litellm,
        request,
        text,
        calls.result(request.model),
        _get(response, "usage"),
        first_token_ms,
    )


def _call_kwargs(request: ModelRequest) -> tuple[dict[str, Any], str | None]:
    """The arguments of ``litellm.acompletion`` for a request, and the API key used (if any)."""
    settings = dict(request.settings)
    for key, owner in RESERVED_SETTINGS.items():
        if key in settings:
            raise ModelRequestError(
                f"model_settings of {request.agent!r} sets {key!r}, which is set by {owner}",
                model=request.model,
            )
    api_key: str | None = None
    env_name = settings.pop("api_key_env", None)
    if env_name is not None:
        api_key = os.environ.get(str(env_name))
        if not api_key:
            raise ModelRequestError(
                f"{request.model!r} needs an API key in the environment variable {env_name!r}"
                f" (model_settings.api_key_env of {request.agent!r}), and it is not set",
                model=request.model,
            )
        settings["api_key"] = api_key
    stream = settings.pop("stream", True)
    kwargs: dict[str, Any] = {
        **settings,
        "model": request.model,
        # litellm rewrites messages in place; the engine keeps appending to its list.
        "messages": [dict(m) for m in request.messages],
        "tools": [t.as_openai() for t in request.tools] or None,
        "stream": bool(stream),
        "stream_options": {"include_usage": True},
        "timeout": request.timeout_s,
        "max_retries": 0,  # the openai SDK's retries: the engine retries
        "num_retries": 0,  # litellm's retries: likewise
        "_skip_mcp_handler": True,  # else tools= needs the optional 'mcp' package (FACTS.md)
    }
    return kwargs, api_key


def _response(
    litellm: Any,
    request: ModelRequest,
    text: str,
    calls: list[ToolCall],
    usage: Any,
    first_token_ms: float | None,
) -> ModelResponse:
    input_tokens = _int(_get(usage, "prompt_tokens")) if usage is not None else None
    output_tokens = _int(_get(usage, "completion_tokens")) if usage is not None else None
    if input_tokens is None:  # a server that reports no usage: estimate, as the scripted model does
        input_tokens = sum(approx_tokens(str(m.get("content") or "")) for m in request.messages)
    if output_tokens is None:
        output_tokens = approx_tokens(text + "".join(c.arguments for c in calls))
    return ModelResponse(
        text=text,
        tool_calls=calls,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd(litellm, request.model, input_tokens, output_tokens),
        model=request.model,
        first_token_ms=first_token_ms,
    )


def cost_usd(litellm: Any, model: str, input_tokens: int, output_tokens: int) -> float | None:
    """The price of a call from litellm's cost map, or None when the map does not know the model."""
    try:
        prompt, completion = litellm.cost_per_token(
            model=model, prompt_tokens=input_tokens, completion_tokens=output_tokens
        )
    except Exception:  # ModelNotMappedError, and whatever else an odd model string provokes
        return None
    return float(prompt) + float(completion)


def translate_error(
    exc: BaseException, model: str, *, secret: str | None = None, api_base: str | None = None
) -> ModelError:
    """Turn a litellm (or openai SDK) exception into one of ours, with a one-line message.

    Args:
        exc: What litellm raised.
        model: The model string called, named in the message.
        secret: The API key used, blanked out of the message should the provider echo it.
        api_base: The server called, named when it could not be reached.
    """
    litellm: Any = _module if _module is not None else load_litellm()
    exceptions: Any = getattr(litellm, "exceptions", litellm)
    detail = _detail(exc, secret)
    status = getattr(exc, "status_code", None)
    http = f" (HTTP {status})" if isinstance(status, int) else ""

    def isa(*names: str) -> bool:
        found = (getattr(exceptions, n, None) or getattr(litellm, n, None) for n in names)
        classes = tuple(c for c in found if isinstance(c, type))
        return bool(classes) and isinstance(exc, classes)

    if isa("Timeout"):
        return ModelTimeout(f"{model!r} timed out: {detail}", model=model)
    if isa("RateLimitError"):
        return RateLimited(f"{model!r} is rate limited{http}: {detail}", model=model)
    if isa("MidStreamFallbackError"):
        return ProviderError(f"the stream from {model!r} was cut mid-way: {detail}", model=model)
    # litellm reports these two as HTTP 500 although no server said so.
    if "Missing credentials" in detail or (isa("AuthenticationError") and "Missing" in detail):
        return ModelRequestError(
            f"{model!r} has no API key: name the environment variable that holds it with"
            f" model_settings.api_key_env ({detail})",
            model=model,
        )
    if isa("APIConnectionError") or detail.startswith("Connection error"):
        where = f" at {api_base}" if api_base else ""
        return ProviderError(f"{model!r} could not be reached{where}: {detail}", model=model)
    if isa("AuthenticationError", "PermissionDeniedError"):
        return ModelRequestError(f"{model!r} refused the credentials{http}: {detail}", model=model)
    if isa("NotFoundError"):
        return ModelRequestError(f"{model!r} was not found{http}: {detail}", model=model)
    if isa("ContextWindowExceededError"):
        return ModelRequestError(f"the conversation is too long for {model!r}{http}: {detail}", model=model)
    if "LLM Provider NOT provided" in detail:
        return ModelRequestError(
            f"{model!r} names no provider litellm knows: write it as provider/model,"
            " e.g. 'openai/gpt-4o-mini' or 'ollama/llama3'",
            model=model,
        )
    if isa("BadRequestError", "UnprocessableEntityError", "UnsupportedParamsError"):
        return ModelRequestError(f"{model!r} rejected the request{http}: {detail}", model=model)
    if isa("InternalServerError", "ServiceUnavailableError", "BadGatewayError"):
        return ProviderError(f"{model!r} failed{http}: {detail}", model=model)
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 409, 425):
        return ModelRequestError(f"{model!r} rejected the request{http}: {detail}", model=model)
    return ProviderError(f"{model!r} failed{http}: {type(exc).__name__}: {detail}", model=model)


def _detail(exc: BaseException, secret: str | None) -> str:
    """litellm's message without its class-name prefixes and appended dumps, on one line."""
    text = str(getattr(exc, "message", None) or exc or type(exc).__name__)
    text = text.split(" Original exception:", 1)[0]
    text = text.split("Received Model Group", 1)[0]
    text = " ".join(text.split())
    previous = None
    while previous != text:
        previous, text = text, _PREFIX.sub("", text, count=1)
    if secret:
        text = text.replace(secret, "***")
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 1].rstrip() + "…"
    return text or type(exc).__name__


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None
