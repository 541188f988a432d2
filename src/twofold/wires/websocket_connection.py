"""One JSON-RPC 2.0 connection over WebSocket: the loop an App's wire and the gateway share.

The upgrade (Origin, credentials, subprotocol), then a reader, a writer and
a task per call. Requests, batches and notifications are JSON-RPC's
(:mod:`twofold.http.jsonrpc`), answered in any order; a streaming method
answers a stream id at once, its messages following as ``rpc.subscription``
notifications, its end as one with ``"end": true`` or an ``"error"``.
``rpc.unsubscribe`` ends a stream early; ``rpc.send`` feeds a client or bidi
stream, ``rpc.close`` ends its input. Credentials come on the upgrade or in
a first ``rpc.authenticate``, checked before anything else is read. Limits
(:class:`~twofold.core.options.WebSocketOptions`) close with RFC 6455's
codes. What a call does is behind :class:`Calls`: the App's handler
(:mod:`twofold.wires.websocket`), or the gateway's relay (:mod:`twofold.gateway.socket`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.code import INVALID_REQUEST, Code
from twofold.core.errors import Error, as_error
from twofold.core.headers import Headers
from twofold.core.method import StreamKind
from twofold.core.options import WebSocketOptions
from twofold.http.body import peer
from twofold.http.cors import Cors
from twofold.http.jsonrpc import (
    UNPARSABLE,
    Fault,
    Id,
    Request,
    check_params,
    decode_list,
    encode,
    error_object,
    error_response,
    fault_response,
    is_batch,
    parse,
    parse_fault,
    result_response,
)

logger = logging.getLogger("twofold")

PROTOCOL = "websocket"
SUBPROTOCOL = "jsonrpc"
# RFC 6455 §7.4.1 close codes.
NORMAL = 1000
POLICY = 1008  # a client that does not read, an Origin or credentials refused
TOO_BIG = 1009
# How long the close frame may wait behind what a slow client has not read
# (the websockets library's close_timeout); the handlers have stopped already.
CLOSE_TIMEOUT = 10.0
# The methods of the connection itself: the spec reserves the "rpc." prefix
# for such extensions, so no method of a service can take these names.
AUTHENTICATE = "rpc.authenticate"
SUBSCRIPTION = "rpc.subscription"
UNSUBSCRIBE = "rpc.unsubscribe"
SEND = "rpc.send"
CLOSE = "rpc.close"
_CONTROL = frozenset({AUTHENTICATE, UNSUBSCRIBE, SEND, CLOSE})
_INPUT = (StreamKind.CLIENT, StreamKind.BIDI)
_END = object()  # the end of a client stream's input

Write = Callable[[Any], Awaitable[None]]


class Call(Protocol):
    """One call of a connection, resolved from its method name by :meth:`Calls.resolve`."""

    @property
    def kind(self) -> StreamKind: ...

    async def admit(self) -> Error | None:
        """The header-only checks (credentials, scopes): the refusal, or None.
        A refusal is the call's answer; whoever observes refusals was told already."""

    def decode(self, params: msgspec.Raw, request_id: Id) -> Any:
        """The request message from ``params``; raises only Error or Fault."""

    def encode(self, output: Any) -> bytes:
        """One output message (a unary call's result, a stream's message) as JSON."""

    async def unary(self, message: Any) -> Any:
        """A unary call's output."""

    async def stream(self, request: Any, write: Write) -> None:
        """Run a stream to its end, ``write``-ing each output as it comes. ``request`` is
        the message of a server stream, the async iterator of a client or bidi
        stream's messages (it raises the Error of one that did not decode)."""

    async def refused(self, error: Error) -> None:
        """Tell observers of this call, refused before it ran."""


class Calls(Protocol):
    """What a connection's calls go to: the one part an App and the gateway do differently."""

    async def admit(self, headers: Headers) -> Error | None:
        """The connection's credentials, on the upgrade and in ``rpc.authenticate``:
        present ones must be valid (none is an anonymous connection)."""

    def resolve(self, name: str, headers: Headers) -> Call:
        """The call of method ``name`` with the connection's ``headers``; raises
        Error or Fault for a name that is no method."""

    async def refused(self, headers: Headers, error: Error) -> None:
        """Tell observers of a message refused before its method was known."""


class _Closing(Exception):
    """The connection is being closed: whoever was sending stops."""


class _StreamRef(msgspec.Struct, forbid_unknown_fields=True):
    subscription: str
    message: msgspec.Raw = msgspec.Raw()


_decode_ref = msgspec.json.Decoder(_StreamRef).decode
_decode_credentials = msgspec.json.Decoder(dict[str, str]).decode


@dataclass(eq=False)
class _Stream:
    id: str
    call: Call
    go: asyncio.Event = field(default_factory=asyncio.Event)
    inputs: asyncio.Queue[Any] | None = None
    task: asyncio.Task[None] | None = None
    unsubscribed: bool = False


async def serve(
    scope: Scope,
    receive: Receive,
    send: Send,
    calls: Calls,
    *,
    limits: WebSocketOptions,
    max_batch_size: int,
    cors: Cors | None,
) -> None:
    """Serve one ``websocket`` scope: the upgrade, then the connection until it closes."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    refusal = _foreign_origin(scope, cors)
    if refusal is not None:
        await calls.refused(Headers(scope["headers"]), refusal)
        await _reject(scope, send, refusal, 403)
        return
    headers = Headers(scope["headers"])
    # Credentials on the upgrade, before the connection exists.
    refused = await calls.admit(headers)
    if refused is not None:
        await _reject(scope, send, refused, refused.status)
        return
    offered = scope.get("subprotocols") or ()
    accept: dict[str, Any] = {"type": "websocket.accept"}
    if SUBPROTOCOL in offered:
        accept["subprotocol"] = SUBPROTOCOL
    await send(accept)
    connection = _Connection(calls, limits, max_batch_size, scope, receive, send, headers)
    await connection.run()


def _foreign_origin(scope: Scope, cors: Cors | None) -> Error | None:
    """Refuse a browser page of another origin the CORS policy does not list.

    Browsers send ``Origin`` on every upgrade and apply no same-origin rule
    to WebSockets: without this check any site could open a connection
    with the user's cookies (cross-site WebSocket hijacking). A client that
    is not a browser sends no Origin, and is let through.
    """
    origin = host = None
    for k, v in scope["headers"]:
        if k == b"origin":
            origin = v.decode("latin-1")
        elif k == b"host":
            host = v.decode("latin-1")
    if origin is None:
        return None
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    if host is not None and origin == f"{scheme}://{host}".lower():
        return None
    if cors is not None and cors.allows(origin):
        return None
    return Error(Code.PERMISSION_DENIED, f"origin {origin} may not open a WebSocket here")


async def _reject(scope: Scope, send: Send, error: Error, status: int) -> None:
    """Refuse the upgrade: an HTTP answer with a JSON-RPC error where the server can send one."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": POLICY})  # servers answer 403
        return
    body = error_response(None, error)
    headers = [(b"content-type", b"application/json")]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


class _Connection:
    """One accepted connection: a reader (this task), a writer, and a task per call."""

    def __init__(
        self,
        calls: Calls,
        limits: WebSocketOptions,
        max_batch_size: int,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: Headers,
    ) -> None:
        self.calls = calls
        self.limits = limits
        self.max_batch_size = max_batch_size
        self.receive = receive
        self.send = send
        self.headers = headers
        self.peer = peer(scope)
        self.outgoing: asyncio.Queue[bytes] = asyncio.Queue(limits.max_queued_messages)
        self.streams: dict[str, _Stream] = {}
        self.running: set[asyncio.Task[None]] = set()
        self.ids = itertools.count(1)
        self.first = True
        self.closing = False
        self.close_code = NORMAL
        self.close_reason = ""
        self.drain = True
        self.gone = False
        self.reader: asyncio.Task[None] | None = None
        # When the connection last did something: a message came, a call or stream ended.
        self.last_active = asyncio.get_running_loop().time()

    async def run(self) -> None:
        writer = asyncio.ensure_future(self._write())
        self.reader = asyncio.ensure_future(self._read())
        try:
            await asyncio.wait({self.reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # The client left or is being closed: every call it started ends now
            # (on the gateway, cancelling a task cancels its upstream call).
            self.reader.cancel()
            for stream in list(self.streams.values()):
                if stream.task is not None:
                    stream.task.cancel()
            for call in list(self.running):
                call.cancel()
            pending = [s.task for s in self.streams.values() if s.task] + list(self.running)
            if pending:
                await asyncio.wait(pending)
            if self.drain and not self.gone and not writer.done():
                # What was answered before the close goes out before it.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.limits.send_timeout):
                        await self.outgoing.join()
            writer.cancel()
            await asyncio.wait({writer, self.reader})
        if self.gone:
            return
        close = {"type": "websocket.close", "code": self.close_code, "reason": self.close_reason}
        # A client that stopped reading may never let the close frame out:
        # the server closes the socket once this returns.
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.send(close)

    def close(self, code: int, reason: str, *, drain: bool = True) -> None:
        """Close the connection with ``code`` once what is running has stopped;
        with ``drain``, after the messages already queued are sent."""
        if not self.closing:
            self.closing = True
            self.close_code, self.close_reason, self.drain = code, reason, drain
        if self.reader is not None and self.reader is not asyncio.current_task():
            self.reader.cancel()

    # -- sending ----------------------------------------------------------------------

    async def _write(self) -> None:
        while True:
            data = await self.outgoing.get()
            try:
                await self.send({"type": "websocket.send", "text": data.decode()})
            except OSError:  # the client left (ASGI 2.4: a send after that raises)
                self.gone = True
                return
            finally:
                self.outgoing.task_done()

    async def put(self, data: bytes) -> None:
        """Queue ``data`` for the client; wait while the queue is full (backpressure),
        and close the connection (1008) if that lasts ``send_timeout``."""
        try:
            self.outgoing.put_nowait(data)
            return
        except asyncio.QueueFull:
            pass
        try:
            async with asyncio.timeout(self.limits.send_timeout):
                await self.outgoing.put(data)
        except TimeoutError:
            logger.warning("Closed a WebSocket: its client does not read (%s)", self.peer)
            self.close(POLICY, "slow consumer: messages are not being read", drain=False)
            raise _Closing from None

    # -- reading ----------------------------------------------------------------------

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        idle_timeout = self.limits.idle_timeout
        while True:
            # Idle: no call or stream running, and no message, for idle_timeout.
            busy = bool(self.streams or self.running)
            wait = idle_timeout if busy else self.last_active + idle_timeout - loop.time()
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    message = await self.receive()
            except TimeoutError:
                if self.streams or self.running or loop.time() < self.last_active + idle_timeout:
                    continue
                self.close(NORMAL, "idle")
                return
            self.last_active = loop.time()
            if message["type"] == "websocket.disconnect":
                self.gone = True
                return
            data: str | bytes | None = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if _too_big(data, self.limits.max_message_size):
                self.close(TOO_BIG, f"message over {self.limits.max_message_size} bytes")
                return
            raw = data.encode() if isinstance(data, str) else data
            first, self.first = self.first, False
            try:
                await self._dispatch(raw, first)
            except _Closing:
                return
            if self.closing:
                return

    async def _dispatch(self, raw: bytes, first: bool) -> None:
        if is_batch(raw):
            self._spawn(self._batch(raw))
            return
        try:
            request = parse(raw)
            check_params(request)
        except Fault as fault:
            await self.calls.refused(self.headers, fault.error)
            await self.put(fault_response(fault))
            return
        if request.method in _CONTROL:
            # In order and at once: a stream's messages must arrive in the order sent.
            answer = await self._control(request, first)
            if answer is not None and not request.notification:
                await self.put(answer)
            return
        if len(self.running) >= self.limits.max_calls:
            error = Error(Code.RESOURCE_EXHAUSTED, "too many calls running on this connection")
            await self.calls.refused(self.headers, error)
            if not request.notification:
                await self.put(error_response(request.request_id, error))
            return
        self._spawn(self._single(request))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.running.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        self.last_active = asyncio.get_running_loop().time()

    async def _single(self, request: Request) -> None:
        opened: list[_Stream] = []
        with contextlib.suppress(_Closing):
            answer = await self._answer(request, opened)
            if answer is not None:
                await self.put(answer)
            for stream in opened:
                stream.go.set()

    async def _batch(self, raw: bytes) -> None:
        with contextlib.suppress(_Closing):
            fault = None
            try:
                items = decode_list(raw)
            except UNPARSABLE as exc:
                fault = parse_fault(exc)
            else:
                limit = self.max_batch_size
                if not items:
                    fault = Fault(INVALID_REQUEST, Code.INVALID_ARGUMENT, "empty batch")
                elif len(items) > limit:
                    message = f"batch of {len(items)} calls is over the limit of {limit}"
                    fault = Fault(INVALID_REQUEST, Code.INVALID_ARGUMENT, message)
            if fault is not None:
                await self.calls.refused(self.headers, fault.error)
                await self.put(fault_response(fault))
                return
            opened: list[_Stream] = []
            answers = await asyncio.gather(*(self._item(item, opened) for item in items))
            parts = [answer for answer in answers if answer is not None]
            if parts:
                await self.put(b"[" + b",".join(parts) + b"]")
            for stream in opened:
                stream.go.set()

    async def _item(self, raw: msgspec.Raw, opened: list[_Stream]) -> bytes | None:
        try:
            request = parse(raw)
            check_params(request)
        except Fault as fault:
            await self.calls.refused(self.headers, fault.error)
            return fault_response(fault)
        if request.method in _CONTROL:
            error = Error(Code.INVALID_ARGUMENT, f"{request.method} cannot be part of a batch")
            return None if request.notification else error_response(request.request_id, error)
        return await self._answer(request, opened)

    # -- calls ------------------------------------------------------------------------

    async def _answer(self, request: Request, opened: list[_Stream]) -> bytes | None:
        """The response to one call (a stream's is its id), or None for a notification."""
        request_id = request.request_id
        notification = request.notification
        call: Call | None = None
        try:
            call = self.calls.resolve(request.method, self.headers)
            # Credentials before params, as over HTTP.
            refusal = await call.admit()
            if refusal is not None:
                return None if notification else error_response(request_id, refusal)
            kind = call.kind
            if kind in _INPUT:
                if request.params:
                    raise Error(
                        Code.INVALID_ARGUMENT,
                        f"{request.method} takes its messages by {SEND}, not as params",
                    )
                message = None
            else:
                message = call.decode(request.params, request_id)
            if kind is not StreamKind.UNARY:
                stream = self._open(call, message)
                opened.append(stream)
                return None if notification else result_response(request_id, encode(stream.id))
        except (Fault, Error) as exc:
            error = exc.error if isinstance(exc, Fault) else exc
            if call is None:
                await self.calls.refused(self.headers, error)
            else:
                await call.refused(error)
            if notification:
                return None
            if isinstance(exc, Fault):
                return fault_response(exc)
            return error_response(request_id, exc)
        try:
            result = call.encode(await call.unary(message))
        except Exception as exc:  # an Error, or an output that cannot be encoded
            return None if notification else error_response(request_id, as_error(exc))
        return None if notification else result_response(request_id, result)

    def _open(self, call: Call, message: Any) -> _Stream:
        if len(self.streams) >= self.limits.max_streams:
            limit = self.limits.max_streams
            raise Error(Code.RESOURCE_EXHAUSTED, f"over the limit of {limit} streams open at once")
        stream = _Stream(f"s{next(self.ids)}", call)
        if call.kind in _INPUT:
            stream.inputs = asyncio.Queue(self.limits.max_queued_messages)
            message = self._inputs(stream)
        self.streams[stream.id] = stream
        stream.task = asyncio.ensure_future(self._pump(stream, message))
        return stream

    async def _inputs(self, stream: _Stream) -> AsyncIterator[Any]:
        assert stream.inputs is not None
        while True:
            item = await stream.inputs.get()
            if item is _END:
                return
            if isinstance(item, Error):
                raise item
            yield item

    async def _pump(self, stream: _Stream, request: Any) -> None:
        await stream.go.wait()
        prefix = b'{"jsonrpc":"2.0","method":"' + SUBSCRIPTION.encode()
        prefix += b'","params":{"subscription":' + encode(stream.id)

        encode_output = stream.call.encode

        async def write(output: Any) -> None:
            await self.put(prefix + b',"result":' + encode_output(output) + b"}}")

        end = b',"end":true}}'
        try:
            await stream.call.stream(request, write)
        except _Closing:
            return
        except Exception as exc:  # only coded errors reach the wire
            end = b',"error":' + error_object(as_error(exc)) + b"}}"
        finally:
            self.streams.pop(stream.id, None)
            self.last_active = asyncio.get_running_loop().time()
        with contextlib.suppress(_Closing):
            await self.put(prefix + end)

    # -- the connection's own methods ----------------------------------------------------

    async def _control(self, request: Request, first: bool) -> bytes | None:
        request_id = request.request_id
        try:
            if request.method == AUTHENTICATE:
                return await self._authenticate(request, first)
            try:
                ref = _decode_ref(request.params or b"{}")
            except (msgspec.ValidationError, *UNPARSABLE) as exc:
                message = f'{request.method} takes {{"subscription": id, ...}}: {exc}'
                raise Error(Code.INVALID_ARGUMENT, message) from None
            stream = self.streams.get(ref.subscription)
            if request.method == UNSUBSCRIBE:
                if stream is None or stream.task is None:
                    return result_response(request_id, b"false")
                stream.unsubscribed = True
                stream.task.cancel()
                self.streams.pop(stream.id, None)
                return result_response(request_id, b"true")
            if stream is None or stream.inputs is None:
                raise Error(Code.NOT_FOUND, f"no client or bidi stream {ref.subscription}")
            if request.method == CLOSE:
                await stream.inputs.put(_END)
                return result_response(request_id, b"true")
            try:
                item: Any = stream.call.decode(ref.message, request_id)
            except Fault as fault:
                item = fault.error
            except Error as exc:
                item = exc
            # The handler sees a bad message as its input failing, as on Connect.
            await stream.inputs.put(item)
            if isinstance(item, Error):
                raise item
            return result_response(request_id, b"true")
        except Error as exc:
            return error_response(request_id, exc)

    async def _authenticate(self, request: Request, first: bool) -> bytes:
        """``rpc.authenticate``: header-like credentials (``{"authorization": "Bearer ..."}``),
        for browsers, which cannot set headers on an upgrade. Only as the first message;
        credentials it refuses close the connection (1008)."""
        request_id = request.request_id
        if not first:
            error = Error(Code.FAILED_PRECONDITION, f"{AUTHENTICATE} must be the first message")
            return error_response(request_id, error)
        try:
            given = _decode_credentials(request.params or b"{}")
        except (msgspec.ValidationError, *UNPARSABLE):
            error = Error(
                Code.INVALID_ARGUMENT, f'{AUTHENTICATE} takes {{"authorization": "Bearer ..."}}'
            )
            self.close(POLICY, "credentials refused")
            return error_response(request_id, error)
        names = {k.lower().encode("latin-1", "replace") for k in given}
        raw = [(k, v) for k, v in self.headers.raw() if k not in names]
        raw += [(k.lower().encode("latin-1", "replace"), v.encode()) for k, v in given.items()]
        headers = Headers(raw)
        refusal = await self.calls.admit(headers)
        if refusal is not None:
            self.close(POLICY, "credentials refused")
            return error_response(request_id, refusal)
        self.headers = headers
        return result_response(request_id, b"true")


def _too_big(data: str | bytes, limit: int) -> bool:
    """Whether a message is over ``limit`` bytes; a text is encoded only when it may be."""
    if isinstance(data, bytes) or len(data) > limit:
        return len(data) > limit
    # One character is one to four bytes of UTF-8.
    return len(data) * 4 > limit and len(data.encode("utf-8", "surrogatepass")) > limit
