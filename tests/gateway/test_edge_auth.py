"""Credentials checked at the edge with Twofold's own Authentication, on every wire,
before any body is read and before anything reaches the upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import httpx
import pytest
from websockets.sync.client import connect

from tests.gateway.conftest import gateway_for, serve, serve_h2
from tests.gateway.upstream import Upstream, message
from twofold import ApiKeys, Authentication, StoredApiKey
from twofold.http import envelope

READER = {"x-api-key": "reader-key"}
WRITER = {"x-api-key": "writer-key"}


@pytest.fixture(scope="module")
def guarded(upstream: Upstream) -> Iterator[httpx.Client]:
    keys = ApiKeys(
        [
            StoredApiKey.of("reader-key", "ann"),
            StoredApiKey.of("writer-key", "bo", ["books:write"]),
        ]
    )
    gateway = gateway_for(
        upstream.target,
        max_body_size=1024,
        authentication=Authentication(keys),
        public=("library.v1.Library.GetShelf",),
        scopes={"library.v1.Library.CreateBook": ("books:write",)},
    )
    with serve(gateway) as url, httpx.Client(base_url=url) as http:
        yield http


def test_rest(guarded: httpx.Client, upstream: Upstream) -> None:
    upstream.library.seen.clear()
    assert guarded.get("/v1/shelves/1").status_code == 200  # public
    refused = guarded.get("/v1/shelves/1/books/1")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert guarded.get("/v1/shelves/1/books/1", headers=READER).status_code == 200
    assert guarded.get("/v1/shelves/1", headers={"x-api-key": "wrong"}).status_code == 401
    book = {"title": "Kindred"}
    assert guarded.post("/v1/shelves/8/books", json=book, headers=READER).status_code == 403
    assert guarded.post("/v1/shelves/8/books", json=book, headers=WRITER).status_code == 200
    assert set(upstream.library.seen) == {"GetShelf", "GetBook", "CreateBook"}


def test_credentials_before_the_body(guarded: httpx.Client) -> None:
    big = b'{"title": "' + b"x" * 4096 + b'"}'
    headers = {"content-type": "application/json"}
    assert guarded.post("/v1/shelves/8/books", content=big, headers=headers).status_code == 401
    headers |= WRITER
    assert guarded.post("/v1/shelves/8/books", content=big, headers=headers).status_code == 413


def test_rpc_wires(guarded: httpx.Client) -> None:
    r = guarded.post("/library.v1.Library/Echo", json={"text": "x"})
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    assert guarded.post("/library.v1.Library/Echo", json={}, headers=READER).status_code == 200
    r = guarded.post("/jsonrpc", json={"jsonrpc": "2.0", "method": "Echo", "id": 1})
    assert r.json()["error"]["data"]["code"] == "unauthenticated"
    r = guarded.post(
        "/library.v1.Library/GetBook",
        content=envelope.frame(message("GetBookRequest")(name="x").SerializeToString()),
        headers={"content-type": "application/grpc-web+proto"},
    )
    assert b"grpc-status: 16\r\n" in r.content
    r = guarded.get("/v1/shelves/1/books:watch?count=1")
    assert r.status_code == 401


def test_streams_and_native_grpc(upstream: Upstream) -> None:
    """Client streams (Connect, WebSocket) and native gRPC check credentials first too."""
    gateway = gateway_for(
        upstream.target, authentication=Authentication(ApiKeys([StoredApiKey.of("k", "ann")]))
    )
    with serve_h2(gateway) as port, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        body = envelope.frame(b'{"text": "x"}')
        headers = {"content-type": "application/connect+json"}
        url = f"http://127.0.0.1:{port}/library.v1.Library/Chat"
        r = httpx.post(url, content=body, headers=headers)
        assert json.loads(r.content[5:])["error"]["code"] == "unauthenticated"
        r = httpx.post(url, content=body, headers=headers | {"x-api-key": "k"})
        assert json.loads(r.content[5:-7])["text"] == "x"
        echo = channel.unary_unary("/library.v1.Library/Echo")
        with pytest.raises(grpc.RpcError) as caught:
            echo(b"", timeout=5)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        answer = message("EchoRequest").FromString(
            echo(
                message("EchoRequest")(text="in").SerializeToString(),
                metadata=(("x-api-key", "k"),),
                timeout=5,
            )
        )
        assert answer.text == "in"
        with connect(f"ws://127.0.0.1:{port}/jsonrpc") as ws:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "Chat"}))
            refused = json.loads(ws.recv(timeout=10))
            assert refused["error"]["data"]["code"] == "unauthenticated"
