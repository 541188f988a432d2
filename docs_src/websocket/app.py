"""docs/websocket.md: one service, its calls and streams over JSON-RPC over WebSocket too."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from twofold import App, Options, Service, WebSocketOptions

service = Service("chat.v1")


class Line(msgspec.Struct):
    text: str


class Count(msgspec.Struct):
    n: int


@service.procedure
async def shout(text: str) -> Line:
    """A unary call: one request, one response."""
    return Line(text.upper())


@service.procedure
async def count(to: int) -> AsyncIterator[Count]:
    """A server stream: over WebSocket, a subscription."""
    for n in range(1, to + 1):
        yield Count(n)


@service.procedure
async def echo(lines: AsyncIterator[Line]) -> AsyncIterator[Line]:
    """A bidi stream: rpc.send feeds it, rpc.close ends its input."""
    async for line in lines:
        yield Line(line.text)


app = App(
    service,
    options=Options(
        websocket=WebSocketOptions(max_streams=10, idle_timeout=60.0, send_timeout=5.0),
    ),
)
