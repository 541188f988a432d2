"""docs/health.md: probes for a platform, ready only once the pool is open."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import msgspec

from twofold import App, Options, Service, public

service = Service("inventory.v1")
POOL: list[str] = []  # stands in for a database pool


class Stock(msgspec.Struct):
    sku: str
    count: int


@public
@service.procedure(http=("GET", "/stock/{sku}"))
async def get_stock(sku: str) -> Stock:
    return Stock(sku, len(POOL))


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    POOL.append("connection")  # /readyz says 503 "starting" until this is done
    yield
    POOL.clear()


app = App(
    service,
    lifespan=lifespan,
    # The defaults are /healthz and /readyz; a platform that probes other
    # paths gets them here. None serves none.
    options=Options(health_path="/livez", ready_path="/readyz"),
)
