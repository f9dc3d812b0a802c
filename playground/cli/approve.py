"""``playground approve``: decide on the tool call a ``waiting_approval`` session waits for,
and run the session on."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from playground.cli.common import EXIT_USAGE, db_arg, exit_code, open_store, tracing, tracing_args

if TYPE_CHECKING:
    from playground.engine.events import Event
    from playground.resume import Verdict
    from playground.tracing.tracer import EventTracer


def register(commands: Any) -> None:
    approve = commands.add_parser(
        "approve",
        help="approve (or deny) the tool call a session waits for, and resume the session",
        description="A headless run that reaches a tool declared 'approval: required' stops with "
        "the session waiting_approval (run exits 4). This approves the call, with --edit JSON "
        "runs it with other arguments, or with --deny tells the model it was refused (--reason), "
        "and resumes the same session: it is run again from its request on the agent versions it "
        "ran with, every step already taken is answered from its recording (no model is called "
        "and no tool runs again; each replayed event is checked against the stored one, and on a "
        "difference nothing is written and the session still waits), and the run goes on live "
        "after the call. New events are appended to the session and its status updated. Prints "
        "the new step lines and the summary (--json: run --json's object plus approval, "
        "resumed_after_event, replayed and live). Exit codes as run: 0 completed, 1 failed (or "
        "could not be resumed), 3 aborted, 4 waiting for another approval; 2 if the session is "
        "not waiting for approval or --edit does not fit the tool's arguments.",
    )
    approve.add_argument("session_id", metavar="SESSION", help="the session (an id prefix is enough)")
    verdict = approve.add_mutually_exclusive_group()
    verdict.add_argument("--deny", action="store_true", help="refuse the call; the model is told why")
    verdict.add_argument(
        "--edit", metavar="JSON", help="approve the call with these arguments (a JSON object)"
    )
    approve.add_argument("--reason", metavar="TEXT", default="", help="why it is denied (with --deny)")
    approve.add_argument("--json", action="store_true", help="print one JSON object")
    approve.add_argument("--quiet", "-q", action="store_true", help="no live step lines")
    db_arg(approve)
    tracing_args(approve)
    approve.set_defaults(handler=cmd_approve)


def cmd_approve(args: argparse.Namespace) -> int:
    from playground.bounds import LimitExceeded, loads_bounded
    from playground.resume import Verdict

    if args.reason and not args.deny:
        print("error: --reason goes with --deny", file=sys.stderr)
        return EXIT_USAGE
    edited = None
    if args.edit is not None:
        try:
            edited = loads_bounded(args.edit, "--edit")
        except LimitExceeded as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except ValueError as exc:
            print(f"error: --edit is not valid JSON: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not isinstance(edited, dict):
            print("error: --edit must be a JSON object (the tool's arguments)", file=sys.stderr)
            return EXIT_USAGE
    verdict = Verdict(approve=not args.deny, reason=args.reason, args=edited)
    with tracing(args) as tracer:
        return asyncio.run(_approve(args, verdict, tracer))


async def _approve(args: argparse.Namespace, verdict: Verdict, tracer: EventTracer | None) -> int:
    from playground.cli.output import StepPrinter, print_summary, scrubbed_json
    from playground.resume import NotWaiting, resume_session

    live: list[Callable[[Event], None]] = [] if (args.json or args.quiet) else [StepPrinter()]
    async with open_store(args) as store:
        try:
            outcome = await resume_session(store, args.session_id, verdict, live=live, tracer=tracer)
        except NotWaiting as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if args.json:
        print(scrubbed_json(outcome.as_json()))
    else:
        print_summary(outcome.result)
        data = outcome.as_json()
        print(
            f"\n{data['approval']['tool']} {data['approval']['verdict']}; "
            f"{data['replayed']['model_calls']} model calls and {data['replayed']['tool_calls']} tool "
            f"calls taken from the recording; {data['live']['model_calls']} live model calls cost "
            f"${data['live']['cost_usd']:.6f}"
        )
    return exit_code(outcome.result.status)
