"""Server-Sent Events: a server-streaming method on its REST route.

Each output message is one event whose ``data`` is the message as REST's
JSON and whose ``id`` is its event id (a ``@resumable`` method's field, else
its place in the stream); a ``retry:`` hint opens the stream. A client that
reconnects with ``Last-Event-ID`` calls a resumable method with that id in
its ``after`` field. An error before the first message is an ordinary
problem document with its status; after it, a last ``event: error`` whose
data is the problem document. An idle stream gets a comment line now and
then, so proxies that close quiet connections do not. A client that goes
away cancels the handler (:mod:`twofold.wires.exchange`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec

from twofold.core.asgi import Receive, Send
from twofold.core.chain import Refused
from twofold.core.context import Context
from twofold.core.errors import Error, as_error
from twofold.core.invoke import deadline, stream
from twofold.http import resumption
from twofold.http.body import encode_headers
from twofold.http.operation import Operation
from twofold.http.problem import problem, send_problem
from twofold.wires.exchange import Exchange, serve_route_stream, stopping

EVENT_STREAM = b"text/event-stream"
KEEPALIVE = 15.0  # seconds of silence before a comment line
# Milliseconds an EventSource waits before it reconnects (browsers' own
# default is about 3 s): sent once, at the start of every stream.
RETRY = 1000
# How long the first message may take before the 200 goes out anyway: long
# enough for a handler's own checks to fail with a proper status, short
# enough that a client sees the stream open at once.
GRACE = 0.25
_encode = msgspec.json.Encoder().encode


async def serve(
    op: Operation,
    ctx: Context,
    params: dict[str, Any],
    receive: Receive,
    send: Send,
    max_body_size: int,
    refused: Refused,
) -> None:
    """Answer one request to a server-streaming REST route with an event stream.

    ``ctx`` is the call's, built (and admitted) by the REST protocol.
    """
    scope = ctx.scope
    assert scope is not None
    path: str = scope["path"]
    read = resumption.read(op, scope, params, receive, max_body_size)
    await serve_route_stream(
        ctx,
        receive,
        send,
        refused,
        read,
        lambda sent, exchange: _events(ctx, sent.request, path, send, exchange),
    )


async def _events(ctx: Context, request: Any, path: str, send: Send, exchange: Exchange) -> None:
    stream_ = _Events(ctx, send)
    # The handler's generator runs in one task of its own from start to end
    # (a timeout or a context manager inside it may span its yields), while
    # this one opens the stream after GRACE and keeps it alive.
    pump = asyncio.ensure_future(stream_.pump(request))
    done: set[asyncio.Future[None]] = set()
    try:
        # The deadline (Request-Timeout, @timeout, a default: set by the
        # Deadlines interceptor in the pump) is held here, around the pump
        # and the sends, not in the pump: its expiry must stop the stream.
        async with deadline(ctx):
            while True:
                timeout = KEEPALIVE if stream_.started else GRACE
                done, _ = await asyncio.wait({pump}, timeout=timeout)
                if done:
                    pump.result()  # raises what the handler raised
                    break
                await stream_.idle()
    except (Exception, asyncio.CancelledError) as exc:  # only coded errors reach the wire
        if isinstance(exc, asyncio.CancelledError) and exchange.gone:
            raise
        if not pump.done():
            # Stopped by the deadline: end the handler before the last event,
            # so that no message of its can follow the error.
            pump.cancel()
            await asyncio.wait({pump})
        await _failed(
            stream_,
            send,
            path,
            stopping() if isinstance(exc, asyncio.CancelledError) else as_error(exc),
        )
        return
    finally:
        pump.cancel()
        # The handler's error, raised here from the pump, holds this frame in
        # its traceback; the pump, and the set asyncio.wait gave, hold the
        # error: kept to this frame's end, they would make a cycle.
        del pump, done
    if not stream_.started:
        await _start(send, ctx)
    await send({"type": "http.response.body", "body": b""})


async def _failed(stream_: _Events, send: Send, path: str, error: Error) -> None:
    """End an event stream with ``error``: a problem document if it has not
    begun, else an ``error`` event. A frame of its own: a local of the
    caller's would keep the error, whose traceback holds that frame."""
    if not stream_.started:
        await send_problem(send, error, path)
        return
    doc = _encode(problem(error, path))
    await send({"type": "http.response.body", "body": b"event: error\ndata: " + doc + b"\n\n"})


class _Events:
    """The sending side of one event stream, shared by the pump and the keepalive."""

    def __init__(self, ctx: Context, send: Send) -> None:
        self.ctx = ctx
        self.send = send
        self.started = False
        self.lock = asyncio.Lock()
        self.sent_at = 0.0

    async def pump(self, request: Any) -> None:
        resume = self.ctx.method.resume
        count = 0
        async with contextlib.aclosing(stream(self.ctx.method, self.ctx, request)) as outputs:
            async for output in outputs:
                count += 1
                event_id = count if resume is None else getattr(output, resume.event_id)
                # The reconnection delay rides on the first event: a block of
                # its own, with no data, would be an event with none to tools
                # that read the stream by its OpenAPI schema.
                retry = b"retry: %d\n" % RETRY if count == 1 else b""
                await self._body(
                    retry
                    + b"id: "
                    + resumption.event_id(event_id).encode()
                    + b"\ndata: "
                    + _encode(output)
                    + b"\n\n"
                )

    async def idle(self) -> None:
        """Open the stream if the handler is slow to start; a comment if it is quiet."""
        if not self.started or asyncio.get_running_loop().time() - self.sent_at >= KEEPALIVE:
            await self._body(b": keepalive\n\n")

    async def _body(self, data: bytes) -> None:
        async with self.lock:
            if not self.started:
                self.started = True
                await _start(self.send, self.ctx)
            await self.send({"type": "http.response.body", "body": data, "more_body": True})
            self.sent_at = asyncio.get_running_loop().time()


async def _start(send: Send, ctx: Context) -> None:
    headers = [
        (b"content-type", EVENT_STREAM),
        # Events are live: no cache may keep them, no proxy may buffer them.
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),
    ]
    if ctx.has_response_headers():
        headers.extend(encode_headers(ctx.response_headers))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
