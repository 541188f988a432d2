"""CORS over ``twofold serve``: every wire shares its answers with a listed origin,
preflights are answered before credentials are asked for, refusals carry no
Access-Control-Allow-Origin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.edge_app import ORIGIN
from tests.e2e.server import ROOT, start
from twofold.http.envelope import frame

TARGET = "tests.e2e.edge_app:app"
FROM_APP = {"origin": ORIGIN}


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server = start(TARGET, tmp_path_factory.mktemp("cors"), None, "--no-grpc")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


def shared(r: httpx.Response, origin: str = ORIGIN) -> None:
    """``r`` is readable by a page on ``origin``, credentials included."""
    assert r.headers["access-control-allow-origin"] == origin
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "origin" in r.headers["vary"].lower()


def exposed(r: httpx.Response) -> set[str]:
    return {h.strip() for h in r.headers["access-control-expose-headers"].split(",")}


def calls(http: httpx.Client) -> list[str]:
    return list(http.post("/edge.v1.Edge/Calls", json={}).json()["calls"])


def test_rest_answers_and_errors_are_shared(http: httpx.Client) -> None:
    created = http.post("/notes", json={"id": 7, "text": "x"}, headers=FROM_APP)
    assert created.status_code == 201
    shared(created)
    assert {"location", "etag", "link", "retry-after", "x-request-id"} <= exposed(created)
    refused = http.get("/notes/7", headers=FROM_APP)  # no credentials: a problem document
    assert refused.status_code == 401
    shared(refused)
    assert "www-authenticate" in exposed(refused)
    invalid = http.post("/notes", json={"id": -1, "text": "x"}, headers=FROM_APP)
    assert invalid.status_code == 400
    shared(invalid)


def test_sse_is_shared(http: httpx.Client) -> None:
    r = http.get(
        "/notes:count", params={"n": 2}, headers={**FROM_APP, "accept": "text/event-stream"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    shared(r)


def test_connect_post_get_and_stream_are_shared(http: httpx.Client) -> None:
    post = http.post("/edge.v1.Edge/Calls", json={}, headers=FROM_APP)
    assert post.status_code == 200
    shared(post)
    get = http.get(
        "/edge.v1.Edge/Calls",
        params={"connect": "v1", "encoding": "json", "message": "{}"},
        headers=FROM_APP,
    )
    assert get.status_code == 200
    shared(get)
    stream = http.post(
        "/edge.v1.Edge/CountNotes",
        content=frame(json.dumps({"n": 2}).encode()),
        headers={**FROM_APP, "content-type": "application/connect+json"},
    )
    assert stream.status_code == 200
    shared(stream)
    assert "connect-content-encoding" in exposed(stream)
    error = http.post("/edge.v1.Edge/Nap", json={"seconds": -1}, headers=FROM_APP)
    assert error.status_code == 400 and error.json()["code"] == "invalid_argument"
    shared(error)


def test_grpc_web_is_shared_with_its_status_headers_exposed(http: httpx.Client) -> None:
    # A trailers-only error (no credentials): grpc-status is in the headers,
    # which a page can read only if they are exposed.
    r = http.post(
        "/edge.v1.Edge/GetNote",
        content=frame(b"\x08\x01"),
        headers={**FROM_APP, "content-type": "application/grpc-web+proto", "x-grpc-web": "1"},
    )
    assert r.status_code == 200 and r.headers["grpc-status"] == "16"
    shared(r)
    assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= exposed(r)


def test_jsonrpc_is_shared(http: httpx.Client) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "Calls", "params": {}}
    r = http.post("/jsonrpc", json=body, headers=FROM_APP)
    assert r.status_code == 200 and "result" in r.json(), r.text
    shared(r)


def test_a_guarded_methods_preflight_needs_no_credentials(http: httpx.Client) -> None:
    before = calls(http)
    r = http.options(
        "/notes/1",
        headers={
            **FROM_APP,
            "access-control-request-method": "GET",
            "access-control-request-headers": "Authorization, X-Request-Id",
        },
    )
    assert r.status_code == 204, r.text
    shared(r)
    assert r.headers["access-control-allow-methods"] == "GET"
    assert r.headers["access-control-allow-headers"] == "authorization, x-request-id"
    assert r.headers["access-control-max-age"] == "300"
    # Connect's and gRPC-Web's own headers pass too, on an RPC path.
    rpc = http.options(
        "/edge.v1.Edge/GetNote",
        headers={
            **FROM_APP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,connect-protocol-version,"
            "connect-timeout-ms,x-grpc-web,x-user-agent,grpc-timeout",
        },
    )
    assert rpc.status_code == 204
    shared(rpc)
    assert calls(http) == before  # no handler ran


@pytest.mark.parametrize(
    ("origin", "method", "headers", "why"),
    [
        ("https://evil.example", "POST", "content-type", "origin not allowed"),
        (ORIGIN, "PURGE", "", "method PURGE not allowed"),
        (ORIGIN, "POST", "content-type, x-evil", "header x-evil not allowed"),
    ],
)
def test_a_disallowed_preflight_is_refused_before_any_handler(
    http: httpx.Client, origin: str, method: str, headers: str, why: str
) -> None:
    before = calls(http)
    asked = {"origin": origin, "access-control-request-method": method}
    if headers:
        asked["access-control-request-headers"] = headers
    r = http.options("/notes", headers=asked)
    assert (r.status_code, r.text) == (403, f"CORS preflight refused: {why}\n")
    assert "access-control-allow-origin" not in r.headers
    assert "origin" in r.headers["vary"].lower()
    assert calls(http) == before


def test_origins_not_listed_are_served_but_not_shared(http: httpx.Client) -> None:
    for origin in ("https://evil.example", "https://preview.example.com", "null"):
        r = http.post("/edge.v1.Edge/Calls", json={}, headers={"origin": origin})
        assert r.status_code == 200
        assert "access-control-allow-origin" not in r.headers
        assert "origin" in r.headers["vary"].lower()  # caches must not mix the two
    plain = http.post("/edge.v1.Edge/Calls", json={})  # same-origin or not a browser
    assert "access-control-allow-origin" not in plain.headers
    assert "origin" in plain.headers["vary"].lower()


def test_a_pattern_allows_subdomains_only(http: httpx.Client) -> None:
    for origin in ("https://pr-12.preview.example.com", "https://a.b.preview.example.com"):
        shared(http.post("/edge.v1.Edge/Calls", json={}, headers={"origin": origin}), origin)
    for origin in ("https://evilpreview.example.com", "http://pr-12.preview.example.com"):
        r = http.post("/edge.v1.Edge/Calls", json={}, headers={"origin": origin})
        assert "access-control-allow-origin" not in r.headers


def test_the_catalog_refuses_any_origin_with_credentials() -> None:
    env = {"CATALOG_CORS_ORIGINS": "*", "CATALOG_CORS_CREDENTIALS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "twofold", "routes", "examples.catalog:app"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "'*' with credentials=True" in done.stderr
    assert "Traceback" not in done.stderr
