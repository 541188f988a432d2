"""docs/cors.md: the example answers browsers as the page says."""

from __future__ import annotations

from docs_src.cors.app import app
from tests.asgi import ASGI

PAGE = "https://shop.example.com"


def test_the_preflight_needs_no_credentials_and_the_answer_is_shared() -> None:
    at = ASGI(app)
    preflight = at.request(
        "OPTIONS",
        "/orders/1",
        headers={
            "origin": PAGE,
            "access-control-request-method": "GET",
            "access-control-request-headers": "x-api-key",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == PAGE
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert preflight.headers["access-control-max-age"] == "3600"
    r = at.request("GET", "/orders/1", headers={"origin": PAGE, "x-api-key": "web-key"})
    assert r.status_code == 200 and r.json() == {"id": 1, "total": 9.5}
    assert r.headers["access-control-allow-origin"] == PAGE
    assert "etag" in r.headers["access-control-expose-headers"]
    preview = "https://pr-42.preview.shop.example.com"
    r = at.request("GET", "/orders/1", headers={"origin": preview})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == preview


def test_other_origins_are_not_shared() -> None:
    at = ASGI(app)
    r = at.request("GET", "/orders/1", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers and r.headers["vary"] == "Origin"
    refused = at.request(
        "OPTIONS",
        "/orders/1",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert refused.status_code == 403
    assert refused.text == "CORS preflight refused: origin not allowed\n"
