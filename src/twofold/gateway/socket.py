"""JSON-RPC 2.0 over WebSocket at the gateway's JSON-RPC path: every stream kind.

The same conventions as an App's WebSocket wire (:mod:`twofold.wires.websocket`):
a unary call is answered with its result; calling a streaming method
answers a stream id at once, its messages follow as ``rpc.subscription``
notifications (``{"subscription", "result"}``) and its end as one with
``"end": true`` or an ``"error"``. ``rpc.send`` (``{"subscription",
"message"}``) feeds a client or bidi stream, ``rpc.close`` ends its input,
``rpc.unsubscribe`` cancels it. Each message goes upstream as it is sent.

Credentials, deadline and forwarded metadata are the upgrade request's, checked
per method before its params are read. A browser page of another origin is
refused unless the CORS policy lists it (cross-site WebSocket hijacking). A
connection that closes cancels every upstream call it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from google.protobuf.descriptor import MethodDescriptor

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.code import Code
from twofold.core.errors import Error, as_error

if TYPE_CHECKING:
    from twofold.gateway.rpc import RpcFront
    from twofold.http.cors import Cors

SUBPROTOCOL = "jsonrpc"
POLICY = 1008
TOO_BIG = 1009
SUBSCRIPTION = "rpc.subscription"
SEND = "rpc.send"
CLOSE = "rpc.close"
UNSUBSCRIBE = "rpc.unsubscribe"
# Streams one connection may hold open, and request messages queued per stream
# before rpc.send waits (backpressure onto the client's reading of its socket).
MAX_STREAMS = 100
QUEUED = 16
_END = object()
_encode = msgspec.json.Encoder().encode


@dataclass(eq=False)
class _Stream:
    id: str
    method: MethodDescriptor
    inputs: asyncio.Queue[Any] | None = None
    task: asyncio.Task[None] | None = None


class GatewaySocket:
    """One WebSocket connection's calls, relayed to the upstream."""

    def __init__(self, front: RpcFront, scope: Scope, receive: Receive, send: Send) -> None:
        self.front = front
        self.gateway = front.gateway
        self.scope = scope
        self.receive = receive
        self._send = send
        self._lock = asyncio.Lock()
        self.streams: dict[str, _Stream] = {}
        self.calls: set[asyncio.Task[None]] = set()
        self.ids = itertools.count(1)

    async def run(self) -> None:
        if (await self.receive())["type"] != "websocket.connect":
            return
        origin = _foreign_origin(self.scope, self.gateway.options.cors)
        if origin is not None:
            await self._send({"type": "websocket.close", "code": POLICY})
            return
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if SUBPROTOCOL in (self.scope.get("subprotocols") or ()):
            accept["subprotocol"] = SUBPROTOCOL
        await self._send(accept)
        try:
            await self._read()
        finally:
            # The client is gone (or refused): every upstream call it started ends now.
            for task in [*self.calls, *(s.task for s in self.streams.values() if s.task)]:
                task.cancel()
            for task in [*self.calls, *(s.task for s in self.streams.values() if s.task)]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def put(self, data: bytes) -> None:
        async with self._lock:
            await self._send({"type": "websocket.send", "text": data.decode()})

    async def _read(self) -> None:
        limit = self.gateway.options.max_body_size
        while True:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text")
            raw = data.encode() if data is not None else message.get("bytes") or b""
            if len(raw) > limit:
                await self._send(
                    {"type": "websocket.close", "code": TOO_BIG, "reason": "message too big"}
                )
                return
            try:
                doc = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                error = Error(Code.INVALID_ARGUMENT, "parse error: the message is not JSON")
                await self.put(_rpc_error(None, error, -32700))
                continue
            if not isinstance(doc, dict) or doc.get("jsonrpc") != "2.0":
                bad = Error(Code.INVALID_ARGUMENT, "not a JSON-RPC 2.0 request")
                await self.put(_rpc_error(None, bad, -32600))
                continue
            name = doc.get("method")
            if name in (SEND, CLOSE, UNSUBSCRIBE):
                answer = await self._control(name, doc)
                if "id" in doc:
                    await self.put(answer)
                continue
            # Calls run side by side: a slow one must not hold up the next message.
            task = asyncio.ensure_future(self._call(doc))
            self.calls.add(task)
            task.add_done_callback(self.calls.discard)

    async def _call(self, doc: dict[str, Any]) -> None:
        request_id = doc.get("id")
        notification = "id" not in doc
        front, gw = self.front, self.gateway
        try:
            method = front.jsonrpc_names.get(doc.get("method"))  # type: ignore[arg-type]
            if method is None:
                raise Error(Code.UNIMPLEMENTED, f"no method {doc.get('method')!r}")
            await gw.admit(method, self.scope)
            if method.client_streaming:
                if doc.get("params"):
                    raise Error.invalid("", f"{method.name} takes its messages by {SEND}")
                stream = self._open(method, None)
            else:
                request = front.params(method, doc.get("params", {}))
                if method.server_streaming:
                    stream = self._open(method, request)
                else:
                    meta, deadline = gw.metadata(self.scope), gw.deadline(self.scope)
                    path = _path(method)
                    raw = await gw.upstream.unary(path, request, meta, deadline, "websocket")
                    if not notification:
                        result = front.to_json(method, raw)
                        await self.put(_result(request_id, result))
                    return
        except Error as exc:
            if not notification:
                await self.put(_rpc_error(request_id, exc))
            return
        if not notification:
            await self.put(_result(request_id, _encode(stream.id)))

    def _open(self, method: MethodDescriptor, request: bytes | None) -> _Stream:
        if len(self.streams) >= MAX_STREAMS:
            raise Error(Code.RESOURCE_EXHAUSTED, f"over the limit of {MAX_STREAMS} open streams")
        stream = _Stream(f"s{next(self.ids)}", method)
        if request is None:
            stream.inputs = asyncio.Queue(QUEUED)
        self.streams[stream.id] = stream
        stream.task = asyncio.ensure_future(self._pump(stream, request))
        return stream

    async def _inputs(self, stream: _Stream) -> AsyncIterator[bytes]:
        assert stream.inputs is not None
        while (item := await stream.inputs.get()) is not _END:
            yield item

    async def _pump(self, stream: _Stream, request: bytes | None) -> None:
        gw = self.gateway
        meta, deadline = gw.metadata(self.scope), gw.deadline(self.scope)
        path = _path(stream.method)
        if request is None:
            items = gw.upstream.stream(path, self._inputs(stream), meta, deadline, "websocket")
        else:
            items = gw.upstream.server_stream(path, request, meta, deadline, "websocket")
        prefix = b'{"jsonrpc":"2.0","method":"' + SUBSCRIPTION.encode()
        prefix += b'","params":{"subscription":' + _encode(stream.id)
        end = b',"end":true}}'
        try:
            async for raw in items:
                result = self.front.to_json(stream.method, raw)
                await self.put(prefix + b',"result":' + result + b"}}")
        except Error as exc:
            end = b',"error":' + _error_object(exc) + b"}}"
        finally:
            await items.aclose()  # type: ignore[attr-defined]
            self.streams.pop(stream.id, None)
        await self.put(prefix + end)

    async def _control(self, name: str, doc: dict[str, Any]) -> bytes:
        request_id = doc.get("id")
        params = doc.get("params")
        try:
            if not isinstance(params, dict) or not isinstance(params.get("subscription"), str):
                raise Error.invalid("", f'{name} takes {{"subscription": id, ...}}')
            stream = self.streams.get(params["subscription"])
            if name == UNSUBSCRIBE:
                if stream is None or stream.task is None:
                    return _result(request_id, b"false")
                stream.task.cancel()  # and with it the upstream call
                self.streams.pop(stream.id, None)
                return _result(request_id, b"true")
            if stream is None or stream.inputs is None:
                raise Error(Code.NOT_FOUND, f"no client or bidi stream {params['subscription']}")
            if name == CLOSE:
                await stream.inputs.put(_END)
                return _result(request_id, b"true")
            message = self.front.params(stream.method, params.get("message", {}))
            await stream.inputs.put(message)
            return _result(request_id, b"true")
        except Error as exc:
            return _rpc_error(request_id, exc)


def _foreign_origin(scope: Scope, cors: Cors | None) -> str | None:
    """A browser page's Origin that is neither this host's nor one CORS lists."""
    origin: str | None = None
    host: str | None = None
    for k, v in scope["headers"]:
        if k == b"origin":
            origin = v.decode("latin-1")
        elif k == b"host":
            host = v.decode("latin-1")
    if origin is None:
        return None
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    if host is not None and origin.lower() == f"{scheme}://{host}".lower():
        return None
    if cors is not None and cors.allows(origin):
        return None
    return origin


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _result(request_id: Any, result: bytes) -> bytes:
    return b'{"jsonrpc":"2.0","result":' + result + b',"id":' + _encode(request_id) + b"}"


def _rpc_error(request_id: Any, error: Error, code: int | None = None) -> bytes:
    from twofold.gateway.rpc import rpc_error

    return rpc_error(request_id, as_error(error), code)


def _error_object(error: Error) -> bytes:
    doc: dict[str, Any] = msgspec.json.decode(_rpc_error(None, error))
    return _encode(doc["error"])
