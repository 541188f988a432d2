"""Connect client and bidi streaming over real HTTP/2: hypercorn on 127.0.0.1,
httpx with h2 (prior knowledge, as gRPC clients speak h2c)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.e2e.server import hypercorn
from twofold.http.envelope import END_STREAM, frame
from twofold.testing.parity.answers import envelopes

PATH = "/tick.v1.TickService/"
STREAM = {"content-type": "application/connect+json"}


@pytest.fixture(scope="module")
def h2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = hypercorn("tests.unit.wires.test_connect_streaming:app", tmp_path_factory.mktemp("h2"))
    yield server.url
    server.stop()


async def slowly(*ns: int) -> AsyncIterator[bytes]:
    for n in ns:
        await asyncio.sleep(0.02)  # the server reads each message as it comes
        yield frame(json.dumps({"n": n}).encode())


async def post_stream(url: str, rpc: str, body: AsyncIterator[bytes]) -> httpx.Response:
    async with httpx.AsyncClient(http1=False, http2=True, base_url=url, timeout=10) as client:
        r = await client.post(PATH + rpc, content=body, headers=STREAM)
        assert r.http_version == "HTTP/2"
        return r


def test_client_streaming_over_http2(h2: str) -> None:
    r = asyncio.run(post_stream(h2, "Add", slowly(1, 2, 3, 4)))
    (_, data), (flags, end) = envelopes(r.content)
    assert json.loads(data) == {"sum": "10", "count": "4"}
    assert flags == END_STREAM and json.loads(end) == {}


def test_bidi_streaming_over_http2(h2: str) -> None:
    r = asyncio.run(post_stream(h2, "Echo", slowly(1, 2, 3)))
    *items, (flags, end) = envelopes(r.content)
    assert [json.loads(d)["n"] for _, d in items] == ["2", "4", "6"]
    assert flags == END_STREAM and json.loads(end) == {}


def test_server_streaming_over_http2_and_http1(h2: str) -> None:
    async def run(http2: bool) -> list[tuple[int, bytes]]:
        async with httpx.AsyncClient(http1=not http2, http2=http2, base_url=h2) as c:
            r = await c.post(PATH + "Count", content=frame(b'{"to": 2}'), headers=STREAM)
            return envelopes(r.content)

    for http2 in (True, False):
        assert [f for f, _ in asyncio.run(run(http2))] == [0, 0, END_STREAM]
