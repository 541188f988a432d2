"""An App called in process, through httpx's ASGITransport: no sockets, no threads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx

from twofold.core.asgi import ASGIApp
from twofold.testing import Lifespan

T = TypeVar("T")
BASE_URL = "http://t"


@asynccontextmanager
async def client(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose requests go straight to ``app``."""
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        yield c


@asynccontextmanager
async def running(app: ASGIApp) -> AsyncIterator[None]:
    """``app`` started and, after the block, stopped through the lifespan protocol,
    as a server does."""
    lifespan = Lifespan(app)
    await lifespan.startup()
    try:
        yield
    finally:
        await lifespan.shutdown()


class ASGI:
    """Synchronous calls into one app, each in its own event loop: what a test
    that makes one or two requests needs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with client(self.app) as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(go())

    def run(self, test: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        """Run ``test`` with a client of the app, in one event loop."""

        async def go() -> T:
            async with client(self.app) as c:
                return await test(c)

        return asyncio.run(go())
