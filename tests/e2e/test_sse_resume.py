"""Resumable SSE on the catalog: WatchPrices' events carry the change's id, and
``Last-Event-ID`` (or ``after_id``) resumes after it; with the ``eventsource``
package, an EventSource reconnecting by itself misses nothing."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.databases import Database
from tests.e2e.programs import node_json
from tests.e2e.server import ROOT, Server, start
from tests.tokens import ADMIN, AUTHORIZATION

pytestmark = pytest.mark.postgresql

NODE_CLIENT = ROOT / "tests" / "e2e" / "node" / "sse_resume.mjs"


@pytest.fixture(scope="module")
def brief(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A catalog whose WatchPrices streams end after a second or two, as a
    proxy or a ten-minute lifetime would end them."""
    tmp: Path = tmp_path_factory.mktemp("catalog-brief")
    env = {**database.env(tmp), "CATALOG_WATCH_LIFETIME": "1.5"}
    server = start("examples.catalog:app", tmp, env, "--no-grpc")
    yield server
    server.stop()


def changes(http: httpx.Client, *prices: str) -> tuple[dict[str, Any], str]:
    """A product of a category of its own, with its price set to each of ``prices``.

    A change in another category comes first, so that these have ids above 1.
    """
    other = http.post("/products", json={"name": "V", "price": "1.00", "category": "other"})
    assert http.patch(f"/products/{other.json()['id']}", json={"price": "1.50"}).status_code == 200
    category = f"resume-{uuid.uuid4().hex[:8]}"
    r = http.post("/products", json={"name": "Vase", "price": "10.00", "category": category})
    product = r.json()
    for price in prices:
        assert http.patch(f"/products/{product['id']}", json={"price": price}).status_code == 200
    return product, category


def events(http: httpx.Client, count: int, **request: Any) -> list[dict[str, Any]]:
    """The first ``count`` events of a GET /products:watchPrices, as their fields."""
    out: list[dict[str, Any]] = []
    with http.stream("GET", "/products:watchPrices", **request) as r:
        assert r.status_code == 200, r.read()
        fields: dict[str, Any] = {}
        for line in r.iter_lines():
            if line.startswith(":"):
                continue
            if not line:
                if fields:
                    out.append(fields)
                    fields = {}
                if len(out) == count:
                    return out
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
    return out


def ids_of(client: httpx.Client, category: str, count: int) -> list[int]:
    """The ids of the first ``count`` changes of ``category``, replayed from the start
    (ids start at 1, and ``changes`` made one before these)."""
    got = events(client, count, params={"category": category, "after_id": 1}, timeout=20)
    return [int(e["id"]) for e in got]


def test_last_event_id_resumes_after_that_change(http: httpx.Client) -> None:
    product, category = changes(http, "11.00", "12.00", "13.00")
    first, second, third = ids_of(http, category, 3)
    assert first < second < third
    got = events(
        http,
        2,
        params={"category": category},
        headers={"Last-Event-ID": str(first)},
        timeout=20,
    )
    assert [int(e["id"]) for e in got] == [second, third]
    assert [json.loads(e["data"])["new_price"] for e in got] == ["12.00", "13.00"]
    assert got[0]["retry"] == "1000" and "retry" not in got[1]
    # Last-Event-ID is newer than the query's after_id, which it overrides.
    got = events(
        http,
        1,
        params={"category": category, "after_id": first},
        headers={"Last-Event-ID": str(second)},
        timeout=20,
    )
    assert [int(e["id"]) for e in got] == [third]
    assert json.loads(got[0]["data"])["product_id"] == product["id"]


def test_a_last_event_id_that_is_not_an_id_is_a_400(http: httpx.Client) -> None:
    for bad in ("abc", "-1", "1" * 2000, str(2**63), "null"):
        r = http.get("/products:watchPrices", headers={"Last-Event-ID": bad})
        assert r.status_code == 400, bad
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules" / "eventsource").exists(),
    reason="needs node and `npm ci` (make does both)",
)
def test_an_eventsource_that_reconnects_misses_nothing(brief: Server) -> None:
    with httpx.Client(base_url=brief.url, headers=AUTHORIZATION, timeout=10) as http:
        product, category = changes(http)
    out = node_json(NODE_CLIENT, brief.url, ADMIN, str(product["id"]), category)
    assert [e["price"] for e in out["events"]] == ["11.00", "12.00", "13.00"]
    ids = [int(e["id"]) for e in out["events"]]
    assert ids == sorted(set(ids))
    # The first connection had no id to give; the second gave the last one it saw.
    assert out["requests"][:2] == [None, str(ids[0])]
