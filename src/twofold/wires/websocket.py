"""JSON-RPC 2.0 over WebSocket, on an App's JSON-RPC path: its calls run its handlers.

The connection itself (framing, batches, streams, limits, credentials,
Origin) is :mod:`twofold.wires.websocket_connection`'s, shared with the
gateway; here is what a call does in an App: its method is looked up in the
table, its credentials go through the App's header-only gates, and its
handler runs through the interceptor chain, as on any wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.context import Context
from twofold.core.errors import Error
from twofold.core.headers import Headers
from twofold.core.invoke import deadline, deliver, invoke
from twofold.core.method import UNKNOWN, Empty, Method, StreamKind
from twofold.core.options import Options
from twofold.core.policy import PUBLIC
from twofold.core.table import MethodTable
from twofold.http.body import peer
from twofold.http.cors import Cors
from twofold.http.jsonrpc import Id, Target, Targets, encode
from twofold.wires.websocket_connection import PROTOCOL, Write, serve


async def _handshake(request: Any, ctx: Context) -> Any:
    raise AssertionError("never called: it only names the upgrade to the interceptors")


# What the upgrade's credentials are checked as: a public method, so that a
# connection without credentials may open (and call public methods), while
# credentials that are present must be valid.
HANDSHAKE = Method("", "_WEBSOCKET", Empty, Empty, _handshake, security=PUBLIC)


class WebSocketProtocol:
    """The ASGI endpoint for ``websocket`` scopes at ``options.jsonrpc_path``."""

    name = PROTOCOL

    def __init__(self, table: MethodTable, options: Options, cors: Cors | None = None) -> None:
        self.table = table
        self.options = options
        self.cors = cors
        self.targets = Targets(table)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve(
            scope,
            receive,
            send,
            _Calls(self.table, self.targets, scope),
            limits=self.options.websocket,
            max_batch_size=self.options.max_batch_size,
            cors=self.cors,
        )


class _Calls:
    """One connection's calls to the App's methods
    (:class:`~twofold.wires.websocket_connection.Calls`)."""

    def __init__(self, table: MethodTable, targets: Targets, scope: Scope) -> None:
        self.table = table
        self.targets = targets
        self.scope = scope
        self.peer = peer(scope)

    async def admit(self, headers: Headers) -> Error | None:
        if self.table.admit is None:
            return None
        return await self.table.admit(
            Context(PROTOCOL, HANDSHAKE, headers, self.peer, scope=self.scope)
        )

    def resolve(self, name: str, headers: Headers) -> _Call:
        target = self.targets.resolve(name, streams=True)
        ctx = Context(PROTOCOL, target.method, headers, self.peer, scope=self.scope)
        return _Call(self.table, target, ctx)

    async def refused(self, headers: Headers, error: Error) -> None:
        ctx = Context(PROTOCOL, UNKNOWN, headers, self.peer, scope=self.scope)
        await self.table.refused(ctx, error)


@dataclass(eq=False, slots=True)
class _Call:
    """One call of an App's method: its handler, through the interceptor chain."""

    table: MethodTable
    target: Target
    ctx: Context

    @property
    def kind(self) -> StreamKind:
        return self.target.method.kind

    async def admit(self) -> Error | None:
        if self.table.admit is None:
            return None
        return await self.table.admit(self.ctx)

    def decode(self, params: msgspec.Raw, request_id: Id) -> Any:
        return self.target.decode(params, request_id)

    # The encoder itself, not a method calling it: a stream pays no extra call per message.
    encode = staticmethod(encode)

    async def unary(self, message: Any) -> Any:
        return await invoke(self.target.method, self.ctx, message)

    async def stream(self, request: Any, write: Write) -> None:
        async with deadline(self.ctx):
            await deliver(self.target.method, self.ctx, request, write)

    async def refused(self, error: Error) -> None:
        await self.table.refused(self.ctx, error)
