"""Accept (406) and Accept-Encoding (gzip) on REST (twofold.http.negotiation)."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import httpx
import msgspec
import pytest

from tests.asgi import ASGI
from twofold import App, Service
from twofold.http.negotiation import accepts_gzip, accepts_json


class Doc(msgspec.Struct, kw_only=True):
    id: int
    text: str


service = Service("pages.v1")
pages = service.resource("pages")
WRITES: list[int] = []


@pages.get
async def get_page(id: int) -> Doc:
    return Doc(id=id, text="word " * id)


@pages.create
async def create_page(page: Doc) -> Doc:
    WRITES.append(page.id)
    return page


app = App(service)


call = ASGI(app).request


@pytest.mark.parametrize(
    ("accept", "ok"),
    [
        (b"*/*", True),
        (b"application/json", True),
        (b"application/problem+json", True),
        (b"text/html, application/*;q=0.1", True),
        (b"Application/JSON; charset=utf-8", True),
        (b"text/html", False),
        (b"application/json;q=0, text/html", False),
        (b"application/json;q=zero", False),
        (b"application/xml", False),
        (b"", False),
    ],
)
def test_accepts_json(accept: bytes, ok: bool) -> None:
    assert accepts_json(accept) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (b"gzip", True),
        (b"br, gzip;q=0.5", True),
        (b"*", True),
        (b"gzip;q=0", False),
        (b"gzip;q=0.000", False),
        (b"identity", False),
        (b"", False),
        (None, False),
    ],
)
def test_accepts_gzip(value: bytes | None, ok: bool) -> None:
    assert accepts_gzip(value) is ok


def test_an_accept_without_json_is_406_and_nothing_runs() -> None:
    WRITES.clear()
    r = call("POST", "/pages", json={"id": 1, "text": "x"}, headers={"accept": "text/html"})
    assert r.status_code == 406
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Not Acceptable"
    assert WRITES == []
    assert call("GET", "/pages/1", headers={"accept": "text/html"}).status_code == 406
    assert call("GET", "/pages/1", headers={"accept": "application/json"}).status_code == 200


def test_large_answers_are_gzipped_when_accepted() -> None:
    big = call("GET", "/pages/500", headers={"accept-encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip"
    assert big.headers["vary"] == "Accept, Accept-Encoding"
    assert big.headers["etag"].endswith('-gzip"')  # another representation, another tag
    assert big.json()["id"] == 500  # httpx decompressed it
    assert int(big.headers["content-length"]) < len(big.content)
    plain = call("GET", "/pages/500", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["etag"] == big.headers["etag"].replace('-gzip"', '"')
    revalidated = call(
        "GET",
        "/pages/500",
        headers={"accept-encoding": "gzip", "if-none-match": big.headers["etag"]},
    )
    assert revalidated.status_code == 304
    small = call("GET", "/pages/1", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in small.headers  # under the threshold
    head = call("HEAD", "/pages/500", headers={"accept-encoding": "gzip"})
    assert head.headers["content-encoding"] == "gzip" and head.content == b""


def test_gzip_is_deterministic() -> None:
    async def raw() -> bytes:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/pages/300", "query_string": b"",
                 "headers": [(b"accept-encoding", b"gzip")]}  # fmt: skip
        await app(scope, receive, send)
        body: bytes = sent[1]["body"]
        return body

    first, second = asyncio.run(raw()), asyncio.run(raw())
    assert first == second
    assert msgspec.json.decode(gzip.decompress(first))["id"] == 300


def test_openapi_documents_406() -> None:
    for path in app.openapi["paths"].values():
        for op in path.values():
            assert op["responses"]["406"] == {"$ref": "#/components/responses/NotAcceptable"}


# One gzip negotiation: every wire, and the docs page, read a coding list alike.
CODINGS = [
    (b"gzip", True),
    (b"GZIP", True),
    (b"identity, gzip;q=0.5", True),
    (b"*", True),
    (b"gzip;q=0", False),
    (b"gzip; q=0.000", False),
    (b"identity", False),
]


def _wires_compress(value: bytes) -> dict[str, bool]:
    """Whether each wire gzipped a large answer, given ``value`` as its accept list."""
    from twofold.http.envelope import COMPRESSED, frame

    message = msgspec.json.encode({"id": 2000})
    stream_headers = {
        "content-type": "application/connect+json",
        "connect-accept-encoding": value.decode(),
    }

    async def main() -> dict[str, bool]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            enc = {"accept-encoding": value.decode()}
            rest = await client.get("/pages/2000", headers=enc)
            connect = await client.post(
                "/pages.v1.PagesService/GetPage",
                content=message,
                headers={"content-type": "application/json", **enc},
            )
            docs = await client.get("/docs", headers=enc)
            stream = await client.post(
                "/pages.v1.PagesService/GetPage", content=frame(message), headers=stream_headers
            )
            grpc_web = await client.post(
                "/pages.v1.PagesService/GetPage",
                content=frame(b"\x08\xd0\x0f"),  # GetPageRequest{id: 2000}
                headers={
                    "content-type": "application/grpc-web+proto",
                    "grpc-accept-encoding": value.decode(),
                },
            )
        return {
            "rest": rest.headers.get("content-encoding") == "gzip",
            "connect": connect.headers.get("content-encoding") == "gzip",
            "docs": docs.headers.get("content-encoding") == "gzip",
            # Connect streaming and gRPC-Web flag each compressed message.
            "connect-stream": bool(stream.content[0] & COMPRESSED),
            "grpc-web": bool(grpc_web.content[0] & COMPRESSED),
        }

    return asyncio.run(main())


@pytest.mark.parametrize(("value", "ok"), CODINGS)
def test_every_wire_reads_an_accept_list_alike(value: bytes, ok: bool) -> None:
    assert accepts_gzip(value) is ok
    assert _wires_compress(value) == dict.fromkeys(
        ["rest", "connect", "docs", "connect-stream", "grpc-web"], ok
    )
