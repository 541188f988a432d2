"""Connect: unary and streaming RPCs over HTTP/1.1 or HTTP/2, JSON or protobuf.

The Connect protocol (connectrpc.com/docs/protocol) makes a unary call a plain
POST of one message to ``/pkg.Service/Method``: the body is the message in
proto3 JSON (:mod:`twofold.protobuf.json`, ``application/json``) or protobuf
binary (``application/proto``), the answer is 200 with the output, or an
error status from the one code table (``code.HTTP_STATUS``) with a JSON
error ``{"code", "message", "details"}``. Side-effect-free methods may also
be called by GET, the message in the query, so that browsers and caches can
treat RPC reads like any other resource. Bodies may be gzipped both ways
(``Content-Encoding`` / ``Accept-Encoding``).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import parse_qsl

import msgspec

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.code import HTTP_STATUS, Code
from twofold.core.context import Context
from twofold.core.errors import Error, as_error
from twofold.core.headers import Headers
from twofold.core.invoke import invoke
from twofold.core.method import Idempotency, Method, StreamKind
from twofold.core.options import Options
from twofold.core.table import MethodTable
from twofold.http import caching, envelope, negotiation
from twofold.http.body import (
    ClientDisconnected,
    encode_headers,
    header,
    media_type,
    read_body,
    respond,
)
from twofold.http.grpcstatus import decode_metadata, encode_metadata
from twofold.protobuf import json as protojson
from twofold.wires.exchange import EnvelopedCall

PROTOCOL = "connect"
JSON = b"application/json"
PROTO = b"application/proto"
STREAM_JSON = b"application/connect+json"
STREAM_PROTO = b"application/connect+proto"
GZIP = b"gzip"
# Smaller responses are sent as they are: gzip's 18-byte frame and the CPU
# are not worth it below a packet or so.
COMPRESS_MIN = 1024
# content type -> (is it the protobuf codec, is it a stream)
CONTENT_TYPES = {
    JSON: (False, False),
    PROTO: (True, False),
    STREAM_JSON: (False, True),
    STREAM_PROTO: (True, True),
}
_encode = msgspec.json.Encoder().encode


class ConnectProtocol:
    """The Connect endpoint of every method; the App calls it at each RPC path."""

    name = PROTOCOL

    def __init__(self, table: MethodTable, options: Options) -> None:
        self.options = options
        self.table = table
        self._schema: Any = None
        # Built now, so that a type protojson cannot handle fails at startup
        # and the first call costs the same as every other.
        self.calls = {m: _Call.build(m) for m in table}

    def can_handle(self, scope: Scope) -> bool:
        verb: str = scope["method"]
        if verb == "POST":
            content_type = header(scope, b"content-type")
            # The exact header first: that is what clients send, and it is one lookup.
            return content_type in CONTENT_TYPES or media_type(content_type) in CONTENT_TYPES
        # Every GET is ours: a Connect GET, or a GET that Connect answers with
        # 405 because the method has side effects.
        return verb == "GET"

    def proto(self, call: _Call, method: Method) -> _Codec:
        """The binary codec of a method, built on first use: an app that never
        sees protobuf never pays for its schema."""
        if call.proto is None:
            if self._schema is None:
                from twofold.protobuf import Schema

                self._schema = Schema(self.table)
            call.proto = _Codec(
                self._schema.codec(method.input_type).decode,
                self._schema.codec(method.output_type).encode,
            )
        return call.proto

    def _stream(
        self, method: Method, call: _Call, binary: bool, scope: Scope, send: Send
    ) -> _Stream:
        def codecs() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
            codec = self.proto(call, method) if binary else call
            return codec.decode, codec.encode

        content_type = STREAM_PROTO if binary else STREAM_JSON
        limit = self.options.max_body_size
        return _Stream(self.table, limit, method, scope, send, codecs, content_type)

    async def serve(self, method: Method, scope: Scope, receive: Receive, send: Send) -> None:
        call = self.calls.get(method) or self.calls.setdefault(method, _Call.build(method))
        headers = dict(scope["headers"])  # the last value of each name
        content_type = headers.get(b"content-type")
        binary = False
        if content_type is not JSON and content_type != JSON and scope["method"] == "POST":
            found = CONTENT_TYPES.get(content_type or b"")
            binary, streams = found or CONTENT_TYPES[media_type(content_type)]
            if streams:
                await self._stream(method, call, binary, scope, send).serve(receive)
                return
        ctx: Context | None = None
        # Whether the observers heard of a failure already (an admission refusal).
        told = False
        response_headers: list[tuple[bytes, bytes]] = []
        try:
            timeout = headers.get(b"connect-timeout-ms")
            deadline = None if timeout is None else _deadline(timeout)
            if method.kind is not StreamKind.UNARY:
                raise UnsupportedCodec(
                    Code.UNIMPLEMENTED,
                    f"{method.name} streams: call it with application/connect+json "
                    "or application/connect+proto",
                )
            get = scope["method"] == "GET"
            if get and not call.get_allowed:
                error = Error(Code.UNIMPLEMENTED, f"{method.full_name} is only callable by POST")
                await self.table.refuse(PROTOCOL, method, scope, error)
                await send_error(send, error, status=405, headers=[(b"allow", b"POST")])
                return
            # Binary (-bin) metadata is base64 on the wire, bytes to the handler.
            metadata = Headers(decode_metadata(scope["headers"]))
            # The client's address, formatted only if someone asks (Context.peer).
            call_ctx = Context(PROTOCOL, method, metadata, scope.get("client"), deadline, scope)
            if self.table.admit is not None:
                # Credentials before the message is read or decoded.
                refusal = await self.table.admit(call_ctx)
                if refusal is not None:
                    told = True
                    raise refusal
            if get:
                raw, binary = _get_message(scope["query_string"], self.options.max_body_size)
            else:
                version = headers.get(b"connect-protocol-version")
                if version is not None and version != b"1":
                    raise Error(
                        Code.INVALID_ARGUMENT, "connect-protocol-version must be 1 when present"
                    )
                raw = await read_body(scope, receive, self.options.max_body_size)
                coding = headers.get(b"content-encoding")
                if coding is not None:
                    decompress = negotiation.decompressor("content-encoding", coding)
                    if decompress is not None:
                        raw = decompress(raw, self.options.max_body_size)
            if binary:
                codec = self.proto(call, method)
                request = codec.decode(raw)
            else:
                # An empty body is the empty message, as in the binary codec; curl
                # sends nothing for a method without arguments.
                request = call.decode(raw or b"{}")
            ctx = call_ctx
            if deadline is None:
                # invoke(), inlined: one coroutine less on every call. What
                # else it does is the handler below's: only Error reaches the
                # wire, anything else is logged and INTERNAL.
                output = await method.call(request, ctx)
            else:
                output = await invoke(method, ctx, request)
            if ctx.has_response_headers():
                response_headers = encode_metadata(ctx.response_headers)
            if ctx.has_response_trailers():
                response_headers += trailer_headers(ctx.response_trailers)
            body = codec.encode(output) if binary else call.encode(output)
            gzip = len(body) >= COMPRESS_MIN and negotiation.accepts_gzip(
                headers.get(b"accept-encoding")
            )
            if get:
                # A side-effect-free read: cacheable and revalidated like REST's.
                tag = caching.etag(output, body, gzip)
                when = caching.modified(output)
                response_headers += caching.read_headers(method, tag, response_headers, when)
                since = headers.get(b"if-modified-since")
                if caching.not_modified(headers.get(b"if-none-match"), tag, since, when):
                    await respond(send, 304, headers=response_headers)
                    return
            if gzip:
                body = negotiation.compress(body)
                response_headers.append((b"content-encoding", GZIP))
        except ClientDisconnected as exc:
            if ctx is None:  # gone while its body was read: no one to answer
                return
            # Raised by the handler itself: a failure like any other, as invoke() has it.
            await send_error(send, as_error(exc), context=ctx)
            return
        except UnsupportedCodec as exc:
            await self.table.refuse(PROTOCOL, method, scope, exc)
            await send_error(send, exc, status=415)
            return
        except Exception as exc:  # only coded errors reach the wire
            # Refused before the chain (no ctx): the observers still count it.
            refused = ctx is None and not told
            refusal = None  # if it was what was raised: no local may keep it
            await self._failed(method, scope, send, as_error(exc), ctx, refused)
            return
        # Sent here rather than through respond(): one coroutine and one list
        # copy less on every success.
        response_headers.append((b"content-type", PROTO if binary else JSON))
        response_headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    async def _failed(
        self,
        method: Method,
        scope: Scope,
        send: Send,
        error: Error,
        ctx: Context | None,
        refused: bool,
    ) -> None:
        # Not in serve's frame: a local there holding the error at its end
        # would keep it, and through its traceback that frame, in a cycle
        # only the garbage collector frees (a NOT_FOUND is ordinary traffic).
        if refused:
            await self.table.refuse(PROTOCOL, method, scope, error)
        await send_error(send, error, context=ctx)


@dataclass(slots=True)
class _Codec:
    decode: Callable[[Any], Any]
    encode: Callable[[Any], bytes]


@dataclass(slots=True)
class _Call:
    """What serving one method needs, looked up once per request."""

    decode: Callable[[Any], Any]
    encode: Callable[[Any], bytes]
    get_allowed: bool
    proto: _Codec | None = field(default=None)

    @classmethod
    def build(cls, method: Method) -> _Call:
        return cls(
            protojson.codec(method.input_type).decode,
            protojson.codec(method.output_type).encode,
            method.idempotency is Idempotency.NO_SIDE_EFFECTS and method.kind is StreamKind.UNARY,
        )


class UnsupportedCodec(Error):
    """A codec or a call shape we do not speak: the spec wants 415."""


class _Stream(EnvelopedCall):
    """One streaming call: Connect's hooks on the shared exchange loop.

    Streams (``application/connect+json``, ``application/connect+proto``) are
    enveloped messages (:mod:`twofold.http.envelope`) both ways; the response always
    has status 200 and ends with an end-of-stream envelope (flag 0x02) holding
    JSON ``{"error", "metadata"}``, so an error is reported there even before the
    first message. Compression is per message (``Connect-Content-Encoding``,
    ``Connect-Accept-Encoding``). Server streaming works over HTTP/1.1; client
    and bidi streaming need an HTTP/2 server for a full-duplex body (hypercorn),
    though a client stream sent whole also works over HTTP/1.1.
    """

    PROTOCOL = PROTOCOL
    ENCODING_HEADER = "connect-content-encoding"
    NO_MESSAGE = "the request stream has no message"

    def accepts_gzip(self) -> bool:
        return negotiation.accepts_gzip(self.headers.get(b"connect-accept-encoding"))

    def deadline(self) -> float | None:
        return _deadline(self.headers.get(b"connect-timeout-ms"))

    def start_headers(self) -> list[tuple[bytes, bytes]]:
        raw = [(b"content-type", self.content_type)]
        if self.compress:
            raw.append((b"connect-content-encoding", GZIP))
        return raw

    def metadata(self) -> list[tuple[bytes, bytes]]:
        return decode_metadata(self.scope["headers"])

    def encode_metadata(self, headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
        return encode_metadata(headers)

    def check(self, item: envelope.Envelope, single: bool) -> None:
        if item.flags & envelope.END_STREAM:
            if single:
                raise Error(
                    Code.INVALID_ARGUMENT, "a request cannot carry an end-of-stream message"
                )
            raise Error(Code.INVALID_ARGUMENT, "a request cannot end its own stream")

    async def end(self, error: Error | None) -> None:
        if not self.started:
            headers, error = self.safe_response_headers(error)
            await self.start(headers)
        end: dict[str, Any] = {}
        metadata: dict[str, list[str]] = {}
        ctx = self.ctx
        if ctx is not None and ctx.has_response_trailers():
            try:
                sent = encode_metadata(ctx.response_trailers)
                metadata = {k.decode("latin-1"): [v.decode("latin-1")] for k, v in sent}
            except ValueError:
                error = Error(Code.INTERNAL, "internal error")
        if error is not None:
            end["error"] = error_body(error)
            if error.headers:
                # A stream's status line went out long ago (or will say 200):
                # the error's headers (WWW-Authenticate, Retry-After,
                # X-Request-Id) are trailers, which Connect carries as the
                # end-of-stream message's metadata, each a list of values.
                metadata.update({k.lower(): [v] for k, v in error.headers.items()})
        if metadata:
            end["metadata"] = metadata
        # The end-of-stream message is always JSON, and never compressed.
        body = envelope.frame(_encode(end), envelope.END_STREAM)
        await self.send({"type": "http.response.body", "body": body})


def _deadline(value: bytes | None) -> float | None:
    """``connect-timeout-ms`` (1 to 10 ASCII digits) as a deadline on the loop clock."""
    if value is None:
        return None
    if not 0 < len(value) <= 10 or not value.isdigit():
        raise Error(Code.INVALID_ARGUMENT, "connect-timeout-ms must be 1 to 10 digits")
    return asyncio.get_running_loop().time() + int(value) / 1000


def _unsupported_encoding(where: str, value: str) -> NoReturn:
    # Absent means identity. The spec asks for unimplemented, with the
    # supported encodings in the message.
    raise Error(Code.UNIMPLEMENTED, f"{where} {value!r} is not supported: use gzip or identity")


def _get_message(query_string: bytes, limit: int) -> tuple[bytes, bool]:
    """The request message of a Connect GET, and whether it is protobuf.

    ``message`` is percent-encoded JSON or protobuf, or with ``base64=1``
    URL-safe base64 of it (padding optional); ``encoding`` is required
    (``json`` or ``proto``); ``compression=gzip`` means the message is
    gzipped; ``connect=v1`` is checked when present. Unknown parameters are
    allowed, as the spec asks, since caches and browsers add their own.
    """
    try:
        params = dict(
            parse_qsl(
                query_string.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=100
            )
        )
    except ValueError:
        raise Error(Code.INVALID_ARGUMENT, "too many query parameters") from None
    connect = params.get("connect")
    if connect is not None and connect != "v1":
        raise Error(Code.INVALID_ARGUMENT, "the connect query parameter must be v1 when present")
    encoding = params.get("encoding")
    if encoding is None:
        raise Error(
            Code.INVALID_ARGUMENT, "the encoding query parameter is required: encoding=json"
        )
    if encoding not in ("json", "proto"):
        raise UnsupportedCodec(
            Code.UNIMPLEMENTED,
            f"encoding {encoding!r} is not supported: use encoding=json or encoding=proto",
        )
    binary = encoding == "proto"
    coding = params.get("compression", "identity")
    decompress = negotiation.decompressor("compression", coding)
    message = params.get("message", "")
    if params.get("base64") == "1":
        try:
            # A "+" left unescaped in a query means a space; take it back for base64.
            raw = protojson.b64decode(message.replace(" ", "+"))
        except ValueError:
            raise Error(
                Code.INVALID_ARGUMENT, "the message query parameter is not valid base64"
            ) from None
    elif binary or decompress is not None:
        # Binary percent-encoded: read the raw bytes, not UTF-8 text. Latin-1
        # maps every byte to one character and back (parse_qsl on bytes
        # would decode %XX as UTF-8, then fail to encode it as ASCII).
        text = query_string.decode("latin-1")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=100, encoding="latin-1")
        raw = dict(pairs).get("message", "").encode("latin-1")
    else:
        raw = message.encode()
    if decompress is not None:
        raw = decompress(raw, limit)
    return raw, binary


def error_body(error: Error) -> dict[str, Any]:
    """Connect's JSON error: code, message and details, empty members left out.

    Each detail's ``value`` is its protobuf bytes in base64 without padding, as
    the spec asks; ``debug`` repeats it as JSON for humans and curl.
    """
    doc: dict[str, Any] = {"code": error.code.wire_name}
    if error.message:
        doc["message"] = error.message
    if error.details:
        doc["details"] = [
            {
                "type": d.TYPE_NAME,
                "value": base64.b64encode(d.to_proto()).rstrip(b"=").decode(),
                "debug": d.to_json(),
            }
            for d in error.details
        ]
    return doc


def trailer_headers(trailers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """A unary call's trailing metadata: Connect sends it as headers named
    ``trailer-<name>``, a ``-bin`` value in base64 as gRPC does (the Connect spec)."""
    return [(b"trailer-" + k, v) for k, v in encode_metadata(trailers)]


async def send_error(
    send: Send,
    error: Error,
    status: int | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    context: Context | None = None,
) -> None:
    raw = [*(headers or []), *encode_headers(error.headers)]
    if context is not None and (context.has_response_headers() or context.has_response_trailers()):
        # Headers the handler set before failing are still its leading
        # metadata, and its trailers its trailing metadata.
        try:
            raw.extend(encode_metadata(context.response_headers))
            raw.extend(trailer_headers(context.response_trailers))
        except ValueError:
            error = Error(Code.INTERNAL, "internal error")
    # Errors are always JSON, whatever codec the request used.
    await respond(send, status or HTTP_STATUS[error.code], _encode(error_body(error)), raw, JSON)
