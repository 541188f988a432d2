"""Connect: unary RPCs over HTTP/1.1 or HTTP/2 with the JSON codec.

The Connect protocol (connectrpc.com/docs/protocol) makes a unary call a plain
POST of one message to ``/pkg.Service/Method``: the body is the message in
proto3 JSON (:mod:`twofold.protojson`), the answer is 200 with the output, or
an error status from the one code table (``code.HTTP_STATUS``) with a JSON
error ``{"code", "message", "details"}``. Side-effect-free methods may also
be called by GET, the message in the query, so that browsers and caches can
treat RPC reads like any other resource.

Not yet here: ``application/proto`` and the streaming content types
(``application/connect+json``...) come with the protobuf work, and
compression with gzip. The spec answers an unsupported codec with 415, so
:meth:`ConnectProtocol.can_handle` declines those requests and the App
answers 415 with ``Accept-Post: application/json``, which is what a client
needs to know.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qsl

import msgspec

from twofold import protojson
from twofold.asgi import Receive, Scope, Send
from twofold.code import HTTP_STATUS, Code
from twofold.context import Context
from twofold.errors import Error, as_error
from twofold.headers import Headers
from twofold.http import (
    ClientDisconnected,
    encode_headers,
    header,
    media_type,
    peer,
    read_body,
    respond,
)
from twofold.invoke import invoke
from twofold.method import Idempotency, Method, StreamKind
from twofold.options import Options
from twofold.table import MethodTable

PROTOCOL = "connect"
JSON = b"application/json"
_encode = msgspec.json.Encoder().encode


class ConnectProtocol:
    """The Connect endpoint of every method; the App calls it at each RPC path."""

    name = PROTOCOL

    def __init__(self, table: MethodTable, options: Options) -> None:
        self.options = options
        # Built now, so that a type protojson cannot handle fails at startup
        # and the first call costs the same as every other.
        self.calls = {m: _Call.build(m) for m in table}

    def can_handle(self, scope: Scope) -> bool:
        verb: str = scope["method"]
        if verb == "POST":
            content_type = header(scope, b"content-type")
            # application/json, with or without "; charset=utf-8": the unary JSON
            # codec. application/proto and application/connect+* are declined.
            return content_type == JSON or media_type(content_type) == JSON
        # Every GET is ours: a Connect GET, or a GET that Connect answers with
        # 405 because the method has side effects.
        return verb == "GET"

    async def serve(self, method: Method, scope: Scope, receive: Receive, send: Send) -> None:
        call = self.calls.get(method) or self.calls.setdefault(method, _Call.build(method))
        ctx: Context | None = None
        try:
            headers = dict(scope["headers"])  # the last value of each name
            timeout = headers.get(b"connect-timeout-ms")
            deadline = None if timeout is None else _deadline(timeout)
            if scope["method"] == "GET":
                if not call.get_allowed:
                    error = Error(
                        Code.UNIMPLEMENTED, f"{method.full_name} is only callable by POST"
                    )
                    await _send_error(send, error, status=405, headers=[(b"allow", b"POST")])
                    return
                raw = _get_message(scope["query_string"])
            else:
                version = headers.get(b"connect-protocol-version")
                if version is not None and version != b"1":
                    raise Error(
                        Code.INVALID_ARGUMENT, "connect-protocol-version must be 1 when present"
                    )
                encoding = headers.get(b"content-encoding")
                if encoding is not None and encoding != b"identity":
                    _unsupported_encoding("content-encoding", encoding.decode("latin-1"))
                raw = await read_body(scope, receive, self.options.max_body_size)
            # An empty body is the empty message, as in the binary codec; curl
            # sends nothing for a method without arguments.
            request = call.decode(raw or b"{}")
            ctx = Context(PROTOCOL, method, Headers(scope["headers"]), peer(scope), deadline)
            output = await invoke(method, ctx, request)
            response_headers = (
                encode_headers(ctx.response_headers) if ctx.has_response_headers() else []
            )
            body = call.encode(output)
        except ClientDisconnected:
            return
        except UnsupportedCodec as exc:
            await _send_error(send, exc, status=415)
            return
        except Exception as exc:  # only coded errors reach the wire
            await _send_error(send, as_error(exc), context=ctx)
            return
        await respond(send, 200, body, response_headers, JSON)


@dataclass(frozen=True, slots=True)
class _Call:
    """What serving one method needs, looked up once per request."""

    decode: Callable[[Any], Any]
    encode: Callable[[Any], bytes]
    get_allowed: bool

    @classmethod
    def build(cls, method: Method) -> _Call:
        if method.kind is not StreamKind.UNARY:
            # Streaming needs the enveloped content types, which come later.
            return cls(_streaming, _streaming, False)
        return cls(
            protojson.codec(method.input_type).decode,
            protojson.codec(method.output_type).encode,
            method.idempotency is Idempotency.NO_SIDE_EFFECTS,
        )


def _streaming(_: Any) -> NoReturn:
    raise Error(Code.UNIMPLEMENTED, "streaming over Connect is not supported yet")


class UnsupportedCodec(Error):
    """A GET asking for a codec we do not speak: the spec wants 415."""


def _deadline(value: bytes | None) -> float | None:
    """``connect-timeout-ms`` (1 to 10 ASCII digits) as a deadline on the loop clock."""
    if value is None:
        return None
    if not 0 < len(value) <= 10 or not value.isdigit():
        raise Error(Code.INVALID_ARGUMENT, "connect-timeout-ms must be 1 to 10 digits")
    return asyncio.get_running_loop().time() + int(value) / 1000


def _unsupported_encoding(where: str, value: str) -> NoReturn:
    # Absent means identity; gzip comes later. The spec asks for unimplemented,
    # with the supported encodings in the message.
    raise Error(Code.UNIMPLEMENTED, f"{where} {value!r} is not supported: use identity")


def _get_message(query_string: bytes) -> bytes:
    """The request message of a Connect GET, from its query parameters.

    ``message`` is percent-encoded JSON, or with ``base64=1`` URL-safe base64
    of it (padding optional); ``encoding`` is required; ``connect=v1`` and
    ``compression`` are checked when present. Unknown parameters are
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
    if encoding != "json":
        raise UnsupportedCodec(
            Code.UNIMPLEMENTED, f"encoding {encoding!r} is not supported: use encoding=json"
        )
    compression = params.get("compression", "identity")
    if compression != "identity":
        _unsupported_encoding("compression", compression)
    message = params.get("message", "")
    if params.get("base64") != "1":
        return message.encode()
    try:
        # A "+" left unescaped in a query means a space; take it back for base64.
        return protojson.b64decode(message.replace(" ", "+"))
    except ValueError:
        raise Error(
            Code.INVALID_ARGUMENT, "the message query parameter is not valid base64"
        ) from None


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


async def _send_error(
    send: Send,
    error: Error,
    status: int | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    context: Context | None = None,
) -> None:
    raw = headers or []
    if context is not None and context.has_response_headers():
        # Headers the handler set before failing are still its leading metadata.
        try:
            raw.extend(encode_headers(context.response_headers))
        except ValueError:
            error = Error(Code.INTERNAL, "internal error")
    # Errors are always JSON, whatever codec the request used.
    await respond(send, status or HTTP_STATUS[error.code], _encode(error_body(error)), raw, JSON)
