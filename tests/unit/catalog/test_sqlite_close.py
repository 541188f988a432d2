"""A SQLite connection that SQLAlchemy throws away mid-transaction frees the write lock.

A call cancelled while it reads (a deadline, a client gone) leaves its cursor
mid-statement, and SQLAlchemy terminates the connection. SQLite's close then
keeps the connection's transaction, and with it the write lock every worker
needs, for as long as anything still refers to that cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from examples.catalog.database import create_engine


def _writable(path: Path) -> bool:
    other = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        other.close()


def test_a_terminated_connection_with_a_cursor_mid_read_frees_the_write_lock(
    tmp_path: Path,
) -> None:
    asyncio.run(_terminate_mid_read(tmp_path / "catalog.db"))


def test_a_connection_terminated_twice_over_is_closed_all_the_same(tmp_path: Path) -> None:
    asyncio.run(_terminate_twice(tmp_path / "catalog.db"))


def test_a_connection_let_go_is_freed_without_the_garbage_collector(tmp_path: Path) -> None:
    # What the catalog hooks onto aiosqlite's connection must not keep it alive
    # in a cycle, its thread's objects with it, until a collection comes round.
    gc.disable()
    try:
        held, thread = asyncio.run(_let_go(tmp_path / "catalog.db"))
        # aiosqlite's thread holds the connection's last call until it has
        # ended, a moment after the close answered: a busy machine's moment.
        thread.join(10)
        assert held() is None
    finally:
        gc.enable()


async def _let_go(path: Path) -> tuple[weakref.ref[Any], threading.Thread]:
    async with _opened(path) as (_, driver):
        held = weakref.ref(driver)
        thread = driver._thread
        del driver
    return held, thread


def test_a_terminated_connection_keeps_nothing_it_did_not_commit(tmp_path: Path) -> None:
    asyncio.run(_terminate_mid_write(tmp_path / "catalog.db"))


@contextlib.asynccontextmanager
async def _opened(path: Path) -> AsyncIterator[tuple[AsyncConnection, Any]]:
    """A connection of the catalog's engine, and aiosqlite's under it, with a table ``t``."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.execute("CREATE TABLE t (x INTEGER)")
            yield connection, driver
    finally:
        await engine.dispose()


async def _terminate_mid_read(path: Path) -> None:
    async with _opened(path) as (connection, driver):
        await driver.execute("BEGIN IMMEDIATE")
        await driver.execute("INSERT INTO t VALUES (1), (2)")
        # Stepped to its first row and no further, as a cancelled fetch leaves it;
        # still referenced, as a traceback would keep it.
        cursor = await driver.execute("SELECT x FROM t")
        assert not _writable(path)
        await connection.invalidate()  # SQLAlchemy's terminate, as after a cancellation
        assert _writable(path)
        del cursor


async def _terminate_mid_write(path: Path) -> None:
    async with _opened(path) as (connection, driver):
        await driver.execute("BEGIN IMMEDIATE")
        await driver.execute("INSERT INTO t VALUES (1)")
        await connection.invalidate()
    reader = sqlite3.connect(path)
    try:
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
    finally:
        reader.close()


# Keeps a connection's thread busy for a while: about a second here.
_SLOW = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
    "SELECT count(*) FROM n"
)


async def _terminate_twice(path: Path) -> None:
    """The path of a call cancelled twice (its deadline, then its client gone):
    the second cancellation cuts SQLAlchemy's graceful close short, which
    then stops aiosqlite's thread as well. The close already queued still
    runs, after the statement in progress, on a connection with a cursor
    mid-read."""
    async with _opened(path) as (connection, driver):
        await driver.execute("BEGIN IMMEDIATE")
        cursor = await driver.execute("SELECT count(*) FROM t")
        slow = asyncio.ensure_future(driver.execute(_SLOW))
        await asyncio.sleep(0)
        terminate = asyncio.ensure_future(connection.invalidate())
        await asyncio.sleep(0)  # into the terminate's wait for the graceful close
        terminate.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await terminate
        await slow
        deadline = time.monotonic() + 10
        while not _writable(path):
            assert time.monotonic() < deadline, "the write lock was never freed"
            await asyncio.sleep(0.05)
        # And the graceful close, told to stop aiosqlite's thread a second
        # time, ends too: nothing is left waiting for ever.
        while _others():
            assert time.monotonic() < deadline, f"still waiting: {_others()}"
            await asyncio.sleep(0.05)
        del cursor


def _others() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}
