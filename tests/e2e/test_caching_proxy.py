"""The catalog behind a real caching proxy (nginx with proxy_cache), and racing writers.

What the app answers (ETag, Cache-Control, 304) is only worth something if an
intermediary the server never sees acts upon it. Requests that reach the app
are counted in its access log; what nginx did is in ``X-Cache-Status``.
Products are fresh for ``MAX_AGE`` seconds here (CATALOG_PRODUCT_MAX_AGE).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e import nginx
from tests.e2e.databases import Database
from tests.e2e.server import Server, start
from tests.tokens import AUTHORIZATION

MAX_AGE = 2
CONNECT_GET = "/catalog.v1.CatalogService/GetProduct?encoding=json&message=%7B%22id%22%3A{id}%7D"
REPORT_GET = "/catalog.v1.CatalogService/GenerateReport?encoding=json"

pytestmark = pytest.mark.postgresql


@pytest.fixture(scope="module")
def app_server(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("cached-catalog")
    env = {**database.env(tmp), "CATALOG_PRODUCT_MAX_AGE": str(MAX_AGE)}
    server = start("examples.catalog:app", tmp, env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(app_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[nginx.Nginx]:
    executable = nginx.binary()
    if executable is None:
        if os.geteuid() == 0:
            pytest.fail("nginx is not installed: run scripts/ensure-nginx (make test does)")
        pytest.skip("nginx is not installed and this is not root: run scripts/ensure-nginx as root")
    running = nginx.start(executable, app_server.url, tmp_path_factory.mktemp("nginx"))
    yield running
    running.stop()


@pytest.fixture
def client(proxy: nginx.Nginx) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=10.0, headers=AUTHORIZATION) as through_proxy:
        yield through_proxy


def reached_app(server: Server, target: str, status: int | None = None) -> int:
    """How many requests for ``target`` (``GET /products/1``) the app answered, by its
    access log, which writes the path without the query: compare counts before and after."""
    request = target.split("?", 1)[0]
    return sum(
        1
        for line in server.access_log()
        if line.get("request") == request and status in (None, line["status"])
    )


def new_product(client: httpx.Client, price: str = "10.00") -> dict[str, Any]:
    r = client.post("/products", json={"name": "Mug", "price": price, "category": "Kitchen"})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    product: dict[str, Any] = r.json()
    return product


def test_a_repeated_get_is_a_hit_that_never_reaches_the_app(
    client: httpx.Client, app_server: Server
) -> None:
    url = f"/products/{new_product(client)['id']}"
    first = client.get(url)
    assert first.status_code == 200
    assert first.headers["x-cache-status"] == "MISS"
    assert first.headers["cache-control"] == f"public, max-age={MAX_AGE}"
    for _ in range(3):
        again = client.get(url)
        assert again.headers["x-cache-status"] == "HIT"
        assert again.json() == first.json()
        assert again.headers["etag"] == first.headers["etag"]
    assert client.head(url).headers["x-cache-status"] == "HIT"
    assert reached_app(app_server, f"GET {url}") == 1


def test_after_max_age_the_proxy_revalidates_and_the_app_answers_304(
    client: httpx.Client, app_server: Server
) -> None:
    url = f"/products/{new_product(client)['id']}"
    first = client.get(url)
    assert first.headers["x-cache-status"] == "MISS"
    time.sleep(MAX_AGE + 1.1)
    revalidated = client.get(url)
    assert revalidated.headers["x-cache-status"] == "REVALIDATED"
    assert revalidated.status_code == 200
    assert revalidated.json() == first.json()
    assert reached_app(app_server, f"GET {url}", 304) == 1
    # The 304 refreshed the entry: fresh again for another max-age.
    assert client.get(url).headers["x-cache-status"] == "HIT"


def test_a_patch_never_shows_a_stale_price_past_max_age(client: httpx.Client) -> None:
    url = f"/products/{new_product(client, '10.00')['id']}"
    cached = client.get(url)
    cached_at = time.monotonic()
    assert cached.headers["x-cache-status"] == "MISS"
    patched = client.patch(
        url, json={"price": "12.50"}, headers={"if-match": cached.headers["etag"]}
    )
    assert patched.status_code == 200, patched.text
    assert patched.headers["cache-control"] == "no-store"
    # Within max-age the cache may serve the old price; once it has passed
    # (plus a second, as nginx counts whole seconds) it must not.
    seen_after = 0
    while time.monotonic() < cached_at + MAX_AGE + 2.5:
        r = client.get(url)
        if time.monotonic() > cached_at + MAX_AGE + 1:
            assert r.json()["price"] == "12.50", r.headers
            seen_after += 1
        time.sleep(0.1)
    assert seen_after > 0
    assert client.get(url).headers["etag"] == patched.headers["etag"]


def test_a_connect_get_is_cached_the_same_way(client: httpx.Client, app_server: Server) -> None:
    target = CONNECT_GET.format(id=new_product(client)["id"])
    # Every Connect GET of GetProduct is one path: count from here on.
    request = f"GET {target}"
    gets, revalidated = reached_app(app_server, request), reached_app(app_server, request, 304)
    first = client.get(target)
    assert first.status_code == 200, first.text
    assert first.headers["x-cache-status"] == "MISS"
    assert first.headers["cache-control"] == f"public, max-age={MAX_AGE}"
    again = client.get(target)
    assert again.headers["x-cache-status"] == "HIT"
    assert again.json() == first.json()
    assert reached_app(app_server, f"GET {target}") == gets + 1
    time.sleep(MAX_AGE + 1.1)
    assert client.get(target).headers["x-cache-status"] == "REVALIDATED"
    assert reached_app(app_server, f"GET {target}", 304) == revalidated + 1


def test_private_no_cache_and_no_store_answers_are_never_cached(
    client: httpx.Client, app_server: Server
) -> None:
    new_product(client)
    cases = {
        "/products?page_size=1": "no-cache",  # a list: revalidated every time
        REPORT_GET: f"private, max-age={MAX_AGE}",  # for the caller's own cache only
        "/products/987654321": "no-store",  # an error
    }
    for target, cache_control in cases.items():
        before = reached_app(app_server, f"GET {target}")
        for _ in range(3):
            r = client.get(target)
            assert r.headers["cache-control"] == cache_control
            assert r.headers["x-cache-status"] != "HIT"
        assert reached_app(app_server, f"GET {target}") == before + 3, target


def test_of_two_racing_conditional_writes_exactly_one_wins(app_server: Server) -> None:
    with httpx.Client(base_url=app_server.url, timeout=10.0, headers=AUTHORIZATION) as direct:
        for _round in range(5):
            url = f"/products/{new_product(direct)['id']}"
            tag = direct.get(url).headers["etag"]
            barrier = threading.Barrier(2)

            def patch(
                price: str, tag: str = tag, url: str = url, barrier: threading.Barrier = barrier
            ) -> httpx.Response:
                with httpx.Client(
                    base_url=app_server.url, timeout=10.0, headers=AUTHORIZATION
                ) as own:
                    barrier.wait()
                    return own.patch(url, json={"price": price}, headers={"if-match": tag})

            with ThreadPoolExecutor(2) as pool:
                results = list(pool.map(patch, ["11.00", "12.00"]))
            assert sorted(r.status_code for r in results) == [200, 412], [r.text for r in results]
            winner = next(r for r in results if r.status_code == 200)
            loser = next(r for r in results if r.status_code == 412)
            assert loser.headers["content-type"] == "application/problem+json"
            assert loser.json()["code"] == "aborted"
            stored = direct.get(url)
            assert stored.json() == winner.json()
            assert stored.headers["etag"] == winner.headers["etag"]
