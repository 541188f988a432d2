"""A greeter whose lifespan opens what its handlers use."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec

from twofold import App, Code, Error, Idempotency, Service

service = Service("greeter.v1")


class Greeting(msgspec.Struct):
    text: str


class Phrasebook:
    """Stands for what a real app opens at startup: a database pool, a client."""

    def __init__(self) -> None:
        self.salutation: str | None = None

    async def open(self) -> None:
        await asyncio.sleep(0)
        self.salutation = "Hello"

    async def close(self) -> None:
        self.salutation = None


phrasebook = Phrasebook()


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    await phrasebook.open()
    yield
    await phrasebook.close()


def _salutation() -> str:
    if phrasebook.salutation is None:
        raise Error(Code.UNAVAILABLE, "the phrasebook is not open: the app has not started")
    return phrasebook.salutation


@service.procedure(http=("GET", "/greetings/{name}"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def greet(name: Annotated[str, msgspec.Meta(min_length=1)]) -> Greeting:
    """Greet someone."""
    return Greeting(f"{_salutation()}, {name}!")


@service.procedure(http=("GET", "/greetings:stream"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def greet_many(names: list[str]) -> AsyncIterator[Greeting]:
    """Greet each in turn: a server stream (Server-Sent Events over REST)."""
    for name in names:
        yield Greeting(f"{_salutation()}, {name}!")


app = App(service, lifespan=lifespan)
