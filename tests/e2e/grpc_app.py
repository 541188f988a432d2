"""A small service with every streaming kind, served by the gRPC tests in and out of process.

``EVENTS`` records what handlers saw (a ``finally`` that ran, metadata that
arrived), for the in-process tests; the served process prints its lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import msgspec

from twofold import App, Code, Context, Error, Service

service = Service("streams.v1", "Streams")
EVENTS: list[str] = []


class Number(msgspec.Struct):
    n: int


class Text(msgspec.Struct):
    text: str


@service.procedure
async def sleep(seconds: float, ctx: Context) -> Number:
    """Sleep, then answer the process id; records its start, its end or its cancellation."""
    print("sleep start", flush=True)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        EVENTS.append("sleep cancelled")
        print("sleep cancelled", flush=True)
        raise
    finally:
        EVENTS.append("sleep finally")
    return Number(os.getpid())


@service.procedure
async def whoami() -> Number:
    return Number(os.getpid())


@service.procedure
async def echo_metadata(name: str, ctx: Context) -> Text:
    """Answer a request metadata value, and send one back as a response header."""
    ctx.response_headers["x-echo"] = ctx.headers.get(name, "")
    if name == "fail":
        raise Error(Code.PERMISSION_DENIED, "no")
    return Text(f"{ctx.protocol} {ctx.headers.get(name, '')}")


@service.procedure
async def count(n: int) -> AsyncIterator[Number]:
    """0, 1, ... n-1; fails after them when n is negative."""
    for i in range(abs(n)):
        yield Number(i)
    if n < 0:
        raise Error(Code.OUT_OF_RANGE, "negative count")


@service.procedure
async def ticks(interval: float) -> AsyncIterator[Number]:
    """A stream that never ends; records when it is closed."""
    i = 0
    try:
        while True:
            yield Number(i)
            i += 1
            await asyncio.sleep(interval)
    finally:
        EVENTS.append("ticks finally")


@service.procedure
async def total(numbers: AsyncIterator[Number]) -> Number:
    sum_ = 0
    async for number in numbers:
        sum_ += number.n
    return Number(sum_)


@service.procedure
async def double(numbers: AsyncIterator[Number]) -> AsyncIterator[Number]:
    async for number in numbers:
        if number.n < 0:
            raise Error.invalid("n", "must not be negative")
        yield Number(number.n * 2)


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    print(f"lifespan start {os.getpid()}", flush=True)
    yield
    print(f"lifespan stop {os.getpid()}", flush=True)


app = App(service, lifespan=lifespan)
