"""A service whose writes need a scope, for the credentials-before-body tests.

Its options are written in both orders, above and under the method
decorator, since the order above used to be silently ignored. ``WRITES``
counts the writes that reached a handler; the public ``ListThings`` reports
it, so a test can see from outside that a refused call wrote nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec

from twofold import (
    ApiKeys,
    App,
    Authentication,
    Deadlines,
    Idempotency,
    Service,
    StoredApiKey,
    public,
    requires,
    timeout,
)
from twofold.core.method import Empty

WRITER_KEY = "writer-key"
READER_KEY = "reader-key"
WRITES: list[str] = []

service = Service("guarded.v1")
things = service.resource("things")


class Thing(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    name: Annotated[str, msgspec.Meta(min_length=1)]


class Things(msgspec.Struct):
    writes: int


@requires("things:write")
@things.create
async def create_thing(thing: Thing) -> Thing:
    WRITES.append(f"create {thing.id}")
    return thing


@things.replace
@requires("things:write")
async def replace_thing(id: int, thing: Thing) -> Thing:
    WRITES.append(f"replace {id}")
    return thing


@requires("things:read")
@things.get
async def get_thing(id: int) -> Thing:
    return Thing(id, "thing")


@things.list
@public
async def list_things() -> Things:
    return Things(len(WRITES))


@requires("things:write")
@service.procedure(http=("POST", "/things:watch"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def watch_things(name: Annotated[str, msgspec.Meta(min_length=1)]) -> AsyncIterator[Thing]:
    yield Thing(1, name)


@service.procedure
@requires("things:write")
async def import_things(things: AsyncIterator[Thing]) -> Things:
    async for thing in things:
        WRITES.append(f"import {thing.id}")
    return Things(len(WRITES))


@timeout(0.05)
@service.procedure
@public
async def dawdle() -> Empty:
    await asyncio.sleep(3600)
    return Empty()


keys = ApiKeys(
    [
        StoredApiKey.of(WRITER_KEY, "writer", ["things:write", "things:read"]),
        StoredApiKey.of(READER_KEY, "reader"),
    ]
)
app = App(service, interceptors=[Authentication(keys), Deadlines()])
