"""A guarded service behind a CORS policy, with a slow public call: for the
health and CORS tests over ``twofold serve``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec

from twofold import (
    ApiKeys,
    App,
    Authentication,
    Code,
    Cors,
    Error,
    Idempotency,
    Service,
    StoredApiKey,
    public,
    requires,
)

KEY = "edge-key"
ORIGIN = "https://app.example.com"
CALLS: list[str] = []  # what reached a handler, reported by Calls

service = Service("edge.v1", "Edge")
notes = service.resource("notes")


class Note(msgspec.Struct):
    id: int
    text: str


class Nap(msgspec.Struct):
    slept: float


class Calls(msgspec.Struct):
    calls: list[str]


@requires("notes:read")
@notes.get
async def get_note(id: int) -> Note:
    CALLS.append(f"get {id}")
    return Note(id, "note")


@public
@notes.create
async def create_note(note: Note) -> Note:
    CALLS.append(f"create {note.id}")
    if note.id < 0:
        raise Error(Code.INVALID_ARGUMENT, "ids are positive")
    return note


@public
@service.procedure(http=("GET", "/notes:count"))
async def count_notes(n: Annotated[int, msgspec.Meta(ge=0, le=10)]) -> AsyncIterator[Note]:
    for i in range(n):
        yield Note(i, "counted")


@public
@service.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
async def calls() -> Calls:
    return Calls(CALLS)


@public
@service.procedure
async def nap(seconds: Annotated[float, msgspec.Meta(ge=0, le=30)]) -> Nap:
    """Sleep ``seconds``: a call that is still in flight when the server is told to stop."""
    await asyncio.sleep(seconds)
    return Nap(seconds)


keys = ApiKeys([StoredApiKey.of(KEY, "edge", ["notes:read"])])
app = App(
    service,
    interceptors=[Authentication(keys)],
    cors=Cors([ORIGIN, "https://*.preview.example.com"], credentials=True, max_age=300),
)
