"""A service for the JSON-RPC over WebSocket tests, with small limits to reach.

``Flood`` streams large messages as fast as they are taken, for the slow
consumer; ``Idle`` opens a stream that never sends, for the streams limit;
``Secret`` needs a scope, for credentials on the upgrade and in
``rpc.authenticate``; ``Dawdle`` outlives its ``@timeout``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import msgspec

from twofold import (
    ApiKeys,
    App,
    Authentication,
    Cors,
    Deadlines,
    Metrics,
    Options,
    Service,
    StoredApiKey,
    WebSocketOptions,
    public,
    requires,
    timeout,
)

READER_KEY = "reader-key"
IDLE_ENV = "WS_APP_IDLE_TIMEOUT"
MAX_MESSAGE = 64 * 1024
ALLOWED_ORIGIN = "https://app.example.com"

service = Service("sockets.v1")


class Text(msgspec.Struct):
    text: str


class Total(msgspec.Struct):
    total: int


class Number(msgspec.Struct):
    value: int


@service.procedure
@public
async def echo(text: str) -> Text:
    return Text(text)


@service.procedure
@requires("secret:read")
async def secret() -> Text:
    return Text("the secret")


# Messages each Flood stream has produced, by its tag: how far a handler got
# ahead of a client that stopped reading.
FLOODED: dict[str, int] = {}


@service.procedure
@public
async def flood(size: int, tag: str) -> AsyncIterator[Text]:
    blob = "x" * size
    FLOODED[tag] = 0
    while True:
        yield Text(blob)
        FLOODED[tag] += 1


@service.procedure
@public
async def flooded(tag: str) -> Number:
    return Number(FLOODED.get(tag, -1))


@service.procedure
@public
async def idle() -> AsyncIterator[Text]:
    await asyncio.Event().wait()
    yield Text("never")


@service.procedure
@public
async def ticks(count: int) -> AsyncIterator[Number]:
    for i in range(count):
        yield Number(i)


@service.procedure
@public
async def add(numbers: AsyncIterator[Number]) -> Total:
    return Total(sum([n.value async for n in numbers]))


@service.procedure
@public
async def shout(lines: AsyncIterator[Text]) -> AsyncIterator[Text]:
    async for line in lines:
        yield Text(line.text.upper())


@timeout(0.05)
@service.procedure
@public
async def dawdle() -> Text:
    await asyncio.sleep(3600)
    return Text("late")


keys = ApiKeys([StoredApiKey.of(READER_KEY, "reader", ["secret:read"])])
limits = WebSocketOptions(
    max_message_size=MAX_MESSAGE,
    max_streams=100,
    max_queued_messages=8,
    send_timeout=0.5,
    # Long by default, so that no test's second connection idles out meanwhile;
    # the idle tests serve the app with a short one.
    idle_timeout=float(os.environ.get(IDLE_ENV) or 60),
)
app = App(
    service,
    interceptors=[Metrics(), Authentication(keys), Deadlines()],
    options=Options(websocket=limits),
    cors=Cors([ALLOWED_ORIGIN]),
)
