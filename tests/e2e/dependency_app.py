"""A service whose handlers take dependencies, each logging when it opens and closes:
for the dependency tests over ``twofold serve`` (every wire, native gRPC too)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec

from twofold import (
    App,
    Code,
    Context,
    Deadlines,
    Error,
    Idempotency,
    Provide,
    Provided,
    Service,
    timeout,
)

service = Service("deps.v1", "Deps")
notes = service.resource("notes")


class Ledger:
    """App-scoped: opened when the App starts; keeps what the sessions did."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.opened = 0


class Session:
    """Call-scoped: one per call, as a database session would be."""

    def __init__(self, number: int, ledger: Ledger) -> None:
        self.number = number
        self.ledger = ledger
        self.open = True


class Refused:
    """A dependency whose provider raises a coded Error."""


class Broken:
    """A dependency whose provider raises something else (a bug)."""


async def open_ledger() -> AsyncIterator[Ledger]:
    ledger = Ledger()
    ledger.events.append("ledger open")
    yield ledger


async def open_session(ledger: Ledger, ctx: Context) -> AsyncIterator[Session]:
    ledger.opened += 1
    session = Session(ledger.opened, ledger)
    ledger.events.append(f"open {session.number} {ctx.protocol}")
    try:
        yield session
    except BaseException as exc:
        code = exc.code.name if isinstance(exc, Error) else type(exc).__name__
        ledger.events.append(f"rollback {session.number} {code}")
        raise
    else:
        ledger.events.append(f"commit {session.number}")
    finally:
        session.open = False
        ledger.events.append(f"close {session.number}")


def refuse(session: Session) -> Refused:
    raise Error(Code.PERMISSION_DENIED, "the session may not do that")


def break_down(session: Session) -> Broken:
    raise RuntimeError("secret internals of the provider")


class Note(msgspec.Struct):
    id: int
    text: str
    served_by: int = 0  # the number of the session that served it


class Tick(msgspec.Struct):
    n: int
    served_by: int
    still_open: bool


class Events(msgspec.Struct):
    events: list[str]


@notes.get
async def get_note(id: int, session: Provided[Session]) -> Note:
    if id < 0:
        raise Error(Code.NOT_FOUND, f"no note {id}")
    if id == 13:
        raise ValueError("unlucky")
    return Note(id, "note", session.number)


@notes.create
async def create_note(note: Note, session: Provided[Session]) -> Note:
    return Note(note.id, note.text, session.number)


@service.procedure(http=("GET", "/ticks"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def ticks(count: int, session: Provided[Session], pause: float = 0.0) -> AsyncIterator[Tick]:
    """A server stream: what it was given stays open until its last message."""
    for n in range(count):
        await asyncio.sleep(pause)
        yield Tick(n, session.number, session.open)
    if count > 3:
        raise Error(Code.RESOURCE_EXHAUSTED, "too many ticks")


@timeout(0.3)
@service.procedure(http=("POST", "/slow"))
async def slow(seconds: float, session: Provided[Session]) -> Note:
    await asyncio.sleep(seconds)
    return Note(0, "slept", session.number)


@service.procedure(http=("POST", "/refused"))
async def refused(session: Provided[Session], refused: Provided[Refused]) -> Note:
    raise AssertionError("never called: its dependency refuses")


@service.procedure(http=("POST", "/broken"))
async def broken(session: Provided[Session], broken: Provided[Broken]) -> Note:
    raise AssertionError("never called: its dependency fails")


@service.procedure
async def take_events(ledger: Provided[Ledger]) -> Events:
    """What happened since the last look, and forget it."""
    events, ledger.events[:] = list(ledger.events), []
    return Events(events)


app = App(
    service,
    interceptors=[Deadlines()],
    dependencies=[
        Provide(Ledger, open_ledger, scope="app"),
        Provide(Session, open_session),
        Provide(Refused, refuse),
        Provide(Broken, break_down),
    ],
)
