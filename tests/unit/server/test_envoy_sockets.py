"""pyvoy's WebSocket connections, served on the App's loop: the scope as the client
made it, and a ``receive`` and ``send`` that are safe to cancel as uvicorn's are.

The other loop stands for pyvoy's: its ``receive`` hands out a future of its own
loop, resolved from that loop later, whether or not anyone still waits."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from twofold.core.asgi import Message, Receive, Scope, Send
from twofold.server.envoy_sockets import Hop, from_edge


def test_the_scope_is_the_clients() -> None:
    scope = from_edge(
        {
            "type": "websocket",
            "scheme": "ws",
            "client": ("envoy://internal", 0),
            "headers": [
                (b"host", b"example.com"),
                (b"x-twofold-peer", b"[2001:db8::1]:50123"),
                (b"x-twofold-scheme", b"wss"),
            ],
        }
    )
    assert scope["client"] == ("2001:db8::1", 50123)
    assert scope["scheme"] == "wss"
    assert scope["headers"] == [(b"host", b"example.com")]
    assert from_edge({"headers": [(b"x-twofold-peer", b"10.0.0.7:443")]})["client"] == (
        "10.0.0.7",
        443,
    )


@pytest.fixture
def theirs() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


class Server:
    """pyvoy's side: futures of its own loop, resolved by :meth:`deliver` from it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: list[asyncio.Future[Message]] = []
        self.sent: list[Message] = []

    def receive(self) -> asyncio.Future[Message]:
        assert asyncio.get_running_loop() is self.loop
        future: asyncio.Future[Message] = self.loop.create_future()
        self.waiting.append(future)
        return future

    def send(self, message: Message) -> asyncio.Future[None]:
        assert asyncio.get_running_loop() is self.loop
        self.sent.append(message)
        future: asyncio.Future[None] = self.loop.create_future()
        future.set_result(None)
        return future

    def deliver(self, message: Message) -> None:
        def resolve() -> None:
            # As pyvoy does: set_result on the oldest future, cancelled or not
            # (a cancelled one would raise InvalidStateError here).
            self.waiting.pop(0).set_result(message)

        self.loop.call_soon_threadsafe(resolve)


def test_a_cancelled_receive_loses_no_message(theirs: asyncio.AbstractEventLoop) -> None:
    server = Server(theirs)
    got: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):  # an idle timer, say
                await receive()
        server.deliver({"type": "websocket.receive", "text": "kept"})
        got.append(await receive())
        await send({"type": "websocket.send", "text": "answer"})

    async def pyvoy_runs_the_connection() -> None:
        hop = Hop(home, server.receive, server.send)  # type: ignore[arg-type]
        await hop.serve(app, {"type": "websocket"})

    home = asyncio.new_event_loop()
    thread = threading.Thread(target=home.run_forever)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(pyvoy_runs_the_connection(), theirs).result(10)
    finally:
        home.call_soon_threadsafe(home.stop)
        thread.join()
        home.close()
    assert got == [{"type": "websocket.receive", "text": "kept"}]
    assert server.sent == [{"type": "websocket.send", "text": "answer"}]
