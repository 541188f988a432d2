"""docs/connect.md, docs/grpc-web.md and docs/rest.md (SSE): the streaming example runs."""

from __future__ import annotations

import asyncio
import json

import httpx

from docs_src.streaming.ticker import Quote, Total, Volume, app
from twofold.http.envelope import END_STREAM, TRAILERS, frame
from twofold.protobuf import Schema
from twofold.testing.parity.answers import envelopes

PATH = "/ticker.v1.TickerService/"
schema = Schema(app.table, lock=None)


def post(path: str, body: bytes, content_type: str) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
            return await client.post(path, content=body, headers={"content-type": content_type})

    return asyncio.run(main())


def test_connect_server_stream() -> None:
    body = frame(b'{"symbol": "ACME", "count": 2}')
    r = post(PATH + "WatchQuotes", body, "application/connect+json")
    got = envelopes(r.content)
    assert [json.loads(d) for _, d in got[:-1]] == [
        {"symbol": "ACME", "cents": "100"},
        {"symbol": "ACME", "cents": "101"},
    ]
    assert got[-1] == (END_STREAM, b"{}")


def test_connect_client_stream_binary() -> None:
    body = b"".join(frame(schema.codec(Volume).encode(Volume("ACME", n))) for n in (5, 7))
    r = post(PATH + "RecordTrades", body, "application/connect+proto")
    (_, data), end = envelopes(r.content)
    assert schema.codec(Total).decode(data) == Total(2, 12) and end == (END_STREAM, b"{}")


def test_grpc_web_server_stream() -> None:
    request_type = app.table.by_path[PATH + "WatchQuotes"].input_type
    body = frame(schema.codec(request_type).encode(request_type(symbol="ACME", count=1)))
    r = post(PATH + "WatchQuotes", body, "application/grpc-web+proto")
    (_, data), (flags, trailers) = envelopes(r.content)
    assert schema.codec(Quote).decode(data) == Quote("ACME", 100)
    assert flags == TRAILERS and trailers == b"grpc-status: 0\r\n"


def test_sse() -> None:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
            return await client.get("/quotes:watch", params={"symbol": "ACME", "count": 2})

    r = asyncio.run(main())
    assert r.headers["content-type"] == "text/event-stream"
    # docs/rest.md shows this stream: ids count the events of a stream that cannot resume.
    assert r.text == (
        'retry: 1000\nid: 1\ndata: {"symbol":"ACME","cents":100}\n\n'
        'id: 2\ndata: {"symbol":"ACME","cents":101}\n\n'
    )


def test_a_resumable_stream_picks_up_after_the_last_event_id() -> None:
    from docs_src.streaming.resume import app as news

    async def main() -> tuple[str, str]:
        transport = httpx.ASGITransport(news)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
            first = await client.get("/stories:watch")
            again = await client.get("/stories:watch", headers={"Last-Event-ID": "2"})
            return first.text, again.text

    first, again = asyncio.run(main())
    assert first.startswith(
        'retry: 1000\nid: 1\ndata: {"id":1,"headline":"Kettle prices fall"}\n\n'
    )
    assert first.count("id: ") == 3
    assert again == 'retry: 1000\nid: 3\ndata: {"id":3,"headline":"Vases sold out"}\n\n'
