"""Correctness checks, run against every server before and after its load.

A server that answers wrongly is not measured: a fast wrong answer is no
result. These are the peer directory's checks (``bench.py: check()``) plus
an error case for Connect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from bench.apps.catalog import NEW_PRODUCT, PRODUCTS
from bench.cases import CONNECT_PREFIX

CONNECT = {"connect-protocol-version": "1"}


class CheckFailed(Exception):
    """The server's answer is not the workload's."""


def _expect(ok: bool, what: str, response: httpx.Response) -> None:
    if not ok:
        raise CheckFailed(f"{what}: HTTP {response.status_code} {response.text[:200]!r}")


def _connect_json(response: httpx.Response) -> Any:
    # proto3 JSON encodes int64 as a string; either spelling is accepted.
    got = response.json()
    if isinstance(got, dict) and isinstance(got.get("id"), str):
        got["id"] = int(got["id"])
    return got


def rest_get(client: httpx.Client) -> None:
    r = client.get("/products/42")
    _expect(r.status_code == 200 and r.json() == PRODUCTS[42], "GET /products/42", r)
    r = client.get("/products/99999")
    _expect(r.status_code == 404, "GET /products/99999 must be 404", r)


def rest_post(client: httpx.Client) -> None:
    r = client.post("/products", json=NEW_PRODUCT)
    _expect(r.status_code == 201 and r.json() == NEW_PRODUCT, "POST /products must be 201", r)
    r = client.post("/products", json={"id": "x"})
    _expect(r.status_code in (400, 422), "POST of a bad body must be 400/422", r)


def connect_get(client: httpx.Client) -> None:
    r = client.post(f"{CONNECT_PREFIX}/GetProduct", json={"id": 42}, headers=CONNECT)
    _expect(r.status_code == 200 and _connect_json(r) == PRODUCTS[42], "Connect GetProduct", r)
    r = client.post(f"{CONNECT_PREFIX}/GetProduct", json={"id": 99999}, headers=CONNECT)
    _expect(
        r.status_code == 404 and r.json().get("code") == "not_found",
        "Connect GetProduct of an unknown id must be not_found",
        r,
    )


def connect_create(client: httpx.Client) -> None:
    body = {"product": NEW_PRODUCT}
    r = client.post(f"{CONNECT_PREFIX}/CreateProduct", json=body, headers=CONNECT)
    _expect(r.status_code == 200 and _connect_json(r) == NEW_PRODUCT, "Connect CreateProduct", r)


def raw(client: httpx.Client) -> None:
    r = client.get("/")
    _expect(r.status_code == 200 and len(r.content) == 120, "the raw app's constant body", r)


CHECKS: dict[str, Callable[[httpx.Client], None]] = {
    "raw": raw,
    "rest-get": rest_get,
    "rest-post": rest_post,
    "connect-get": connect_get,
    "connect-create": connect_create,
}


def check(kind: str, base_url: str) -> None:
    """Raise :class:`CheckFailed` unless the server at ``base_url`` answers ``kind`` right."""
    try:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            CHECKS[kind](client)
    except httpx.HTTPError as exc:
        raise CheckFailed(f"{type(exc).__name__}: {exc}") from None
    except ValueError as exc:  # a body that is not JSON
        raise CheckFailed(f"not JSON: {exc}") from None
