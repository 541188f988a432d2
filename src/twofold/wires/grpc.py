"""Native gRPC over HTTP/2, served by the App itself through ASGI's trailers.

The spec (github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md): a POST
to ``/package.Service/Method`` with ``content-type: application/grpc``
(``+proto``; ``+json`` carries proto3 JSON), length-prefixed messages
(:mod:`twofold.http.envelope`) both ways, and the outcome as HTTP/2
trailers (:mod:`twofold.http.grpcstatus`): the HTTP status is 200 whatever
happened. This wire needs a server offering ASGI's
``http.response.trailers`` extension on HTTP/2 (``twofold serve``'s
pyvoy, hypercorn); without it a call is refused "trailers-only" (the
status as response headers, which every HTTP version can carry). A
client's RST_STREAM reaches the App as ``http.disconnect``, which the
shared exchange (:mod:`twofold.wires.exchange`) turns into the handler's
cancellation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.core.method import Method, StreamKind
from twofold.core.options import Options
from twofold.core.table import MethodTable
from twofold.http.body import header, media_type
from twofold.http.grpcstatus import status_trailers
from twofold.protobuf import json as protojson
from twofold.wires.exchange import GrpcHeadersCall

PROTOCOL = "grpc"
# content type -> is the codec proto3 JSON (rather than protobuf's binary)
CONTENT_TYPES = {
    b"application/grpc": False,
    b"application/grpc+proto": False,
    b"application/grpc+json": True,
}
TRAILERS = "http.response.trailers"
SINGLE_ANSWER = (StreamKind.UNARY, StreamKind.CLIENT)
Codecs = tuple[Callable[[bytes], Any], Callable[[Any], bytes]]


def _same(data: Any) -> Any:
    return data


# A method whose input and output types are ``bytes`` takes and gives
# messages as they are on the wire (the server's health and reflection).
RAW: Codecs = (_same, _same)


class GrpcProtocol:
    """The native gRPC endpoint of every method; the App calls it at each RPC path."""

    name = PROTOCOL

    def __init__(self, table: MethodTable, options: Options) -> None:
        self.table = table
        self.options = options
        self._schema: Any = None
        self._codecs: dict[tuple[Method, bool], Codecs] = {}

    def can_handle(self, scope: Scope) -> bool:
        if scope["method"] != "POST":
            return False
        content_type = header(scope, b"content-type")
        # The exact header first: what clients send, and one lookup.
        return content_type in CONTENT_TYPES or media_type(content_type) in CONTENT_TYPES

    @property
    def schema(self) -> Any:
        """The table's protobuf schema (:class:`twofold.protobuf.Schema`)."""
        if self._schema is None:
            # Built on first use: an app nobody calls over gRPC never pays.
            from twofold.protobuf import Schema

            self._schema = Schema(self.table)
        return self._schema

    def codec(self, method: Method, json: bool) -> Codecs:
        found = self._codecs.get((method, json))
        if found is None:
            if method.input_type is bytes:
                found = RAW
            elif json:
                found = (
                    protojson.codec(method.input_type).decode,
                    protojson.codec(method.output_type).encode,
                )
            else:
                found = (
                    self.schema.codec(method.input_type).decode,
                    self.schema.codec(method.output_type).encode,
                )
            self._codecs[(method, json)] = found
        return found

    async def serve(self, method: Method, scope: Scope, receive: Receive, send: Send) -> None:
        await self.serve_with(self.table, method, scope, receive, send)

    async def serve_with(
        self, table: MethodTable, method: Method, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Serve ``method`` with ``table``'s gates and observers (the server's
        own services pass an empty table: no credentials, not counted as API calls)."""
        content_type = header(scope, b"content-type") or b""
        if content_type not in CONTENT_TYPES:
            content_type = media_type(content_type)
        json = CONTENT_TYPES.get(content_type, False)
        codecs = functools.partial(self.codec, method, json)
        limit = self.options.max_body_size
        call = GrpcCall(table, limit, method, scope, send, codecs, content_type)
        if TRAILERS not in scope.get("extensions", {}):
            # HTTP/1.1 on a server without trailers: no status could follow a message.
            error = Error(
                Code.UNIMPLEMENTED,
                "native gRPC needs HTTP/2 with trailers: use HTTP/2 (h2c or TLS with ALPN h2), "
                "or gRPC-Web (application/grpc-web) over HTTP/1.1",
            )
            await table.refuse(PROTOCOL, method, scope, error)
            await call.end(error)
            return
        await call.serve(receive)


async def refuse(scope: Scope, send: Send, error: Error) -> None:
    """Answer a gRPC request with ``error`` alone (an unknown method, say)."""
    content_type = media_type(header(scope, b"content-type")) or b"application/grpc"
    headers = [(b"content-type", content_type)]
    if TRAILERS not in scope.get("extensions", {}):
        headers.extend(status_trailers(error, always_details=True))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    start = {"type": "http.response.start", "status": 200, "headers": headers, "trailers": True}
    await send(start)
    await send({"type": "http.response.body", "body": b""})
    await send(
        {
            "type": TRAILERS,
            "headers": status_trailers(error, always_details=True),
            "more_trailers": False,
        }
    )


class GrpcCall(GrpcHeadersCall):
    """One native gRPC call: gRPC's hooks on the shared exchange loop."""

    PROTOCOL = PROTOCOL
    # A stream that ends inside a message (its length prefix promised more):
    # grpc-go, the reference server, reads an unexpected EOF there and answers
    # INTERNAL; the request's content is not what is wrong, its framing is.
    TRUNCATED = Code.INTERNAL
    # The one message of a unary or client-streaming answer, held until the
    # end: it goes out as the body's end (pyvoy takes no trailers before a
    # body that ended), one ASGI send a call fewer than a message, then an
    # empty end of the body.
    held: bytes | None = None

    async def body(self, data: bytes, more: bool) -> None:
        if self.method.kind in SINGLE_ANSWER:
            self.held = data
            return
        await super().body(data, more)

    async def start(self, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.started = True
        raw = self.response_headers() if headers is None else headers
        await self.send(
            {"type": "http.response.start", "status": 200, "headers": raw, "trailers": True}
        )

    async def end(self, error: Error | None) -> None:
        if not self.started:
            raw, error = self.safe_response_headers(error)
            if TRAILERS in self.scope.get("extensions", {}):
                # Headers, then the status as trailers, no message between.
                # Not "trailers-only" (one HEADERS frame with END_STREAM): no
                # ASGI server sends that, and grpc's core refuses the empty
                # END_STREAM DATA frame an ASGI server would end a body with.
                await self.start(raw)
            else:
                # Trailers-only, as headers: all an HTTP/1.1 answer can carry.
                raw.extend(self.trailers(error, always_details=True))
                self.started = True
                await self.send({"type": "http.response.start", "status": 200, "headers": raw})
                await self.send({"type": "http.response.body", "body": b""})
                return
        held, self.held = self.held, None
        await self.send({"type": "http.response.body", "body": held or b"", "more_body": False})
        await self.send(
            {
                "type": TRAILERS,
                "headers": self.trailers(error, always_details=True),
                "more_trailers": False,
            }
        )
