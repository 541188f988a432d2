"""Native gRPC on the gateway's own port: calls relayed to the upstream as they are.

Request messages go upstream as the bytes the client framed, answers come
back framed as the upstream sent them, for every method kind (on HTTP/2
every call is a stream both ways). The edge's rules still apply:
credentials first, the request-header allow-list, ``grpc-timeout`` capped.
The upstream's headers and trailers come back as they were
(``grpc-status-details-bin`` byte for byte). A gRPC status is HTTP/2
trailers: this needs ASGI's ``http.response.trailers`` (``--server
hypercorn`` or ``pyvoy``); without it a call is refused, trailers-only.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import grpc

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.core.headers import Headers
from twofold.gateway.inbound import Inbound
from twofold.gateway.upstream import UNAVAILABLE
from twofold.http import envelope
from twofold.http.body import header, media_type
from twofold.http.grpcstatus import percent_encode, status_trailers
from twofold.http.negotiation import decompressor
from twofold.interceptors.auth import unauthenticated
from twofold.wires.grpc import TRAILERS, refuse

if TYPE_CHECKING:
    from google.protobuf.descriptor import MethodDescriptor

    from twofold.gateway.app import Gateway

CONTENT_TYPES = (b"application/grpc", b"application/grpc+proto")
# Headers a gRPC server sends that describe this hop, not the call: ours are set
# by the ASGI server and by this relay.
_HOP = frozenset(
    {"content-type", "content-length", "grpc-encoding", "grpc-accept-encoding", "date", "server"}
)
# Trailers that are the status itself: rebuilt from the call's outcome.
_STATUS = frozenset({"grpc-status", "grpc-message"})


class GrpcRelay:
    """The native gRPC front: every method, relayed."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    @staticmethod
    def can_handle(scope: Scope) -> bool:
        return scope["method"] == "POST" and (
            media_type(header(scope, b"content-type")) in CONTENT_TYPES
        )

    async def serve(
        self, method: MethodDescriptor, scope: Scope, receive: Receive, send: Send
    ) -> None:
        path = f"/{method.containing_service.full_name}/{method.name}"
        await self._relay(path, functools.partial(self.gateway.admit, method), scope, receive, send)

    async def reflection(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """The upstream's server reflection, relayed: a reflection client (grpcurl,
        ``twofold call``) pointed at the gateway lists the upstream's services."""
        await self._relay(path, self._identified, scope, receive, send)

    async def _identified(self, scope: Scope) -> None:
        """Reflection names no method: with authentication on, any identity may list."""
        auth = self.gateway.options.authentication
        if auth is not None and await auth.identify(Headers(scope["headers"])) is None:
            raise unauthenticated("credentials are required", f'Bearer realm="{auth.realm}"')

    async def _relay(
        self,
        path: str,
        admit: Callable[[Scope], Awaitable[None]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if TRAILERS not in scope.get("extensions", {}):
            # gRPC sent over HTTP/1.1. (uvicorn never gets this far with a grpcio
            # client: it answers the HTTP/2 preface 400, which grpcio reports at
            # once as UNAVAILABLE.)
            error = Error(
                Code.UNIMPLEMENTED,
                "native gRPC needs HTTP/2 with trailers: serve the gateway with --server "
                "hypercorn or pyvoy, or call it with gRPC-Web or Connect",
            )
            await refuse(scope, send, error)
            return
        gw = self.gateway
        inbound: Inbound | None = None
        started = False

        async def start(headers: Sequence[tuple[bytes, bytes]]) -> None:
            nonlocal started
            started = True
            raw = [(b"content-type", b"application/grpc"), *headers]
            await send(
                {"type": "http.response.start", "status": 200, "headers": raw, "trailers": True}
            )

        trailers: list[tuple[bytes, bytes]]
        try:
            await admit(scope)
            timeout = gw.deadline(scope)
            metadata = gw.metadata(scope)
            # The client's compressed messages go upstream uncompressed: grpcio
            # frames (and compresses) what it sends itself.
            inflate = decompressor("grpc-encoding", header(scope, b"grpc-encoding"))
            reader = envelope.Reader(receive, gw.options.max_body_size, inflate)
            inbound = Inbound(reader, receive, _data)
            with gw.upstream.observed("grpc", path, metadata) as sent:
                call = gw.upstream.open(path, inbound.messages(), sent, timeout)
                inbound.opened(call)
                try:
                    await start(_metadata(await call.initial_metadata()))
                    async for raw in call:
                        chunk = envelope.frame(raw)
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    trailers = _outcome(
                        await call.code(), await call.details(), await call.trailing_metadata()
                    )
                except grpc.aio.AioRpcError as exc:
                    trailers = _outcome(exc.code(), exc.details(), exc.trailing_metadata())
                finally:
                    call.cancel()
        except asyncio.CancelledError:
            if inbound is None or not inbound.cancelled:
                raise
            if inbound.gone:
                return  # the client reset the stream: nobody to answer
            assert inbound.error is not None
            trailers = status_trailers(inbound.error, always_details=True)
        except Error as exc:
            trailers = status_trailers(exc, always_details=True)
        finally:
            if inbound is not None:
                await inbound.close()
        if not started:
            await start([])
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": TRAILERS, "headers": trailers, "more_trailers": False})


def _data(item: envelope.Envelope) -> bytes:
    return item.data


def _metadata(metadata: grpc.aio.Metadata | None) -> list[tuple[bytes, bytes]]:
    """gRPC metadata as HTTP/2 header fields: ``-bin`` values in unpadded base64."""
    out = []
    for key, value in metadata or ():
        if key in _HOP or key in _STATUS or key.startswith(":"):
            continue
        if isinstance(value, bytes):
            raw = base64.b64encode(value).rstrip(b"=")
        else:
            raw = value.encode("latin-1")
        out.append((key.encode("latin-1"), raw))
    return out


def _outcome(
    code: grpc.StatusCode, details: str | None, trailing: grpc.aio.Metadata | None
) -> list[tuple[bytes, bytes]]:
    """The upstream's status and trailers, as the client's trailers."""
    number = code.value[0]
    message = details or ""
    if code is grpc.StatusCode.UNAVAILABLE and "failed to connect" in message.lower():
        # grpcio's own text names addresses and OS errors: not the client's business.
        message = UNAVAILABLE
    out = [(b"grpc-status", str(number).encode())]
    if message and number != 0:
        out.append((b"grpc-message", percent_encode(message)))
    out.extend(_metadata(trailing))
    return out
