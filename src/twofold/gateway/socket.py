"""JSON-RPC 2.0 over WebSocket at the gateway's JSON-RPC path: every call relayed upstream.

The connection is an App's (:mod:`twofold.wires.websocket_connection`):
the same framing, batches, subscriptions, control methods, Origin check,
limits and close codes. Here a call goes to the gRPC upstream as it comes,
each ``rpc.send`` one request message, each answer back as the upstream
sends it; a connection that closes, or a stream unsubscribed, cancels its
upstream call. Credentials are the edge's (``GatewayOptions.authentication``):
checked on the upgrade when present, and per call before its params are
read, with the upgrade's headers or a first ``rpc.authenticate``'s, which
also give each call its deadline and forwarded metadata.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from google.protobuf.descriptor import MethodDescriptor

from twofold.core.asgi import Scope
from twofold.core.code import Code
from twofold.core.errors import Error, as_error
from twofold.core.headers import Headers
from twofold.core.method import StreamKind
from twofold.gateway.transcode import parse_json
from twofold.http.jsonrpc import Id
from twofold.wires.websocket_connection import PROTOCOL, Write

if TYPE_CHECKING:
    from twofold.gateway.rpc import RpcFront


class GatewayCalls:
    """One connection's calls, relayed to the upstream
    (:class:`~twofold.wires.websocket_connection.Calls`)."""

    def __init__(self, front: RpcFront, scope: Scope) -> None:
        self.front = front
        self.scope = scope

    async def admit(self, headers: Headers) -> Error | None:
        auth = self.front.gateway.options.authentication
        if auth is None:
            return None
        try:
            # Invalid credentials are refused; none make an anonymous connection,
            # whose calls of methods that are not public are refused one by one.
            await auth.identify(headers)
        except Exception as exc:
            return as_error(exc)
        return None

    def resolve(self, name: str, headers: Headers) -> _Relay:
        method = self.front.jsonrpc_names.get(name)
        if method is None:
            raise Error(Code.UNIMPLEMENTED, f"no method {name!r}")
        # The connection's headers (rpc.authenticate's included) stand for the request's.
        return _Relay(self.front, method, {**self.scope, "headers": headers.raw()})

    async def refused(self, headers: Headers, error: Error) -> None:
        """Nothing to tell: the gateway's metrics count the calls that reach the upstream."""


@dataclass(eq=False, slots=True)
class _Relay:
    """One call relayed to the upstream: JSON in, protobuf across, JSON back."""

    front: RpcFront
    method: MethodDescriptor
    scope: Scope

    @property
    def kind(self) -> StreamKind:
        if self.method.client_streaming:
            return StreamKind.BIDI if self.method.server_streaming else StreamKind.CLIENT
        return StreamKind.SERVER if self.method.server_streaming else StreamKind.UNARY

    async def admit(self) -> Error | None:
        try:
            await self.front.gateway.admit(self.method, self.scope)
        except Exception as exc:  # a verifier's bug is INTERNAL, still an answer
            return as_error(exc)
        return None

    def decode(self, params: msgspec.Raw, request_id: Id) -> bytes:
        """The request message as protobuf bytes, from params that are the message's JSON."""
        if params and memoryview(params)[0] == ord("["):
            raise Error.invalid("", "params must be an object (the request message)")
        schema = self.front.schema
        return parse_json(schema, self.method.input_type, bytes(params)).SerializeToString()  # type: ignore[no-any-return]

    def encode(self, output: bytes) -> bytes:
        """The upstream's answer as JSON (a 502 for one that is not the declared message)."""
        return self.front.to_json(self.method, output)

    async def unary(self, message: bytes) -> bytes:
        gw = self.front.gateway
        meta, deadline = gw.metadata(self.scope), gw.deadline(self.scope)
        return await gw.upstream.unary(_path(self.method), message, meta, deadline, PROTOCOL)

    async def stream(self, request: Any, write: Write) -> None:
        gw = self.front.gateway
        meta, deadline = gw.metadata(self.scope), gw.deadline(self.scope)
        path = _path(self.method)
        failed: Error | None = None

        async def requests(inputs: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
            nonlocal failed
            try:
                async for item in inputs:
                    yield item
            except Error as exc:
                # Raised into grpcio's request task, which then cancels the call:
                # the upstream never takes a stream that broke for a clean end.
                failed = exc
                raise

        if self.method.client_streaming:
            items = gw.upstream.stream(path, requests(request), meta, deadline, PROTOCOL)
        else:
            items = gw.upstream.server_stream(path, request, meta, deadline, PROTOCOL)
        try:
            async for raw in items:
                await write(raw)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if failed is None or (task is not None and task.cancelling()):
                raise  # the connection closed or the stream was unsubscribed
            raise failed from None  # grpcio cancelled the call for the bad message
        finally:
            await items.aclose()  # type: ignore[attr-defined]

    async def refused(self, error: Error) -> None:
        """Nothing to tell: the gateway's metrics count the calls that reach the upstream."""


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"
