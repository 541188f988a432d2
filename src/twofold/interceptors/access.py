"""One structured access-log line per call, whatever the protocol.

:class:`AccessLog` logs to ``twofold.access`` at INFO, one JSON object per
call: ``protocol``, ``method``, ``code`` (``ok`` or the canonical code name),
``duration_ms``, ``peer`` and ``request_id`` (with :class:`~twofold.RequestIds`
before it). Never a header, a body, a token or an error message: a message
may quote what the caller sent. A stream's line is written at its end; a
call refused before the chain ran (a malformed or over-large body, an
unknown method) gets its line too, through :meth:`AccessLog.refused`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from twofold.core.chain import CallNext
from twofold.core.context import Context
from twofold.core.errors import Error
from twofold.interceptors import outcome
from twofold.interceptors.tracing import request_id

logger = logging.getLogger("twofold.access")


class AccessLog:
    def __init__(self, log: logging.Logger = logger) -> None:
        self.log = log

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        start = time.perf_counter()

        def end(exc: BaseException | None) -> None:
            self._line(ctx, outcome.name(ctx, exc), time.perf_counter() - start)

        return await outcome.observe(ctx, request, call_next, end)

    async def refused(self, ctx: Context, error: Error) -> None:
        """The line of a call refused before the chain ran (its duration: 0)."""
        self._line(ctx, error.code.wire_name, 0.0)

    def _line(self, ctx: Context, code: str, seconds: float) -> None:
        if self.log.isEnabledFor(logging.INFO):
            line = {
                "protocol": ctx.protocol,
                "method": ctx.method.full_name,
                "code": code,
                "duration_ms": round(seconds * 1000, 3),
                "peer": ctx.peer,
                "request_id": request_id(ctx),
            }
            self.log.info(msgspec.json.encode(line).decode())
