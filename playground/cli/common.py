"""What every command shares: exit codes, ``--db``, loading a system, opening the store.

Nothing heavy at module level: ``playground --help`` imports this module.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playground.spec import System
    from playground.store import Store
    from playground.tracing.tracer import EventTracer

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ABORTED = 3
EXIT_WAITING = 4
"""A run is waiting for an operator's approval (``playground approve`` resumes it)."""


def exit_code(status: str) -> int:
    """The exit code of a run that ended with ``status``."""
    return {"completed": EXIT_OK, "aborted": EXIT_ABORTED, "waiting_approval": EXIT_WAITING}.get(
        status, EXIT_FAILED
    )


class UsageError(Exception):
    """A command was called wrongly: one line on stderr, exit 2."""


def db_arg(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """``--db PATH`` on ``parser``; every command has it, and so has ``playground`` itself."""
    # SUPPRESS on commands, so `playground --db X run ...` is not reset by the command's default.
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=None if top else argparse.SUPPRESS,
        help="the session store (default: $PLAYGROUND_DB or sessions/playground.db here)",
    )


TRACE_FINISH_S = 2.0
"""How long a command waits at exit for spans to reach the collector before it gives up
on them (and says how many did not arrive)."""


def tracing_args(parser: argparse.ArgumentParser) -> None:
    """``--otlp``, ``--trace-console`` and ``--capture-content``: every command that runs
    agents takes them, and reads the ``OTEL_*`` variables the same way (see :func:`tracing`)."""
    parser.add_argument(
        "--otlp",
        metavar="ENDPOINT",
        help="export spans over OTLP/HTTP (default: $OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    parser.add_argument("--trace-console", action="store_true", help="print spans to stderr")
    parser.add_argument(
        "--capture-content",
        action="store_const",
        const=True,
        default=None,
        help="put prompts and replies in spans "
        "(default: $OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, else off)",
    )


def open_tracer(args: argparse.Namespace) -> EventTracer | None:
    """The tracer the command's options and the ``OTEL_*`` variables ask for, or None.

    Raises:
        ConfigError: They ask for what the playground cannot do (``main`` exits 2).
    """
    from playground.tracing import configure_tracing

    return configure_tracing(
        otlp_endpoint=getattr(args, "otlp", None),
        console=bool(getattr(args, "trace_console", False)),
        capture_content=getattr(args, "capture_content", None),
    )


def close_tracer(tracer: EventTracer | None) -> None:
    """Give the spans :data:`TRACE_FINISH_S` to arrive, then say once on stderr how many
    did not, and why."""
    if tracer is None:
        return
    for loss in tracer.finish(TRACE_FINISH_S):
        print(f"warning: {loss.message()}", file=sys.stderr)


@contextmanager
def tracing(args: argparse.Namespace) -> Iterator[EventTracer | None]:
    """:func:`open_tracer` for the block, :func:`close_tracer` after it (also on errors).

    Use it around ``asyncio.run(...)``, not inside: closing waits up to two seconds."""
    tracer = open_tracer(args)
    try:
        yield tracer
    finally:
        close_tracer(tracer)


MAX_REQUEST_BYTES = 1_000_000
"""The largest request ``--input -`` or ``--input @FILE`` reads (1 MB)."""


def request_text(value: str, option: str = "--input") -> str:
    """What ``--input`` names: the text itself, ``-`` for standard input, ``@FILE`` for a
    file's text (``@@...`` for text that starts with ``@``).

    Raises:
        UsageError: The file cannot be read, is not UTF-8, or is over :data:`MAX_REQUEST_BYTES`.
    """
    if value == "-":
        where, data = "standard input", sys.stdin.buffer.read(MAX_REQUEST_BYTES + 1)
    elif value.startswith("@@"):
        return value[1:]
    elif value.startswith("@"):
        where = value[1:]
        try:
            with open(where, "rb") as file:
                data = file.read(MAX_REQUEST_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"{option} @{where}: cannot read it: {exc.strerror or exc}") from None
    else:
        return value
    if len(data) > MAX_REQUEST_BYTES:
        raise UsageError(
            f"{option}: the request from {where} is over {MAX_REQUEST_BYTES:,} bytes "
            "(MAX_REQUEST_BYTES in playground/cli/common.py)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{option}: {where} is not UTF-8 text (byte {exc.start + 1})") from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``--jobs``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def db_path(args: argparse.Namespace) -> Path:
    """The store ``--db``, ``$PLAYGROUND_DB`` or the workspace names.

    Raises:
        UsageError: It names a directory.
    """
    from playground.store import default_db_path

    path = Path(args.db) if getattr(args, "db", None) else default_db_path()
    if path.is_dir():
        example = path / "playground.db"
        raise UsageError(f"the store {str(path)!r} is a directory: name a file, e.g. {example}")
    return path


def load_system(ref: str) -> System:
    """The system a command names: ``SYSTEM.yaml``, ``path/file.py:NAME`` or
    ``package.module:NAME`` (a system, an agent of the playground or of the OpenAI Agents
    SDK, or a function with no arguments returning one).

    A broken file raises :class:`~playground.errors.SpecError`, which ``main`` turns
    into one line on stderr and exit 2, before any store is opened. Every command that
    takes a system loads it here.
    """
    from playground.spec.load import load_system_ref

    return load_system_ref(ref)


async def refuse_misfits(store: Store, system: System, wanted: dict[str, str]) -> None:
    """Raise :class:`UsageError` if a version to roll an agent to cannot run in ``system`` as
    loaded now (an agent or tool it needs is gone, or its code is no longer what the file
    says): refused before any pointer moves."""
    from playground.spec.load import misfit
    from playground.spec.models import AgentSpec

    for agent, version in wanted.items():
        if agent not in system.spec.agents:
            continue
        spec = AgentSpec.model_validate_json(await store.version_spec(system.name, agent, version))
        problem = misfit(system, spec)
        if problem:
            raise UsageError(f"{agent} cannot be rolled back to {version}: that version {problem}")


@asynccontextmanager
async def open_store(args: argparse.Namespace) -> AsyncIterator[Store]:
    """The store of ``--db`` (see :func:`db_path`), open for the block."""
    from playground.store import Store

    path = db_path(args)
    # The workspace's default store appearing silently is a store nobody finds: say where it
    # is when it is created (a store named by --db or PLAYGROUND_DB is where it was asked).
    chosen = getattr(args, "db", None) or os.environ.get("PLAYGROUND_DB")
    created = not chosen and not path.exists()
    async with Store(path) as store:
        if created:
            print(f"note: created the session store {path}", file=sys.stderr)
        yield store


async def record_versions(store: Store, system: System) -> None:
    """Record the loaded file's agent versions, as a run would (new ones become active)."""
    from playground.spec.identity import canonical_spec

    specs = {name: canonical_spec(agent) for name, agent in system.spec.agents.items()}
    await store.record_versions(system.name, specs)


def known_agent(system: System, agent: str | None) -> None:
    """Raise :class:`UsageError` unless ``agent`` is None or an agent of ``system``."""
    if agent is not None and agent not in system.spec.agents:
        raise UsageError(
            f"{agent!r} is not an agent of {system.name!r}; its agents: {', '.join(system.spec.agents)}"
        )


def guarded(run: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine; a :class:`UsageError` becomes one line and exit 2."""
    try:
        return int(asyncio.run(run))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def when(ts: float) -> str:
    """A stored time as local ``YYYY-MM-DD HH:MM:SS``."""
    import datetime as dt

    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
