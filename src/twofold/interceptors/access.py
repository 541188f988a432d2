"""One structured access-log line per call, whatever the protocol.

:class:`AccessLog` logs to ``twofold.access`` at INFO, one JSON object per
call: ``protocol``, ``method``, ``code`` (``ok`` or the canonical code name),
``duration_ms``, ``peer`` and ``request_id`` (with :class:`~twofold.RequestIds`
before it). Never a header, a body, a token or an error message: a message
may quote what the caller sent. A stream's line is written at its end; a
call refused before the chain ran (a malformed or over-large body, an
unknown method) gets its line too, through :meth:`AccessLog.refused`.

``twofold serve`` takes the lines without the logging module
(:mod:`twofold.server.accesslines`): a list at :data:`CALL_LINES` in an HTTP
request's scope gets its calls' lines, written with the request's fields as
one line when it ends; other calls' lines go to :func:`write_to`'s writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from twofold.core.chain import CallNext
from twofold.core.context import Context
from twofold.core.errors import Error
from twofold.interceptors import outcome
from twofold.interceptors.tracing import request_id

logger = logging.getLogger("twofold.access")

# Where a server puts a RequestLines in an HTTP request's ASGI scope: the
# lines of that request's calls go to it instead of out, and the server
# writes each with the request's path and status, or a line of its own for a
# request no call covered (a 404 on an unknown path, /metrics). An object in
# the scope, which middleware that copies the scope still shares.
CALL_LINES = "twofold.call_lines"


class RequestLines(Protocol):
    """What a server puts at :data:`CALL_LINES`: told when each call of the
    request begins and ends (a stream may end after its response did)."""

    def begin(self) -> None: ...

    def end(self, line: dict[str, Any]) -> None: ...


_encode = msgspec.json.Encoder().encode
# Where the lines of AccessLogs on the default logger go instead of it, when
# a server has said so; None: through the logging module.
_writer: Callable[[bytes], None] | None = None


def milliseconds(seconds: float) -> float:
    """``seconds`` in milliseconds to the microsecond: ``round(ms, 3)``, which
    formats the float as text and parses it back, costs five times as much."""
    return int(seconds * 1_000_000 + 0.5) / 1000


def write_to(writer: Callable[[bytes], None] | None) -> None:
    """Send the lines of every :class:`AccessLog` on the ``twofold.access`` logger to
    ``writer`` (each line as JSON bytes ending in a newline), or back to the logger (None).

    For a server that owns the process's output (``twofold serve``): a
    ``LogRecord`` per line, its caller lookup and the handler's lock cost
    several times the line itself. An AccessLog given another logger keeps it.
    """
    global _writer
    _writer = writer


class AccessLog:
    def __init__(self, log: logging.Logger = logger) -> None:
        self.log = log

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        start = time.perf_counter()
        lines = self._request_lines(ctx)
        if lines is not None:
            lines.begin()

        def end(exc: BaseException | None) -> None:
            self._line(ctx, outcome.name(ctx, exc), time.perf_counter() - start, lines)

        return await outcome.observe(ctx, request, call_next, end)

    async def refused(self, ctx: Context, error: Error) -> None:
        """The line of a call refused before the chain ran (its duration: 0)."""
        lines = self._request_lines(ctx)
        if lines is not None:
            lines.begin()
        self._line(ctx, error.code.wire_name, 0.0, lines)

    def _request_lines(self, ctx: Context) -> RequestLines | None:
        if _writer is None or self.log is not logger or ctx.scope is None:
            return None
        lines: RequestLines | None = ctx.scope.get(CALL_LINES)
        return lines

    def _line(self, ctx: Context, code: str, seconds: float, lines: RequestLines | None) -> None:
        writer = _writer if self.log is logger else None
        if writer is None and not self.log.isEnabledFor(logging.INFO):
            return
        line = {
            "protocol": ctx.protocol,
            "method": ctx.method.full_name,
            "code": code,
            "duration_ms": milliseconds(seconds),
            "peer": ctx.peer,
            "request_id": request_id(ctx),
        }
        if lines is not None:
            lines.end(line)
        elif writer is not None:
            writer(_encode(line) + b"\n")
        else:
            self.log.info(_encode(line).decode())
