"""The catalog's operations model against the running server: metrics, request ids,
the access log, and bad credentials or timeouts that must not crash anything."""

from __future__ import annotations

import json
import time
from types import ModuleType

import grpc
import httpx
import pytest

from tests.e2e.server import Server
from tests.tokens import ADMIN

LIST = "catalog.v1.CatalogService/ListProducts"
WATCH = "catalog.v1.CatalogService/WatchPrices"
JSON = {"content-type": "application/json"}


def test_metrics_count_calls_of_every_protocol(
    catalog: Server, http: httpx.Client, channel: grpc.Channel, stubs: tuple[ModuleType, ModuleType]
) -> None:
    pb2, pb2_grpc = stubs
    assert http.get("/products").status_code == 200
    assert http.post(f"/{LIST}", json={}).status_code == 200
    pb2_grpc.CatalogServiceStub(channel).ListProducts(pb2.ListProductsRequest(), timeout=10)
    with httpx.Client(base_url=catalog.url) as anonymous:
        refused = anonymous.post("/products", json={"name": "x", "price": "1", "category": "c"})
    assert refused.status_code == 401
    text = httpx.get(f"{catalog.url}/metrics").text
    for protocol in ("rest", "connect", "grpc"):
        assert f'twofold_calls_total{{code="ok",method="{LIST}",protocol="{protocol}"}}' in text
    create = "catalog.v1.CatalogService/CreateProduct"
    assert (
        f'twofold_calls_total{{code="unauthenticated",method="{create}",protocol="rest"}}' in text
    )
    assert "twofold_call_duration_seconds_bucket" in text
    assert "twofold_calls_in_flight" in text


def counter(url: str, protocol: str, method: str, code: str) -> float:
    labels = f'code="{code}",method="{method}",protocol="{protocol}"'
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(f"twofold_calls_total{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_refusals_before_the_handler_are_counted_once(catalog: Server, http: httpx.Client) -> None:
    create = "catalog.v1.CatalogService/CreateProduct"
    cases = [
        # (protocol, method label, code, the request)
        (
            "rest",
            create,
            "resource_exhausted",
            lambda: http.post("/products", content=b"x" * 2**21),
        ),
        (
            "rest",
            create,
            "invalid_argument",
            lambda: http.post("/products", content=b"{", headers=JSON),
        ),
        ("rest", "_OTHER", "not_found", lambda: http.get("/no/such/thing")),
        (
            "jsonrpc",
            "_OTHER",
            "unimplemented",
            lambda: http.post("/jsonrpc", json={"jsonrpc": "2.0", "id": 1, "method": "Nope"}),
        ),
        (
            "connect",
            create,
            "invalid_argument",
            lambda: http.post(f"/{create}", content=b"{", headers=JSON),
        ),
        # A server stream's REST route, as an event stream and as a long poll.
        (
            "rest",
            WATCH,
            "invalid_argument",
            lambda: http.get("/products:watchPrices", headers={"Last-Event-ID": "abc"}),
        ),
        (
            "rest",
            WATCH,
            "invalid_argument",
            lambda: http.get("/products:watchPrices", params={"wait": "5", "after_id": "abc"}),
        ),
    ]
    for protocol, method, code, send in cases:
        before = counter(catalog.url, protocol, method, code)
        r = send()
        assert r.status_code in (200, 400, 404, 413), r.text
        assert r.headers["x-request-id"]
        assert counter(catalog.url, protocol, method, code) == before + 1, (protocol, code)


def test_request_ids_and_one_access_line_per_call(catalog: Server, http: httpx.Client) -> None:
    r = http.get("/products", headers={"x-request-id": "e2e-ops-1"})
    assert r.headers["x-request-id"] == "e2e-ops-1"
    r = http.get("/products/999999999", headers={"x-request-id": "e2e-ops-2"})
    assert r.status_code == 404 and r.headers["x-request-id"] == "e2e-ops-2"
    assert len(http.get("/products").headers["x-request-id"]) == 32
    for _ in range(50):
        lines = [line for line in catalog.output().splitlines() if '"e2e-ops-2"' in line]
        if lines:
            break
        time.sleep(0.1)
    entry = json.loads(lines[0][lines[0].index("{") :])
    assert entry["code"] == "not_found" and entry["protocol"] == "rest"
    assert entry["method"] == "catalog.v1.CatalogService/GetProduct"
    assert ADMIN not in catalog.output()


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer " + b"A" * 60_000,  # over every header limit
        "Bearer \u00ff\u00fe\u00e9".encode(),
        b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.",
        b"Basic dXNlcjpwYXNz",
    ],
)
def test_bad_credentials_never_crash_or_leak(catalog: Server, authorization: bytes) -> None:
    body = {"name": "Bad", "price": "1.00", "category": "bad"}
    r = httpx.post(f"{catalog.url}/products", json=body, headers={"authorization": authorization})
    # 431 or 400 is the HTTP server refusing the header before the app sees it.
    assert r.status_code in (400, 401, 431), r.text
    if r.status_code == 401:
        assert r.json()["code"] == "unauthenticated"
        assert authorization.decode("latin-1") not in r.text
    assert httpx.get(f"{catalog.url}/products").status_code == 200  # still serving
    assert authorization.decode("latin-1")[7:] not in catalog.output()


@pytest.mark.parametrize("value", ["-5", "0", "abc", "1e400", "999999999999"])
def test_bad_request_timeouts(http: httpx.Client, value: str) -> None:
    r = http.get("/products", headers={"request-timeout": value})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
