"""``tui``, and ``playground`` with no command: the Textual app in this terminal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.cli.common import EXIT_OK, EXIT_USAGE, db_arg, db_path, load_system, tracing, tracing_args
from playground.cli.observe import DEFAULT_PORT

if TYPE_CHECKING:
    from playground.spec import System


def register(commands: Any) -> None:
    tui = commands.add_parser(
        "tui",
        help="open the TUI on one system, or on observed traces (--observe)",
        description="Open the run screen on one system: type a request, watch each agent's pane, "
        "step through gates, edit handoffs, swap models. With --observe instead of a system, "
        "serve OTLP/HTTP as 'playground observe' does and show each observed session live, a "
        "pane per agent (read-only).",
    )
    tui.add_argument("system", metavar="SYSTEM.yaml", nargs="?", help="the system to run")
    tui.add_argument(
        "--observe",
        action="store_true",
        help="receive OpenTelemetry traces and show them live instead of running a system",
    )
    tui.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"with --observe: the OTLP/HTTP port on 127.0.0.1 (default: {DEFAULT_PORT}; 0 picks one)",
    )
    tracing_args(tui)
    db_arg(tui)
    tui.set_defaults(handler=cmd_tui)


def cmd_home(args: argparse.Namespace) -> int:
    """``playground`` alone: the home screen on the systems in ./agents."""
    return open_tui(args, None)


def cmd_tui(args: argparse.Namespace) -> int:
    if args.observe and args.system:
        print("error: tui takes SYSTEM.yaml or --observe, not both", file=sys.stderr)
        return EXIT_USAGE
    if args.observe:
        return open_tui(args, None, observe=args.port)
    if not args.system:
        print(
            "error: tui needs SYSTEM.yaml (or --observe to watch traces); "
            "'playground' alone opens the home screen on the systems in ./agents",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return open_tui(args, load_system(args.system))


def open_tui(args: argparse.Namespace, system: System | None, *, observe: int | None = None) -> int:
    from playground.tui.app import PlaygroundApp

    # Traced as `run` is (--otlp, OTEL_*); the spans get two seconds after the app closes.
    with tracing(args) as tracer:
        app = PlaygroundApp(
            system, db_path=db_path(args), agents_dir=Path("agents"), observe=observe, tracer=tracer
        )
        code = app.run()
    return app.return_code or (code or EXIT_OK)
