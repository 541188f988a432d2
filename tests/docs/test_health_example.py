"""docs/health.md: the example answers its probes as the page says."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from docs_src.health.app import POOL, app
from tests.asgi import ASGI
from twofold import App, Service


def test_the_health_example_is_ready_once_its_lifespan_has_started() -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as c:
            assert (await c.get("/livez")).status_code == 200
            r = await c.get("/readyz")
            assert (r.status_code, r.text) == (503, "not ready: starting\n")

            incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            sent: asyncio.Queue[Any] = asyncio.Queue()
            lifespan = asyncio.ensure_future(app({"type": "lifespan"}, incoming.get, sent.put))
            await incoming.put({"type": "lifespan.startup"})
            assert (await sent.get())["type"] == "lifespan.startup.complete"
            assert POOL == ["connection"]
            r = await c.get("/readyz")
            assert (r.status_code, r.text) == (200, "ready\n")
            assert r.headers["cache-control"] == "no-store"
            await incoming.put({"type": "lifespan.shutdown"})
            assert (await sent.get())["type"] == "lifespan.shutdown.complete"
            await lifespan
            assert (await c.get("/readyz")).status_code == 503
            assert "/readyz" not in app.openapi["paths"]

    asyncio.run(main())


def test_a_part_of_readiness_the_owner_flips() -> None:
    from docs_src.health.parts import consumer_started, stopping, wire_up

    service = Service("parts.v1")
    mine = App(service)
    mine.readiness.started = True  # as after the lifespan's startup
    at = ASGI(mine)
    wire_up(mine)
    assert at.request("GET", "/readyz").text == "not ready: queue not serving\n"
    consumer_started(mine)
    assert at.request("GET", "/readyz").status_code == 200
    stopping(mine)
    assert at.request("GET", "/readyz").text == "not ready: draining\n"
