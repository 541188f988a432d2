"""Connect's binary codec, gzip and streams, driven in process through httpx.

A stream's answer is always 200; its outcome is the end-of-stream envelope.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx
import msgspec
import pytest

from tests.unit.wires.tick_service import EVENTS, PATH, Tick, Total, app, schema, service
from twofold.http.envelope import COMPRESSED, END_STREAM, frame
from twofold.testing.parity.answers import envelopes


def call(rpc: str, body: bytes, **headers: str) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(PATH + rpc, content=body, headers=headers)

    return asyncio.run(run())


def stream_json(rpc: str, *messages: Any, **headers: str) -> tuple[list[Any], dict[str, Any]]:
    body = b"".join(frame(json.dumps(m).encode()) for m in messages)
    r = call(rpc, body, **{"content-type": "application/connect+json", **headers})
    assert r.status_code == 200 and r.headers["content-type"] == "application/connect+json"
    *items, (flags, end) = envelopes(r.content)
    assert flags == END_STREAM and all(f & END_STREAM == 0 for f, _ in items)
    return [json.loads(gzip.decompress(d) if f & COMPRESSED else d) for f, d in items], json.loads(
        end
    )


# --- unary with the binary codec and gzip -------------------------------------


def test_unary_proto_round_trip() -> None:
    request = schema.codec(service.methods["GetTick"].input_type).encode
    r = call(
        "GetTick",
        request(msgspec.convert({"n": 3}, service.methods["GetTick"].input_type)),
        **{"content-type": "application/proto"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/proto"
    assert schema.codec(Tick).decode(r.content) == Tick(3, "xxx")


def test_unary_proto_errors_are_json() -> None:
    r = call("GetTick", b"\xff\xff\xff", **{"content-type": "application/proto"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
    assert r.headers["content-type"] == "application/json"


def test_unary_gzip_both_ways() -> None:
    body = gzip.compress(b'{"n": 2000}')
    r = call(
        "GetTick",
        body,
        **{
            "content-type": "application/json",
            "content-encoding": "gzip",
            "accept-encoding": "gzip",
        },
    )
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.json()["note"] == "x" * 2000  # httpx inflated it
    small = call(
        "GetTick", b'{"n": 1}', **{"content-type": "application/json", "accept-encoding": "gzip"}
    )
    assert "content-encoding" not in small.headers
    bomb = gzip.compress(b" " * 100_000 + b"{}")
    r = call("GetTick", bomb, **{"content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 429 and r.json()["code"] == "resource_exhausted"


# --- streams ----------------------------------------------------------------


def test_server_stream_json() -> None:
    items, end = stream_json("Count", {"to": 3})
    assert items == [{"n": str(n), "note": ""} for n in range(3)]  # int64 is a string
    assert end == {}


def test_server_stream_error_is_in_the_end_message() -> None:
    items, end = stream_json("Count", {"to": 13})
    assert len(items) == 3
    assert end["error"] == {"code": "failed_precondition", "message": "unlucky"}


def test_error_headers_are_end_of_stream_metadata() -> None:
    items, end = stream_json("Count", {"to": 14})
    assert len(items) == 1 and end["error"]["code"] == "resource_exhausted"
    # Trailers: Connect's end-of-stream metadata, each name with a list of values.
    assert end["metadata"] == {"retry-after": ["7"]}


def test_error_before_the_first_message_is_still_200() -> None:
    items, end = stream_json("Count", {"to": "many"})
    assert items == [] and end["error"]["code"] == "invalid_argument"


def test_client_stream_json_and_proto() -> None:
    items, end = stream_json("Add", {"n": 1}, {"n": 2}, {"n": 39})
    assert items == [{"sum": "42", "count": "3"}] and end == {}
    body = b"".join(frame(schema.codec(Tick).encode(Tick(n))) for n in (5, 6))
    r = call("Add", body, **{"content-type": "application/connect+proto"})
    (_, d1), (f2, d2) = envelopes(r.content)
    assert schema.codec(Total).decode(d1) == Total(11, 2) and f2 == END_STREAM
    assert json.loads(d2) == {}


def test_bidi_stream() -> None:
    items, end = stream_json("Echo", {"n": 1}, {"n": 4})
    assert [i["n"] for i in items] == ["2", "8"] and end == {}


def test_stream_compression_per_message() -> None:
    headers = {"connect-accept-encoding": "gzip", "connect-content-encoding": "gzip"}
    body = frame(gzip.compress(json.dumps({"n": 1500}).encode()), COMPRESSED)
    r = call("Add", body, **{"content-type": "application/connect+json", **headers})
    assert r.headers["connect-content-encoding"] == "gzip"
    items, _ = stream_json("Add", {"n": 1}, **headers)
    assert items == [{"sum": "1", "count": "1"}]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x00\x00\x00", "invalid_argument"),  # truncated header
        (b"\x00\x00\x00\x00\x20{}", "invalid_argument"),  # a length that lies
        (b"\x00\x00\x01\x00\x00", "resource_exhausted"),  # over the 4 KiB limit
        (frame(b'{"n": 1}', COMPRESSED), "internal"),  # compressed, nothing negotiated
        (frame(b"{"), "invalid_argument"),
        (frame(b"{}", END_STREAM), "invalid_argument"),
    ],
)
def test_bad_envelopes(body: bytes, code: str) -> None:
    r = call("Add", body, **{"content-type": "application/connect+json"})
    assert r.status_code == 200
    ((flags, end),) = envelopes(r.content)[-1:]
    assert flags == END_STREAM and json.loads(end)["error"]["code"] == code


def test_server_stream_takes_exactly_one_message() -> None:
    _, end = stream_json("Count", {"to": 1}, {"to": 2})
    assert end["error"]["code"] == "invalid_argument"
    _, end = stream_json("Count")
    assert end["error"]["code"] == "invalid_argument"


def test_unknown_stream_encoding_is_unimplemented() -> None:
    _, end = stream_json("Count", {"to": 1}, **{"connect-content-encoding": "br"})
    assert end["error"]["code"] == "unimplemented"


def test_streaming_method_over_unary_content_type_is_415() -> None:
    r = call("Count", b'{"to": 1}', **{"content-type": "application/json"})
    assert r.status_code == 415 and r.json()["code"] == "unimplemented"


def test_response_headers_set_before_the_first_message_are_sent() -> None:
    body = frame(b'{"to": 1}')
    r = call("Count", body, **{"content-type": "application/connect+json"})
    assert r.headers["x-counting"] == "yes"


def test_deadline_ends_a_stream() -> None:
    _, end = stream_json("Count", {"to": 1000}, **{"connect-timeout-ms": "50"})
    assert end["error"]["code"] == "deadline_exceeded"


def test_disconnect_cancels_the_handler() -> None:
    EVENTS.clear()
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        arrived = asyncio.Event()
        messages = [{"type": "http.request", "body": frame(b'{"to": 100000}'), "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await arrived.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if len(sent) == 3:
                arrived.set()

        scope = {
            "type": "http",
            "method": "POST",
            "path": PATH + "Count",
            "query_string": b"",
            "headers": [(b"content-type", b"application/connect+json")],
        }
        await asyncio.wait_for(app(scope, receive, send), 5)

    asyncio.run(run())
    assert EVENTS == ["count(100000) ended"]
    assert len(sent) < 10
