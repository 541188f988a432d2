"""The tick service: every stream kind, an error in each place a call can fail,
and a record of streams that ended, for the in-process wire tests (Connect,
gRPC-Web) to drive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec

from twofold import App, Code, Context, Error, Options, Service
from twofold.protobuf import Schema

service = Service("tick.v1")
EVENTS: list[str] = []


class Tick(msgspec.Struct):
    n: int
    note: str = ""


class Total(msgspec.Struct):
    sum: int
    count: int = 0


@service.procedure
async def get_tick(n: int) -> Tick:
    if n < 0:
        raise Error.invalid("n", "must not be negative")
    return Tick(n, "x" * n)


@service.procedure
async def count(to: int, ctx: Context) -> AsyncIterator[Tick]:
    ctx.response_headers["x-counting"] = "yes"
    try:
        for n in range(to):
            if n == 3 and to == 13:
                raise Error(Code.FAILED_PRECONDITION, "unlucky")
            if n == 1 and to == 14:
                raise Error(Code.RESOURCE_EXHAUSTED, "slow down", headers={"Retry-After": "7"})
            yield Tick(n)
            if to > 100:
                await asyncio.sleep(0.01)
    finally:
        EVENTS.append(f"count({to}) ended")


@service.procedure
async def add(ticks: AsyncIterator[Tick]) -> Total:
    total = count = 0
    async for t in ticks:
        total += t.n
        count += 1
    return Total(total, count)


@service.procedure
async def echo(ticks: AsyncIterator[Tick]) -> AsyncIterator[Tick]:
    async for t in ticks:
        yield Tick(t.n * 2)


app = App(service, options=Options(max_body_size=4096))
schema = Schema(app.table, lock=None)
PATH = "/tick.v1.TickService/"
