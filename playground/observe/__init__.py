"""Observe agent systems the playground does not run: OTLP traces in, sessions out.

``playground observe`` serves OTLP/HTTP (:mod:`playground.observe.server`) and turns each
trace it receives into a session in the store, as it arrives
(:mod:`playground.observe.observer`): the typed events of
:mod:`playground.engine.events`, built from the spans by :mod:`playground.observe.mapping`,
so the TUI, ``sessions show``, export and ``diff`` work on them unchanged. Request bodies
are decoded by :mod:`playground.observe.otlp`.

Nothing here imports Textual: the receiver runs headless, and the TUI's live view
subscribes to the observer.
"""

from __future__ import annotations

from playground.observe.mapping import ObservedSession, build_session, session_id_of
from playground.observe.otlp import BodyError, Span, decode_request

__all__ = ["BodyError", "ObservedSession", "Span", "build_session", "decode_request", "session_id_of"]
