"""A small OpenAI-compatible server for tests, on loopback only.

It answers ``POST /v1/chat/completions`` plain or as SSE, from a queue of
scripted behaviours the test sets, and records every request it received::

    async with FakeOpenAI() as server:
        server.push(Reply("hello"), Status(429), Stall(5), Cut("half an ans"))
        ... call litellm with api_base=server.base_url ...
        assert server.count == 4

Each request takes the first queued behaviour meant for its model (a behaviour
with ``model=None`` serves any model). With nothing queued it answers
:attr:`FakeOpenAI.default`, or 500 saying the queue is empty.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeToolCall:
    """A tool call the fake model makes. ``arguments`` is JSON text (or a dict to dump)."""

    name: str
    arguments: str | dict[str, Any] = "{}"
    id: str | None = None

    def args_text(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class Reply:
    """Answer with text and/or tool calls.

    Streamed, the text goes out in ``pieces`` (default: one word per chunk) and each
    tool call's arguments in fragments of ``arg_chunk`` characters, interleaved
    across tool calls, so a client must assemble them by index.
    """

    text: str = ""
    tool_calls: Sequence[FakeToolCall] = ()
    usage: tuple[int, int] | None = None
    pieces: Sequence[str] | None = None
    arg_chunk: int = 5
    model: str | None = None


@dataclass
class Status:
    """Answer with an HTTP error status and an OpenAI-style error body."""

    status: int
    message: str = ""
    model: str | None = None


@dataclass
class Stall:
    """Wait ``seconds`` before answering (longer than the client's timeout), then reply."""

    seconds: float
    then: Reply = field(default_factory=lambda: Reply("too late"))
    model: str | None = None


@dataclass
class Cut:
    """Stream ``text`` (one word per chunk), then stop without a finish reason or ``[DONE]``.

    By default the connection is dropped mid-body; ``clean=True`` ends the HTTP
    response properly instead, as a proxy that gave up halfway might.
    """

    text: str = "partial answer"
    clean: bool = False
    model: str | None = None


@dataclass
class Raw:
    """Answer with exactly this body and status (JSON content type), whatever was asked:
    a body no OpenAI server would send (a huge error object, not JSON at all)."""

    body: str
    status: int = 200
    model: str | None = None


Behaviour = Reply | Status | Stall | Cut | Raw


@dataclass
class Received:
    """One request the server received."""

    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.body.get("tools") or [])

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))


class FakeOpenAI:
    """The fake server; an async context manager that binds 127.0.0.1 on a free port."""

    def __init__(self) -> None:
        self.queue: list[Behaviour] = []
        self.default: Behaviour | None = None
        self.received: list[Received] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._ids = itertools.count(1)

    # -- the test's side ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: what litellm takes as ``api_base``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        """How many chat completion requests arrived."""
        return len(self.received)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request body received, in order."""
        return [r.body for r in self.received]

    def push(self, *behaviours: Behaviour) -> FakeOpenAI:
        """Queue behaviours, answered in order."""
        self.queue.extend(behaviours)
        return self

    def count_for(self, model: str) -> int:
        """How many requests named ``model``."""
        return sum(1 for r in self.received if r.model == model)

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the server's side ----------------------------------------------------------------

    def _take(self, model: str) -> Behaviour | None:
        for index, behaviour in enumerate(self.queue):
            if behaviour.model is None or behaviour.model == model:
                return self.queue.pop(index)
        return self.default

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(Received(body, dict(request.headers)))
        model = str(body.get("model", ""))
        behaviour = self._take(model)
        if behaviour is None:
            return _error(500, f"fake_openai: nothing queued for model {model!r}")
        if isinstance(behaviour, Status):
            return _error(behaviour.status, behaviour.message or f"scripted HTTP {behaviour.status}")
        if isinstance(behaviour, Raw):
            return web.Response(text=behaviour.body, status=behaviour.status, content_type="application/json")
        if isinstance(behaviour, Stall):
            try:
                await asyncio.wait_for(self._closing.wait(), behaviour.seconds)
            except TimeoutError:
                pass
            if self._closing.is_set():
                return _error(503, "fake_openai is shutting down")
            behaviour = behaviour.then
        stream = bool(body.get("stream"))
        usage_wanted = bool((body.get("stream_options") or {}).get("include_usage"))
        completion_id = f"chatcmpl-{next(self._ids)}"
        if isinstance(behaviour, Cut):
            return await self._cut(request, behaviour, model, completion_id)
        usage = behaviour.usage or _usage(body, behaviour)
        if not stream:
            return web.json_response(_completion(behaviour, model, completion_id, usage))
        return await self._stream(request, behaviour, model, completion_id, usage if usage_wanted else None)

    async def _stream(
        self,
        request: web.Request,
        reply: Reply,
        model: str,
        completion_id: str,
        usage: tuple[int, int] | None,
    ) -> web.StreamResponse:
        response = await _sse(request)

        async def send(choices: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
            chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": choices,
                **(extra or {}),
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        def delta(d: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": d, "finish_reason": finish}]

        await send(delta({"role": "assistant", "content": ""}))
        for piece in _pieces(reply):
            await send(delta({"content": piece}))
        calls = [(i, c, c.id or f"call_{completion_id[9:]}_{i}") for i, c in enumerate(reply.tool_calls)]
        for index, call, call_id in calls:
            await send(
                delta(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call_id,
                                "type": "function",
                                "function": {"name": call.name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
        fragments = [
            [c.args_text()[i : i + reply.arg_chunk] for i in range(0, len(c.args_text()), reply.arg_chunk)]
            for _, c, _ in calls
        ]
        for round_ in range(max((len(f) for f in fragments), default=0)):
            for (index, _, _), pieces in zip(calls, fragments, strict=True):
                if round_ < len(pieces):
                    await send(
                        delta({"tool_calls": [{"index": index, "function": {"arguments": pieces[round_]}}]})
                    )
        await send(delta({}, "tool_calls" if calls else "stop"))
        if usage is not None:
            await send([], {"usage": _usage_json(usage)})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _cut(
        self, request: web.Request, cut: Cut, model: str, completion_id: str
    ) -> web.StreamResponse:
        response = await _sse(request)
        first = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        }
        await response.write(f"data: {json.dumps(first)}\n\n".encode())
        for piece in _words(cut.text):
            chunk = {
                **first,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if cut.clean:
            await response.write_eof()
            return response
        # Drop the connection mid-body: the chunked encoding is never terminated.
        assert request.transport is not None
        request.transport.abort()
        return response


async def _sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    return response


def _error(status: int, message: str) -> web.Response:
    kind = {429: "rate_limit_exceeded", 401: "invalid_api_key", 404: "not_found"}.get(status, "server_error")
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": kind}}, status=status
    )


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]] if text else []


def _pieces(reply: Reply) -> list[str]:
    return list(reply.pieces) if reply.pieces is not None else _words(reply.text)


def _usage(body: dict[str, Any], reply: Reply) -> tuple[int, int]:
    prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
    completion = len(reply.text) + sum(len(c.args_text()) for c in reply.tool_calls)
    return (prompt + 3) // 4 + 1, (completion + 3) // 4 + 1


def _usage_json(usage: tuple[int, int]) -> dict[str, int]:
    return {
        "prompt_tokens": usage[0],
        "completion_tokens": usage[1],
        "total_tokens": usage[0] + usage[1],
    }


def _completion(reply: Reply, model: str, completion_id: str, usage: tuple[int, int]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id or f"call_{completion_id[9:]}_{i}",
                "type": "function",
                "function": {"name": c.name, "arguments": c.args_text()},
            }
            for i, c in enumerate(reply.tool_calls)
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": _usage_json(usage),
    }
