"""The catalog's SQLite connections: how each is set up, and how it closes.

What only SQLite needs of a connection is here; :mod:`examples.catalog.database`
calls :func:`configure` on a SQLite engine. The connections are aiosqlite's
(one thread per connection running the sqlite3 one), which the catalog's
cancelled calls (a deadline, a client gone) put through SQLAlchemy's
terminate path: :class:`_Connection` and :func:`_stop_once` are there for it.
"""

from __future__ import annotations

import logging
import sqlite3
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

# How long a write waits for the database's write lock (held by another
# worker's transaction) before it is answered UNAVAILABLE.
BUSY_TIMEOUT_MS = 10_000

logger = logging.getLogger(__name__)


def configure(engine: AsyncEngine) -> None:
    """Make ``engine``'s new connections the catalog's (:class:`_Connection`,
    set up by :func:`_prepare`)."""
    event.listen(engine.sync_engine, "do_connect", _factory)
    event.listen(engine.sync_engine, "connect", _prepare)


class _Connection(sqlite3.Connection):
    """A sqlite3 connection that ends its transaction before it closes.

    SQLAlchemy terminates a connection whose call was cancelled mid-statement
    (a deadline, a client gone), and such a call can leave a cursor stepped to
    its first row, still referenced from the traceback. SQLite cannot close a
    connection that has unfinished statements: ``sqlite3_close_v2`` leaves it
    a "zombie" that keeps its open transaction, and so the write lock every
    worker sharing the file waits for, until the last of those statements is
    garbage-collected. Rolling back first ends the transaction whatever still
    refers to it. Closing uncommitted discards the transaction anyway.
    """

    def close(self) -> None:
        try:
            ending = self.in_transaction
        except sqlite3.ProgrammingError:
            ending = False  # closed already: closing again does nothing, as sqlite3's does
        if ending:
            try:
                self.rollback()
            except sqlite3.Error as exc:
                logger.warning("rolling back a SQLite connection before closing it: %s", exc)
        super().close()


def _factory(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
    # aiosqlite hands its keyword arguments on to sqlite3.connect.
    params["factory"] = _Connection


def _prepare(dbapi_connection: Any, record: Any) -> None:
    # Stop the sqlite3 driver from emitting BEGIN on its own (it would do so
    # only before the first write, leaving earlier reads outside the
    # transaction); Database.transaction emits it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Several worker processes share the file: wait for a lock rather than
    # fail, and let readers proceed while one process writes (WAL).
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    # Other databases always enforce foreign keys; SQLite only when asked.
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()
    _stop_once(record.driver_connection)


def _stop_once(driver: Any) -> None:
    """Make aiosqlite's ``Connection.stop`` stop ``driver``'s thread once.

    A call cancelled twice over (its deadline, then its client gone) has
    SQLAlchemy stop aiosqlite's thread while its graceful close is under way;
    the close then asks for a second stop, which the stopped thread never
    answers, and the close waits for ever: a task and a connection lost each
    time. The second stop now gets the first one's answer. The connection is
    held weakly, so that it is still freed as soon as it is let go.
    """
    stop = type(driver).stop
    held = weakref.ref(driver)
    stopped: list[Any] = []

    def once() -> Any:
        if not stopped:
            stopped.append(stop(held()))
        return stopped[0]

    driver.stop = once
