"""The Coalescer in uvicorn's httptools protocol (LimitedHttpTools): what each response costs
in transport writes.

uvicorn's real protocol and request cycle run here; only the transport, which
is asyncio's, records the writes instead of making system calls.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from uvicorn.server import ServerState

from twofold.server import uvicorn_limits
from twofold.server.limits import ServerLimits

pytestmark = pytest.mark.skipif(not uvicorn_limits.HTTPTOOLS, reason="httptools is not installed")


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


LENGTH_2 = [(b"content-length", b"2")]


async def small(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else b"ok"})


async def stream(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})  # chunked
    await asyncio.sleep(0.01)  # a later event: the head must not wait for it
    await send({"type": "http.response.body", "body": b"event", "more_body": False})


async def continued(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:  # asking for the body has uvicorn write "100 Continue" first
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": body})


async def answered(state: ServerState, count: int) -> None:
    # Counted as each response ends; uvicorn signals nothing else to wait on.
    while state.total_requests < count:  # noqa: ASYNC110
        await asyncio.sleep(0.001)


def serve(app: Any, *requests: bytes, answers: int = 1) -> list[bytes]:
    """The transport writes while ``app`` gives ``answers`` to ``requests``, sent on
    one connection."""

    async def main() -> list[bytes]:
        config = uvicorn_limits.LimitedConfig(app, limits=ServerLimits(), lifespan="off")
        config.load()
        state = ServerState()
        protocol = uvicorn_limits.LimitedHttpTools(config, state, {})
        transport = Recording()
        protocol.connection_made(transport)
        for request in requests:
            protocol.data_received(request)
        await answered(state, answers)
        protocol.connection_lost(None)
        return transport.writes

    return asyncio.run(main())


GET = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


def test_a_small_response_is_one_write() -> None:
    (write,) = serve(small, GET)
    assert write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(b"\r\n\r\nok")


def test_each_response_on_a_connection_and_pipelined_ones_are_one_write_each() -> None:
    writes = serve(small, GET, GET + GET, answers=3)
    assert len(writes) == 3 and all(w.endswith(b"\r\n\r\nok") for w in writes)


def test_a_head_with_no_body_write_leaves_when_the_response_ends() -> None:
    (write,) = serve(small, b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(b"\r\n\r\n")


def test_the_head_of_a_chunked_response_is_not_held() -> None:
    head, body = serve(stream, GET)
    assert head.endswith(b"transfer-encoding: chunked\r\n\r\n")
    assert body == b"5\r\nevent\r\n0\r\n\r\n"


def test_an_interim_100_continue_is_not_held() -> None:
    request = b"POST / HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n"

    async def main() -> list[bytes]:
        config = uvicorn_limits.LimitedConfig(continued, limits=ServerLimits(), lifespan="off")
        config.load()
        state = ServerState()
        protocol = uvicorn_limits.LimitedHttpTools(config, state, {})
        transport = Recording()
        protocol.connection_made(transport)
        protocol.data_received(request)
        # The client sends its body only once it has read the 100.
        while not transport.writes:  # noqa: ASYNC110 (a transport signals no write)
            await asyncio.sleep(0.001)
        assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        protocol.data_received(b"hi")
        await answered(state, 1)
        protocol.connection_lost(None)
        return transport.writes

    writes = asyncio.run(main())
    assert len(writes) == 2 and writes[1].endswith(b"\r\n\r\nhi")


async def silent(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.Event().wait()  # never answers; cancelled when the client goes


def logged(app: Any, *requests: bytes, answers: int, lose: bool = False) -> list[dict[str, Any]]:
    """The access-log lines the protocol writes for ``requests`` (no AccessLog in the app)."""
    lines: list[bytes] = []

    async def main() -> None:
        config = uvicorn_limits.LimitedConfig(app, limits=ServerLimits(), lifespan="off")
        config.load()
        config.access_writer = lines.append  # type: ignore[assignment]
        state = ServerState()
        protocol = uvicorn_limits.LimitedHttpTools(config, state, {})
        protocol.connection_made(Recording())
        for request in requests:
            protocol.data_received(request)
        if lose:
            await asyncio.sleep(0)  # the app's task starts
        else:
            await answered(state, answers)
        protocol.connection_lost(None)

    asyncio.run(main())
    return [json.loads(line) for line in lines]


def test_the_protocol_writes_each_requests_line_with_the_status_of_its_head() -> None:
    lines = logged(small, GET, GET + b"HEAD /x HTTP/1.1\r\nhost: x\r\n\r\n", answers=3)
    assert [(line["request"], line["status"]) for line in lines] == [
        ("GET /", 200),
        ("GET /", 200),
        ("HEAD /x", 200),
    ]
    assert lines[0]["protocol"] == "http" and lines[0]["peer"] == "127.0.0.1:50000"


def test_a_client_gone_before_the_answer_is_499() -> None:
    (line,) = logged(silent, GET, answers=0, lose=True)
    assert (line["request"], line["status"]) == ("GET /", 499)
