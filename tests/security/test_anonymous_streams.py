"""600 idle anonymous WatchPrices streams starve nobody.

WatchPrices is public and never ends by itself: anyone may hold streams
open. They are opened at once over SSE, Connect, gRPC-Web (from nine
loopback addresses, 127.0.0.2-10) and native gRPC (from 127.0.0.1), and
held while reads and authenticated writes go on over REST and native gRPC:
every read and write must succeed, and every stream the server turned away
must have been refused with RESOURCE_EXHAUSTED and a Retry-After, in its
wire's own form. The streams count against the stream budget only, at most
64 from one address and 512 anonymous in all.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from tests.e2e.server import Server, start
from tests.security.catalog import WATCH_PRICES, grpc_method, message, sample, schema
from tests.tokens import AUTHORIZATION
from twofold.http.envelope import END_STREAM, TRAILERS, frame

STREAMS = 600
WIRES = ("sse", "connect", "grpc-web", "grpc")
HTTP_ADDRESSES = [f"127.0.0.{i}" for i in range(2, 11)]
PER_ADDRESS, ANONYMOUS = 64, 512  # the catalog's stream budget
PATH = "/catalog.v1.CatalogService/WatchPrices"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("catalog-streams")
    env = {"CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'catalog.db'}"}
    server = start("examples.catalog:app", tmp, env, "--no-access-log")
    yield server
    server.stop()


@dataclass
class Refusal:
    wire: str
    code: str
    retry_after: str | None


class Watchers:
    """Idle WatchPrices streams: each either stays open until closed, or ends
    at once with the server's refusal."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.clients = {
            address: httpx.AsyncClient(
                base_url=server.url,
                timeout=httpx.Timeout(10.0, read=None),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
                transport=httpx.AsyncHTTPTransport(local_address=address),
            )
            for address in HTTP_ADDRESSES
        }
        self.channel = grpc.aio.insecure_channel(server.grpc_target)

    async def watch(self, wire: str, address: str) -> Refusal:
        """Open one stream; return only if it was refused (or ended, which it must not)."""
        category = f"idle-{uuid.uuid4().hex[:8]}"  # no change ever comes
        if wire == "grpc":
            call = grpc_method(self.channel, "WatchPrices")(
                message("WatchPrices", {"category": category})
            )
            try:
                await call.read()
            except grpc.aio.AioRpcError as exc:
                trailers = dict(exc.trailing_metadata() or ())
                return Refusal(wire, exc.code().name.lower(), trailers.get("retry-after"))
            raise AssertionError("a WatchPrices message came, with no price change")
        client = self.clients[address]
        if wire == "sse":
            params = {"category": category}
            async with client.stream("GET", "/products:watchPrices", params=params) as r:
                if r.status_code == 200:
                    await r.aread()  # until the stream is closed: never, here
                    raise AssertionError("a WatchPrices stream ended by itself")
                body = json.loads(await r.aread())
                return Refusal(wire, body["code"], r.headers.get("retry-after"))
        if wire == "connect":
            content = frame(json.dumps({"category": category}).encode())
            headers = {"content-type": "application/connect+json"}
            r = await client.post(PATH, content=content, headers=headers)
            assert r.status_code == 200 and r.content[0] == END_STREAM, r.content
            end = json.loads(r.content[5:])
            retry_after = end.get("metadata", {}).get("retry-after", [None])[0]
            return Refusal(wire, end["error"]["code"], retry_after)
        request = message("WatchPrices", {"category": category})
        content = frame(schema().codec(type(request)).encode(request))
        r = await client.post(
            PATH, content=content, headers={"content-type": "application/grpc-web+proto"}
        )
        found = dict(r.headers)
        if r.content:  # the status in a trailer frame, else in the headers (trailers-only)
            assert r.content[0] == TRAILERS, r.content
            for line in r.content[5:].decode().split("\r\n"):
                key, _, value = line.partition(":")
                found[key.strip().lower()] = value.strip()
        code = {"8": "resource_exhausted"}.get(found["grpc-status"], found["grpc-status"])
        return Refusal(wire, code, found.get("retry-after"))

    async def in_flight(self) -> float:
        async with httpx.AsyncClient(base_url=self.server.url) as client:
            metrics = (await client.get("/metrics")).text
        return sample(metrics, "twofold_calls_in_flight", WATCH_PRICES)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        await self.channel.close()


async def reads_and_writes(server: Server) -> list[Any]:
    """Five authenticated creates and five reads each over REST and native gRPC."""
    product = {"name": "Lamp", "price": "10.00", "category": "lamps"}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10.0) as client,
        grpc.aio.insecure_channel(server.grpc_target) as channel,
    ):
        create, get = grpc_method(channel, "CreateProduct"), grpc_method(channel, "GetProduct")
        metadata = tuple(AUTHORIZATION.items())
        ids = []
        for _ in range(5):
            r = await client.post("/products", json=product, headers=AUTHORIZATION)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
            made = await create(message("CreateProduct", {"product": product}), metadata=metadata)
            ids.append(made.id)
        found = []
        for rest_id, grpc_id in zip(ids[::2], ids[1::2], strict=True):
            r = await client.get(f"/products/{rest_id}")
            assert r.status_code == 200, r.text
            found.append(r.json()["id"])
            found.append((await get(message("GetProduct", {"id": grpc_id}))).id)
        # An identified caller's stream still opens: the budget keeps it a share.
        async with client.stream("GET", "/products:watchPrices", headers=AUTHORIZATION) as r:
            assert r.status_code == 200
        return found


def test_idle_anonymous_streams_starve_no_one(catalog: Server) -> None:
    async def main() -> None:
        watchers = Watchers(catalog)
        # Native gRPC from 127.0.0.1, the HTTP wires 50 from each other address.
        wires = list(itertools.islice(itertools.cycle(WIRES), STREAMS))
        http = itertools.cycle(HTTP_ADDRESSES)
        places = [(w, "127.0.0.1" if w == "grpc" else next(http)) for w in wires]
        tasks = [asyncio.ensure_future(watchers.watch(*place)) for place in places]
        try:
            # Every stream has either been refused or is open on the server.
            for _ in range(600):
                refused = sum(task.done() for task in tasks)
                if refused + await watchers.in_flight() == STREAMS:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"{refused} refused, {await watchers.in_flight()} open")
            assert len(await reads_and_writes(catalog)) == 10
            # Each wire's form of the refusal, while the budget is full.
            for wire in WIRES:
                refusal = await asyncio.wait_for(watchers.watch(wire, HTTP_ADDRESSES[0]), 10)
                assert (refusal.code, refusal.retry_after) == ("resource_exhausted", "1"), refusal
            open_by_address: dict[str, int] = {}
            for (_, address), task in zip(places, tasks, strict=True):
                if not task.done():
                    open_by_address[address] = open_by_address.get(address, 0) + 1
                    continue
                refusal = task.result()
                assert refusal.code == "resource_exhausted", refusal
                assert refusal.retry_after == "1", refusal
            assert max(open_by_address.values()) <= PER_ADDRESS  # 127.0.0.1 tried 150
            # At most 64 + 9 x 50 could pass the caps per address: the anonymous share stops 2.
            assert sum(open_by_address.values()) == ANONYMOUS
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await watchers.close()
        # Closed streams give their places back.
        for _ in range(100):
            if await watchers.in_flight() == 0:
                break
            await asyncio.sleep(0.1)
        assert await watchers.in_flight() == 0

    asyncio.run(main())
