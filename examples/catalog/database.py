"""Persistence for the catalog: tables, the engine, transactions and the app lifespan.

SQLAlchemy 2 on asyncio. The URL comes from ``CATALOG_DATABASE_URL`` when the
app starts (default: a SQLite file ``catalog.db`` in the working directory);
``postgresql+asyncpg://user:password@host/db`` works as well (install the
``postgres`` extra). The SQL stays portable: whatever only one database
needs is confined to :func:`_prepare_sqlite` and :func:`_create_tables`.

Prices are stored as integer cents, so every sum is exact on every database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    and_,
    delete,
    event,
    inspect,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import ColumnElement

from twofold import App, Code, Error, PageTokens
from twofold.interceptors.idempotency import Claim, Record, lease_lost, running

URL_ENV = "CATALOG_DATABASE_URL"
SECRET_ENV = "CATALOG_PAGE_TOKEN_SECRET"
DEFAULT_URL = "sqlite+aiosqlite:///catalog.db"
BUSY_TIMEOUT_MS = 10_000
# Any constant will do: every process of the catalog takes this lock while it
# creates tables, so that only one of them does.
_SCHEMA_LOCK_KEY = 0x7477_6F66_6F6C_64

logger = logging.getLogger(__name__)

# SQLite makes an INTEGER PRIMARY KEY an autoincrementing alias of the rowid
# only when it is spelled INTEGER; BIGINT elsewhere, so ids up to 2**63 - 1 fit.
_ID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class ProductRow(Base):
    __tablename__ = "products"
    __table_args__ = (
        Index("ix_products_category_id", "category", "id"),
        {"sqlite_autoincrement": True},  # see _never_reuse_ids
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    category: Mapped[str] = mapped_column(String(100))
    tags: Mapped[list[str]] = mapped_column(JSON)
    version: Mapped[str] = mapped_column(String(32), default=lambda: new_version())
    # When it last changed, as Unix time: its Last-Modified.
    updated_at: Mapped[float] = mapped_column(Float, default=time.time)


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_user_id_id", "user_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    user_id: Mapped[int] = mapped_column(_ID, ForeignKey("users.id"))
    # No ON DELETE: a product that has orders cannot be deleted.
    product_id: Mapped[int] = mapped_column(_ID, ForeignKey("products.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(32), default=lambda: new_version())


def new_version() -> str:
    """A row's version, its ETag: new on every write.

    Random rather than a counter, so that a product deleted and created again
    under a reused id can never repeat an ETag a cache still holds.
    """
    return secrets.token_hex(8)


class IdempotencyRow(Base):
    """A key a client sent with a create (twofold.interceptors.idempotency), until it expires."""

    __tablename__ = "idempotency_keys"

    method: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The first answer, as JSON; NULL while the first call runs.
    response: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Which call holds the key (Claim.token): only that one may answer or free it.
    token: Mapped[str] = mapped_column(String(64), default="")
    # Unix time: the end of the running call's lease, then of the answer's life.
    expires_at: Mapped[float] = mapped_column(Float, index=True)


def _held(claim: Claim) -> ColumnElement[bool]:
    """The key's row, if ``claim`` still holds it and it has no answer yet."""
    return and_(
        IdempotencyRow.method == claim.scope,
        IdempotencyRow.key == claim.key,
        IdempotencyRow.token == claim.token,
        IdempotencyRow.response.is_(None),
    )


class SqlIdempotencyStore:
    """Idempotency keys in the catalog's database, shared by every worker.

    A handler completes its key in its own transaction (``within``, an
    ``AsyncSession``): the answer then commits with the product or order it
    describes, or neither does.
    """

    async def reserve(self, claim: Claim, fingerprint: bytes, lease: float) -> Record | None:
        async with current().transaction(write=True) as session:
            # Answers past their ttl, and claims whose process died mid-call.
            await session.execute(
                delete(IdempotencyRow).where(IdempotencyRow.expires_at <= time.time())
            )
            row = await session.get(IdempotencyRow, (claim.scope, claim.key), with_for_update=True)
            if row is not None:
                return Record(row.fingerprint, row.response)
            session.add(IdempotencyRow(method=claim.scope, key=claim.key, token=claim.token,
                                       fingerprint=fingerprint, response=None,
                                       expires_at=lease))  # fmt: skip
            try:
                await session.flush()
            except IntegrityError:
                # Another process claimed it between our read and our insert.
                raise running() from None
            return None

    async def complete(
        self, claim: Claim, response: bytes, expires: float, within: Any = None
    ) -> None:
        if within is None:
            async with current().transaction(write=True) as session:
                await self._complete(session, claim, response, expires)
        elif isinstance(within, AsyncSession):
            await self._complete(within, claim, response, expires)
        else:
            raise TypeError(f"within must be an AsyncSession, not {type(within).__name__}")

    async def _complete(
        self, session: AsyncSession, claim: Claim, response: bytes, expires: float
    ) -> None:
        # A fencing write: it changes the row only while this call holds the
        # key, and locks it until the transaction ends, so that a retry's
        # claim waits for the outcome rather than racing it.
        change = update(IdempotencyRow).where(_held(claim))
        done: Any = await session.execute(change.values(response=response, expires_at=expires))
        if done.rowcount != 1:
            raise lease_lost()

    async def release(self, claim: Claim) -> None:
        async with current().transaction(write=True) as session:
            await session.execute(delete(IdempotencyRow).where(_held(claim)))


class Database:
    """The open database of a running catalog, and the page tokens it signs."""

    def __init__(self, engine: AsyncEngine, tokens: PageTokens) -> None:
        self.engine = engine
        self.tokens = tokens
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises.

        On SQLite a write transaction starts with BEGIN IMMEDIATE, taking the
        write lock up front (waiting up to the busy timeout for another
        process to finish). A transaction that read first and wrote later
        would instead fail at once with "database is locked" whenever another
        worker had written in between, as SQLite cannot wait for a snapshot
        to become current. Other databases lock rows with SELECT ... FOR UPDATE.
        """
        async with self.sessions() as session:
            if self._sqlite:
                await session.execute(text("BEGIN IMMEDIATE" if write else "BEGIN"))
            yield session
            await _to_the_end(session.commit())


async def _to_the_end(step: Coroutine[Any, Any, None]) -> None:
    """Run ``step`` to its end even if the call is cancelled meanwhile, then re-raise that.

    A commit once begun is finished: cut short, the driver may commit all the
    same (aiosqlite's thread goes on; PostgreSQL may have committed before
    the cancel arrives), and the connection would go back to the pool from
    the middle of its reset, logged as "Exception during reset". A call whose
    deadline passes during its commit thus fails with the write committed,
    as one whose answer is lost on the way does; an idempotency key
    completed in the same transaction tells a retry what happened.
    """
    task = asyncio.ensure_future(step)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError as exc:
            cancelled = exc
    task.result()
    if cancelled is not None:
        raise cancelled


_current: Database | None = None


def current() -> Database:
    """The database of the running app."""
    if _current is None:
        # The ASGI server did not run the app's lifespan (startup).
        raise Error(Code.UNAVAILABLE, "the catalog database is not open")
    return _current


def create_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _prepare_sqlite)
    return engine


def _prepare_sqlite(dbapi_connection: Any, _record: Any) -> None:
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


async def _create_tables(engine: AsyncEngine) -> None:
    """Create missing tables, one process at a time.

    With ``--workers N`` every worker starts at once; without a lock two of
    them could both find a table missing and the second CREATE would fail.
    """
    async with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Off while tables are rebuilt (SQLite ignores this inside a
            # transaction); on again before the connection serves a call.
            await conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            await conn.execute(lock, {"key": _SCHEMA_LOCK_KEY})
        try:
            await conn.run_sync(Base.metadata.create_all)
            await _add_missing_columns(conn)
            if sqlite:
                await conn.run_sync(_never_reuse_ids)
            await conn.commit()
        finally:
            if sqlite:
                await conn.exec_driver_sql("PRAGMA foreign_keys = ON")


# Tables whose ids a client sees. SQLite gives a deleted row's id to the next
# insert unless the table is AUTOINCREMENT; a reused id would let a stored
# idempotent answer, a cached response or a bookmark name another row.
# PostgreSQL's identity columns never reuse an id.
_KEYED_TABLES = ("products", "users", "orders")


def _never_reuse_ids(conn: Connection) -> None:
    """Rebuild, once, a table an earlier version created without AUTOINCREMENT.

    SQLite cannot add it to an existing table: the table is copied into a new
    one (SQLite's documented way to change a table), in the schema lock's
    transaction, with foreign keys off so that dropping the old table leaves
    the rows that point at it alone. An id deleted before the upgrade above
    the largest one left may still be given out once.
    """
    for name in _KEYED_TABLES:
        found = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).scalar_one()
        if "AUTOINCREMENT" in found.upper():
            continue
        table = Base.metadata.tables[name]
        ddl = str(CreateTable(table).compile(dialect=conn.dialect)).strip()
        columns = ", ".join(conn.dialect.identifier_preparer.quote(c.name) for c in table.columns)
        # Names from the model above, never from input.
        conn.exec_driver_sql(ddl.replace(f"CREATE TABLE {name} ", f"CREATE TABLE _new_{name} ", 1))
        conn.exec_driver_sql(f"INSERT INTO _new_{name} ({columns}) SELECT {columns} FROM {name}")
        conn.exec_driver_sql(f"DROP TABLE {name}")
        conn.exec_driver_sql(f"ALTER TABLE _new_{name} RENAME TO {name}")
        for index in table.indexes:
            index.create(conn)
        logger.warning("rebuilt the table %s so that its ids are never reused", name)
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"the database has rows whose foreign keys point nowhere: {broken[:5]}")


# Columns added after the first release: their type, and the statement that
# fills them in existing rows. The catalog has no migration tool (it is an
# example, kept to one file); a catalog.db from an earlier version must
# still start, not fail on the first SELECT of a column it lacks.
_ADDED_COLUMNS = {
    # When it last changed: unknown for old rows, so "now" (the first
    # Last-Modified a client sees is then no earlier than the truth).
    ("products", "updated_at"): (
        "FLOAT NOT NULL DEFAULT 0",
        "UPDATE products SET updated_at = :now",
    ),
    # Which call holds a key: none of an earlier version's calls can complete
    # theirs any more, so their unanswered keys are freed now.
    ("idempotency_keys", "token"): (
        "VARCHAR(64) NOT NULL DEFAULT ''",
        "UPDATE idempotency_keys SET expires_at = :now WHERE response IS NULL",
    ),
}


async def _add_missing_columns(conn: AsyncConnection) -> None:
    def missing(sync_conn: Connection) -> list[tuple[str, str]]:
        inspector = inspect(sync_conn)
        return [
            (table, column)
            for table, column in _ADDED_COLUMNS
            if column not in {c["name"] for c in inspector.get_columns(table)}
        ]

    for table, column in await conn.run_sync(missing):
        # Names from the constant above, never from input.
        kind, fill = _ADDED_COLUMNS[table, column]
        await conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        await conn.execute(text(fill), {"now": time.time()})
        logger.warning("added the column %s.%s to an existing database", table, column)


def page_token_secret(url: str) -> bytes:
    """The key page tokens are signed with.

    Production sets CATALOG_PAGE_TOKEN_SECRET (32 random bytes, e.g.
    ``python -c "import secrets; print(secrets.token_urlsafe(32))"``). A
    random per-process default would not do: with ``--workers N`` a token
    issued by one worker must be accepted by the others, so the development
    default is derived from the database URL, which all workers share. It is
    not secret, but a forged token can only point a listing at another
    position of the same keyset, which is no privilege.
    """
    configured = os.environ.get(SECRET_ENV)
    if configured:
        return configured.encode()
    logger.warning("%s is not set: page tokens use a development key", SECRET_ENV)
    return hashlib.sha256(b"twofold catalog development page tokens\x00" + url.encode()).digest()


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    """Open the database when the server starts, create its tables, close it on exit."""
    global _current
    url = os.environ.get(URL_ENV, DEFAULT_URL)
    tokens = PageTokens(page_token_secret(url))
    engine = create_engine(url)
    try:
        await _create_tables(engine)
        _current = Database(engine, tokens)
        yield
    finally:
        _current = None
        await engine.dispose()
