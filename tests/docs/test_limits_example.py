"""docs/limits.md: its example module does what the page says."""

from __future__ import annotations

import asyncio
import json

import httpx

from docs_src.limits.ticker import app
from twofold import ConcurrencyLimit
from twofold.core.method import StreamKind


def test_the_limits_example_serves_what_the_page_says() -> None:
    limit = next(i for i in app.interceptors if isinstance(i, ConcurrencyLimit))
    assert app.table.by_path["/ticker.v1.TickerService/WatchQuote"].lifetime == 600

    async def main() -> None:
        at = httpx.ASGITransport(app, client=("198.51.100.7", 5000))
        async with httpx.AsyncClient(transport=at, base_url="http://docs") as c:
            # 64 anonymous streams from one address at most, here for 1 s each...
            held = [
                asyncio.ensure_future(c.get("/quotes/ACME:watch", headers={"request-timeout": "1"}))
                for _ in range(64)
            ]
            for _ in range(300):
                if limit.in_flight(StreamKind.SERVER) == 64:
                    break
                await asyncio.sleep(0.01)
            # ...the 65th is refused.
            r = await c.get("/quotes/ACME:watch")
            assert r.status_code == 429 and r.json()["code"] == "resource_exhausted"
            assert r.headers["retry-after"] == "1"
            # An API key is a credential: its caller is identified, and not capped.
            robot = {"x-api-key": "robot-key-1", "request-timeout": "0.2"}
            r = await c.get("/quotes/ACME:watch", headers=robot)
            events = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: ")]
            # The first quote, then the client's own deadline ends the stream.
            assert events[0] == {"symbol": "ACME", "price": 42.0}
            assert events[-1]["code"] == "deadline_exceeded"
            r = await c.put("/quotes/ACME", json={"price": 43.0}, headers=robot)
            assert r.status_code == 200
            assert (await c.get("/quotes/ACME")).json()["price"] == 43.0
            assert {(await call).status_code for call in held} == {200}
        assert limit.in_flight(StreamKind.SERVER) == 0

    asyncio.run(main())
