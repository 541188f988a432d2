"""gRPC-Web: gRPC's framing over HTTP/1.1 or HTTP/2, as browsers can speak it.

The spec (github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md) keeps gRPC's
length-prefixed messages (:mod:`twofold.envelope`) and moves the trailers,
which browsers cannot read, into the body: a last envelope with flag 0x80
holding ``grpc-status``, ``grpc-message`` (percent-encoded) and
``grpc-status-details-bin`` (a google.rpc.Status in unpadded base64) as
HTTP/1 header lines. The HTTP status is 200 whatever happened; the outcome
is ``grpc-status``. An error before the first message is sent
"trailers-only": the trailers as response headers, and an empty body.

``application/grpc-web`` and ``+proto`` carry protobuf bytes;
``application/grpc-web-text`` is the same stream in base64, both ways, for
clients that cannot handle binary bodies. ``grpc-timeout`` is the deadline.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

from twofold import compression, envelope
from twofold.asgi import Receive, Scope, Send
from twofold.code import Code
from twofold.context import Context
from twofold.details import _field_bytes, _varint
from twofold.errors import Error, as_error
from twofold.headers import Headers
from twofold.http import ClientDisconnected, encode_headers, header, media_type, peer
from twofold.invoke import deadline, deliver
from twofold.method import Method, StreamKind
from twofold.options import Options
from twofold.protocols.streaming import Exchange
from twofold.table import MethodTable

PROTOCOL = "grpc-web"
GZIP = b"gzip"
COMPRESS_MIN = 1024
# content type -> is it the base64 (-text) variant
CONTENT_TYPES = {
    b"application/grpc-web": False,
    b"application/grpc-web+proto": False,
    b"application/grpc-web-text": True,
    b"application/grpc-web-text+proto": True,
}
# grpc-timeout's units (gRPC's PROTOCOL-HTTP2.md), in seconds.
_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
# grpc-message is percent-encoded: every byte outside printable ASCII, and "%".
_SAFE = frozenset(range(0x20, 0x7F)) - {ord("%")}


class GrpcWebProtocol:
    """The gRPC-Web endpoint of every method; the App calls it at each RPC path."""

    name = PROTOCOL

    def __init__(self, table: MethodTable, options: Options) -> None:
        self.table = table
        self.options = options
        self._schema: Any = None
        self._codecs: dict[Method, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {}

    def can_handle(self, scope: Scope) -> bool:
        return scope["method"] == "POST" and (
            media_type(header(scope, b"content-type")) in CONTENT_TYPES
        )

    def codec(self, method: Method) -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
        found = self._codecs.get(method)
        if found is None:
            if self._schema is None:
                # Built on first use: an app nobody calls over gRPC-Web never pays.
                from twofold.protobuf import Schema

                self._schema = Schema(self.table)
            found = self._codecs[method] = (
                self._schema.codec(method.input_type).decode,
                self._schema.codec(method.output_type).encode,
            )
        return found

    async def serve(self, method: Method, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = media_type(header(scope, b"content-type"))
        call = _Call(self, method, scope, send, content_type, CONTENT_TYPES[content_type])
        exchange = Exchange(receive)
        await exchange.run(call.run(receive, exchange))


class _Call:
    """One gRPC-Web call, from the request envelopes to the trailers."""

    def __init__(
        self,
        protocol: GrpcWebProtocol,
        method: Method,
        scope: Scope,
        send: Send,
        content_type: bytes,
        text: bool,
    ) -> None:
        self.protocol = protocol
        self.method = method
        self.scope = scope
        self.send = send
        self.content_type = content_type
        self.text = text
        self.headers = dict(scope["headers"])
        self.compress = _accepts_gzip(self.headers.get(b"grpc-accept-encoding"))
        self.started = False
        self.ctx: Context | None = None
        # Whether the interceptor chain was reached: before it, a failure is a refusal.
        self.called = False

    async def run(self, receive: Receive, exchange: Exchange) -> None:
        error: Error | None = None
        try:
            decode, self.encode = self.protocol.codec(self.method)
            ctx = self.ctx = Context(
                PROTOCOL,
                self.method,
                Headers(self.scope["headers"]),
                peer(self.scope),
                _deadline(self.headers.get(b"grpc-timeout")),
                self.scope,
            )
            if self.protocol.table.admit is not None:
                # Credentials before the first message is read.
                refusal = await self.protocol.table.admit(ctx)
                if refusal is not None:
                    self.called = True  # told already, as a refusal in the chain is
                    raise refusal
            encoding = self.headers.get(b"grpc-encoding")
            decompress = None
            if encoding is not None and encoding != b"identity":
                if encoding != GZIP:
                    raise Error(
                        Code.UNIMPLEMENTED,
                        f"grpc-encoding {encoding.decode('latin-1')!r} is not supported: "
                        "use gzip or identity",
                    )
                decompress = compression.gunzip
            reader = envelope.Reader(
                receive, self.protocol.options.max_body_size, decompress, text=self.text
            )
            kind = self.method.kind
            async with deadline(ctx):
                if kind in (StreamKind.CLIENT, StreamKind.BIDI):
                    request = _inputs(reader, decode, exchange)
                else:
                    request = decode(await _single(reader, self.method))
                    exchange.watch()
                self.called = True
                await deliver(self.method, ctx, request, self._write)
        except ClientDisconnected:
            exchange.disconnected()
            return
        except Exception as exc:  # only coded errors reach the wire
            error = as_error(exc)
            if not self.called:
                # Refused before the chain: the observers still count it.
                await self.protocol.table.refuse(PROTOCOL, self.method, self.scope, error)
        await self._end(error)

    def _start_headers(self) -> list[tuple[bytes, bytes]]:
        raw = [(b"content-type", self.content_type), (b"grpc-accept-encoding", b"gzip")]
        if self.compress:
            raw.append((b"grpc-encoding", GZIP))
        ctx = self.ctx
        if ctx is not None and ctx.has_response_headers():
            raw.extend(encode_headers(ctx.response_headers))
        return raw

    async def _write(self, output: Any) -> None:
        if not self.started:
            self.started = True
            raw = self._start_headers()
            await self.send({"type": "http.response.start", "status": 200, "headers": raw})
        data = self.encode(output)
        flags = 0
        if self.compress and len(data) >= COMPRESS_MIN:
            data, flags = envelope.compress(data), envelope.COMPRESSED
        await self._body(envelope.frame(data, flags), more=True)

    async def _end(self, error: Error | None) -> None:
        trailers = status_trailers(error)
        if not self.started:
            # Trailers-only: the status in the headers, nothing in the body.
            try:
                raw = self._start_headers()
            except ValueError:  # a handler header with a line break
                self.ctx = None
                trailers = status_trailers(Error(Code.INTERNAL, "internal error"))
                raw = self._start_headers()
            raw.extend(trailers)
            await self.send({"type": "http.response.start", "status": 200, "headers": raw})
            await self.send({"type": "http.response.body", "body": b""})
            return
        block = b"".join(k + b": " + v + b"\r\n" for k, v in trailers)
        await self._body(envelope.frame(block, envelope.TRAILERS), more=False)

    async def _body(self, data: bytes, more: bool) -> None:
        if self.text:
            data = base64.b64encode(data)
        await self.send({"type": "http.response.body", "body": data, "more_body": more})


async def _single(reader: envelope.Reader, method: Method) -> bytes:
    first = await reader.next()
    if first is None:
        raise Error(Code.INVALID_ARGUMENT, "the request has no message")
    if await reader.next() is not None:
        raise Error(Code.INVALID_ARGUMENT, f"{method.name} takes exactly one message")
    return first.data


async def _inputs(
    reader: envelope.Reader, decode: Callable[[bytes], Any], exchange: Exchange
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
        yield decode(item.data)


def _accepts_gzip(value: bytes | None) -> bool:
    return bool(value) and GZIP in (v.strip() for v in (value or b"").split(b","))


def _deadline(value: bytes | None) -> float | None:
    """``grpc-timeout`` (1 to 8 digits and a unit) as a deadline on the loop clock."""
    if value is None:
        return None
    digits, unit = value[:-1], value[-1:]
    if not 0 < len(digits) <= 8 or not digits.isdigit() or unit not in _UNITS:
        raise Error(Code.INVALID_ARGUMENT, "grpc-timeout must be 1 to 8 digits and a unit")
    return asyncio.get_running_loop().time() + int(digits) * _UNITS[unit]


def percent_encode(message: str) -> bytes:
    """grpc-message's encoding: UTF-8, with bytes outside printable ASCII and "%" escaped."""
    return b"".join(bytes((b,)) if b in _SAFE else b"%%%02X" % b for b in message.encode("utf-8"))


def status_details(error: Error) -> bytes:
    """The google.rpc.Status of an error, each detail packed as a google.protobuf.Any.

    Written by hand like the details themselves (:mod:`twofold.details`):
    three fields are not worth importing the generated classes per error.
    """
    out = b"\x08" + _varint(error.code.value)  # field 1, varint: the code
    if error.message:
        out += _field_bytes(2, error.message.encode())
    for d in error.details:
        url = f"type.googleapis.com/{d.TYPE_NAME}".encode()
        out += _field_bytes(3, _field_bytes(1, url) + _field_bytes(2, d.to_proto()))
    return out


def status_trailers(error: Error | None) -> list[tuple[bytes, bytes]]:
    """``grpc-status``, ``grpc-message`` and ``grpc-status-details-bin`` of an outcome."""
    if error is None:
        return [(b"grpc-status", b"0")]
    out = [(b"grpc-status", str(error.code.value).encode())]
    if error.message:
        out.append((b"grpc-message", percent_encode(error.message)))
    if error.details:
        # -bin metadata is base64; gRPC implementations send it unpadded.
        value = base64.b64encode(status_details(error)).rstrip(b"=")
        out.append((b"grpc-status-details-bin", value))
    out.extend(encode_headers(error.headers))
    return out
