"""The catalog's streams against real servers: WatchPrices as SSE and over
Connect, across two worker processes; ImportProducts over Connect and gRPC-Web."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.catalog import service
from tests.e2e.databases import Database
from tests.e2e.server import Server, start
from tests.tokens import AUTHORIZATION
from twofold.http.envelope import END_STREAM, TRAILERS, frame
from twofold.protobuf import Schema
from twofold.testing.parity.wires import proto_request


@functools.cache
def schema() -> Schema:
    return Schema(service)


SERVICE = "/catalog.v1.CatalogService/"

pytestmark = pytest.mark.postgresql


@pytest.fixture(scope="module")
def workers(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A catalog served by two worker processes sharing one database."""
    tmp: Path = tmp_path_factory.mktemp("catalog-workers")
    server = start("examples.catalog:app", tmp, database.env(tmp), "--workers", "2")
    yield server
    server.stop()


def new_product(client: httpx.Client, category: str, price: str = "10.00") -> dict[str, Any]:
    r = client.post("/products", json={"name": "Lamp", "price": price, "category": category})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def sse_events(url: str, category: str, count: int, ready: asyncio.Event) -> list[Any]:
    """The first ``count`` events of WatchPrices as SSE."""
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        params = {"category": category}
        async with client.stream("GET", "/products:watchPrices", params=params) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/event-stream"
            ready.set()
            events: list[Any] = []
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if len(events) == count:
                        return events
    return events


def test_watch_prices_reaches_watchers_in_every_worker(workers: Server) -> None:
    category = f"watch-{uuid.uuid4().hex[:8]}"
    other = f"other-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=workers.url, timeout=10, headers=AUTHORIZATION) as client:
        watched = new_product(client, category)
        unwatched = new_product(client, other)

    async def run() -> list[list[Any]]:
        readies = [asyncio.Event() for _ in range(6)]  # six connections: both workers get some
        watchers = [
            asyncio.ensure_future(sse_events(workers.url, category, 2, ready)) for ready in readies
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 10)
        await asyncio.sleep(0.5)  # every watcher's poller has its starting point
        async with httpx.AsyncClient(base_url=workers.url, headers=AUTHORIZATION) as client:
            for product, price in [(unwatched, "1.00"), (watched, "12.50"), (watched, "9.99")]:
                r = await client.patch(f"/products/{product['id']}", json={"price": price})
                assert r.status_code == 200, r.text
            # A write that leaves the price alone is no price change.
            r = await client.patch(f"/products/{watched['id']}", json={"name": "Lamp 2"})
            assert r.status_code == 200
        return list(await asyncio.wait_for(asyncio.gather(*watchers), 15))

    for events in asyncio.run(run()):
        assert [(e["old_price"], e["new_price"]) for e in events] == [
            ("10.00", "12.50"),
            ("12.50", "9.99"),
        ]
        assert {e["product_id"] for e in events} == {watched["id"]}
        assert all(e["category"] == category for e in events)


def test_watch_prices_over_connect(catalog: Server, http: httpx.Client) -> None:
    category = f"watch-{uuid.uuid4().hex[:8]}"
    product = new_product(http, category)

    async def change_price() -> None:
        await asyncio.sleep(0.6)  # the watcher's poller has its starting point
        async with httpx.AsyncClient(base_url=catalog.url, headers=AUTHORIZATION) as writer:
            r = await writer.put(
                f"/products/{product['id']}",
                json={"name": "Lamp", "price": "11.00", "category": category},
            )
            assert r.status_code == 200, r.text

    async def run() -> dict[str, Any]:
        # Connect sends the headers with the first message (a handler may set
        # some before it), so the change is made while the call waits.
        writer = asyncio.ensure_future(change_price())
        async with httpx.AsyncClient(base_url=catalog.url, timeout=20) as client:
            body = frame(json.dumps({"category": category}).encode())
            headers = {"content-type": "application/connect+json"}
            async with client.stream(
                "POST", SERVICE + "WatchPrices", content=body, headers=headers
            ) as r:
                assert r.status_code == 200
                buffer = b""
                async for chunk in r.aiter_bytes():
                    buffer += chunk
                    size = int.from_bytes(buffer[1:5], "big") if len(buffer) >= 5 else -1
                    if size >= 0 and len(buffer) >= 5 + size:
                        assert buffer[0] == 0
                        await writer
                        return dict(json.loads(buffer[5 : 5 + size]))
        raise AssertionError("the stream ended")

    change = asyncio.run(run())
    assert change["product_id"] == str(product["id"])  # proto3 JSON: int64 as a string
    assert (change["old_price"], change["new_price"]) == ("10.00", "11.00")


def test_import_products_over_connect(http: httpx.Client) -> None:
    category = f"import-{uuid.uuid4().hex[:8]}"
    items = [
        {"name": "A", "price": "1.00", "category": category},
        {"name": "B", "price": "2.00", "category": category},
        {"name": "A", "price": "1.00", "category": category},  # a repeat: not added again
    ]
    body = b"".join(frame(json.dumps({"product": i}).encode()) for i in items)
    r = http.post(
        SERVICE + "ImportProducts",
        content=body,
        headers={"content-type": "application/connect+json"},
    )
    raw = r.content
    size = int.from_bytes(raw[1:5], "big")
    summary = json.loads(raw[5 : 5 + size])
    assert raw[5 + size] == END_STREAM and json.loads(raw[10 + size :]) == {}
    assert summary["created"] == "2"  # int64: a string in proto3 JSON
    assert [(f["index"], f["name"]) for f in summary["failed"]] == [("2", "A")]
    listed = http.get("/products", params={"category": category}).json()["products"]
    assert sorted(p["name"] for p in listed) == ["A", "B"]


def test_import_ends_at_a_message_its_schema_refuses(http: httpx.Client) -> None:
    category = f"import-{uuid.uuid4().hex[:8]}"
    items = [
        {"name": "A", "price": "1.00", "category": category},
        {"name": "C", "price": "1.001", "category": category},  # fractions of a cent
        {"name": "D", "price": "1.00", "category": category},
    ]
    body = b"".join(frame(json.dumps({"product": i}).encode()) for i in items)
    r = http.post(
        SERVICE + "ImportProducts",
        content=body,
        headers={"content-type": "application/connect+json"},
    )
    assert r.content[0] == END_STREAM
    error = json.loads(r.content[5:])["error"]
    assert error["code"] == "invalid_argument" and "product.price" in error["message"]
    listed = http.get("/products", params={"category": category}).json()["products"]
    assert [p["name"] for p in listed] == ["A"]  # read before the bad message arrived


def test_import_products_over_grpc_web(http: httpx.Client) -> None:
    category = f"import-{uuid.uuid4().hex[:8]}"
    request_type = next(
        m.input_type for m in schema().services[0].methods.values() if m.name == "ImportProducts"
    )
    body = b"".join(
        frame(
            proto_request(
                schema(),
                request_type,
                {"product": {"name": n, "price": "3.00", "category": category}},
            )
        )
        for n in ("X", "Y")
    )
    r = http.post(
        SERVICE + "ImportProducts",
        content=body,
        headers={"content-type": "application/grpc-web+proto"},
    )
    raw = r.content
    size = int.from_bytes(raw[1:5], "big")
    summary_type = next(
        m.output_type for m in schema().services[0].methods.values() if m.name == "ImportProducts"
    )
    summary = schema().codec(summary_type).decode(raw[5 : 5 + size])
    assert summary.created == 2 and summary.failed == []
    assert raw[5 + size] == TRAILERS and b"grpc-status: 0" in raw[10 + size :]
