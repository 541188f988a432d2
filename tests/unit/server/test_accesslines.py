"""AccessWriter (twofold.server.accesslines) on real pipes: lines whole, the loop never waits."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import threading

import pytest

from twofold.server import accesslines
from twofold.server.accesslines import AccessWriter, RequestLine


def line(worker: int, n: int, size: int) -> bytes:
    return json.dumps({"worker": worker, "n": n, "pad": "x" * size}).encode() + b"\n"


def read_all(fd: int, into: bytearray) -> None:
    while chunk := os.read(fd, 65536):
        into.extend(chunk)


def test_two_writers_on_one_pipe_never_interleave_inside_a_line() -> None:
    """As two workers sharing the server's stdout: each write() is at most
    PIPE_BUF bytes and ends at a line's end, which the kernel keeps whole."""
    read_end, write_end = os.pipe()
    received = bytearray()
    reader = threading.Thread(target=read_all, args=(read_end, received))
    reader.start()

    async def serve(worker: int) -> None:
        writer = AccessWriter(write_end)
        for n in range(3000):
            writer(line(worker, n, n % 300))
            if n % 100 == 0:
                await asyncio.sleep(0)
        writer.close()

    async def main() -> None:
        await asyncio.gather(serve(1), serve(2))

    asyncio.run(main())
    os.close(write_end)
    reader.join()
    os.close(read_end)
    lines = [json.loads(text) for text in received.decode().splitlines()]
    for worker in (1, 2):
        assert [entry["n"] for entry in lines if entry["worker"] == worker] == list(range(3000))


def test_a_line_longer_than_pipe_buf_goes_whole() -> None:
    read_end, write_end = os.pipe()
    received = bytearray()
    reader = threading.Thread(target=read_all, args=(read_end, received))
    reader.start()
    long = line(1, 0, 3 * accesslines.PIPE_BUF)

    async def main() -> None:
        writer = AccessWriter(write_end)
        for payload in (line(1, 1, 10), long, line(1, 2, 10)):
            writer(payload)
        writer.close()

    asyncio.run(main())
    os.close(write_end)
    reader.join()
    os.close(read_end)
    assert bytes(received) == line(1, 1, 10) + long + line(1, 2, 10)


def test_a_stalled_output_never_blocks_the_loop_and_drops_what_it_cannot_hold(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody reads the pipe: the writing thread waits, the event loop does not,
    and past MAX_PENDING_BYTES lines are counted as dropped, not buffered."""
    monkeypatch.setattr(accesslines, "MAX_PENDING_BYTES", 256 * 1024)
    read_end, write_end = os.pipe()
    payload = line(1, 0, 200)
    count = 20_000  # about 4.5 MiB: far more than the pipe and the bound hold

    async def main() -> AccessWriter:
        writer = AccessWriter(write_end)
        for _ in range(count):
            writer(payload)
        writer.flush()
        ticked = asyncio.Event()
        asyncio.get_running_loop().call_soon(ticked.set)
        await ticked.wait()  # the loop still turns
        return writer

    writer = asyncio.run(main())
    assert 0 < writer.dropped < count
    with caplog.at_level(logging.WARNING, logger="uvicorn.error"):
        writer.close(timeout=0.1)  # the thread is still stuck on the full pipe
    assert f"dropped {writer.dropped} lines" in caplog.text
    received = bytearray()
    reader = threading.Thread(target=read_all, args=(read_end, received))
    reader.start()  # unblock the thread, which then writes what it holds and stops
    writer._thread.join(10)
    os.close(write_end)
    reader.join()
    os.close(read_end)
    written = received.count(b"\n")
    assert written + writer.dropped == count
    assert all(text == payload.rstrip(b"\n") for text in bytes(received).splitlines())


def test_a_request_line_leaves_nothing_for_the_garbage_collector() -> None:
    """The scope keeps its line (for the App's AccessLog); a line that kept the
    scope back made every request a reference cycle that only the collector
    frees, which cost REST GET a quarter of its req/s under load."""
    written: list[bytes] = []
    gc.collect()
    gc.disable()
    try:
        for n in range(100):
            scope = {"type": "http", "method": "GET", "path": f"/products/{n}", "headers": []}
            scope["client"] = ("127.0.0.1", 5000 + n)
            line = RequestLine(written.append, scope)
            if n % 2:  # a request a call covered: its call line, completed
                line.begin()
                line.end({"protocol": "connect"})
            line.status = 200
            line.close()
            del line, scope
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert unreachable == 0
    first, second = json.loads(written[0]), json.loads(written[1])
    assert first["request"] == "GET /products/0" and first["peer"] == "127.0.0.1:5000"
    assert second == {"protocol": "connect", "request": "GET /products/1", "status": 200}
