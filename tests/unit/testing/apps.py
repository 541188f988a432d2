"""Apps for the test clients' tests: a lifespan that opens what handlers read, streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec

from twofold import App, Code, Error, Idempotency, Service

READ = Idempotency.NO_SIDE_EFFECTS


class Number(msgspec.Struct):
    value: int


class State:
    """What the lifespan opens and closes, and how many endless streams ended."""

    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0
        self.offset: int | None = None
        self.streams_ended = 0


def counting_app(state: State) -> App:
    service = Service("counting.v1")

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        state.started += 1
        state.offset = 1000
        yield
        state.offset = None
        state.stopped += 1

    def offset() -> int:
        if state.offset is None:
            raise Error(Code.FAILED_PRECONDITION, "the lifespan has not run")
        return state.offset

    @service.procedure(http=("GET", "/numbers/{value}"), idempotency=READ)
    async def echo(value: int) -> Number:
        return Number(value + offset())

    @service.procedure(http=("GET", "/numbers:count"), idempotency=READ)
    async def count(to: int) -> AsyncIterator[Number]:
        for i in range(to):
            await asyncio.sleep(0)
            yield Number(i + offset())

    @service.procedure(http=("GET", "/numbers:forever"), idempotency=READ)
    async def forever() -> AsyncIterator[Number]:
        i = 0
        try:
            while True:
                # No await between yields on purpose: the transport's own
                # flow control must pace the stream.
                yield Number(i)
                i += 1
        finally:
            # Cancelled, or closed (GeneratorExit) by a wire that saw the client go.
            state.streams_ended += 1

    @service.procedure(http=("GET", "/numbers:ticks"), idempotency=READ)
    async def ticks() -> AsyncIterator[Number]:
        i = 0
        try:
            while True:
                # Paced: over a transport that waits for the whole body, this
                # stream ends in the client's deadline instead of hanging.
                await asyncio.sleep(0)
                yield Number(i)
                i += 1
        finally:
            state.streams_ended += 1

    return App(service, lifespan=lifespan)


def broken_app(stage: str) -> App:
    service = Service("broken.v1")

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        if stage == "startup":
            raise ConnectionError("the database is down")
        yield
        raise ConnectionError("the pool would not close")

    @service.procedure
    async def ping() -> Number:
        return Number(1)

    return App(service, lifespan=lifespan)
