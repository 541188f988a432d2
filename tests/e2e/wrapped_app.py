"""The edge app (a slow call, probes) wrapped by hand in a middleware, and an
app that hides its App where ``twofold serve`` cannot find it."""

from __future__ import annotations

from tests.e2e.edge_app import app as edge
from twofold.core.asgi import ASGIApp, Message, Receive, Scope, Send


class Marking:
    """Marks every HTTP answer ``x-wrapped: yes``, so a test sees the wrapper served it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-wrapped", b"yes")]
            await send(message)

        await self.app(scope, receive, marked if scope["type"] == "http" else send)


class Opaque:
    """A wrapper that keeps its app under a name nobody would guess."""

    def __init__(self, app: ASGIApp) -> None:
        self._hidden_app_by_another_name = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._hidden_app_by_another_name(scope, receive, send)


app = Marking(edge)
opaque = Opaque(edge)
