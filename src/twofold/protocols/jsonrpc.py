"""JSON-RPC 2.0 (placeholder until the protocol lands)."""

from __future__ import annotations

from twofold.asgi import Receive, Scope, Send
from twofold.http import respond
from twofold.options import Options
from twofold.table import MethodTable


class JsonRpcProtocol:
    name = "jsonrpc"

    def __init__(self, table: MethodTable, options: Options) -> None:
        self.table = table
        self.options = options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 501)
