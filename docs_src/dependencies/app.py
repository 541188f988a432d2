"""docs/dependencies.md: an engine for the App's life, a transaction per call."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from twofold import App, Code, Error, Provide, Provided, Service

service = Service("notes.v1")
notes = service.resource("notes")


class Note(msgspec.Struct):
    id: int
    text: str


async def open_engine() -> AsyncIterator[AsyncEngine]:
    """App-scoped: one engine (its connection pool) from startup to shutdown."""
    engine = create_async_engine(os.environ.get("NOTES_DATABASE_URL", "sqlite+aiosqlite://"))
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        )
    yield engine
    await engine.dispose()


async def open_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """Call-scoped: one transaction per call, committed if the call succeeds."""
    async with AsyncSession(engine) as session, session.begin():
        yield session  # an error of the call is raised here: begin() rolls back


@notes.create
async def create_note(note: Note, session: Provided[AsyncSession]) -> Note:
    insert = text("INSERT INTO notes (id, text) VALUES (:id, :text)")
    await session.execute(insert, {"id": note.id, "text": note.text})
    if not note.text.strip():
        # Written, then refused: the transaction rolls back, nothing is kept.
        raise Error(Code.INVALID_ARGUMENT, "a note needs some text")
    return note


@notes.get
async def get_note(id: int, session: Provided[AsyncSession]) -> Note:
    query = text("SELECT id, text FROM notes WHERE id = :id")
    row = (await session.execute(query, {"id": id})).first()
    if row is None:
        raise Error(Code.NOT_FOUND, f"note {id} does not exist")
    return Note(row.id, row.text)


app = App(
    service,
    dependencies=[
        Provide(AsyncEngine, open_engine, scope="app"),
        Provide(AsyncSession, open_session),
    ],
)
