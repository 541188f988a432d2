"""A small app for ``twofold call``'s tests: a header echo, a nap, and a bidi stream.

The catalog has no bidi method; this one answers each message as it comes,
so a test can see ``twofold call`` send and print while the stream is open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec

from twofold import App, Context, Idempotency, Service

probe = Service("probe.v1")


class Seen(msgspec.Struct):
    header: str


class Line(msgspec.Struct):
    text: str
    number: int = 0


@probe.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
async def echo_header(ctx: Context) -> Seen:
    return Seen(ctx.headers.get("x-probe", ""))


@probe.procedure
async def nap(seconds: float) -> Seen:
    await asyncio.sleep(seconds)
    return Seen("awake")


@probe.procedure
async def chat(lines: AsyncIterator[Line]) -> AsyncIterator[Line]:
    """Each line back, upper-cased and numbered, as soon as it arrives."""
    count = 0
    async for line in lines:
        count += 1
        yield Line(line.text.upper(), count)


app = App(probe)
