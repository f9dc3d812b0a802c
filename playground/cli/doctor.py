"""``doctor``: check a store's integrity, and copy what can still be read into a new one."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from playground.cli.common import EXIT_FAILED, EXIT_OK, db_arg, db_path


def register(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check the store, and copy what can be read out of a damaged one",
        description="Run SQLite's full integrity check on the store (it is only read) and print "
        "what it found and how many rows each table holds. A store that fails its check when it "
        "opens is used for reading only; with --copy-to NEW.db every row that can still be read "
        "(and reads back valid) is copied into a new store, which you then use with --db NEW.db "
        "(or move over the old file). Exit 0 when the store is sound or the copy was made, 1 when "
        "it is damaged (and nothing was copied) or cannot be read at all.",
    )
    doctor.add_argument(
        "--copy-to", metavar="NEW.db", help="copy what can be read into this new file (it must not exist)"
    )
    db_arg(doctor)
    doctor.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from playground.store import doctor

    path = db_path(args)
    health = doctor.check(path)
    rows = ", ".join(f"{table} {'?' if n is None else n}" for table, n in health.rows.items())
    if health.ok:
        print(f"ok: {path} is sound (store schema {health.schema_version}; {rows})")
    else:
        print(f"damaged: {path} fails its integrity check:", file=sys.stderr)
        for problem in health.problems:
            print(f"  {' '.join(problem.split())}", file=sys.stderr)
        print(f"readable rows: {rows}", file=sys.stderr)
    if args.copy_to is None:
        if not health.ok:
            hint = f"playground doctor --db {path} --copy-to NEW.db"
            print(f"copy what can be read into a new store with: {hint}", file=sys.stderr)
        return EXIT_OK if health.ok else EXIT_FAILED
    saved = doctor.salvage(path, args.copy_to)
    for note in saved.notes:
        print(f"note: {note}", file=sys.stderr)
    copied = ", ".join(f"{table} {n}" for table, n in saved.copied.items())
    lost = sum(saved.lost.values())
    lost_note = f"; {lost} rows could not be read or were not valid" if lost else ""
    print(f"copied into {args.copy_to}: {copied}{lost_note}")
    print(f"use it with --db {args.copy_to}, or move it over {path} (keep the damaged file until sure)")
    return EXIT_OK
