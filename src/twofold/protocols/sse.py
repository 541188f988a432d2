"""Server-Sent Events: a server-streaming method on its REST route.

REST has no framing of its own for a stream, and browsers already read
``text/event-stream`` (``EventSource``), so each output message is one event
whose ``data`` is the message as REST's JSON. The request is built as for
any REST call (path, query, body). An error before the first message is an
ordinary problem document with its status, since the status line is still
ours to choose; after it, the status is long gone, so the failure is a last
``event: error`` whose data is the problem document. An idle stream gets a
comment line now and then, so proxies that close quiet connections do not.
A client that goes away cancels the handler (:mod:`twofold.protocols.streaming`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec

from twofold.asgi import Receive, Scope, Send
from twofold.code import HTTP_STATUS, Code
from twofold.context import Context
from twofold.errors import Error, as_error, validation_error
from twofold.headers import Headers
from twofold.http import ClientDisconnected, encode_headers, peer, read_body
from twofold.invoke import stream
from twofold.protocols.streaming import Exchange

if TYPE_CHECKING:
    from twofold.protocols.rest import Operation

EVENT_STREAM = b"text/event-stream"
KEEPALIVE = 15.0  # seconds of silence before a comment line
# How long the first message may take before the 200 goes out anyway: long
# enough for a handler's own checks to fail with a proper status, short
# enough that a client sees the stream open at once.
GRACE = 0.25
_encode = msgspec.json.Encoder().encode


async def serve(
    op: Operation,
    params: dict[str, Any],
    scope: Scope,
    receive: Receive,
    send: Send,
    max_body_size: int,
) -> None:
    """Answer one request to a server-streaming REST route with an event stream."""
    from twofold.protocols.rest import _add_query, send_problem

    path: str = scope["path"]
    try:
        qs: bytes = scope["query_string"]
        if qs and op.query_fields:
            _add_query(params, qs, op.query_fields)
        raw = b"" if op.body is None else await read_body(scope, receive, max_body_size)
        try:
            request = op.decode(params, raw)
        except msgspec.ValidationError as exc:
            raise validation_error(exc) from None
        except msgspec.DecodeError as exc:
            raise Error(Code.INVALID_ARGUMENT, f"malformed JSON body: {exc}") from None
    except ClientDisconnected:
        return
    except Error as exc:
        await send_problem(send, exc, path)
        return
    ctx = Context("rest", op.method, Headers(scope["headers"]), peer(scope))
    exchange = Exchange(receive)
    exchange.watch()
    await exchange.run(_events(ctx, request, path, send))


async def _events(ctx: Context, request: Any, path: str, send: Send) -> None:
    from twofold.protocols.rest import problem, send_problem

    outputs = stream(ctx.method, ctx, request).__aiter__()
    started = False
    pending: asyncio.Future[Any] = asyncio.ensure_future(outputs.__anext__())
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE if started else GRACE)
            if not done:
                if not started:
                    started = True
                    await _start(send, ctx)
                keepalive = {"type": "http.response.body", "body": b": keepalive\n\n"}
                await send({**keepalive, "more_body": True})
                continue
            try:
                output = pending.result()
            except StopAsyncIteration:
                break
            if not started:
                started = True
                await _start(send, ctx)
            event = b"data: " + _encode(output) + b"\n\n"
            await send({"type": "http.response.body", "body": event, "more_body": True})
            pending = asyncio.ensure_future(outputs.__anext__())
    except Exception as exc:  # only coded errors reach the wire
        error = as_error(exc)
        if not started:
            await send_problem(send, error, path)
            return
        status = HTTP_STATUS[error.code]
        doc = _encode(problem(error, path, status))
        await send({"type": "http.response.body", "body": b"event: error\ndata: " + doc + b"\n\n"})
        return
    finally:
        pending.cancel()
    if not started:
        await _start(send, ctx)
    await send({"type": "http.response.body", "body": b""})


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
