"""docs/limits.md: concurrency budgets, and a long-lived stream."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import msgspec

from twofold import (
    ApiKeys,
    App,
    Authentication,
    Budget,
    ConcurrencyLimit,
    Deadlines,
    JwtBearer,
    Metrics,
    Service,
    StoredApiKey,
    credentials_of,
    lifetime,
    public,
    requires,
)
from twofold.interceptors.bearer import DEVELOPMENT_SECRET


class Quote(msgspec.Struct):
    symbol: str
    price: float


PRICES: dict[str, float] = {"ACME": 42.0}
service = Service("ticker.v1")


@service.procedure(http=("GET", "/quotes/{symbol}"))
@public
async def get_quote(symbol: str) -> Quote:
    return Quote(symbol, PRICES.get(symbol, 0.0))


@service.procedure(http=("PUT", "/quotes/{symbol}"))
@requires("quotes:write")
async def set_quote(symbol: str, price: float) -> Quote:
    PRICES[symbol] = price
    return Quote(symbol, price)


@service.procedure(http=("GET", "/quotes/{symbol}:watch"))
@public
@lifetime(600)  # no deadline: ends cleanly within 10 minutes, and the client reconnects
async def watch_quote(symbol: str) -> AsyncIterator[Quote]:
    while True:
        yield Quote(symbol, PRICES.get(symbol, 0.0))
        await asyncio.sleep(1.0)


authentication = Authentication(
    JwtBearer(secret=os.environ.get("TICKER_JWT_SECRET", DEVELOPMENT_SECRET)),
    ApiKeys([StoredApiKey.of("robot-key-1", "pricing-robot", ["quotes:write"])]),
)
app = App(
    service,
    interceptors=[
        Metrics(),
        # Before Authentication: a call refused here costs no token check.
        ConcurrencyLimit(
            unary=Budget(512, anonymous_share=0.75),
            streams=Budget(1024, anonymous_share=0.5, per_address=64),
            # Bearer tokens and API keys both make a caller identified.
            identified=credentials_of(*authentication.verifiers),
        ),
        authentication,
        Deadlines(default=10.0),
    ],
)
