"""The command line: ``playground [COMMAND] ...`` (and ``python -m playground.cli``).

One module per group of commands, each with a ``register(commands)`` that adds its
parsers and names each one's handler with ``set_defaults(handler=...)``:

==========================  ===============================================
module                      commands
==========================  ===============================================
:mod:`~.run`                ``run``, ``check``, ``test``
:mod:`~.approve`            ``approve``
:mod:`~.sessions`           ``sessions``, ``export``, ``import``
:mod:`~.versions`           ``versions``, ``rollback``, ``snapshot``, ``snapshots``
:mod:`~.replay`             ``fork``, ``replay``, ``compare``, ``comparisons``
:mod:`~.diff`               ``diff``
:mod:`~.observe`            ``observe``
:mod:`~.tui`                ``tui``, and ``playground`` with no command
:mod:`~.serve`              ``serve`` (the TUI in a browser)
:mod:`~.doctor`             ``doctor``
==========================  ===============================================

What they share lives in :mod:`~.common` (exit codes, ``--db``, :func:`~.common.load_system`
for a command's ``SYSTEM.yaml``, :func:`~.common.open_store` for its store,
:func:`~.common.record_versions`, :class:`~.common.UsageError`) and :mod:`~.output`
(the live step lines and the run summary that ``run``, ``fork`` and ``replay`` print).

Adding a command:

1. Write ``playground/cli/<group>.py`` with ``register(commands)``; in it,
   ``parser = commands.add_parser("name", help=..., description=...)``, its
   arguments, ``db_arg(parser)`` (every command takes ``--db``) and
   ``parser.set_defaults(handler=cmd_name)``. ``cmd_name(args) -> int`` returns the
   exit code (``EXIT_*`` in :mod:`~.common`).
2. Add the module to :data:`COMMAND_MODULES` below (the order is the order of
   ``playground --help``).
3. Import nothing heavy at module level (Rich, Textual, litellm, the OpenTelemetry
   SDK, aiosqlite, pydantic, the engine): ``playground --help`` imports every command
   module, and ``tests/test_cli.py`` checks that it stays light. Import inside the
   handler.
4. Load a system with ``common.load_system(args.system)`` before opening the store (a
   broken file exits 2 with one line, and no store is created), and open the store
   with ``async with common.open_store(args) as store``. Errors of our own tree
   (``SpecError`` and ``ConfigError``: exit 2, other ``PlaygroundError``: exit 1) and
   :class:`~.common.UsageError` (through :func:`~.common.guarded`: exit 2) become one line
   on stderr; do not catch them.
5. A command that runs agents traces like ``run``: ``tracing_args(parser)`` adds ``--otlp``,
   ``--trace-console`` and ``--capture-content``, and ``with common.tracing(args) as tracer:``
   around its ``asyncio.run(...)`` gives the tracer to pass to ``run_session`` (or
   ``fork_session``, ``replay_session``, ``Runner``, ``compare``) and, at the end, waits at
   most two seconds for the spans and says once how many did not arrive.
6. The help text is a contract: say what the command prints and its exit codes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from playground.cli import (
    approve,
    common,
    diff,
    doctor,
    observe,
    replay,
    run,
    serve,
    sessions,
    tui,
    versions,
)
from playground.cli.common import EXIT_FAILED, EXIT_USAGE

COMMAND_MODULES: tuple[ModuleType, ...] = (
    run,
    approve,
    sessions,
    observe,
    tui,
    serve,
    versions,
    replay,
    diff,
    doctor,
)
"""The modules whose ``register(commands)`` adds the commands, in ``--help`` order."""

__all__ = ["COMMAND_MODULES", "build_parser", "common", "main"]


class _Version(argparse.Action):
    """``--version``: the installed package's version, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("agent-playground")
        except PackageNotFoundError:
            found = "unknown (not installed)"
        print(f"playground {found}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playground",
        description="Build and debug multi-agent LLM systems. With no command, opens the TUI "
        "on the systems in ./agents.",
    )
    common.db_arg(parser, top=True)
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    parser.set_defaults(handler=tui.cmd_home)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        # Text a tool or a model produced may hold lone surrogates (bytes that were not
        # UTF-8): print their escapes rather than fail with a traceback after the run.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(versions.versions_shorthand(list(sys.argv[1:] if argv is None else argv)))
    from playground.errors import ConfigError, PlaygroundError, SpecError

    try:
        return int(args.handler(args))
    except (SpecError, ConfigError, common.UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`playground run ... --json | head`): nothing more to say, and
        # Python's own flush at exit must not print a traceback either.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
