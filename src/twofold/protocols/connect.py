"""Connect (placeholder until the protocol lands)."""

from __future__ import annotations

from twofold.asgi import Receive, Scope, Send
from twofold.http import respond
from twofold.method import Method
from twofold.options import Options
from twofold.table import MethodTable


class ConnectProtocol:
    name = "connect"

    def __init__(self, table: MethodTable, options: Options) -> None:
        self.table = table
        self.options = options

    def can_handle(self, scope: Scope) -> bool:
        return False

    async def serve(self, method: Method, scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 501)
