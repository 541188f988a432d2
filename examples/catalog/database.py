"""Persistence for the catalog: tables, the engine, transactions, and the open database.

SQLAlchemy 2 on asyncio. The URL comes from ``CATALOG_DATABASE_URL`` when the
app starts (default: a SQLite file ``catalog.db`` in the working directory);
``postgresql+asyncpg://user:password@host/db`` works as well (install the
``postgres`` extra). The SQL stays portable: whatever only one database
needs is confined to :mod:`examples.catalog.sqlite` and :class:`Database`. The
tables here are the newest schema; the migrations in
:mod:`examples.catalog.schema` make a database's tables match them.

Prices are stored as integer cents, so every sum is exact on every database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

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
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from examples.catalog import schema, sqlite
from twofold import Code, Error, PageTokens, Provide
from twofold.interceptors.idempotency import Claim, Record, lease_lost, running

T = TypeVar("T")

URL_ENV = schema.URL_ENV
SECRET_ENV = "CATALOG_PAGE_TOKEN_SECRET"
DEFAULT_URL = "sqlite+aiosqlite:///catalog.db"
# Seconds a client is told to wait: a lock held too long clears fast; a
# database that went away takes a restart or a failover to come back.
BUSY_RETRY_AFTER = "1"
OUTAGE_RETRY_AFTER = "5"

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
        # SQLite would give the largest deleted id to the next row: a reused
        # id would let a stored idempotent answer, a cached response or a
        # bookmark name another row. (PostgreSQL's sequences never reuse one.)
        {"sqlite_autoincrement": True},
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

    ``database`` gives the open database (``lambda: app.provided(Database)``):
    the store is an interceptor's, outside any handler, and the database is
    opened only when the App starts. A handler completes its key in its own
    transaction (``within``, an ``AsyncSession``): the answer then commits
    with the product or order it describes, or neither does.
    """

    def __init__(self, database: Callable[[], Database]) -> None:
        self.database = database

    async def reserve(self, claim: Claim, fingerprint: bytes, lease: float) -> Record | None:
        database = self.database()
        if database._sqlite:
            # A key held by a running call, or answered, is told by a read,
            # which takes no write lock: clients polling a running call's key
            # do not queue behind the writes (SQLite has one writer at a time)
            # and slow the call they wait for. Only a claim writes, and checks
            # again. Other databases lock the key's row alone, and would only
            # pay a round trip more for every claim.
            async with database.transaction() as session:
                row = await session.get(IdempotencyRow, (claim.scope, claim.key))
                if row is not None and row.expires_at > time.time():
                    return Record(row.fingerprint, row.response)
        async with database.transaction(write=True) as session:
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
            async with self.database().transaction(write=True) as session:
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
        async with self.database().transaction(write=True) as session:
            await session.execute(delete(IdempotencyRow).where(_held(claim)))


class Database:
    """The open database of a running catalog, and the page tokens it signs."""

    def __init__(self, engine: AsyncEngine, tokens: PageTokens) -> None:
        self.engine = engine
        self.tokens = tokens
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"
        # SQLite's writers in this process, one at a time, first come first
        # served (see transaction()).
        self._writer = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises.

        On SQLite a write transaction starts with BEGIN IMMEDIATE, taking the
        write lock up front (waiting up to the busy timeout for another
        process to finish). A transaction that read first and wrote later
        would instead fail at once with "database is locked" whenever another
        worker had written in between, as SQLite cannot wait for a snapshot
        to become current. Other databases lock rows with SELECT ... FOR UPDATE.

        The writers of one process queue for SQLite's lock on an asyncio lock
        first, in the order they came: SQLite's busy handler polls with
        growing sleeps, so a writer waiting there can lose the lock again and
        again to newer ones, past the busy timeout, while others are served.
        The queue waits no longer than the busy timeout either; between
        processes the busy handler still decides.
        """
        queued = write and self._sqlite
        if queued:
            try:
                async with asyncio.timeout(sqlite.BUSY_TIMEOUT_MS / 1000):
                    await self._writer.acquire()
            except TimeoutError:
                raise _busy_error() from None
        try:
            async with self._transaction(write) as session:
                yield session
        finally:
            if queued:
                self._writer.release()

    @asynccontextmanager
    async def _transaction(self, write: bool) -> AsyncIterator[AsyncSession]:
        try:
            async with self.sessions() as session:
                if self._sqlite:
                    # Not cut short either: a BEGIN cancelled while it waits for
                    # the lock goes on in aiosqlite's thread and may take it.
                    begin = text("BEGIN IMMEDIATE" if write else "BEGIN")
                    await _to_the_end(session.execute(begin))
                yield session
                await _to_the_end(session.commit())
        except (DBAPIError, OSError, PoolTimeout) as exc:
            if self._sqlite and isinstance(exc, OperationalError) and _busy(exc):
                raise _busy_error() from None
            if not _gone(exc, self._sqlite):
                raise  # a fault of ours (bad SQL, a broken constraint): INTERNAL
            # The database cannot be reached or dropped the connection: an
            # outage, not a fault of the call. Nothing was committed unless the
            # commit itself was under way (then, as with any lost answer, a
            # retry with the same idempotency key tells). SQLAlchemy has already
            # invalidated the pool on a disconnect, so the next call opens fresh
            # connections: the catalog recovers when the database does.
            logger.warning("the catalog database is unavailable: %s", schema.reason(exc))
            raise Error(
                Code.UNAVAILABLE,
                "the database is unavailable; retry",
                headers={"Retry-After": OUTAGE_RETRY_AFTER},
            ) from None


# SQLSTATEs that say the server cannot serve now: admin_shutdown,
# crash_shutdown, cannot_connect_now, too_many_connections.
_SERVER_AWAY = frozenset({"57P01", "57P02", "57P03", "53300"})


def _gone(exc: BaseException, sqlite: bool) -> bool:
    """Whether ``exc`` says the database is out of reach, rather than that a statement failed."""
    if isinstance(exc, OSError | PoolTimeout):
        return True  # refused, reset, unreachable; no connection free in time
    if not isinstance(exc, DBAPIError) or isinstance(exc, IntegrityError):
        return False
    if exc.connection_invalidated or isinstance(exc.orig, OSError):
        return True  # the driver's own verdict: the connection is dead
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if isinstance(state, str) and (state.startswith("08") or state in _SERVER_AWAY):
        # Class 08 is a connection exception; the others are a server starting
        # up, shutting down or full. asyncpg's dialect reports some of these
        # (57P03 "the database system is starting up") as a bare DBAPIError.
        return True
    # A server's OperationalError is about the server (shutting down, not
    # accepting connections); SQLite's is as likely a missing table, a fault.
    return not sqlite and isinstance(exc, OperationalError | InterfaceError)


def _busy_error() -> Error:
    # Another writer held the lock past the busy timeout: contention, not a
    # fault, and nothing was written; the client may retry (with its
    # idempotency key, if it sent one).
    return Error(
        Code.UNAVAILABLE, "the database is busy; retry", headers={"Retry-After": BUSY_RETRY_AFTER}
    )


def _busy(exc: OperationalError) -> bool:
    message = str(exc.orig).lower()
    return "database is locked" in message or "database is busy" in message


async def _to_the_end(step: Coroutine[Any, Any, T]) -> T:
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
    result = task.result()
    if cancelled is not None:
        raise cancelled
    return result


def create_engine(url: str) -> AsyncEngine:
    """The engine of ``url`` (:class:`~examples.catalog.schema.Unusable` if it cannot be one)."""
    engine = schema.open_engine(url)
    if engine.dialect.name == "sqlite":
        sqlite.configure(engine)
    return engine


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
async def open_database() -> AsyncIterator[Database]:
    """Open the database when the server starts, close it on exit.

    The catalog's one app-scoped dependency (:data:`DEPENDENCIES`): handlers
    take it as ``db: Provided[Database]``. A SQLite database is migrated to
    the newest schema on the spot; any other must be already (``python -m
    examples.catalog migrate``), or the catalog refuses to start, saying so
    in one line, as it does for a database it cannot reach.
    """
    url = os.environ.get(URL_ENV, DEFAULT_URL)
    try:
        engine = create_engine(url)
    except schema.Unusable as exc:
        raise Error(Code.FAILED_PRECONDITION, str(exc)) from None
    try:
        try:
            await schema.prepare(engine)
        except schema.Unusable as exc:
            raise Error(Code.FAILED_PRECONDITION, str(exc)) from None
        yield Database(engine, PageTokens(page_token_secret(url)))
    finally:
        await engine.dispose()


# What an App serving the catalog's service provides (App(dependencies=...)).
DEPENDENCIES = (Provide(Database, open_database, scope="app"),)
