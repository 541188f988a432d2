"""Connect client and bidi streaming over real HTTP/2: hypercorn on 127.0.0.1,
httpx with h2 (prior knowledge, as gRPC clients speak h2c)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ROOT, free_port
from twofold.http.envelope import END_STREAM, frame

PATH = "/tick.v1.TickService/"
STREAM = {"content-type": "application/connect+json"}


@pytest.fixture(scope="module")
def hypercorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("hypercorn") / "server.log"
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hypercorn",
                "tests.unit.wires.test_connect_streaming:app",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            httpx.get(url + "/openapi.json", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"hypercorn did not start:\n{log.read_text()}")


def envelopes(raw: bytes) -> list[tuple[int, bytes]]:
    out = []
    while raw:
        size = int.from_bytes(raw[1:5], "big")
        out.append((raw[0], raw[5 : 5 + size]))
        raw = raw[5 + size :]
    return out


async def slowly(*ns: int) -> AsyncIterator[bytes]:
    for n in ns:
        await asyncio.sleep(0.02)  # the server reads each message as it comes
        yield frame(json.dumps({"n": n}).encode())


async def post_stream(url: str, rpc: str, body: AsyncIterator[bytes]) -> httpx.Response:
    async with httpx.AsyncClient(http1=False, http2=True, base_url=url, timeout=10) as client:
        r = await client.post(PATH + rpc, content=body, headers=STREAM)
        assert r.http_version == "HTTP/2"
        return r


def test_client_streaming_over_http2(hypercorn: str) -> None:
    r = asyncio.run(post_stream(hypercorn, "Add", slowly(1, 2, 3, 4)))
    (_, data), (flags, end) = envelopes(r.content)
    assert json.loads(data) == {"sum": "10", "count": "4"}
    assert flags == END_STREAM and json.loads(end) == {}


def test_bidi_streaming_over_http2(hypercorn: str) -> None:
    r = asyncio.run(post_stream(hypercorn, "Echo", slowly(1, 2, 3)))
    *items, (flags, end) = envelopes(r.content)
    assert [json.loads(d)["n"] for _, d in items] == ["2", "4", "6"]
    assert flags == END_STREAM and json.loads(end) == {}


def test_server_streaming_over_http2_and_http1(hypercorn: str) -> None:
    async def run(http2: bool) -> list[tuple[int, bytes]]:
        async with httpx.AsyncClient(http1=not http2, http2=http2, base_url=hypercorn) as c:
            r = await c.post(PATH + "Count", content=frame(b'{"to": 2}'), headers=STREAM)
            return envelopes(r.content)

    for http2 in (True, False):
        assert [f for f, _ in asyncio.run(run(http2))] == [0, 0, END_STREAM]
