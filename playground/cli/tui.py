"""``tui``, and ``playground`` with no command: the Textual app in this terminal."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.cli.common import EXIT_OK, db_arg, db_path, load_system

if TYPE_CHECKING:
    from playground.spec import System


def register(commands: Any) -> None:
    tui = commands.add_parser(
        "tui",
        help="open the TUI on one system",
        description="Open the run screen on one system: type a request, watch each agent's pane, "
        "step through gates, edit handoffs, swap models.",
    )
    tui.add_argument("system", metavar="SYSTEM.yaml")
    db_arg(tui)
    tui.set_defaults(handler=cmd_tui)


def cmd_home(args: argparse.Namespace) -> int:
    """``playground`` alone: the home screen on the systems in ./agents."""
    return open_tui(args, None)


def cmd_tui(args: argparse.Namespace) -> int:
    return open_tui(args, load_system(args.system))


def open_tui(args: argparse.Namespace, system: System | None) -> int:
    from playground.tui.app import PlaygroundApp

    app = PlaygroundApp(system, db_path=db_path(args), agents_dir=Path("agents"))
    code = app.run()
    return app.return_code or (code or EXIT_OK)
