"""Compressed request bodies on every wire of the real server: gzip is read,
its limit is the inflated size, bytes after the gzip stream are malformed, and
a coding we cannot read is refused, never taken for plain JSON."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any
from urllib.parse import quote_from_bytes

import grpc
import httpx
import pytest

from tests.e2e.test_bad_input import CREATE, GET, MiB, unchanged
from tests.e2e.test_bad_input_wires import WEB, _envelopes, grpc_status
from tests.tokens import AUTHORIZATION
from twofold.http.envelope import COMPRESSED, END_STREAM, frame

__all__ = ["unchanged"]  # the fixture, imported so pytest finds it here
JSON = {"content-type": "application/json"}
BOMB = gzip.compress(b" " * (4 * MiB))  # 4 KiB that inflate past the 1 MiB limit
# GetProductRequest{id: 1}.
GET_PROTO = b"\x08\x01"


def product() -> bytes:
    name = f"gzipped-{uuid.uuid4().hex[:8]}"
    return json.dumps({"name": name, "price": "2.50", "category": "codings"}).encode()


def rpc(params: dict[str, Any]) -> bytes:
    call = {"jsonrpc": "2.0", "id": 1, "method": "CreateProduct", "params": params}
    return json.dumps(call).encode()


# Each: a body claiming to be gzip that is not exactly one gzip stream.
MALFORMED = [
    pytest.param(lambda b: gzip.compress(b) + b"junk", id="trailing-bytes"),
    pytest.param(lambda b: gzip.compress(b) + gzip.compress(b), id="second-member"),
    pytest.param(lambda b: gzip.compress(b)[:-4], id="truncated"),
    pytest.param(lambda b: b, id="not-gzip"),
]


class TestRest:
    def test_gzip_body_is_read(self, http: httpx.Client) -> None:
        body = product()
        for coding in ("gzip", "GZIP", "identity, gzip"):
            headers = {**JSON, "content-encoding": coding}
            r = http.post("/products", content=gzip.compress(body), headers=headers)
            assert r.status_code == 201, r.text
            assert r.json()["name"] == json.loads(body)["name"]
        r = http.post("/products", content=body, headers={**JSON, "content-encoding": "identity"})
        assert r.status_code == 201, r.text

    @pytest.mark.usefixtures("unchanged")
    @pytest.mark.parametrize("coding", ["br", "deflate", "zstd", "gzip, br", "x-gzip"])
    def test_other_codings_are_415_naming_gzip(self, http: httpx.Client, coding: str) -> None:
        # A plain body that claims another coding was once taken as it was.
        r = http.post("/products", content=product(), headers={**JSON, "content-encoding": coding})
        assert r.status_code == 415, r.text
        assert r.headers["accept-encoding"] == "gzip"
        assert r.json()["code"] == "invalid_argument"

    def test_the_document_says_so(self, http: httpx.Client) -> None:
        answers = http.get("/openapi.json").json()["components"]["responses"]
        assert "Accept-Encoding" in answers["UnsupportedMediaType"]["headers"]

    @pytest.mark.usefixtures("unchanged")
    def test_gzip_bomb_is_413(self, http: httpx.Client) -> None:
        r = http.post("/products", content=BOMB, headers={**JSON, "content-encoding": "gzip"})
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "resource_exhausted"

    @pytest.mark.usefixtures("unchanged")
    @pytest.mark.parametrize("mangle", MALFORMED)
    def test_malformed_gzip_is_400(self, http: httpx.Client, mangle: Any) -> None:
        headers = {**JSON, "content-encoding": "gzip"}
        r = http.post("/products", content=mangle(product()), headers=headers)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "invalid_argument"


class TestJsonRpc:
    def test_gzip_body_is_read(self, http: httpx.Client) -> None:
        body = rpc({"product": json.loads(product())})
        headers = {**JSON, "content-encoding": "gzip"}
        r = http.post("/jsonrpc", content=gzip.compress(body), headers=headers)
        assert r.status_code == 200 and "result" in r.json(), r.text

    @pytest.mark.usefixtures("unchanged")
    def test_other_codings_are_415_naming_gzip(self, http: httpx.Client) -> None:
        body = rpc({"product": json.loads(product())})
        r = http.post("/jsonrpc", content=body, headers={**JSON, "content-encoding": "br"})
        assert r.status_code == 415, r.text
        assert r.headers["accept-encoding"] == "gzip"
        assert r.json()["error"]["code"] == -32600

    @pytest.mark.usefixtures("unchanged")
    def test_gzip_bomb_is_413(self, http: httpx.Client) -> None:
        r = http.post("/jsonrpc", content=BOMB, headers={**JSON, "content-encoding": "gzip"})
        assert r.status_code == 413, r.text

    @pytest.mark.usefixtures("unchanged")
    @pytest.mark.parametrize("mangle", MALFORMED)
    def test_malformed_gzip_is_400(self, http: httpx.Client, mangle: Any) -> None:
        body = mangle(rpc({"product": json.loads(product())}))
        r = http.post("/jsonrpc", content=body, headers={**JSON, "content-encoding": "gzip"})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == -32600


@pytest.mark.usefixtures("unchanged")
class TestConnect:
    @pytest.mark.parametrize("mangle", MALFORMED)
    def test_unary_malformed_gzip(self, http: httpx.Client, mangle: Any) -> None:
        body = mangle(json.dumps({"product": json.loads(product())}).encode())
        r = http.post(CREATE, content=body, headers={**JSON, "content-encoding": "gzip"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_argument", r.text

    @pytest.mark.parametrize("mangle", MALFORMED)
    def test_stream_malformed_gzip(self, http: httpx.Client, mangle: Any) -> None:
        # A read whose message is valid: the gzip around it is the only fault.
        headers = {"content-type": "application/connect+proto", "connect-content-encoding": "gzip"}
        r = http.post(GET, content=frame(mangle(GET_PROTO), COMPRESSED), headers=headers)
        *_, (flags, end) = _envelopes(r.content)
        assert flags == END_STREAM and json.loads(end)["error"]["code"] == "invalid_argument"

    def test_stream_gzip_bomb(self, http: httpx.Client) -> None:
        headers = {"content-type": "application/connect+proto", "connect-content-encoding": "gzip"}
        r = http.post(CREATE, content=frame(BOMB, COMPRESSED), headers=headers)
        *_, (flags, end) = _envelopes(r.content)
        assert flags == END_STREAM and json.loads(end)["error"]["code"] == "resource_exhausted"

    def test_get_with_gzip_that_has_trailing_bytes(self, http: httpx.Client) -> None:
        message = quote_from_bytes(gzip.compress(b'{"id": 1}') + b"junk")
        r = http.get(f"{GET}?encoding=json&compression=gzip&message={message}")
        assert r.status_code == 400 and r.json()["code"] == "invalid_argument", r.text

    def test_get_with_percent_encoded_bytes_past_ascii(self, http: httpx.Client) -> None:
        # GetProductRequest{id: 200} is 08 c8 01: once a 500 (parsed as UTF-8).
        message = b"\x08\xc8\x01"
        r = http.get(f"{GET}?encoding=proto&message={quote_from_bytes(message)}")
        assert r.status_code in (200, 404), r.text
        gzipped = quote_from_bytes(gzip.compress(message))
        r = http.get(f"{GET}?encoding=proto&compression=gzip&message={gzipped}")
        assert r.status_code in (200, 404), r.text


@pytest.mark.usefixtures("unchanged")
class TestGrpcWeb:
    @pytest.mark.parametrize("mangle", MALFORMED)
    def test_malformed_gzip(self, http: httpx.Client, mangle: Any) -> None:
        body = frame(mangle(GET_PROTO), COMPRESSED)
        r = http.post(GET, content=body, headers={**WEB, "grpc-encoding": "gzip"})
        assert grpc_status(r) == "3"

    def test_gzip_is_read(self, http: httpx.Client) -> None:
        body = frame(gzip.compress(GET_PROTO), COMPRESSED)
        r = http.post(GET, content=body, headers={**WEB, "grpc-encoding": "gzip"})
        assert grpc_status(r) in ("0", "5")  # found or not: it was read


@pytest.mark.usefixtures("unchanged")
class TestGrpc:
    """Native gRPC's message decompression is grpcio's (grpc core): checked
    here for the same two faults, over raw HTTP/2 since grpcio's own client
    only ever sends well-formed gzip."""

    @pytest.fixture
    def h2(self, catalog: Any) -> Any:
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            yield lambda body: client.post(
                f"http://{catalog.grpc_target}{GET}",
                content=frame(body, COMPRESSED),
                headers={
                    "content-type": "application/grpc",
                    "te": "trailers",
                    "grpc-encoding": "gzip",
                    **AUTHORIZATION,
                },
            )

    def test_gzip_bomb(self, h2: Any) -> None:
        assert h2(BOMB).headers["grpc-status"] == str(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0])

    @pytest.mark.parametrize("mangle", MALFORMED[:2])
    def test_bytes_after_the_gzip_stream(self, h2: Any, mangle: Any) -> None:
        # grpc core's answer to a message that does not decompress is INTERNAL.
        r = h2(mangle(GET_PROTO))
        assert r.headers["grpc-status"] == str(grpc.StatusCode.INTERNAL.value[0])
