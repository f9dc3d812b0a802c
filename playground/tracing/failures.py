"""Why spans did not reach a collector, in a few words, for the one line the CLI prints.

The OTLP exporters say why an export failed only in log lines (several per batch, with
retries); :data:`EXPORT_LOG` keeps the last reason, and the playground says it once, with
a count (:meth:`playground.tracing.tracer.EventTracer.finish`). No OpenTelemetry import.
"""

from __future__ import annotations

import logging
from typing import Any


def describe_failure(status_code: int | None, reason: Any, error: Any) -> str | None:
    """Why an OTLP export failed, in a few words: ``HTTP 405 Method Not Allowed``,
    ``connection refused``, ``timed out``...; None when nothing says."""
    if status_code:
        return f"HTTP {status_code}{f' {reason}' if reason else ''}"
    if error is None and reason is None:
        return None
    return short_error(error if error is not None else reason)


def short_error(error: Any) -> str:
    """An exception or message from an HTTP client as a short line."""
    text = str(error or "no answer")
    lowered = text.lower()
    if "connection refused" in lowered or "errno 111" in lowered:
        return "connection refused"
    if "timed out" in lowered or "timeout" in lowered:
        return "timed out"
    if any(
        sign in lowered
        for sign in ("remotedisconnected", "badstatusline", "connection aborted", "protocol", "http/2")
    ):
        return "the endpoint did not answer as OTLP/HTTP (a gRPC port? OTLP/HTTP is usually 4318, gRPC 4317)"
    printable = "".join(c if c.isprintable() else "?" for c in text)
    return printable[:200] + ("..." if len(printable) > 200 else "")


class _ExportLog(logging.Handler):
    """Keeps why the OTLP exporters last failed, from their log records.

    Attached to the ``opentelemetry.exporter.otlp`` logger (HTTP and gRPC exporters), which
    also keeps those lines off stderr unless the application configured logging (then they
    go there as usual).
    """

    _IGNORED = ("due to timeout, max retries or shutdown", "Shutdown in progress", "already shutdown")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None
        """The last reason logged."""
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            self._installed = True
            logging.getLogger("opentelemetry.exporter.otlp").addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = str(record.msg)
            if any(part in message for part in self._IGNORED):
                return
            args = record.args if isinstance(record.args, tuple) else ()
            if message.startswith("Failed to export %s batch code") and len(args) >= 3:
                self.last = describe_failure(args[1], args[2], args[2])  # type: ignore[arg-type]
            elif message.startswith("Transient error %s") and args:
                self.last = short_error(args[0])
            else:
                self.last = short_error(record.getMessage())
        except Exception:  # a log handler never raises
            pass


EXPORT_LOG = _ExportLog()
"""The one handler, installed by the first :class:`~playground.tracing.tracer.ExportWatch`."""
