"""The catalog's schema: which revision a database is at, and bringing it to the newest.

The revisions are Alembic scripts in ``examples/catalog/migrations/versions``;
``python -m examples.catalog migrate`` applies those a database lacks. When
the catalog starts (:func:`prepare`), a SQLite database, the development
default, is migrated on the spot; any other database must already be at the
newest revision, or the catalog refuses to start and names the command: on
a shared database, changing the schema is a step of its own, run once by
whoever deploys, not a side effect of whichever process happens to start
first.

Whatever is wrong with a database is raised as :class:`Unusable`, whose
message says, in one line, what and what to do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).with_name("migrations")
COMMAND = "python -m examples.catalog migrate"
URL_ENV = "CATALOG_DATABASE_URL"
URL_EXAMPLES = "sqlite+aiosqlite:///catalog.db or postgresql+asyncpg://user:password@host/database"
# Any constant will do: a migration holds this lock until it commits, so that
# of two processes migrating the same PostgreSQL database, one waits.
_MIGRATION_LOCK_KEY = 0x7477_6F66_6F6C_64


# Seconds asyncpg may take to open a connection (its own default is 60): a
# PostgreSQL host that does not answer makes start-up fail, and a call
# UNAVAILABLE, within seconds rather than a minute.
CONNECT_TIMEOUT = 5.0


class Unusable(Exception):
    """A database the catalog cannot serve or migrate as it is; the message says why."""


def open_engine(url: str) -> AsyncEngine:
    """An engine for ``url``, or :class:`Unusable` saying what is wrong with the URL.

    Nothing is connected yet: a database that cannot be reached is found out
    by the first connection, in :func:`revision` or :func:`upgrade`.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise Unusable(f"{URL_ENV} is not a database URL; examples: {URL_EXAMPLES}") from None
    named = f"{URL_ENV} {parsed.render_as_string(hide_password=True)}"
    try:
        if parsed.get_driver_name() == "asyncpg":
            return create_async_engine(parsed, connect_args={"timeout": CONNECT_TIMEOUT})
        return create_async_engine(parsed)
    except ImportError as exc:
        raise Unusable(
            f"{named}: its driver is not installed ({exc}); the catalog's are aiosqlite and "
            "asyncpg (pip install 'twofold[example,postgres]')"
        ) from None
    except (ArgumentError, InvalidRequestError, ValueError) as exc:
        needs = f"the catalog needs an asyncio driver: {URL_EXAMPLES}"
        raise Unusable(f"{named}: {str(exc).rstrip('.')}; {needs}") from None


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the catalog's scripts, run on ``connection``
    (e.g. ``alembic.command.downgrade(alembic_config(conn), "base")``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # env.py runs the migrations on this connection, in its transaction.
    config.attributes["connection"] = connection
    return config


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision: the schema this version of the catalog works with."""
    newest = scripts().get_current_head()
    assert newest is not None, "the catalog has no migrations"
    return newest


def describe(engine: AsyncEngine) -> str:
    """The database's URL without its password, to name it in a message."""
    return engine.url.render_as_string(hide_password=True)


async def revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None if it has none (empty, or older than migrations)."""
    async with _connect(engine) as conn:
        return await conn.run_sync(_revision)


async def upgrade(engine: AsyncEngine) -> tuple[str | None, str]:
    """Bring the database to the newest revision; (where it was, where it is).

    All in one transaction, which holds a lock until it commits, so that when
    several processes migrate at once (``--workers N`` on SQLite, or two
    deploys) one does it and the others find nothing left to do. A database
    at a revision this catalog does not know (a newer version of it migrated
    it) is refused: there is no way down from a revision one has no script for.
    """
    async with _connect(engine) as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Off while a revision rebuilds a table (SQLite's way to change
            # one: copy, drop, rename), so that dropping the old table leaves
            # the rows that point at it alone; checked before the commit
            # instead. SQLite ignores the pragma inside a transaction.
            await conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            await conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, up front
        elif conn.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            await conn.execute(lock, {"key": _MIGRATION_LOCK_KEY})
        try:
            before = await conn.run_sync(_revision)
            newest = head()
            if before != newest:
                _refuse_unknown(engine, before, "migrate it")
                await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
                if sqlite:
                    await _check_foreign_keys(engine, conn)
            await conn.commit()
        finally:
            if sqlite:  # before the connection goes back to the pool
                await conn.rollback()
                await conn.exec_driver_sql("PRAGMA foreign_keys = ON")
    return before, newest


async def check(engine: AsyncEngine) -> None:
    """Raise :class:`Unusable` unless the database is at the newest revision."""
    current, newest = await revision(engine), head()
    if current == newest:
        return
    _refuse_unknown(engine, current, "serve it")
    if current is None:
        state = "has no catalog schema yet (or one from before migrations)"
    else:
        state = f"is at schema revision {current}, behind {newest}"
    raise Unusable(
        f"the catalog database {describe(engine)} {state}: "
        f"run `{COMMAND}` with the same CATALOG_DATABASE_URL, then start the catalog"
    )


async def prepare(engine: AsyncEngine) -> None:
    """At start: migrate a SQLite database, require any other to be at the newest revision."""
    if engine.dialect.name == "sqlite":
        await upgrade(engine)
    else:
        await check(engine)


async def _check_foreign_keys(engine: AsyncEngine, conn: AsyncConnection) -> None:
    broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
    if broken:
        raise Unusable(
            f"the catalog database {describe(engine)} has rows whose foreign keys point "
            f"nowhere, left as they were: {[tuple(row) for row in broken[:5]]}"
        )


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _refuse_unknown(engine: AsyncEngine, current: str | None, what: str) -> None:
    if current is None or current in {script.revision for script in scripts().walk_revisions()}:
        return
    raise Unusable(
        f"the catalog database {describe(engine)} is at schema revision {current}, which this "
        f"version of the catalog does not know (a newer version migrated it): refusing to {what}"
    )


@asynccontextmanager
async def _connect(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.connect()``, with a failure to connect as :class:`Unusable`, in one line."""
    try:
        conn = await engine.connect()
    except TimeoutError:  # an OSError, but with nothing to say for itself
        raise Unusable(
            f"cannot connect to the catalog database {describe(engine)}: "
            f"no answer within {CONNECT_TIMEOUT:g} s"
        ) from None
    except (OSError, DBAPIError) as exc:
        raise Unusable(
            f"cannot connect to the catalog database {describe(engine)}: {reason(exc)}"
        ) from None
    try:
        yield conn
    finally:
        await conn.close()


def reason(exc: BaseException) -> str:
    """What the driver said, on one line, without SQLAlchemy's SQL and links."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__
