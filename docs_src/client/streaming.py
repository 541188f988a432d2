"""Streams through the client: outputs as an iterator, inputs from an iterable."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from docs_src.streaming.ticker import Quote, Total, Volume, service
from twofold import AsyncClient, Client
from twofold.client import Target


def trade(target: Target, protocol: str = "connect") -> tuple[list[Quote], Total]:
    with Client(service, target, protocol=protocol) as client:
        # A server stream is an iterator: the call runs while it is read.
        quotes = list(client.watch_quotes(symbol="ACME", count=3))
        # A client stream takes any iterable, a generator too; one answer at the end.
        total = client.record_trades(Volume("ACME", shares) for shares in (100, 250))
    return quotes, total


async def first_quote(target: Target, protocol: str = "grpc") -> tuple[Quote, Total]:
    async def trades() -> AsyncIterator[Volume]:
        yield Volume("ACME", 10)

    async with AsyncClient(service, target, protocol=protocol) as client:
        # An async iterator straight away: `async for`, or anext(), no `await`
        # first. aclosing() ends the call as the block ends, not at collection.
        quotes = client.watch_quotes(symbol="ACME", count=100)
        async with contextlib.aclosing(quotes):
            quote = await anext(quotes)
        total = await client.record_trades(trades())  # an async iterable works too
    return quote, total
