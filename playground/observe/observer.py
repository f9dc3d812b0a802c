"""The observer: received spans -> sessions, rebuilt as their traces grow, into the store.

:meth:`Observer.ingest` takes the spans of one request (on the event loop; it only files
them by trace) and wakes one publishing task, which rebuilds each trace that changed
(:func:`~playground.observe.mapping.build_session`, in a worker thread), writes the
sessions to the store and tells the subscribers (the TUI's live view, the CLI's printer).
While it works, more spans may arrive; the next turn takes every trace that changed
meanwhile at once, so a burst costs one rebuild per trace per turn, not one per request.

Bounds (shared/STYLE.md, 18): a trace holds at most :data:`TRACE_SPANS` spans (more are
refused and reported to the sender as rejected), and at most :data:`OPEN_TRACES` traces
are kept in memory (finished ones are let go first; they are in the store).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from playground.bounds import Limit
from playground.errors import PlaygroundError
from playground.observe.mapping import ObservedSession, Price, build_session, session_id_of
from playground.observe.otlp import Span
from playground.observe.record import put_sessions
from playground.store.store import Store

log = logging.getLogger("playground.observe")

TRACE_SPANS = Limit("PLAYGROUND_OBSERVE_MAX_TRACE_SPANS", 100_000, "spans")
"""Spans kept for one trace (one session)."""
OPEN_TRACES = Limit("PLAYGROUND_OBSERVE_MAX_TRACES", 10_000, "traces")
"""Traces kept in memory at once; the oldest finished ones go first."""

Subscriber = Callable[[ObservedSession], None]


def litellm_price(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Price a model call from litellm's cost map (imports litellm the first time: ~3 s;
    the observer calls it from a worker thread)."""
    from playground.llm.litellm_model import cost_usd, load_litellm

    return cost_usd(load_litellm(), model, input_tokens, output_tokens)


@dataclass
class IngestResult:
    """What :meth:`Observer.ingest` did with a request's spans."""

    accepted: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass
class _Trace:
    spans: dict[str, Span] = field(default_factory=dict)
    finished: bool = False


class Observer:
    """Files received spans by trace and publishes each trace as a session.

    Use as ``async with Observer(store) as observer:``; call :meth:`ingest` with spans
    and :meth:`settle` to wait until everything received so far is published.

    Args:
        store: Where sessions are written (open); None keeps them in memory only.
        price: Prices model calls whose spans carry no cost (default: litellm's cost map).
    """

    def __init__(self, store: Store | None, *, price: Price | None = litellm_price) -> None:
        self.store = store
        self.price = price
        self.sessions: OrderedDict[str, ObservedSession] = OrderedDict()
        """The latest version of each session, oldest first."""
        self.spans_received = 0
        self.store_errors = 0
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        self._dirty: set[str] = set()
        self._subscribers: list[Subscriber] = []
        self._finished: list[Subscriber] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Observer:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._publish_loop(), name="observe-publisher")

    async def close(self) -> None:
        """Publish what was received, then stop."""
        if self._task is None:
            return
        await self.settle()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    def subscribe(
        self, on_update: Subscriber | None = None, *, on_finished: Subscriber | None = None
    ) -> None:
        """Call ``on_update`` with every new version of a session, ``on_finished`` once a
        session's root span has arrived (each time it is rebuilt after that, too)."""
        if on_update is not None:
            self._subscribers.append(on_update)
        if on_finished is not None:
            self._finished.append(on_finished)

    def unsubscribe(self, callback: Subscriber) -> None:
        for callbacks in (self._subscribers, self._finished):
            if callback in callbacks:
                callbacks.remove(callback)

    # -- spans in ------------------------------------------------------------------------------

    def ingest(self, spans: Sequence[Span]) -> IngestResult:
        """File the spans of one request by trace (never waits); publishing follows."""
        result = IngestResult()
        per_trace = TRACE_SPANS.value
        most_traces = OPEN_TRACES.value
        for span in spans:
            trace = self._traces.get(span.trace_id)
            if trace is None:
                if len(self._traces) >= most_traces and not self._let_go():
                    result.rejected += 1
                    if len(result.reasons) < 1:
                        result.reasons.append(OPEN_TRACES.message("the traces held in memory"))
                    continue
                trace = self._traces[span.trace_id] = _Trace()
            if span.span_id not in trace.spans and len(trace.spans) >= per_trace:
                result.rejected += 1
                if len(result.reasons) < 1:
                    result.reasons.append(TRACE_SPANS.message(f"the spans of trace {span.trace_id}"))
                continue
            trace.spans[span.span_id] = span
            self._dirty.add(span.trace_id)
            result.accepted += 1
        self.spans_received += result.accepted
        if result.accepted:
            self._idle.clear()
            self._wake.set()
        return result

    def _let_go(self) -> bool:
        """Forget the oldest finished trace (it is in the store); False if none is finished."""
        for trace_id, trace in self._traces.items():
            if trace.finished and trace_id not in self._dirty:
                del self._traces[trace_id]
                return True
        return False

    # -- sessions out ---------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait until every span received so far is in a published session."""
        if self._task is None:
            raise PlaygroundError("the observer is not started")
        while self._dirty or not self._idle.is_set():
            await self._idle.wait()

    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._publish()
            except Exception:  # never stop publishing: the next spans get their turn
                log.exception("publishing observed sessions failed")
            if not self._dirty:
                self._idle.set()

    async def _publish(self) -> None:
        dirty, self._dirty = self._dirty, set()
        work = [(trace_id, list(self._traces[trace_id].spans.values())) for trace_id in dirty]
        built = await asyncio.to_thread(_build_all, work, self.price)
        for session in built:
            trace = self._traces.get(session.trace_id)
            if trace is not None:
                trace.finished = session.status != "running"
            self.sessions[session.session_id] = session
            self.sessions.move_to_end(session.session_id)
            while len(self.sessions) > OPEN_TRACES.value:
                self.sessions.popitem(last=False)
            self._tell(self._subscribers, session)
            if session.status != "running":
                self._tell(self._finished, session)
        if self.store is not None and built:
            try:
                await put_sessions(self.store, built)
            except PlaygroundError as exc:
                self.store_errors += 1
                log.error("observed sessions not recorded: %s", exc)

    def _tell(self, callbacks: list[Subscriber], session: ObservedSession) -> None:
        for callback in list(callbacks):
            try:
                callback(session)
            except Exception:
                log.exception("an observer subscriber failed on session %s", session.session_id)


def _build_all(work: list[tuple[str, list[Span]]], price: Price | None) -> list[ObservedSession]:
    built = []
    for trace_id, spans in work:
        try:
            built.append(build_session(spans, price=price))
        except Exception:  # a trace the mapping cannot make sense of must not stop the others
            log.exception("trace %s (session %s) could not be mapped", trace_id, session_id_of(trace_id))
    return built


def describe(session: ObservedSession) -> dict[str, Any]:
    """One finished session as the CLI prints it: system, path, status, cost."""
    result = session.result
    return {
        "session_id": session.session_id,
        "framework": session.framework,
        "system": session.system,
        "status": session.status,
        "path": result.path,
        "cost_usd": round(result.cost_usd, 8),
        "tokens": result.tokens,
        "latency_ms": round(result.latency_ms, 3),
        "error": result.error,
    }
