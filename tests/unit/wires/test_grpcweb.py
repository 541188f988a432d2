"""gRPC-Web in process: binary and text, unary and streams, trailers, bad input."""

from __future__ import annotations

import asyncio
import base64
import gzip
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from tests.unit.wires.tick_service import PATH, Tick, Total, app, schema, service
from twofold.http.envelope import COMPRESSED, TRAILERS, frame
from twofold.http.grpcstatus import percent_encode

WEB = {"content-type": "application/grpc-web+proto"}
TEXT = {"content-type": "application/grpc-web-text"}


def call(rpc: str, body: bytes, **headers: str) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(PATH + rpc, content=body, headers=headers)

    return asyncio.run(run())


def request(rpc: str, **fields: Any) -> bytes:
    tp = service.methods[rpc].input_type
    return frame(schema.codec(tp).encode(tp(**fields)))


def parse(raw: bytes) -> tuple[list[bytes], dict[str, str]]:
    messages, trailers = [], {}
    while raw:
        flags, size = raw[0], int.from_bytes(raw[1:5], "big")
        data, raw = raw[5 : 5 + size], raw[5 + size :]
        if flags & TRAILERS:
            for line in data.decode().split("\r\n"):
                if line:
                    k, _, v = line.partition(": ")
                    trailers[k] = v
        else:
            messages.append(data)
    return messages, trailers


def test_unary() -> None:
    r = call("GetTick", request("GetTick", n=2), **WEB)
    assert r.status_code == 200 and r.headers["content-type"] == "application/grpc-web+proto"
    messages, trailers = parse(r.content)
    assert [schema.codec(Tick).decode(m) for m in messages] == [Tick(2, "xx")]
    assert trailers == {"grpc-status": "0"}


def test_error_is_trailers_only_with_details() -> None:
    r = call("GetTick", request("GetTick", n=-1), **WEB)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["grpc-status"] == "3"
    assert unquote(r.headers["grpc-message"]) == "invalid n: must not be negative"
    raw = r.headers["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    assert status.code == 3
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("n", "must not be negative")
    ]


def test_server_stream_and_an_error_after_messages_is_in_the_trailer_frame() -> None:
    messages, trailers = parse(call("Count", request("Count", to=3), **WEB).content)
    assert [schema.codec(Tick).decode(m).n for m in messages] == [0, 1, 2]
    assert trailers == {"grpc-status": "0"}
    messages, trailers = parse(call("Count", request("Count", to=13), **WEB).content)
    assert len(messages) == 3 and trailers == {"grpc-status": "9", "grpc-message": "unlucky"}


def test_text_mode_both_ways() -> None:
    body = base64.b64encode(request("Count", to=2))
    r = call("Count", body, **TEXT)
    assert r.headers["content-type"] == "application/grpc-web-text"
    # Padded base64 runs back to back: decode quantum by quantum, as the spec's reader does.
    text = r.content
    raw = b"".join(base64.b64decode(text[i : i + 4]) for i in range(0, len(text), 4))
    messages, trailers = parse(raw)
    assert len(messages) == 2 and trailers["grpc-status"] == "0"


def test_client_stream_and_compression() -> None:
    body = b"".join(
        frame(gzip.compress(schema.codec(Tick).encode(Tick(n))), COMPRESSED) for n in (1, 2)
    )
    r = call("Add", body, **WEB, **{"grpc-encoding": "gzip"})
    messages, _ = parse(r.content)
    assert schema.codec(Total).decode(messages[0]) == Total(3, 2)


def test_deadline_from_grpc_timeout() -> None:
    r = call("Count", request("Count", to=1000), **WEB, **{"grpc-timeout": "50m"})
    _, trailers = parse(r.content)
    assert trailers["grpc-status"] == "4"
    r = call("GetTick", request("GetTick", n=1), **WEB, **{"grpc-timeout": "soon"})
    assert r.headers["grpc-status"] == "3"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"\x00\x00\x00", "3"),  # truncated
        (b"\x00\x00\x00\x00\x20\x08\x01", "3"),  # a length that lies
        (b"\x00\x00\x01\x00\x00", "8"),  # over the limit
        (frame(b"\x08\x01", COMPRESSED), "13"),  # compressed, no grpc-encoding
        (frame(b"\xff\xff\xff"), "3"),  # not protobuf
    ],
)
def test_bad_envelopes(body: bytes, status: str) -> None:
    r = call("GetTick", body, **WEB)
    assert r.status_code == 200 and r.headers["grpc-status"] == status
    assert call("GetTick", request("GetTick", n=1), **WEB).status_code == 200


def test_unknown_encoding_is_unimplemented() -> None:
    r = call("GetTick", request("GetTick", n=1), **WEB, **{"grpc-encoding": "snappy"})
    assert r.headers["grpc-status"] == "12"


def test_grpc_web_json_is_not_ours() -> None:
    r = call("GetTick", b"{}", **{"content-type": "application/grpc-web+json"})
    assert r.status_code == 415


def test_percent_encoding() -> None:
    assert percent_encode("50% off: café\n") == b"50%25 off: caf%C3%A9%0A"
