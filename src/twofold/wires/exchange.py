"""What the streaming HTTP wires share: the exchange loop, and a client that goes
away cancelling the call.

:class:`EnvelopedCall` is the loop of every wire of enveloped messages;
:func:`serve_route_stream` is the start of both answers to a server stream's
REST route (an event stream, a long poll).

A unary call notices a disconnect when it next reads the body; a streaming
response may run for minutes after the body was read, so someone has to
keep listening. :class:`Exchange` runs the exchange as a task and, once the
request body is consumed, watches ``receive`` for ``http.disconnect`` and
cancels that task: the handler's generator sees ``CancelledError`` at its
next ``await`` or ``yield``, and its ``finally`` blocks run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.chain import Refused
from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.errors import Error, as_error
from twofold.core.headers import Headers
from twofold.core.invoke import deadline, deliver
from twofold.core.method import Method, StreamKind
from twofold.core.table import MethodTable
from twofold.http import envelope, grpcstatus, negotiation
from twofold.http.body import ClientDisconnected, disconnect, encode_headers
from twofold.http.negotiation import GZIP, GZIP_MIN_SIZE, compress, decompressor
from twofold.http.problem import send_problem

T = TypeVar("T")


# How long a call runs, once its request is read, before its client is watched
# for a disconnect (:meth:`Exchange.watch`).
WATCH_AFTER = 0.01


class Exchange:
    """One streaming call, cancelled if the client disconnects."""

    __slots__ = ("_receive", "_task", "_timer", "_watcher", "gone")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.gone = False

    async def run(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` to its end, or until the client disconnects.

        ``work`` runs in the calling task (the server's task for this
        request), which a disconnect cancels while ``work`` runs and only
        then: a task of its own would cost a task a call for what a flag
        gives (``_task`` is cleared the moment ``work`` is over, so a
        disconnect seen later, as every response's end is, cancels nothing).
        """
        task = asyncio.current_task()
        if task is None:  # not under asyncio's tasks: a task of its own
            task = asyncio.ensure_future(work)
            work = _awaited(task)
        self._task = task
        try:
            await work
        except asyncio.CancelledError:
            if not self.gone:
                raise  # the server cancelled us, not the client
            task.uncancel()  # ours, spent: the server's later cancellations still count
        finally:
            self._task = None
            if self._timer is not None:
                self._timer.cancel()  # answered before it was worth watching
        # The watcher is not cancelled: its receive ends by itself, since a
        # server answers http.disconnect once the response is complete (ASGI
        # 2.4), and then cancelling the finished exchange does nothing. A
        # receive cancelled while pending makes pyvoy (1.3) log an
        # InvalidStateError traceback, once per call.

    def watch(self) -> None:
        """Listen for a disconnect from :data:`WATCH_AFTER` seconds on: call once
        the request body is consumed.

        Not at once: listening costs a task and a receive that the server
        must answer, per call, and most unary calls are answered within
        milliseconds, when a cancellation would stop nothing worth stopping.
        A call still running then (a slow handler, a stream) is watched, and
        a client that left ends it as before.
        """
        if self._watcher is None and self._timer is None and self._task is not None:
            self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER, self._start)
        elif self._watcher is None and self._task is None:
            self._start()  # not inside run (a caller that watches first): at once

    def _start(self) -> None:
        self._timer = None
        if self._watcher is None and not self.gone:
            self._watcher = asyncio.ensure_future(self._watch())

    def disconnected(self) -> None:
        """The client is gone: cancel the exchange."""
        self.gone = True
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        await disconnect(self._receive)
        self.disconnected()


async def _awaited(task: asyncio.Future[None]) -> None:
    await task


async def serve_route_stream(
    ctx: Context,
    receive: Receive,
    send: Send,
    refused: Refused,
    read: Awaitable[T],
    respond: Callable[[T, Exchange], Coroutine[Any, Any, None]],
    xml: bool = False,
) -> None:
    """Await ``read`` (the request, as the route's representation reads it), then
    run ``respond`` with it as an :class:`Exchange` that a disconnect cancels.

    ``ctx`` is the call's, built and admitted by the REST protocol. An
    :class:`Error` from ``read`` is a refusal: the chain has not run, so the
    table's observers are told (``refused``) before the problem document goes
    out (problem+xml when ``xml``); a client gone while its body was read gets
    no answer.
    """
    try:
        request = await read
    except ClientDisconnected:
        return
    except Error as exc:
        scope = ctx.scope
        assert scope is not None
        await refused(ctx, exc)
        await send_problem(send, exc, scope["path"], xml=xml)
        return
    ctx.status = 200
    exchange = Exchange(receive)
    exchange.watch()  # the body is read: from now on a receive can only be a disconnect
    await exchange.run(respond(request, exchange))


def stopping() -> Error:
    """The end of a stream the server cancelled (not its client, nor its deadline).

    An ASGI server cancels what is still running when it stops (uvicorn, once
    its graceful-shutdown timeout is over). A stream cut there would read as
    a broken connection; ended with UNAVAILABLE instead, as a gRPC server
    going away ends its calls, it tells the client to retry, elsewhere. The
    wire catches the cancellation, writes this end and returns: the call is
    over, which is what the cancellation asked for.
    """
    return Error(Code.UNAVAILABLE, "the server is shutting down")


class EnvelopedCall:
    """One call on a wire of enveloped messages: the loop every such wire shares.

    Connect streaming and gRPC-Web (and native gRPC over HTTP/2, next) read
    the request as envelopes (:mod:`twofold.http.envelope`), run the method
    under its deadline, write each output as an envelope and end the stream
    with a status. What differs between them is small, and is what a
    subclass gives:

    - ``PROTOCOL``, ``ENCODING_HEADER`` (where the request names its
      coding), ``NO_MESSAGE`` (the refusal of a request with no message),
      ``TRUNCATED`` (the code of a body that ends inside a message);
    - :meth:`accepts_gzip` and :meth:`deadline` (the wire's accept-encoding
      and timeout headers), :meth:`start_headers`
      (the wire's own response headers), :meth:`check` (flags a request
      envelope may not carry), :meth:`body` (a chunk onto the response body,
      e.g. in base64) and :meth:`end` (the status: an end-of-stream message
      or trailers).

    A failure before the interceptor chain is reached is a refusal, which the
    table's observers still hear of; after it, the chain saw it already.
    """

    PROTOCOL: str
    ENCODING_HEADER: str
    NO_MESSAGE: str
    TRUNCATED = Code.INVALID_ARGUMENT  # a body that ends inside a message

    def __init__(
        self,
        table: MethodTable,
        limit: int,
        method: Method,
        scope: Scope,
        send: Send,
        codecs: Callable[[], tuple[Callable[[bytes], Any], Callable[[Any], bytes]]],
        content_type: bytes,
        text: bool = False,
    ) -> None:
        self.table = table
        self.limit = limit
        self.method = method
        self.scope = scope
        self.send = send
        self.codecs = codecs  # (decode, encode), looked up once the call is under way
        self.content_type = content_type  # of the response
        self.text = text
        self.headers: dict[bytes, bytes] = dict(scope["headers"])  # the last value of each name
        self.compress = self.accepts_gzip()
        self.started = False
        self.ctx: Context | None = None
        self.called = False
        self.encode: Callable[[Any], bytes] = _unset

    # The hooks.

    def accepts_gzip(self) -> bool:
        """Whether the client takes gzipped messages (the wire's accept header)."""
        raise NotImplementedError

    def deadline(self) -> float | None:
        raise NotImplementedError

    def start_headers(self) -> list[tuple[bytes, bytes]]:
        raise NotImplementedError

    def metadata(self) -> list[tuple[bytes, bytes]]:
        """The request headers as the handler sees them."""
        raw: list[tuple[bytes, bytes]] = self.scope["headers"]
        return raw

    def encode_metadata(self, headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
        """Handler-set headers as the wire sends them."""
        return encode_headers(headers)

    def check(self, item: envelope.Envelope, single: bool) -> None:
        """Refuse a request envelope whose flags the wire forbids."""

    async def body(self, data: bytes, more: bool) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def end(self, error: Error | None) -> None:
        raise NotImplementedError

    # The loop.

    async def serve(self, receive: Receive) -> None:
        exchange = Exchange(receive)
        await exchange.run(self._exchange(receive, exchange))

    async def _exchange(self, receive: Receive, exchange: Exchange) -> None:
        error: Error | None = None
        try:
            decode, self.encode = self.codecs()
            ctx = self.ctx = Context(
                self.PROTOCOL,
                self.method,
                Headers(self.metadata()),
                self.scope.get("client"),  # formatted only if someone asks
                self.deadline(),
                self.scope,
            )
            if self.table.admit is not None:
                # Credentials before the first message is read.
                refusal = await self.table.admit(ctx)
                if refusal is not None:
                    self.called = True  # told already, as a refusal in the chain is
                    raise refusal
            where = self.ENCODING_HEADER
            decompress = decompressor(where, self.headers.get(where.encode()))
            reader = envelope.Reader(
                receive, self.limit, decompress, text=self.text, truncated=self.TRUNCATED
            )
            async with deadline(ctx):
                if self.method.kind in (StreamKind.CLIENT, StreamKind.BIDI):
                    request = self._inputs(reader, decode, exchange)
                else:
                    request = decode(await self._single(reader))
                    exchange.watch()
                self.called = True
                await deliver(self.method, ctx, request, self.write)
        except ClientDisconnected:
            exchange.disconnected()
            return
        except asyncio.CancelledError:
            if exchange.gone:
                raise
            error = stopping()
        except Exception as exc:  # only coded errors reach the wire
            error = as_error(exc)
            refusal = None  # if it was what was raised: only error keeps it, till the end
            if not self.called:
                await self.table.refuse(self.PROTOCOL, self.method, self.scope, error)
        try:
            await self.end(error)
        except OSError:
            # ASGI servers raise OSError for a send after the client left
            # (spec 2.4): a stream cut by the server's stop may find it gone.
            exchange.gone = True
        # A raised error kept in this frame's locals at its end would keep
        # the frame through its traceback: a cycle per failed call, which only
        # the garbage collector frees.
        del error

    async def _single(self, reader: envelope.Reader) -> bytes:
        first = await reader.next()
        if first is None:
            raise Error(Code.INVALID_ARGUMENT, self.NO_MESSAGE)
        self.check(first, single=True)
        if await reader.next() is not None:
            raise Error(Code.INVALID_ARGUMENT, f"{self.method.name} takes exactly one message")
        return first.data

    async def _inputs(
        self, reader: envelope.Reader, decode: Callable[[bytes], Any], exchange: Exchange
    ) -> AsyncIterator[Any]:
        while True:
            try:
                item = await reader.next()
            except ClientDisconnected:
                exchange.disconnected()
                raise asyncio.CancelledError from None
            if item is None:
                exchange.watch()
                return
            self.check(item, single=False)
            yield decode(item.data)

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        """The wire's start headers, then those the handler set."""
        raw = self.start_headers()
        ctx = self.ctx
        if ctx is not None and ctx.has_response_headers():
            raw.extend(self.encode_metadata(ctx.response_headers))
        return raw

    def safe_response_headers(
        self, error: Error | None
    ) -> tuple[list[tuple[bytes, bytes]], Error | None]:
        """The start headers, or, where a handler set a header that cannot be
        sent (a line break in it), the wire's own with INTERNAL as the outcome."""
        try:
            return self.response_headers(), error
        except ValueError:
            self.ctx = None
            return self.response_headers(), Error(Code.INTERNAL, "internal error")

    async def start(self, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.started = True
        raw = self.response_headers() if headers is None else headers
        await self.send({"type": "http.response.start", "status": 200, "headers": raw})

    async def write(self, output: Any) -> None:
        try:
            if not self.started:
                await self.start()
            data = self.encode(output)
            flags = 0
            if self.compress and len(data) >= GZIP_MIN_SIZE:
                data, flags = compress(data), envelope.COMPRESSED
            await self.body(envelope.frame(data, flags), more=True)
        except OSError as exc:
            # A send after the client left raises OSError (ASGI 2.4): the
            # call ends as a disconnect, not as a failure of the handler's
            # (which would log a traceback for every stream a client drops).
            raise ClientDisconnected from exc


def _unset(output: Any) -> bytes:
    raise AssertionError("no codec yet")


class GrpcHeadersCall(EnvelopedCall):
    """The headers native gRPC and gRPC-Web share (the gRPC HTTP/2 spec's):
    ``grpc-timeout``, ``grpc-encoding`` and ``grpc-accept-encoding``."""

    ENCODING_HEADER = "grpc-encoding"
    NO_MESSAGE = "the request has no message"

    def accepts_gzip(self) -> bool:
        return negotiation.accepts_gzip(self.headers.get(b"grpc-accept-encoding"))

    def deadline(self) -> float | None:
        return grpcstatus.deadline(self.headers.get(b"grpc-timeout"))

    def start_headers(self) -> list[tuple[bytes, bytes]]:
        raw = [(b"content-type", self.content_type), (b"grpc-accept-encoding", GZIP)]
        if self.compress:
            raw.append((b"grpc-encoding", GZIP))
        return raw

    def metadata(self) -> list[tuple[bytes, bytes]]:
        return grpcstatus.decode_metadata(self.scope["headers"])

    def encode_metadata(self, headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
        return grpcstatus.encode_metadata(headers)

    def trailers(self, error: Error | None, always_details: bool) -> list[tuple[bytes, bytes]]:
        """The status, then the trailing metadata the handler set (even when it failed);
        a value that cannot be sent (a line break in it) makes the outcome INTERNAL."""
        ctx = self.ctx
        if ctx is None or not ctx.has_response_trailers():
            return grpcstatus.status_trailers(error, always_details)
        try:
            extra = grpcstatus.encode_metadata(ctx.response_trailers)
        except ValueError:
            return grpcstatus.status_trailers(
                Error(Code.INTERNAL, "internal error"), always_details
            )
        return grpcstatus.status_trailers(error, always_details) + extra
