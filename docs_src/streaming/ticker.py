"""Streams in a definition: served over Connect, gRPC-Web, gRPC and (out only) SSE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec

from twofold import App, Context, Idempotency, Service

service = Service("ticker.v1")


class Quote(msgspec.Struct):
    symbol: str
    cents: int


class Volume(msgspec.Struct):
    symbol: str
    shares: int


class Total(msgspec.Struct):
    trades: int
    shares: int


# An async generator streams out (server streaming). With a REST binding it is
# also served as Server-Sent Events at GET /quotes:watch?symbol=...
@service.procedure(http=("GET", "/quotes:watch"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def watch_quotes(symbol: str, count: int = 3) -> AsyncIterator[Quote]:
    for i in range(count):
        await asyncio.sleep(0.01)
        yield Quote(symbol, 100 + i)


# An AsyncIterator parameter streams in (client streaming): one answer at the end.
@service.procedure
async def record_trades(trades: AsyncIterator[Volume], ctx: Context) -> Total:
    total = Total(0, 0)
    async for trade in trades:
        total.trades += 1
        total.shares += trade.shares
    return total


app = App(service)
