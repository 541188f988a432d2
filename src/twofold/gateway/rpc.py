"""The gateway's RPC fronts: Connect, gRPC-Web and JSON-RPC 2.0 onto the upstream.

Every method is reachable here, with an HTTP rule or not. Binary messages
pass through as they are (the upstream is their judge); JSON is parsed into
the declared message first, so a bad field is the front wire's own
INVALID_ARGUMENT. Errors take each wire's form from the one table:
Connect's JSON error (:func:`twofold.wires.connect.error_body`), gRPC-Web
trailers, JSON-RPC's error object with the canonical code in ``data``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.code import HTTP_STATUS, Code
from twofold.core.details import rpc_status
from twofold.core.errors import Error
from twofold.gateway.inbound import Inbound
from twofold.http import envelope
from twofold.http.body import BodyTooLarge, disconnect, header, media_type, read_body, respond
from twofold.http.jsonrpc import error_response
from twofold.http.negotiation import GZIP, GZIP_MIN_SIZE, accepts_gzip, compress, decompressor
from twofold.wires.connect import error_body

if TYPE_CHECKING:
    from twofold.gateway.app import Gateway

JSON = b"application/json"
PROTO = b"application/proto"
CONNECT_JSON = b"application/connect+json"
CONNECT_PROTO = b"application/connect+proto"
GRPC_WEB = (b"application/grpc-web", b"application/grpc-web+proto")
# Each stream wire's per-message compression headers.
CONNECT_ENCODING = b"connect-content-encoding"
CONNECT_ACCEPT = b"connect-accept-encoding"
GRPC_ENCODING = b"grpc-encoding"
GRPC_ACCEPT = b"grpc-accept-encoding"
_encode = msgspec.json.Encoder().encode


class RpcFront:
    """Connect and gRPC-Web at each method's RPC path, JSON-RPC at one path."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.schema = gateway.schema
        by_name: dict[str, list[MethodDescriptor]] = {}
        for m in gateway.methods.values():
            by_name.setdefault(m.name, []).append(m)
        # JSON-RPC names: the qualified one always, the short one when unique.
        self.jsonrpc_names = {
            f"{m.containing_service.full_name}/{m.name}": m for m in gateway.methods.values()
        } | {name: ms[0] for name, ms in by_name.items() if len(ms) == 1}

    def can_handle(self, scope: Scope) -> bool:
        kind = media_type(header(scope, b"content-type"))
        if scope["method"] == "POST":
            return kind in (JSON, PROTO, CONNECT_JSON, CONNECT_PROTO, *GRPC_WEB)
        return scope["method"] == "GET" and b"encoding=" in scope["query_string"]

    def side_effect_free(self, method: MethodDescriptor) -> bool:
        options = self.schema.method_options(method)
        return options.idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS

    async def serve(
        self, method: MethodDescriptor, scope: Scope, receive: Receive, send: Send
    ) -> None:
        kind = media_type(header(scope, b"content-type"))
        if kind in GRPC_WEB:
            await self._grpc_web(method, scope, receive, send)
        elif kind in (CONNECT_JSON, CONNECT_PROTO) and method.client_streaming:
            await self._connect_duplex(method, kind == CONNECT_PROTO, scope, receive, send)
        elif kind in (CONNECT_JSON, CONNECT_PROTO):
            await self._connect_stream(method, kind == CONNECT_PROTO, scope, receive, send)
        else:
            await self._connect_unary(method, scope, receive, send)

    def _decode(self, method: MethodDescriptor, raw: bytes, binary: bool) -> bytes:
        """The request as protobuf bytes; JSON parsed (and checked) on the way."""
        if binary:
            return raw
        from twofold.gateway.transcode import parse_json

        message: Message = parse_json(self.schema, method.input_type, raw)
        return message.SerializeToString()

    def params(self, method: MethodDescriptor, params: Any) -> bytes:
        """JSON-RPC params (an object: the request message) as protobuf bytes."""
        if not isinstance(params, dict):
            raise Error.invalid("", "params must be an object (the request message)")
        from twofold.gateway.transcode import parse_json

        message: Message = parse_json(self.schema, method.input_type, json.dumps(params))
        return message.SerializeToString()

    def to_json(self, method: MethodDescriptor, raw: bytes) -> bytes:
        answer = self.gateway.parse(method, raw)
        return _encode(json_format.MessageToDict(answer, descriptor_pool=self.schema.pool))

    async def _connect_unary(
        self, method: MethodDescriptor, scope: Scope, receive: Receive, send: Send
    ) -> None:
        gw = self.gateway
        headers: list[tuple[bytes, bytes]] = []
        try:
            await gw.admit(method, scope)
            if method.server_streaming or method.client_streaming:
                raise Error(
                    Code.UNIMPLEMENTED,
                    f"{method.name} streams: call it with application/connect+json or +proto",
                )
            if scope["method"] == "GET":
                if not self.side_effect_free(method):
                    headers = [(b"allow", b"POST")]
                    raise Error(Code.UNIMPLEMENTED, f"{method.full_name} is only callable by POST")
                raw, binary = _get_message(scope["query_string"])
            else:
                raw = await read_body(scope, receive, gw.options.max_body_size)
                binary = media_type(header(scope, b"content-type")) == PROTO
            timeout = gw.deadline(scope)
            request = self._decode(method, raw, binary)
            meta = gw.metadata(scope)
            answer = await gw.upstream.unary(_path(method), request, meta, timeout, "connect")
            if binary:
                gw.parse(method, answer)  # a 502 for an answer that is not the message
                out, kind = answer, PROTO
            else:
                out, kind = self.to_json(method, answer), JSON
        except Error as exc:
            status = 413 if isinstance(exc, BodyTooLarge) else HTTP_STATUS[exc.code]
            if headers:
                status = 405
            raw_headers = [
                *headers,
                *[(k.lower().encode(), v.encode()) for k, v in exc.headers.items()],
            ]
            await respond(send, status, _encode(error_body(exc)), raw_headers, JSON)
            return
        await respond(send, 200, out, [], kind)

    async def _connect_stream(
        self, method: MethodDescriptor, binary: bool, scope: Scope, receive: Receive, send: Send
    ) -> None:
        gw = self.gateway
        kind = CONNECT_PROTO if binary else CONNECT_JSON
        pack = Packer(scope, CONNECT_ACCEPT)
        start_headers = [(b"content-type", kind), *pack.headers(CONNECT_ENCODING)]
        started = False
        error: Error | None = None
        try:
            await gw.admit(method, scope)
            if method.client_streaming or not method.server_streaming:
                raise Error(Code.UNIMPLEMENTED, f"{method.name} is not a server stream here")
            inflate = decompressor("connect-content-encoding", header(scope, CONNECT_ENCODING))
            reader = envelope.Reader(receive, gw.options.max_body_size, inflate)
            first = await reader.next()
            if first is None or await reader.next() is not None:
                raise Error(Code.INVALID_ARGUMENT, "a server stream takes exactly one message")
            request = self._decode(method, first.data, binary)
            timeout = gw.deadline(scope)
            await send({"type": "http.response.start", "status": 200, "headers": start_headers})
            started = True
            meta = gw.metadata(scope)
            items = gw.upstream.server_stream(_path(method), request, meta, timeout, "connect")

            async def relay() -> None:
                try:
                    async for raw in items:
                        if binary:
                            gw.parse(method, raw)
                        data = raw if binary else self.to_json(method, raw)
                        body = pack(data)
                        await send({"type": "http.response.body", "body": body, "more_body": True})
                finally:
                    await items.aclose()  # type: ignore[attr-defined]

            await cancel_on_disconnect(relay(), receive)
        except Error as exc:
            error = exc
        if not started:
            await send({"type": "http.response.start", "status": 200, "headers": start_headers})
        await send({"type": "http.response.body", "body": _end_of_stream(error)})

    async def _connect_duplex(
        self, method: MethodDescriptor, binary: bool, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """A client or bidi stream over Connect.

        Over HTTP/2 both directions run at once. Over HTTP/1.1 a Connect client
        sends its whole request stream before it reads (half-duplex, as
        connect-go's HTTP/1.1 client does); the relay is the same, the answers
        simply find the request already over.
        """
        kind = CONNECT_PROTO if binary else CONNECT_JSON
        pack = Packer(scope, CONNECT_ACCEPT)
        headers = [(b"content-type", kind), *pack.headers(CONNECT_ENCODING)]
        started = False

        def convert(item: envelope.Envelope) -> bytes:
            if item.flags & envelope.END_STREAM:
                raise Error(Code.INVALID_ARGUMENT, "a request cannot end its own stream")
            return self._decode(method, item.data, binary)

        async def emit(raw: bytes) -> None:
            nonlocal started
            if binary:
                self.gateway.parse(method, raw)  # a 502 for an answer that is not the message
            data = raw if binary else self.to_json(method, raw)
            if not started:
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                started = True
            await send({"type": "http.response.body", "body": pack(data), "more_body": True})

        error = await self.duplex(
            method, "connect", CONNECT_ENCODING, convert, scope, receive, emit
        )
        if error is GONE:
            return
        if not started:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": _end_of_stream(error)})

    async def duplex(
        self,
        method: MethodDescriptor,
        protocol: str,
        encoding: bytes,
        convert: Callable[[envelope.Envelope], bytes],
        scope: Scope,
        receive: Receive,
        emit: Callable[[bytes], Awaitable[None]],
    ) -> Error | None:
        """Relay a client or bidi stream: each request message goes upstream as it
        arrives (``convert``; inflated as the ``encoding`` header says), each
        answer is ``emit``-ted as it comes back.

        Returns the call's error, None when it succeeded, or :data:`GONE` when
        the client left (the upstream call is cancelled; nobody is left to tell).
        """
        gw = self.gateway
        inbound: Inbound | None = None
        try:
            await gw.admit(method, scope)
            timeout = gw.deadline(scope)
            meta = gw.metadata(scope)
            inflate = decompressor(encoding.decode(), header(scope, encoding))
            reader = envelope.Reader(receive, gw.options.max_body_size, inflate)
            inbound = Inbound(reader, receive, convert)
            items = gw.upstream.stream(
                _path(method), inbound.messages(), meta, timeout, protocol, inbound.opened
            )
            try:
                async for raw in items:
                    await emit(raw)
            finally:
                await items.aclose()  # type: ignore[attr-defined]
        except asyncio.CancelledError:
            if inbound is None or not inbound.cancelled:
                raise  # the server cancelled us: not the request side's doing
            return GONE if inbound.gone else inbound.error
        except Error as exc:
            return exc
        finally:
            if inbound is not None:
                await inbound.close()
        return None

    async def _grpc_web(
        self, method: MethodDescriptor, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """gRPC-Web (binary): request messages in, messages and a trailer frame out."""
        kind = media_type(header(scope, b"content-type"))
        pack = Packer(scope, GRPC_ACCEPT)
        headers = [(b"content-type", kind), *pack.headers(GRPC_ENCODING)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if method.client_streaming:
            # Client and bidi streams: browsers cannot send them, other
            # gRPC-Web clients can (over HTTP/2, both ways at once).
            emit = functools.partial(_frame, send, pack)
            error = await self.duplex(
                method, "grpc-web", GRPC_ENCODING, _data, scope, receive, emit
            )
            if error is GONE:
                return
        else:
            error = await self._grpc_web_single(method, pack, scope, receive, send)
        trailers = b"grpc-status: 0\r\n"
        if error is not None:
            status = base64.b64encode(rpc_status(error.code.value, error.message, error.details))
            trailers = (
                f"grpc-status: {error.code.value}\r\n".encode()
                + b"grpc-message: "
                + _percent(error.message).encode()
                + b"\r\ngrpc-status-details-bin: "
                + status.rstrip(b"=")
                + b"\r\n"
            )
        await send(
            {"type": "http.response.body", "body": envelope.frame(trailers, envelope.TRAILERS)}
        )

    async def _grpc_web_single(
        self, method: MethodDescriptor, pack: Packer, scope: Scope, receive: Receive, send: Send
    ) -> Error | None:
        """A unary call or a server stream over gRPC-Web: its messages; its error, if any."""
        gw = self.gateway
        try:
            await gw.admit(method, scope)
            inflate = decompressor("grpc-encoding", header(scope, GRPC_ENCODING))
            reader = envelope.Reader(receive, gw.options.max_body_size, inflate)
            first = await reader.next()
            if first is None:
                raise Error(Code.INVALID_ARGUMENT, "no request message")
            timeout = gw.deadline(scope)
            meta = gw.metadata(scope)
            if method.server_streaming:
                items = gw.upstream.server_stream(
                    _path(method), first.data, meta, timeout, "grpc-web"
                )
                try:
                    async for raw in items:
                        await _frame(send, pack, raw)
                finally:
                    await items.aclose()  # type: ignore[attr-defined]
            else:
                raw = await gw.upstream.unary(_path(method), first.data, meta, timeout, "grpc-web")
                await _frame(send, pack, raw)
        except Error as exc:
            return exc
        return None

    async def jsonrpc(self, scope: Scope, receive: Receive, send: Send) -> None:
        """JSON-RPC 2.0 over POST: one request or a batch; every answer is 200."""
        if scope["method"] != "POST":
            await respond(
                send,
                405,
                error_response(None, Error(Code.UNIMPLEMENTED, "use POST"), -32600),
                [(b"allow", b"POST")],
                JSON,
            )
            return
        try:
            raw = await read_body(scope, receive, self.gateway.options.max_body_size)
        except BodyTooLarge as exc:
            await respond(send, 413, error_response(None, exc), [], JSON)
            return
        except Error as exc:
            await respond(send, 400, error_response(None, exc), [], JSON)
            return
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            error = Error(Code.INVALID_ARGUMENT, "parse error: the body is not JSON")
            await respond(send, 200, error_response(None, error, -32700), [], JSON)
            return
        if isinstance(doc, list):
            if not doc:
                bad = Error(Code.INVALID_ARGUMENT, "an empty batch")
                await respond(send, 200, error_response(None, bad, -32600), [], JSON)
                return
            limit = self.gateway.options.max_batch_size
            if len(doc) > limit:
                message = f"batch of {len(doc)} calls is over the limit of {limit}"
                bad = Error(Code.INVALID_ARGUMENT, message)
                await respond(send, 200, error_response(None, bad, -32600), [], JSON)
                return
            answers = [a for a in [await self._one(item, scope) for item in doc] if a is not None]
            body = b"[" + b",".join(answers) + b"]" if answers else b""
        else:
            body = await self._one(doc, scope) or b""
        await respond(send, 200 if body else 204, body, [], JSON if body else None)

    async def _one(self, doc: Any, scope: Scope) -> bytes | None:
        if (
            not isinstance(doc, dict)
            or doc.get("jsonrpc") != "2.0"
            or not isinstance(doc.get("method"), str)
        ):
            return error_response(
                None, Error(Code.INVALID_ARGUMENT, "not a JSON-RPC 2.0 request"), -32600
            )
        request_id = doc.get("id")
        notification = "id" not in doc
        method = self.jsonrpc_names.get(doc["method"])
        try:
            if method is None:
                raise Error(Code.UNIMPLEMENTED, f"no method {doc['method']!r}")
            await self.gateway.admit(method, scope)
            if method.client_streaming or method.server_streaming:
                raise Error(
                    Code.UNIMPLEMENTED,
                    f"{method.name} streams: call it over WebSocket at this path, or Connect",
                )
            request = self.params(method, doc.get("params", {}))
            gw = self.gateway
            meta, deadline = gw.metadata(scope), gw.deadline(scope)
            raw = await gw.upstream.unary(_path(method), request, meta, deadline, "jsonrpc")
            result = self.to_json(method, raw)
        except Error as exc:
            return None if notification else error_response(request_id, exc)
        if notification:
            return None
        return b'{"jsonrpc":"2.0","result":' + result + b',"id":' + _encode(request_id) + b"}"


# What :meth:`RpcFront.duplex` returns when the client left mid-call.
GONE = Error(Code.CANCELED, "the client went away")


def _end_of_stream(error: Error | None) -> bytes:
    """Connect's end-of-stream message (JSON, never compressed)."""
    end: dict[str, Any] = {}
    if error is not None:
        end["error"] = error_body(error)
        if error.headers:
            # Retry-After and the like: a stream's only trailers are this metadata.
            end["metadata"] = {k.lower(): [v] for k, v in error.headers.items()}
    return envelope.frame(_encode(end), envelope.END_STREAM)


def _data(item: envelope.Envelope) -> bytes:
    return item.data


async def _frame(send: Send, pack: Packer, raw: bytes) -> None:
    await send({"type": "http.response.body", "body": pack(raw), "more_body": True})


class Packer:
    """A stream's answers as envelopes, gzipped when the client accepts it (the
    ``accept`` header) and the message is worth it; never the end or trailers."""

    def __init__(self, scope: Scope, accept: bytes) -> None:
        self.gzip = accepts_gzip(header(scope, accept))

    def headers(self, encoding: bytes) -> list[tuple[bytes, bytes]]:
        return [(encoding, GZIP)] if self.gzip else []

    def __call__(self, data: bytes) -> bytes:
        if self.gzip and len(data) >= GZIP_MIN_SIZE:
            return envelope.frame(compress(data), envelope.COMPRESSED)
        return envelope.frame(data)


async def cancel_on_disconnect(work: Coroutine[Any, Any, None], receive: Receive) -> None:
    """Run ``work`` (a stream being relayed) until it ends or the client goes away.

    A client that leaves cancels the work, and with it the upstream call, so
    an abandoned stream stops costing the upstream anything at once rather
    than at its deadline.
    """
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(disconnect(receive))
    try:
        done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        watch.cancel()


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _percent(text: str) -> str:
    """grpc-message's percent-encoding: printable ASCII but '%' as it is."""
    return "".join(
        ch if " " <= ch <= "~" and ch != "%" else "".join(f"%{b:02X}" for b in ch.encode())
        for ch in text
    )


def _get_message(query_string: bytes) -> tuple[bytes, bool]:
    """A Connect GET's message (``encoding``, ``message``, ``base64=1``); is it binary?"""
    params = dict(
        parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    )
    encoding = params.get("encoding")
    if encoding not in ("json", "proto"):
        raise Error(Code.INVALID_ARGUMENT, "encoding must be json or proto")
    message = params.get("message", "").encode("latin-1")
    if params.get("base64") == "1":
        try:
            message = base64.urlsafe_b64decode(message + b"=" * (-len(message) % 4))
        except (binascii.Error, ValueError):
            raise Error(
                Code.INVALID_ARGUMENT, "the message query parameter is not valid base64"
            ) from None
    return message, encoding == "proto"
