"""The service the HTTP/2 abuse tests (test_http2_abuse.py) call beside their attacks.

A REST read and a unary call, the well-behaved traffic that must still be
answered; and an endless stream of large messages that counts the bytes it
has handed to the server, for the slow reader: what the App could produce
while nobody reads shows whether the server buffers without bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from twofold import App, Service

service = Service("abuse.v1", "Abuse")
PRODUCED = [0]  # bytes of Chunk data handed to the server so far, in this process


class Item(msgspec.Struct):
    id: int
    name: str


class Chunk(msgspec.Struct):
    data: bytes


class Produced(msgspec.Struct):
    total: int


@service.procedure(http=("GET", "/items/{id}"))
async def get_item(id: int) -> Item:
    return Item(id, f"item {id}")


@service.procedure(http=("GET", "/produced"))
async def get_produced() -> Produced:
    return Produced(PRODUCED[0])


@service.procedure
async def chunks(size: int) -> AsyncIterator[Chunk]:
    """Messages of ``size`` bytes, without end: each yield waits until the server takes it."""
    data = b"x" * size
    while True:
        yield Chunk(data)
        PRODUCED[0] += size


app = App(service)
