"""A guarded service with a slow public call, for the health tests over ``twofold serve``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec

from twofold import ApiKeys, App, Authentication, Service, StoredApiKey, public, requires

KEY = "edge-key"

service = Service("edge.v1", "Edge")
notes = service.resource("notes")


class Note(msgspec.Struct):
    id: int
    text: str


class Nap(msgspec.Struct):
    slept: float


@requires("notes:read")
@notes.get
async def get_note(id: int) -> Note:
    return Note(id, "note")


@public
@service.procedure
async def nap(seconds: Annotated[float, msgspec.Meta(ge=0, le=30)]) -> Nap:
    """Sleep ``seconds``: a call that is still in flight when the server is told to stop."""
    await asyncio.sleep(seconds)
    return Nap(seconds)


keys = ApiKeys([StoredApiKey.of(KEY, "edge", ["notes:read"])])
app = App(service, interceptors=[Authentication(keys)])
