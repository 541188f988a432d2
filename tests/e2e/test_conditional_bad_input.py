"""Bad validators, tokens, patches and keys against the running catalog: each one a
clear problem document (or RPC error), nothing written, never a 500."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

CONNECT = "/catalog.v1.CatalogService"


@pytest.fixture
def product(http: httpx.Client) -> dict[str, Any]:
    body = {"name": "Lamp", "price": "40.00", "category": "Light", "tags": ["desk"]}
    r = http.post("/products", json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def unchanged(http: httpx.Client, product: dict[str, Any]) -> None:
    assert http.get(f"/products/{product['id']}").json() == product


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["cache-control"] == "no-store"
    doc: dict[str, Any] = r.json()
    assert doc["code"] == code and doc["detail"], doc
    return doc


@pytest.mark.parametrize(
    ("if_match", "status", "code"),
    [
        ('W/"anything"', 412, "aborted"),  # weak: never matches a strong comparison
        ('"stale"', 412, "aborted"),
        ("no-quotes", 400, "invalid_argument"),
        ('"a", "b"', 400, "invalid_argument"),
        ('""', 400, "invalid_argument"),
    ],
)
def test_bad_if_match_writes_nothing(
    http: httpx.Client, product: dict[str, Any], if_match: str, status: int, code: str
) -> None:
    url = f"/products/{product['id']}"
    headers = {"if-match": if_match}
    problem(http.patch(url, json={"price": "1.00"}, headers=headers), status, code)
    new = {"name": "X", "price": "1.00", "category": "Y"}
    problem(http.put(url, json=new, headers=headers), status, code)
    problem(http.delete(url, headers=headers), status, code)
    unchanged(http, product)


def test_if_match_star_and_the_current_etag(http: httpx.Client, product: dict[str, Any]) -> None:
    url = f"/products/{product['id']}"
    r = http.patch(url, json={"price": "41.00"}, headers={"if-match": "*"})
    assert r.status_code == 200, r.text
    current = r.headers["etag"]
    assert current == f'"{r.json()["etag"]}"'
    r = http.patch(url, json={"price": "42.00"}, headers={"if-match": current})
    assert r.status_code == 200 and r.json()["price"] == "42.00"
    problem(http.patch("/products/987654321", json={}, headers={"if-match": "*"}), 404, "not_found")


def test_modified_since_is_412_and_writes_nothing(
    http: httpx.Client, product: dict[str, Any]
) -> None:
    url = f"/products/{product['id']}"
    r = http.get(url)
    last_modified = r.headers["last-modified"]
    assert http.get(url, headers={"if-modified-since": last_modified}).status_code == 304
    earlier = "Sun, 06 Nov 1994 08:49:37 GMT"
    headers = {"if-unmodified-since": earlier}
    problem(http.patch(url, json={"price": "1.00"}, headers=headers), 412, "aborted")
    new = {"name": "X", "price": "1.00", "category": "Y"}
    problem(http.put(url, json=new, headers=headers), 412, "aborted")
    problem(http.delete(url, headers=headers), 412, "aborted")
    unchanged(http, product)
    # Its own Last-Modified is the condition that holds.
    r = http.patch(url, json={"price": "41.00"}, headers={"if-unmodified-since": last_modified})
    assert r.status_code == 200 and r.json()["price"] == "41.00", r.text
    assert "last-modified" in r.headers  # sent on writes too
    # Over RPC the field is the condition, ABORTED when stale.
    stale = {
        "id": product["id"],
        "product": {"name": "Z"},
        "unmodifiedSince": "1994-11-06T08:49:37Z",
    }
    r = http.post(f"{CONNECT}/UpdateProduct", json=stale)
    assert r.status_code == 409 and r.json()["code"] == "aborted", r.text
    assert http.get(url).json()["name"] == "Lamp"


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": 0},
        {"page_size": -1},
        {"page_size": 10**6},
        {"page_size": "many"},
        {"page_token": "garbage"},
        {"page_token": "x" * 2000},
        {"page_token": "%%%"},
    ],
)
def test_bad_page_size_or_token(http: httpx.Client, params: dict[str, Any]) -> None:
    doc = problem(http.get("/products", params=params), 400, "invalid_argument")
    assert doc["violations"][0]["field"] in ("page_size", "page_token")


def test_a_token_from_another_filter(http: httpx.Client, product: dict[str, Any]) -> None:
    http.post("/products", json={"name": "B", "price": "1.00", "category": "Light"})
    first = http.get("/products", params={"page_size": 1, "category": "Light"})
    token = first.json()["next_page_token"]
    assert token and 'rel="next"' in first.headers["link"]
    other = http.get("/products", params={"page_size": 1, "category": "Other", "page_token": token})
    problem(other, 400, "invalid_argument")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "product.name"),  # merge patch's null removes: a name is required
        ({"price": None}, "product.price"),
        ({"colour": "red"}, "product.colour"),  # unknown
        ({"name": ""}, "product.name"),
        ({"price": 1.5}, "product.price"),  # a number: prices are decimal strings
    ],
)
def test_bad_merge_patches(
    http: httpx.Client, product: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    r = http.patch(
        f"/products/{product['id']}",
        json=body,
        headers={"content-type": "application/merge-patch+json"},
    )
    doc = problem(r, 400, "invalid_argument")
    assert doc["violations"][0]["field"] == field
    unchanged(http, product)


def test_a_merge_patch_changes_only_what_it_names(
    http: httpx.Client, product: dict[str, Any]
) -> None:
    r = http.patch(
        f"/products/{product['id']}",
        content=b'{"tags": ["a", "b"]}',
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    versioned = {"etag": r.json()["etag"], "updated_at": r.json()["updated_at"]}
    assert r.json() == {**product, "tags": ["a", "b"], **versioned}


def test_update_mask_over_rpc(http: httpx.Client, product: dict[str, Any]) -> None:
    patch = {"name": "Renamed", "price": "5.00"}
    body = {"id": product["id"], "product": patch, "updateMask": "price"}
    r = http.post(f"{CONNECT}/UpdateProduct", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Lamp" and r.json()["price"] == "5.00"  # only the mask
    for mask in ("colour", "name,category"):  # unknown; named but not given
        body = {"id": product["id"], "product": patch, "updateMask": mask}
        r = http.post(f"{CONNECT}/UpdateProduct", json=body)
        assert r.status_code == 400 and r.json()["code"] == "invalid_argument", r.text
    stale = {"id": product["id"], "product": {"name": "Z"}, "etag": product["etag"]}
    r = http.post(f"{CONNECT}/UpdateProduct", json=stale)
    assert r.status_code == 409 and r.json()["code"] == "aborted"
    assert http.get(f"/products/{product['id']}").json()["name"] == "Lamp"


@pytest.mark.postgresql
def test_bad_idempotency_keys(http: httpx.Client) -> None:
    # A category of its own: the session's catalog holds other tests' products.
    category = f"keyed-{uuid.uuid4().hex[:8]}"
    body = {"name": "Keyed", "price": "3.00", "category": category}
    problem(http.post("/products", json=body, headers={"idempotency-key": "k" * 256}), 400,
            "invalid_argument")  # fmt: skip
    problem(http.post("/products", json=body, headers={"idempotency-key": "a\tb"}), 400,
            "invalid_argument")  # fmt: skip
    r = http.post("/products", json=body, headers={"idempotency-key": category})
    assert r.status_code == 201
    assert http.post("/products", json=body, headers={"idempotency-key": category}).json() == (
        r.json()
    )
    other = {**body, "name": "Other"}
    problem(http.post("/products", json=other, headers={"idempotency-key": category}), 422,
            "invalid_argument")  # fmt: skip
    listed = http.get("/products", params={"category": category}).json()["products"]
    assert len(listed) == 1


def test_not_acceptable_and_gzip(http: httpx.Client, product: dict[str, Any]) -> None:
    problem(http.get(f"/products/{product['id']}", headers={"accept": "text/html"}), 406,
            "invalid_argument")  # fmt: skip
    r = http.get("/products", params={"page_size": 50}, headers={"accept-encoding": "gzip"})
    assert r.status_code == 200
    if len(r.content) >= 1024:
        assert r.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in r.headers["vary"]
