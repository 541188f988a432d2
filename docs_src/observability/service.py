"""docs/observability.md: request ids, an access log, metrics, deadlines and limits."""

from __future__ import annotations

import asyncio

import msgspec

from twofold import (
    AccessLog,
    App,
    ConcurrencyLimit,
    Context,
    Deadlines,
    Metrics,
    RequestIds,
    Service,
    timeout,
)
from twofold.interceptors.tracing import TRACE


class Quote(msgspec.Struct):
    symbol: str
    price: float
    trace_id: str = ""


service = Service("quotes.v1")


@service.procedure(http=("GET", "/quotes/{symbol}"))
@timeout(2.0)  # the server gives up after 2 s, whatever the client allows
async def get_quote(symbol: str, ctx: Context) -> Quote:
    await asyncio.sleep(3.0 if symbol == "SLOW" else 0)
    trace = ctx.state.get(TRACE)  # the caller's W3C traceparent, parsed
    return Quote(symbol, 42.0, trace.trace_id if trace else "")


app = App(
    service,
    interceptors=[
        RequestIds(),  # first: every later line and error carries the id
        Metrics(),  # served at /metrics
        AccessLog(),
        ConcurrencyLimit(100),
        Deadlines(default=10.0),
    ],
)
