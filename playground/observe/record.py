"""Observed sessions into the store: each written whole, replacing what it held before.

An observed session is re-derived from its trace whenever spans arrive, out of order, so
its events can change (not only grow) until the trace ends: a session is written as its
row and all its events in one transaction, replacing the previous version. Recorded runs
are never touched: a session the store holds that is not observed is refused.

The row says where the session came from: ``system_path`` is ``observed:<framework>``
(there is no system file), and its first event, :class:`~playground.engine.events.RunStarted`,
carries ``observed``. Secrets are scrubbed as in everything the store writes.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from typing import Any

from playground.observe.mapping import ObservedSession
from playground.redact import scrub
from playground.store import Store
from playground.store.rows import OBSERVED_PREFIX

_HOST = socket.gethostname()


def observed_framework(system_path: str) -> str | None:
    """The framework of an observed session's ``system_path``; None for a recorded run."""
    return system_path.removeprefix(OBSERVED_PREFIX) if system_path.startswith(OBSERVED_PREFIX) else None


def session_row(session: ObservedSession) -> dict[str, Any]:
    """The ``sessions`` row of an observed session, column to stored value."""
    result = session.result.as_json()
    error = result["error"]
    finished = session.status != "running"
    return {
        "session_id": session.session_id,
        "system": session.system,
        "system_path": OBSERVED_PREFIX + session.framework,
        "correlation_id": session.trace_id,
        "status": session.status,
        "input": scrub(session.input),
        "output": scrub(result["output"]),
        "error": scrub(json.dumps(error)) if error else None,
        "path": json.dumps(result["path"]),
        "versions": "{}",
        "totals": json.dumps(result["per_agent"]),
        "cost_usd": result["cost_usd"],
        "input_tokens": result["tokens"]["input"],
        "output_tokens": result["tokens"]["output"],
        "latency_ms": result["latency_ms"],
        "created_at": session.created_at,
        "finished_at": session.events[-1].ts if finished else None,
        "pid": os.getpid(),  # a running session of an observer that died shows as interrupted
        "host": _HOST,
    }


async def put_sessions(store: Store, sessions: Sequence[ObservedSession]) -> None:
    """Write each session whole (row and events), replacing its previous version, in one
    transaction.

    Raises:
        StoreError: One of the ids names a session this store recorded from a run (nothing
            is written), or the store cannot write.
    """
    await store.replace_sessions([(session_row(s), s.events) for s in sessions], replaces=OBSERVED_PREFIX)
