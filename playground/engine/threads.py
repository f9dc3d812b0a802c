"""User code that is synchronous (tools, checks) runs in threads, never on the event loop:
a blocked loop is a frozen screen, a timeout that never fires and a store writer that never
gets a turn (a ``kill -9`` then loses the whole session)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def call_in_thread(func: Callable[..., Any], args: dict[str, Any], name: str) -> str:
    """Run a synchronous tool in a thread of its own and await its result as text (turned
    into text in the thread too, so a large result costs the event loop nothing)."""

    def work() -> str:
        value = func(**args)
        return value if isinstance(value, str) else json.dumps(value, default=str)

    return await in_thread(work, name)


async def in_thread(work: Callable[[], T], name: str) -> T:
    """Run synchronous user code (a tool, a check) in a thread of its own and await it.

    A daemon thread, not an executor's: code that outlives its timeout (or the run) is
    abandoned, and nothing waits for it, the interpreter's exit included. Whatever it
    raises, ``SystemExit`` included, is raised here as an ordinary error.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # timed out or cancelled: nobody waits for it any more
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = context.run(work)
        except Exception as exc:
            error = exc
        except BaseException as exc:  # SystemExit and the like: an error of the user's code
            error = RuntimeError(f"{type(exc).__name__}: {exc}")
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: the run is long over
            pass

    threading.Thread(target=run, name=f"playground-{name}", daemon=True).start()
    return await future
