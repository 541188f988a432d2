"""Hostile input on the enveloped wires (Connect streams and binary, gRPC-Web)
against the real server: the spec's code, the server keeps serving, and no
product changes."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from tests.e2e.test_bad_input import CREATE, GET, MiB, unchanged
from twofold.http.envelope import COMPRESSED, END_STREAM, frame

__all__ = ["unchanged"]  # the fixture, imported so pytest finds it here
WEB = {"content-type": "application/grpc-web+proto"}
# CreateProductRequest{product: {name: "x"}}: valid protobuf, a real write if accepted.
CREATE_PROTO = b"\x0a\x03\x0a\x01x"


def grpc_status(r: httpx.Response) -> str:
    """grpc-status from the headers (trailers-only) or the trailer frame."""
    assert r.status_code == 200, r.text
    if "grpc-status" in r.headers:
        return r.headers["grpc-status"]
    raw = r.content
    while raw:
        flags, size = raw[0], int.from_bytes(raw[1:5], "big")
        if flags & 0x80:
            for line in raw[5 : 5 + size].decode().split("\r\n"):
                if line.startswith("grpc-status:"):
                    return line.split(":", 1)[1].strip()
        raw = raw[5 + size :]
    raise AssertionError("no grpc-status")


BAD_ENVELOPES = [
    pytest.param(b"\x00\x00", "3", id="truncated-header"),
    pytest.param(frame(CREATE_PROTO)[:-2], "3", id="truncated-payload"),
    pytest.param(b"\x00\x00\x00\x00\x40" + CREATE_PROTO, "3", id="lying-length"),
    pytest.param(b"\x00" + (2 * MiB).to_bytes(4, "big") + b"\x00" * 64, "8", id="over-limit"),
    pytest.param(frame(CREATE_PROTO, COMPRESSED), "13", id="compressed-not-negotiated"),
    pytest.param(frame(b"\xff\xff\xff\xff"), "3", id="invalid-protobuf"),
    pytest.param(frame(CREATE_PROTO) + frame(CREATE_PROTO), "3", id="two-messages-for-unary"),
]
CONNECT_CODES = {"3": "invalid_argument", "8": "resource_exhausted", "13": "internal"}


@pytest.mark.usefixtures("unchanged")
class TestGrpcWeb:
    @pytest.mark.parametrize(("body", "status"), BAD_ENVELOPES)
    def test_bad_envelopes(self, http: httpx.Client, body: bytes, status: str) -> None:
        assert grpc_status(http.post(CREATE, content=body, headers=WEB)) == status
        assert grpc_status(http.post(GET, content=frame(b"\x08\x01"), headers=WEB)) in "05"

    def test_text_that_is_not_base64(self, http: httpx.Client) -> None:
        r = http.post(
            CREATE, content=b"!!!!", headers={"content-type": "application/grpc-web-text"}
        )
        assert grpc_status(r) == "3"

    def test_oversized_message_even_when_gzipped(self, http: httpx.Client) -> None:
        body = frame(gzip.compress(b"\x0a" + b"\x00" * (2 * MiB)), COMPRESSED)
        r = http.post(CREATE, content=body, headers={**WEB, "grpc-encoding": "gzip"})
        assert grpc_status(r) == "8"

    def test_wrong_content_type_is_415(self, http: httpx.Client) -> None:
        r = http.post(GET, content=frame(b"\x08\x01"), headers={"content-type": "text/plain"})
        assert r.status_code == 415


@pytest.mark.usefixtures("unchanged")
class TestConnectStreams:
    @pytest.mark.parametrize(("body", "status"), BAD_ENVELOPES)
    def test_bad_envelopes(self, http: httpx.Client, body: bytes, status: str) -> None:
        r = http.post(CREATE, content=body, headers={"content-type": "application/connect+proto"})
        # CreateProduct is unary: over a stream content type it is one message in,
        # one out, and the outcome is in the end-of-stream message.
        assert r.status_code == 200
        *_, last = _envelopes(r.content)
        assert last[0] == END_STREAM
        assert json.loads(last[1])["error"]["code"] == CONNECT_CODES[status]

    def test_invalid_protobuf_unary(self, http: httpx.Client) -> None:
        r = http.post(CREATE, content=b"\xff\xff", headers={"content-type": "application/proto"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_argument"

    def test_gzip_bomb_unary(self, http: httpx.Client) -> None:
        body = gzip.compress(b" " * (4 * MiB))
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        r = http.post(CREATE, content=body, headers=headers)
        assert r.status_code == 429 and r.json()["code"] == "resource_exhausted"


def _envelopes(raw: bytes) -> list[tuple[int, bytes]]:
    out = []
    while raw:
        size = int.from_bytes(raw[1:5], "big")
        out.append((raw[0], raw[5 : 5 + size]))
        raw = raw[5 + size :]
    return out
