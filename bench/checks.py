"""Correctness checks, run against every server before and after its load.

A server that answers wrongly is not measured: a fast wrong answer is no
result. These are the peer directory's checks (``bench.py: check()``) plus
an error case for Connect and for gRPC. Protobuf answers are compared byte
for byte with :mod:`bench.wire`'s.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench import wire
from bench.apps.catalog import NEW_PRODUCT, PRODUCTS
from bench.cases import CONNECT_PREFIX, GET_PROTO, PROTO

CONNECT = {"connect-protocol-version": "1"}
CONNECT_PROTO = {**CONNECT, "content-type": PROTO}


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


def rest_xml_get(client: httpx.Client) -> None:
    r = client.get("/products/42", headers={"accept": "application/xml"})
    ok = r.status_code == 200 and r.headers.get("content-type") == "application/xml"
    _expect(ok and b"<name>" in r.content, "GET /products/42 in XML", r)


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


def connect_proto_get(client: httpx.Client) -> None:
    url = f"{CONNECT_PREFIX}/GetProduct"
    r = client.post(url, content=GET_PROTO, headers=CONNECT_PROTO)
    want = wire.product(PRODUCTS[42])
    _expect(r.status_code == 200 and r.content == want, "Connect proto GetProduct", r)
    r = client.post(url, content=wire.get_product_request(99999), headers=CONNECT_PROTO)
    _expect(
        r.status_code == 404 and r.json().get("code") == "not_found",  # errors are JSON
        "Connect proto GetProduct of an unknown id must be not_found",
        r,
    )


def connect_proto_create(client: httpx.Client) -> None:
    body = wire.create_product_request(NEW_PRODUCT)
    r = client.post(f"{CONNECT_PREFIX}/CreateProduct", content=body, headers=CONNECT_PROTO)
    want = wire.product(NEW_PRODUCT)
    _expect(r.status_code == 200 and r.content == want, "Connect proto CreateProduct", r)


def raw(client: httpx.Client) -> None:
    r = client.get("/")
    _expect(r.status_code == 200 and len(r.content) == 120, "the raw app's constant body", r)


CHECKS: dict[str, Callable[[httpx.Client], None]] = {
    "raw": raw,
    "rest-get": rest_get,
    "rest-xml-get": rest_xml_get,
    "rest-post": rest_post,
    "connect-get": connect_get,
    "connect-create": connect_create,
    "connect-proto-get": connect_proto_get,
    "connect-proto-create": connect_proto_create,
}


def grpc_get(port: int, constant: bool = False) -> None:
    """GetProduct over gRPC: product 42's bytes, NOT_FOUND for an unknown id (unless
    the server is ``constant``: one answer to everything), and ``grpc-status: 0``
    for the very bytes h2load sends (with nghttp, when installed)."""
    import grpc  # a Twofold dependency, imported only for this check

    path = f"{CONNECT_PREFIX}/GetProduct"
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(path)
        try:
            got = call(GET_PROTO, timeout=10)
            if got != wire.product(PRODUCTS[42]):
                raise CheckFailed(f"gRPC GetProduct answered {got!r}")
            if constant:
                return _nghttp_status(port, path)
            call(wire.get_product_request(99999), timeout=10)
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.NOT_FOUND:
                raise CheckFailed(f"gRPC GetProduct: {exc.code()} {exc.details()}") from None
        else:
            raise CheckFailed("gRPC GetProduct of an unknown id did not fail")
    _nghttp_status(port, path)


def _nghttp_status(port: int, path: str) -> None:
    if shutil.which("nghttp") is None:
        return
    with tempfile.NamedTemporaryFile(suffix=".bin") as body:
        body.write(wire.grpc_frame(GET_PROTO))
        body.flush()
        out = subprocess.run(
            ["nghttp", "-v", "-d", body.name, "-H", ":method: POST",
             "-H", "content-type: application/grpc", "-H", "te: trailers",
             f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout  # fmt: skip
    if "grpc-status: 0" not in out:
        raise CheckFailed(f"nghttp saw no grpc-status: 0:\n{out[-800:]}")


PORT_CHECKS: dict[str, Callable[[int], None]] = {
    "grpc-get": grpc_get,
    "grpc-constant": functools.partial(grpc_get, constant=True),
}


def check(kind: str, base_url: str) -> None:
    """Raise :class:`CheckFailed` unless the server at ``base_url`` answers ``kind`` right."""
    if kind in PORT_CHECKS:
        port = urlsplit(base_url).port
        assert port is not None, base_url
        PORT_CHECKS[kind](port)
        return
    try:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            CHECKS[kind](client)
    except httpx.HTTPError as exc:
        raise CheckFailed(f"{type(exc).__name__}: {exc}") from None
    except ValueError as exc:  # a body that is not JSON
        raise CheckFailed(f"not JSON: {exc}") from None
