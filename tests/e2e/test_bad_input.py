"""Hostile and malformed input, protocol by protocol: a clear error, never a 500,
and the database exactly as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

MiB = 1 << 20
GET = "/catalog.v1.CatalogService/GetProduct"
CREATE = "/catalog.v1.CatalogService/CreateProduct"


def all_products(http: httpx.Client) -> list[dict[str, Any]]:
    products: list[dict[str, Any]] = []
    token = ""
    while True:
        page = http.get("/products", params={"page_size": 100, "page_token": token}).json()
        products += page["products"]
        token = page.get("next_page_token", "")
        if not token:
            return products


@pytest.fixture
def unchanged(http: httpx.Client) -> Iterator[None]:
    """Fail the test if it changed any product."""
    before = all_products(http)
    yield
    assert all_products(http) == before


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = response.json()
    assert doc["status"] == status and doc["code"] == code and doc["title"]
    return doc


@pytest.mark.usefixtures("unchanged")
class TestRest:
    def test_malformed_json(self, http: httpx.Client) -> None:
        r = http.post(
            "/products", content=b'{"name": ', headers={"content-type": "application/json"}
        )
        problem(r, 400, "invalid_argument")

    def test_wrong_types_and_missing_fields(self, http: httpx.Client) -> None:
        r = http.post("/products", json={"name": 5, "price": "1.00", "category": "x"})
        assert problem(r, 400, "invalid_argument")["violations"][0]["field"] == "product.name"
        r = http.post("/products", json={"name": "x"})
        fields = [v["field"] for v in problem(r, 400, "invalid_argument")["violations"]]
        assert fields and all(f.startswith("product.") for f in fields)
        r = http.post("/products", json=[1, 2, 3])
        problem(r, 400, "invalid_argument")

    def test_unknown_route_and_wrong_verb(self, http: httpx.Client) -> None:
        problem(http.get("/no/such/thing"), 404, "not_found")
        r = http.put("/products")
        problem(r, 405, "unimplemented")
        assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}

    def test_oversized_body(self, http: httpx.Client) -> None:
        body = b'{"name": "' + b"x" * (MiB + 10) + b'"}'
        r = http.post("/products", content=body, headers={"content-type": "application/json"})
        problem(r, 413, "resource_exhausted")

    def test_wrong_media_type(self, http: httpx.Client) -> None:
        r = http.post("/products", content=b"name=x", headers={"content-type": "text/plain"})
        problem(r, 415, "invalid_argument")

    def test_invalid_page_token_and_size(self, http: httpx.Client) -> None:
        doc = problem(
            http.get("/products", params={"page_token": "garbage"}), 400, "invalid_argument"
        )
        assert doc["violations"][0]["field"] == "page_token"
        for size in ("0", "-1", "100000", "ten"):
            doc = problem(
                http.get("/products", params={"page_size": size}), 400, "invalid_argument"
            )
            assert doc["violations"][0]["field"] == "page_size"

    def test_path_value_that_is_not_an_id(self, http: httpx.Client) -> None:
        problem(http.get("/products/abc"), 400, "invalid_argument")
        problem(http.get("/products/99999999999999999999999999"), 400, "invalid_argument")


def rpc(http: httpx.Client, body: bytes | str, **headers: str) -> httpx.Response:
    raw = body.encode() if isinstance(body, str) else body
    return http.post(
        "/jsonrpc", content=raw, headers={"content-type": "application/json", **headers}
    )


@pytest.mark.usefixtures("unchanged")
class TestJsonRpc:
    def error(self, response: httpx.Response, code: int) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["jsonrpc"] == "2.0" and body["error"]["code"] == code, body
        return body  # type: ignore[no-any-return]

    def test_parse_error(self, http: httpx.Client) -> None:
        body = self.error(rpc(http, '{"jsonrpc": "2.0", "method": '), -32700)
        assert body["id"] is None

    def test_invalid_requests(self, http: httpx.Client) -> None:
        self.error(rpc(http, '{"jsonrpc": "1.0", "method": "GetProduct", "id": 1}'), -32600)
        self.error(rpc(http, '{"jsonrpc": "2.0", "method": 5, "id": 1}'), -32600)
        self.error(rpc(http, "[]"), -32600)
        self.error(rpc(http, '"just a string"'), -32600)

    def test_unknown_method(self, http: httpx.Client) -> None:
        self.error(rpc(http, '{"jsonrpc": "2.0", "method": "DropTables", "id": 1}'), -32601)

    def test_invalid_params(self, http: httpx.Client) -> None:
        call = {
            "jsonrpc": "2.0",
            "method": "CreateProduct",
            "id": 1,
            "params": {"product": {"name": "x", "price": "free", "category": "c"}},
        }
        body = self.error(rpc(http, json.dumps(call)), -32602)
        assert body["error"]["data"]["code"] == "invalid_argument"
        assert body["error"]["data"]["violations"][0]["field"] == "product.price"
        call["params"] = {"product": {"name": "x", "price": "1.00", "category": "c"}, "extra": 1}
        self.error(rpc(http, json.dumps(call)), -32602)

    def test_batch_mixes_results_and_errors(self, http: httpx.Client) -> None:
        batch = [
            {"jsonrpc": "2.0", "method": "GetProduct", "params": {"id": 987654321}, "id": "a"},
            {"jsonrpc": "2.0", "method": "Nope", "id": "b"},
            {"jsonrpc": "2.0", "method": "ListProducts", "params": {"page_size": 1}, "id": "c"},
            {"jsonrpc": "2.0", "method": "ListProducts"},  # a notification: no answer
        ]
        r = rpc(http, json.dumps(batch))
        assert r.status_code == 200
        answers = {a["id"]: a for a in r.json()}
        assert set(answers) == {"a", "b", "c"}
        assert answers["a"]["error"]["data"]["code"] == "not_found"
        assert answers["b"]["error"]["code"] == -32601
        assert "products" in answers["c"]["result"]

    def test_oversized_body(self, http: httpx.Client) -> None:
        r = rpc(http, b'{"jsonrpc": "2.0", "method": "x", "params": "' + b"x" * MiB + b'"}')
        assert r.status_code == 413


@pytest.mark.usefixtures("unchanged")
class TestConnect:
    def error(self, response: httpx.Response, status: int, code: str) -> dict[str, Any]:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        body: dict[str, Any] = response.json()
        assert body["code"] == code
        return body

    def post(self, http: httpx.Client, path: str, body: bytes) -> httpx.Response:
        headers = {"content-type": "application/json", "connect-protocol-version": "1"}
        return http.post(path, content=body, headers=headers)

    def test_malformed_json_and_wrong_types(self, http: httpx.Client) -> None:
        self.error(self.post(http, GET, b'{"id": '), 400, "invalid_argument")
        body = self.error(self.post(http, GET, b'{"id": "abc"}'), 400, "invalid_argument")
        assert body["details"][0]["type"] == "google.rpc.BadRequest"
        self.error(
            self.post(http, CREATE, b'{"product": {"price": "1.00", "category": "c"}}'),
            400,
            "invalid_argument",
        )

    def test_unknown_method_and_wrong_verb(self, http: httpx.Client) -> None:
        r = self.post(http, "/catalog.v1.CatalogService/DropTables", b"{}")
        assert r.status_code == 404
        assert http.put(GET).status_code == 405
        r = http.get(CREATE, params={"encoding": "json", "message": "{}"})
        assert r.status_code == 405  # not side-effect free: no GET

    def test_wrong_content_type(self, http: httpx.Client) -> None:
        r = http.post(GET, content=b"id=1", headers={"content-type": "text/plain"})
        assert r.status_code == 415

    def test_oversized_body(self, http: httpx.Client) -> None:
        body = b'{"product": {"name": "' + b"x" * MiB + b'"}}'
        self.error(self.post(http, CREATE, body), 429, "resource_exhausted")

    def test_bad_timeout_header(self, http: httpx.Client) -> None:
        r = http.post(
            GET,
            content=b'{"id": 1}',
            headers={"content-type": "application/json", "connect-timeout-ms": "soon"},
        )
        self.error(r, 400, "invalid_argument")
