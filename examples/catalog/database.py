"""Persistence for the catalog: tables, the engine, transactions and the app lifespan.

SQLAlchemy 2 on asyncio. The URL comes from ``CATALOG_DATABASE_URL`` when the
app starts (default: a SQLite file ``catalog.db`` in the working directory);
``postgresql+asyncpg://user:password@host/db`` works as well (install the
``postgres`` extra). The SQL stays portable: whatever only one database
needs is confined to :func:`_prepare_sqlite` and :func:`_create_tables`.

Prices are stored as integer cents, so every sum is exact on every database.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
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
    delete,
    event,
    inspect,
    text,
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

from twofold import App, Code, Error, PageTokens
from twofold.interceptors.idempotency import Record

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
    __table_args__ = (Index("ix_products_category_id", "category", "id"),)

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

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_user_id_id", "user_id", "id"),)

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
    expires_at: Mapped[float] = mapped_column(Float, index=True)  # Unix time


class SqlIdempotencyStore:
    """Idempotency keys in the catalog's database, shared by every worker."""

    async def reserve(
        self, scope: str, key: str, fingerprint: bytes, expires: float
    ) -> Record | None:
        async with current().transaction(write=True) as session:
            await session.execute(
                delete(IdempotencyRow).where(IdempotencyRow.expires_at <= time.time())
            )
            row = await session.get(IdempotencyRow, (scope, key), with_for_update=True)
            if row is not None:
                return Record(row.fingerprint, row.response)
            session.add(IdempotencyRow(method=scope, key=key, fingerprint=fingerprint,
                                       response=None, expires_at=expires))  # fmt: skip
            try:
                await session.flush()
            except IntegrityError:
                # Another process claimed it between our read and our insert.
                raise Error(
                    Code.ABORTED, "a request with this idempotency key is still running"
                ) from None
            return None

    async def complete(self, scope: str, key: str, response: bytes) -> None:
        async with current().transaction(write=True) as session:
            row = await session.get(IdempotencyRow, (scope, key))
            if row is not None:
                row.response = response

    async def release(self, scope: str, key: str) -> None:
        async with current().transaction(write=True) as session:
            await session.execute(
                delete(IdempotencyRow).where(
                    IdempotencyRow.method == scope, IdempotencyRow.key == key
                )
            )


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
            await session.commit()


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
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            await conn.execute(lock, {"key": _SCHEMA_LOCK_KEY})
        await conn.run_sync(Base.metadata.create_all)
        await _add_missing_columns(conn)
        await conn.commit()


# Columns added after the first release, with what an existing row gets. The
# catalog has no migration tool (it is an example, kept to one file); a
# catalog.db from an earlier version must still start, not fail on the first
# SELECT of a column it lacks.
_ADDED_COLUMNS = {
    # When it last changed: unknown for old rows, so "now" (the first
    # Last-Modified a client sees is then no earlier than the truth).
    ("products", "updated_at"): "FLOAT NOT NULL DEFAULT 0",
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
        await conn.exec_driver_sql(
            f"ALTER TABLE {table} ADD COLUMN {column} {_ADDED_COLUMNS[table, column]}"
        )
        await conn.execute(text(f"UPDATE {table} SET {column} = :now"), {"now": time.time()})
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
