"""The CORS policy: what it refuses to be built with, what it matches, what it answers."""

from __future__ import annotations

import msgspec
import pytest

from tests.asgi import ASGI
from twofold import App, Cors, DefinitionError, Service


class Out(msgspec.Struct):
    ok: bool


def app(cors: Cors) -> App:
    svc = Service("cors.v1")

    @svc.procedure(http=("GET", "/things"))
    async def list_things() -> Out:
        return Out(True)

    return App(svc, cors=cors)


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        (["*"], "'*' with credentials=True"),
        (["https://app.example.com/"], "no path or trailing slash"),
        (["https://app.example.com/x"], "no path or trailing slash"),
        (["https://App.example.com"], "lowercase ASCII"),
        (["https://bücher.example"], "lowercase ASCII"),
        (["app.example.com"], "scheme://host"),
        (["https://a.*.example.com"], "scheme://host"),
        (["null"], "scheme://host"),
        (["https://app.example.com:443"], "default port :443"),
        ("https://app.example.com", "not one string"),
        ([], "at least one origin"),
    ],
)
def test_policies_browsers_would_misread_are_refused(origins: list[str], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        Cors(origins, credentials=True)


def test_bad_names_are_refused() -> None:
    with pytest.raises(DefinitionError, match="not a valid header name"):
        Cors(["*"], headers=["x y"])
    with pytest.raises(DefinitionError, match="not a valid method name"):
        Cors(["*"], methods=["GET\r\n"])
    with pytest.raises(DefinitionError, match="max_age"):
        Cors(["*"], max_age=-1)


def test_patterns_match_whole_subdomain_labels() -> None:
    cors = Cors(["https://*.example.com:8443", "http://localhost:5173"])
    assert cors.allows("https://a.example.com:8443")
    assert cors.allows("https://a-1.b.example.com:8443")
    assert cors.allows("http://localhost:5173")
    for origin in (
        "https://example.com:8443",
        "https://a.example.com",
        "https://aexample.com:8443",
        "https://a.example.com:84430",
        "https://a.example.com:8443.evil.com",
        "http://a.example.com:8443",
        "http://localhost:51730",
        "https://-.example.com:8443",
    ):
        assert not cors.allows(origin), origin


def test_any_origin_without_credentials_is_answered_with_a_star() -> None:
    r = ASGI(app(Cors(["*"]))).request("GET", "/things", headers={"origin": "https://x.test"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers


def test_any_header_echoes_what_the_preflight_asks() -> None:
    asked = {
        "origin": "https://x.test",
        "access-control-request-method": "GET",
        "access-control-request-headers": "X-Custom, Authorization",
    }
    r = ASGI(app(Cors(["*"], headers=["*"]))).request("OPTIONS", "/things", headers=asked)
    assert r.status_code == 204
    assert r.headers["access-control-allow-headers"] == "x-custom, authorization"
    assert "content-length" not in r.headers  # a 204 has none (RFC 9110 §8.6)


def test_an_options_request_that_is_no_preflight_goes_to_the_app() -> None:
    r = ASGI(app(Cors(["*"]))).request("OPTIONS", "/things", headers={"origin": "https://x.test"})
    # REST's own OPTIONS answer (Allow), shared, and no preflight's headers.
    assert "GET" in r.headers["allow"] and "access-control-allow-methods" not in r.headers
    assert r.headers["access-control-allow-origin"] == "*"


def test_vary_is_merged_not_duplicated() -> None:
    from twofold.http.cors import _vary

    assert _vary([(b"vary", b"Accept-Encoding")], b"Origin") == [
        (b"vary", b"Accept-Encoding, Origin")
    ]
    assert _vary([(b"Vary", b"origin")], b"Origin") == [(b"Vary", b"origin")]
    assert _vary([(b"vary", b"*")], b"Origin") == [(b"vary", b"*")]


def test_the_catalog_allows_its_development_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    from examples.catalog import app as catalog
    from examples.catalog import cors

    asked = {"origin": "http://localhost:5173", "access-control-request-method": "DELETE"}
    r = ASGI(catalog).request("OPTIONS", "/products/1", headers=asked)
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == asked["origin"]
    monkeypatch.setenv("CATALOG_CORS_ORIGINS", "https://shop.example.com, https://*.shop.dev")
    listed = cors()
    assert listed.allows("https://shop.example.com") and listed.allows("https://pr-1.shop.dev")
    assert not listed.allows("http://localhost:5173")
