"""docs/dependencies.md: tests that stand in for the app's dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from docs_src.dependencies.app import Note, app
from twofold import Code, Error, Provide
from twofold.testing import TestClient


def test_a_refused_note_is_rolled_back() -> None:
    with TestClient(app, protocol="rest") as client:
        assert client.create_note(note=Note(1, "milk")) == Note(1, "milk")
        with pytest.raises(Error) as refused:
            client.create_note(note=Note(2, " "))
        assert refused.value.code is Code.INVALID_ARGUMENT
        with pytest.raises(Error) as missing:  # its INSERT was rolled back
            client.get_note(id=2)
        assert missing.value.code is Code.NOT_FOUND


async def empty_engine() -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        await connection.exec_driver_sql("INSERT INTO notes VALUES (7, 'from the test')")
    yield engine
    await engine.dispose()


def test_with_a_database_of_the_tests_own() -> None:
    test_database = Provide(AsyncEngine, empty_engine, scope="app")
    with TestClient(app, overrides=[test_database]) as client:
        assert client.get_note(id=7).text == "from the test"
