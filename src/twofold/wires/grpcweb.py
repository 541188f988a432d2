"""gRPC-Web: gRPC's framing over HTTP/1.1 or HTTP/2, as browsers can speak it.

The spec (github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md) keeps gRPC's
length-prefixed messages (:mod:`twofold.http.envelope`) and moves the trailers,
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

import base64
import functools
from collections.abc import Callable
from typing import Any

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.errors import Error
from twofold.core.method import Method
from twofold.core.options import Options
from twofold.core.table import MethodTable
from twofold.http import envelope
from twofold.http.body import header, media_type
from twofold.wires.exchange import GrpcHeadersCall

PROTOCOL = "grpc-web"
# content type -> is it the base64 (-text) variant
CONTENT_TYPES = {
    b"application/grpc-web": False,
    b"application/grpc-web+proto": False,
    b"application/grpc-web-text": True,
    b"application/grpc-web-text+proto": True,
}


class GrpcWebProtocol:
    """The gRPC-Web endpoint of every method; the App calls it at each RPC path."""

    name = PROTOCOL

    def __init__(self, table: MethodTable, options: Options) -> None:
        self.table = table
        self.options = options
        self._schema: Any = None
        self._codecs: dict[Method, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {}

    def can_handle(self, scope: Scope) -> bool:
        if scope["method"] != "POST":
            return False
        content_type = header(scope, b"content-type")
        # The exact header first: one lookup for what clients send.
        return content_type in CONTENT_TYPES or media_type(content_type) in CONTENT_TYPES

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
        limit = self.options.max_body_size
        text = CONTENT_TYPES[content_type]
        codecs = functools.partial(self.codec, method)
        call = _Call(self.table, limit, method, scope, send, codecs, content_type, text)
        await call.serve(receive)


class _Call(GrpcHeadersCall):
    """One gRPC-Web call: gRPC-Web's hooks on the shared exchange loop."""

    PROTOCOL = PROTOCOL

    async def body(self, data: bytes, more: bool) -> None:
        if self.text:
            data = base64.b64encode(data)
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def end(self, error: Error | None) -> None:
        if not self.started:
            # Trailers-only: the status in the headers, nothing in the body.
            raw, error = self.safe_response_headers(error)
            raw.extend(self.trailers(error, always_details=False))
            await self.start(raw)
            await self.send({"type": "http.response.body", "body": b""})
            return
        trailers = self.trailers(error, always_details=False)
        block = b"".join(k + b": " + v + b"\r\n" for k, v in trailers)
        await self.body(envelope.frame(block, envelope.TRAILERS), more=False)
