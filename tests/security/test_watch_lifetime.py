"""WatchPrices outlives the server's default timeout and ends cleanly at its lifetime.

The catalog runs with short settings (a 0.5 s default timeout, a 2.5 s
watch lifetime): a watcher must still hear of a change made after the
default timeout, and its stream must then end with no error, so that it
reconnects, instead of living forever.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from tests.e2e.server import Server, start
from tests.security.catalog import grpc_method, message
from tests.tokens import AUTHORIZATION

TIMEOUT, LIFETIME = 0.5, 2.5


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("catalog-lifetime")
    env = {
        "CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'catalog.db'}",
        "CATALOG_TIMEOUT": str(TIMEOUT),
        "CATALOG_WATCH_LIFETIME": str(LIFETIME),
    }
    server = start("examples.catalog:app", tmp, env, "--no-access-log")
    yield server
    server.stop()


async def sse(server: Server, category: str) -> tuple[list[Any], str]:
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=20) as client,
        client.stream("GET", "/products:watchPrices", params={"category": category}) as r,
    ):
        assert r.status_code == 200
        text = (await r.aread()).decode()
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    return events, text


async def native(server: Server, category: str) -> list[Any]:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        watch = grpc_method(channel, "WatchPrices")
        return [change async for change in watch(message("WatchPrices", {"category": category}))]


def test_watch_prices_outlives_the_default_timeout_and_ends_cleanly(catalog: Server) -> None:
    category = f"lifetime-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        async with httpx.AsyncClient(base_url=catalog.url, headers=AUTHORIZATION) as client:
            product = {"name": "Lamp", "price": "10.00", "category": category}
            r = await client.post("/products", json=product)
            assert r.status_code == 201, r.text
            watchers = asyncio.gather(sse(catalog, category), native(catalog, category))
            await asyncio.sleep(2 * TIMEOUT)  # past the default timeout
            r = await client.patch(f"/products/{r.json()['id']}", json={"price": "12.50"})
            assert r.status_code == 200, r.text
        # Both end by themselves, with no error, soon after LIFETIME.
        (events, text), changes = await asyncio.wait_for(watchers, 4 * LIFETIME)
        assert [e["new_price"] for e in events] == ["12.50"]
        assert "event: error" not in text
        assert [str(c.new_price) for c in changes] == ["12.50"]

    asyncio.run(main())
