"""A branch of a run: the state of one line of work that can run beside others.

The main branch is the run's own task. When one model response asks for several
tool calls or delegations, or a pipeline stage is a parallel group, each runs in
a branch of its own (a task in a task group), so each keeps its own per-call
timeout. Everything else per branch lives in the frames of the activation it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from playground.engine.outcomes import Aborted, Escalate, Failure

T = TypeVar("T")


class Branch:
    """One line of work of a run, bound to the task that runs it."""

    __slots__ = ("watchdog",)

    def __init__(self) -> None:
        self.watchdog = Watchdog()
        self.watchdog.bind()

    def close(self) -> None:
        self.watchdog.close()


async def in_branches(jobs: Sequence[Callable[[Branch], Awaitable[T]]]) -> list[T]:
    """Run ``jobs`` at once, each in a branch of its own (a task of one task group), and
    return their results in order.

    A job that fails the run (:class:`Failure`, :class:`Escalate`) does not stop its
    siblings: they finish and are recorded, then the first failure in job order is raised.
    An abort, the run's timeout or a bug cancels them all.
    """
    results: dict[int, T] = {}
    failures: dict[int, Failure | Escalate] = {}

    async def one(index: int, job: Callable[[Branch], Awaitable[T]]) -> None:
        own = Branch()
        try:
            results[index] = await job(own)
        except (Failure, Escalate) as exc:
            failures[index] = exc
        finally:
            own.close()

    try:
        async with asyncio.TaskGroup() as group:
            for index, job in enumerate(jobs):
                group.create_task(one(index, job))
    except BaseExceptionGroup as errors:
        raise _first(errors) from None
    if failures:
        raise failures[min(failures)]
    return [results[index] for index in range(len(jobs))]


def _first(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to raise for a task group: an abort before anything else."""
    leaves: list[BaseException] = []

    def walk(group: BaseExceptionGroup[BaseException]) -> None:
        for error in group.exceptions:
            if isinstance(error, BaseExceptionGroup):
                walk(error)
            else:
                leaves.append(error)

    walk(errors)
    for error in leaves:
        if isinstance(error, Aborted):
            return error
    return leaves[0]


class Watchdog:
    """Per-call timeouts for one branch's model calls, which never overlap.

    ``asyncio.timeout`` allocates and cancels a timer handle per call (~5 µs, a hot path
    with the scripted model). Here a call only records its deadline; one timer per branch
    fires when the earliest deadline may have passed, cancels the call if it has, and
    otherwise re-arms for the current call.
    """

    __slots__ = ("_deadline", "_fired", "_loop", "_task", "_timer", "_when")

    def __init__(self) -> None:
        self._deadline: float | None = None
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._when = 0.0
        """When ``_timer`` fires."""
        self._fired = False

    def bind(self) -> None:
        """The branch runs in the current task; every call it makes is awaited in that task."""
        self._task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()

    def arm(self, timeout_s: float) -> None:
        """A call starts: it may take ``timeout_s``."""
        loop = self._loop
        assert loop is not None
        self._deadline = deadline = loop.time() + timeout_s
        self._fired = False
        if self._timer is None or self._when > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._check)
            self._when = deadline

    def disarm(self) -> None:
        """The call ended."""
        self._deadline = None

    def timed_out(self) -> bool:
        """On a ``CancelledError`` during the call: whether the watchdog cancelled it (and
        nothing else did), so the call timed out rather than the run being cancelled."""
        return self._fired and self._task is not None and self._task.uncancel() == 0

    def _check(self) -> None:
        self._timer = None
        if self._deadline is None or self._task is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self._deadline:
            self._fired = True
            self._task.cancel()
        else:
            self._timer = loop.call_at(self._deadline, self._check)
            self._when = self._deadline

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
