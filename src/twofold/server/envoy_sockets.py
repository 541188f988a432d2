"""WebSocket connections on pyvoy, served on the App's event loop.

pyvoy runs its WebSocket filter's App calls on an event loop of its own, in
another thread than the loop of every HTTP call and of the lifespan (whose
resources, a database pool say, belong to that loop). :class:`Hop` runs
each connection on the App's loop, and calls pyvoy's ``receive`` and
``send`` back on pyvoy's loop, where they must be called.

It also makes them safe to cancel, as uvicorn's are: pyvoy resolves each
future it handed out later, from its own thread, whether or not its awaiter
gave up. A ``receive`` cancelled here (an idle timer) leaves its message to
the next ``receive``; a cancelled ``send`` goes on, its outcome collected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from twofold.core.asgi import ASGIApp, Message, Receive, Scope, Send
from twofold.server.envoy_websocket import PEER_HEADER, SCHEME_HEADER

_EDGE = (PEER_HEADER.encode(), SCHEME_HEADER.encode())


def from_edge(scope: Scope) -> Scope:
    """A ``websocket`` scope as the client made it: its address and scheme from the
    headers Envoy's route set (:mod:`twofold.server.envoy_websocket`), not the
    internal listener's, and without those headers."""
    edge = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in _EDGE}
    headers = [(k, v) for k, v in scope["headers"] if k not in _EDGE]
    scope = {**scope, "headers": headers}
    peer = edge.get(PEER_HEADER)
    if peer is not None:
        host, _, port = peer.rpartition(":")
        scope["client"] = (host.strip("[]"), int(port)) if port.isdigit() else None
    if SCHEME_HEADER in edge:
        scope["scheme"] = edge[SCHEME_HEADER]
    return scope


class Hop:
    """``app`` run on ``home`` (the App's loop) for a connection pyvoy started on
    the running loop; :meth:`serve` returns when the App's call does."""

    def __init__(self, home: asyncio.AbstractEventLoop, receive: Receive, send: Send) -> None:
        self.home = home
        self.theirs = asyncio.get_running_loop()
        self._receive = receive
        self._send = send
        self.pending: asyncio.Future[Message] | None = None  # a receive not yet taken

    async def serve(self, app: ASGIApp, scope: Scope) -> None:
        call = asyncio.run_coroutine_threadsafe(
            _call(app, scope, self.receive, self.send), self.home
        )
        try:
            await asyncio.wrap_future(call)
        except asyncio.CancelledError:
            # pyvoy ended the connection's task: the App's call ends too.
            call.cancel()
            raise

    async def receive(self) -> Message:
        """pyvoy's ``receive``, on its loop; a message is never lost to a cancellation."""
        if self.pending is None:
            self.pending = self._there(self._receive)
        message = await asyncio.shield(self.pending)
        self.pending = None
        return message

    async def send(self, message: Message) -> None:
        """pyvoy's ``send``, on its loop; its error (the client gone) is the sender's."""
        await asyncio.shield(self._there(self._send, message))

    def _there(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> asyncio.Future[Any]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_call(fn, *args), self.theirs))


async def _call(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    # What run_coroutine_threadsafe takes: pyvoy's callables return futures of
    # its loop, and an ASGI app returns any awaitable.
    return await fn(*args)
