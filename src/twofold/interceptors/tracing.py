"""Request ids and W3C trace context, carried by the call context on every protocol.

:class:`RequestIds` takes the caller's ``X-Request-Id`` (when it is a sane
token) or makes one, puts it in ``ctx.state["request_id"]`` and echoes it in
the response, errors included. A valid W3C ``traceparent`` is parsed into
``ctx.state["trace"]`` (a :class:`TraceParent`), so a handler or an
OpenTelemetry bridge can continue the caller's trace; an invalid one is
ignored, as the W3C spec asks.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from twofold.core.chain import CallNext
from twofold.core.context import Context
from twofold.core.errors import Error

REQUEST_ID = "request_id"
TRACE = "trace"
REQUEST_ID_HEADER = "x-request-id"
# What a caller's request id may be: short, and nothing that could forge a log line.
_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@dataclass(frozen=True, slots=True)
class TraceParent:
    trace_id: str
    parent_id: str
    flags: int

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 1)


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The W3C ``traceparent`` header, or None when absent or invalid."""
    if value is None:
        return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return TraceParent(trace_id, parent_id, int(flags, 16))


def request_id(ctx: Context) -> str | None:
    value = ctx.state.get(REQUEST_ID)
    return value if isinstance(value, str) else None


class RequestIds:
    """Give every call a request id, echoed as ``X-Request-Id``; parse ``traceparent``."""

    def _take(self, ctx: Context) -> str:
        given = ctx.headers.get(REQUEST_ID_HEADER)
        rid = given if given is not None and _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        ctx.state[REQUEST_ID] = rid
        return rid

    async def refused(self, ctx: Context, error: Error) -> None:
        """A call refused before the chain still gets (and answers) its id."""
        error.headers.setdefault("X-Request-Id", self._take(ctx))

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        rid = self._take(ctx)
        trace = parse_traceparent(ctx.headers.get("traceparent"))
        if trace is not None:
            ctx.state[TRACE] = trace
        try:
            result = await call_next(request, ctx)
        except Error as exc:
            # On the error only: some protocols also send ctx.response_headers
            # with an error, and the id must appear once.
            exc.headers.setdefault("X-Request-Id", rid)
            raise
        ctx.response_headers["X-Request-Id"] = rid
        return result
