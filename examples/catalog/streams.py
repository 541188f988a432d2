"""The catalog's streams: WatchPrices (server streaming) and ImportProducts (client streaming).

WatchPrices tells each watcher about every price change, optionally in one
category, whichever process made it: a change is recorded as a
``price_changes`` row in the transaction of the new price (a ``before_flush``
hook), and each process with watchers reads the rows it has not seen and
hands them to its watchers through in-process queues. It reads when told
to, on PostgreSQL: the recording transaction sends a NOTIFY, delivered when
it commits, to a connection each such process keeps LISTENing
(:class:`Wakeups`); on SQLite, every :data:`POLL_INTERVAL`. The table stays
the source of truth, so a notification lost with its connection loses no
change. Why ids are read in commit order is in :func:`_record_price_changes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from sqlalchemy import BigInteger, Float, String, delete, event, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, Session, mapped_column

from examples.catalog.database import _ID, Base, Database, ProductRow
from examples.catalog.models import NewProduct
from examples.catalog.service import add_product, money, service
from twofold import Code, Error, Idempotency, Provided, lifetime, public, requires, resumable

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.2  # seconds between two looks at price_changes on SQLite, while anyone watches
# On PostgreSQL, seconds between two looks when no notification came: a net
# under a listening connection that broke without saying so.
QUIET_POLL = 5.0
# The NOTIFY channel of new price_changes rows.
CHANNEL = "catalog_price_changes"
KEEP_FOR = 3600.0  # seconds a recorded change is kept: watchers only see what is new
_QUEUE_SIZE = 1000  # changes a slow watcher may fall behind before it is cut off
# Any constant will do, as long as no other lock of the catalog uses it.
_PRICE_CHANGES_LOCK_KEY = 0x7072_6963_6573
LIFETIME_ENV = "CATALOG_WATCH_LIFETIME"
MAX_ID = 2**63 - 1  # a BIGINT: a larger after_id is refused, not sent to the database
# Seconds a WatchPrices stream lasts at most before it ends and its client
# reconnects: long enough that reconnections cost nothing, short enough that
# an abandoned connection a proxy keeps open does not hold its slot for long.
WATCH_LIFETIME = float(os.environ.get(LIFETIME_ENV) or 600)


class PriceChangeRow(Base):
    __tablename__ = "price_changes"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100))
    old_price_cents: Mapped[int] = mapped_column(BigInteger)
    new_price_cents: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[float] = mapped_column(Float)


class PriceChange(msgspec.Struct, kw_only=True):
    """A product's price changed."""

    product_id: int
    name: str
    category: str
    old_price: Decimal
    new_price: Decimal
    changed_at: datetime
    # Last, as its field number (7) is: a client generated without the lock agrees.
    id: int = 0
    """The change's number: later changes have larger ones (a stream's event id)."""


class ImportProductsRequest(msgspec.Struct, kw_only=True):
    """One product of an ImportProducts stream."""

    product: NewProduct


class ImportFailure(msgspec.Struct, kw_only=True):
    """A product ImportProducts did not create, and why."""

    index: int
    name: str
    reason: str


class ImportSummary(msgspec.Struct, kw_only=True):
    """What ImportProducts did: how many products it created, and which it did not."""

    created: int
    failed: list[ImportFailure] = []


# -- recording changes ------------------------------------------------------------


@event.listens_for(Session, "before_flush")
def _record_price_changes(session: Session, _context: Any, _instances: Any) -> None:
    """A price_changes row for every product whose price this flush changes.

    Written in the same transaction as the price, so a change is recorded if
    and only if it happened, whichever handler (update or replace) made it.

    Watchers read "ids above the last one seen", which is only right if
    changes commit in id order. SQLite has one writer at a time, so they do;
    PostgreSQL hands out ids when rows are inserted, and two transactions may
    commit the other way round, so there a transaction that records a change
    first takes a lock it holds until it commits
    (:data:`_PRICE_CHANGES_LOCK_KEY`): changes are written one transaction
    at a time, from their insert to their commit. It also queues a NOTIFY,
    which PostgreSQL delivers when (and only if) the transaction commits.
    """
    locked = False
    for obj in list(session.dirty):
        if not isinstance(obj, ProductRow):
            continue
        history = inspect(obj).attrs.price_cents.history
        if history.deleted and history.added and history.deleted[0] != history.added[0]:
            if not locked and session.get_bind().dialect.name == "postgresql":
                # Before the insert takes an id, until the commit (see the docstring).
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                session.execute(lock, {"key": _PRICE_CHANGES_LOCK_KEY})
                session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
                locked = True
            session.add(
                PriceChangeRow(
                    product_id=obj.id,
                    name=obj.name,
                    category=obj.category,
                    old_price_cents=history.deleted[0],
                    new_price_cents=history.added[0],
                    changed_at=time.time(),
                )
            )


def _change(row: PriceChangeRow) -> PriceChange:
    return PriceChange(
        id=row.id,
        product_id=row.product_id,
        name=row.name,
        category=row.category,
        old_price=money(row.old_price_cents),
        new_price=money(row.new_price_cents),
        changed_at=datetime.fromtimestamp(row.changed_at, UTC),
    )


# -- broadcasting them -------------------------------------------------------------


class PriceWatch:
    """This process's watchers, and the one poller that feeds them while there are any."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[PriceChange | None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._last = 0

    @property
    def seen(self) -> int:
        """The id of the last change handed to the queues: a queue subscribed
        now gets every change after it, and none before."""
        return self._last

    @contextlib.asynccontextmanager
    async def subscribe(self, db: Database) -> AsyncIterator[asyncio.Queue[PriceChange | None]]:
        """A queue of the changes in ``db`` from now on; None in it means "you fell behind"."""
        if self._poller is None:
            async with db.transaction() as session:
                self._last = await session.scalar(select(func.max(PriceChangeRow.id))) or 0
            if self._poller is None:
                self._poller = asyncio.ensure_future(self._poll(db))
        queue: asyncio.Queue[PriceChange | None] = asyncio.Queue(_QUEUE_SIZE)
        self.queues.add(queue)
        try:
            yield queue
        finally:
            self.queues.discard(queue)
            if not self.queues and self._poller is not None:
                poller, self._poller = self._poller, None
                poller.cancel()
                # Wait for it: its LISTEN connection goes back before the
                # database it came from may be closed.
                await asyncio.gather(poller, return_exceptions=True)

    async def _poll(self, db: Database) -> None:
        pruned = time.monotonic()
        failing = False
        wakeups = Wakeups(db)
        try:
            while True:
                await wakeups.wait()
                try:
                    rows = await self._new_rows(db)
                    if time.monotonic() - pruned > KEEP_FOR / 10:
                        pruned = time.monotonic()
                        async with db.transaction(write=True) as session:
                            old = PriceChangeRow.changed_at < time.time() - KEEP_FOR
                            await session.execute(delete(PriceChangeRow).where(old))
                except Error as exc:  # the database is away: watchers wait for it to return
                    if not failing:
                        logger.warning("reading price_changes paused: %s", exc.message)
                    failing = True
                    continue
                except Exception:  # the next look tries again; watchers keep waiting
                    logger.exception("reading price_changes failed")
                    continue
                if failing:
                    logger.warning("reading price_changes resumed")
                    failing = False
                self._hand_out(rows)
        finally:
            await wakeups.close()

    async def _new_rows(self, db: Database) -> list[PriceChangeRow]:
        async with db.transaction() as session:
            query = select(PriceChangeRow).where(PriceChangeRow.id > self._last)
            return list((await session.scalars(query.order_by(PriceChangeRow.id))).all())

    def _hand_out(self, rows: list[PriceChangeRow]) -> None:
        for row in rows:
            self._last = row.id
            change = _change(row)
            for queue in list(self.queues):
                try:
                    queue.put_nowait(change)
                except asyncio.QueueFull:  # too slow: end its stream, not everyone's
                    self.queues.discard(queue)
                    queue.get_nowait()
                    queue.put_nowait(None)


class Wakeups:
    """When the poller looks at price_changes: every :data:`POLL_INTERVAL` on
    SQLite; on PostgreSQL, when a NOTIFY on :data:`CHANNEL` says a change
    committed (or after :data:`QUIET_POLL` without one).

    The LISTEN holds one pooled connection of the process, while anyone in
    it watches. A connection that breaks (the database restarted, say) is
    replaced at the next wake-up, which also looks at the table at once,
    catching up with whatever committed meanwhile; while it cannot be,
    the poller falls back to polling.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._notified = asyncio.Event()
        self._connection: AsyncConnection | None = None
        self._listening: Any = None  # the asyncpg connection, while it listens

    async def wait(self) -> None:
        engine = self._db.engine
        if engine.dialect.name != "postgresql":
            await asyncio.sleep(POLL_INTERVAL)
            return
        if self._listening is None or self._listening.is_closed():
            await self.close()
            try:
                await self._listen(engine)
            except Exception as exc:  # the database is away: poll until it is back
                logger.warning("cannot LISTEN for price changes (%s): polling", exc)
                await asyncio.sleep(POLL_INTERVAL)
            return  # and look now: changes may have committed before the LISTEN
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(QUIET_POLL):
                await self._notified.wait()
        self._notified.clear()

    async def _listen(self, engine: AsyncEngine) -> None:
        self._connection = await engine.connect()
        raw = await self._connection.get_raw_connection()
        listening: Any = raw.driver_connection  # asyncpg's
        await listening.add_listener(CHANNEL, self._notify)
        listening.add_termination_listener(self._terminated)
        self._listening = listening

    def _notify(self, *_args: Any) -> None:
        self._notified.set()

    def _terminated(self, *_args: Any) -> None:
        self._notified.set()  # wake up and find the connection closed

    async def close(self) -> None:
        """UNLISTEN (asyncpg's remove_listener sends it) and give the connection back."""
        connection, self._connection = self._connection, None
        listening, self._listening = self._listening, None
        if connection is None:
            return
        try:
            if listening is not None and not listening.is_closed():
                await listening.remove_listener(CHANNEL, self._notify)
                listening.remove_termination_listener(self._terminated)
            else:  # broken: out of the pool, not back into it
                await connection.invalidate()
        except Exception:
            logger.debug("closing the price changes listener failed", exc_info=True)
            await connection.invalidate()
        finally:
            await connection.close()


WATCH = PriceWatch()


async def _changes(db: Database, after: int, upto: int, category: str) -> list[PriceChange]:
    """The recorded changes with ids in (after, upto], oldest first."""
    async with db.transaction() as session:
        query = select(PriceChangeRow).where(PriceChangeRow.id > after, PriceChangeRow.id <= upto)
        if category:
            query = query.where(PriceChangeRow.category == category)
        rows = (await session.scalars(query.order_by(PriceChangeRow.id))).all()
    return [_change(row) for row in rows]


@service.procedure(http=("GET", "/products:watchPrices"), idempotency=Idempotency.NO_SIDE_EFFECTS)
@public
@lifetime(WATCH_LIFETIME)
@resumable("id", after="after_id")
async def watch_prices(
    db: Provided[Database],
    category: str = "",
    after_id: Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)] = 0,
) -> AsyncIterator[PriceChange]:
    """Every price change from now on, in one category or (empty) in all.

    Changes are seen within a fraction of a second, whichever process made
    them. The stream has no deadline; it ends without an error when the
    client closes it or after at most ten minutes (as the server is
    configured), and the client reconnects to go on watching. With
    ``after_id`` (the ``id`` of the last change a client saw; an
    EventSource sends it by itself as ``Last-Event-ID``) the changes made
    since then come first, as far back as the catalog keeps them (an hour).
    0, the default, replays nothing: ids start at 1.
    """
    async with WATCH.subscribe(db) as queue:
        # Read before any await: the queue gets every change after this one.
        seen = WATCH.seen
        if after_id:
            for missed in await _changes(db, after_id, seen, category):
                yield missed
        while True:
            change = await queue.get()
            if change is None:
                raise Error(Code.RESOURCE_EXHAUSTED, "the watcher fell too far behind")
            if change.id <= after_id:
                continue  # sent already: another worker had polled further
            if not category or change.category == category:
                yield change


@service.procedure
@requires("products:write")
async def import_products(
    db: Provided[Database], requests: AsyncIterator[ImportProductsRequest]
) -> ImportSummary:
    """Create many products from one stream; each is created or fails on its own.

    A product the catalog refuses (one that repeats an earlier product of
    the same import, same name and category, say) is listed in ``failed``
    with the reason and the others are still created; a message that is not
    a valid NewProduct (a price with fractions of a cent, say, which its
    published pattern refuses) ends the call with INVALID_ARGUMENT, the
    products before it created.
    """
    created, failed = 0, []
    index = 0
    seen: dict[tuple[str, str], int] = {}
    async for request in requests:
        product = request.product
        try:
            first = seen.setdefault((product.category, product.name), index)
            if first != index:
                # An import file listing a product twice: the copy is not added.
                raise Error.invalid("product", f"repeats product {first} of this import")
            await add_product(db, product)
            created += 1
        except Error as exc:
            failed.append(ImportFailure(index=index, name=product.name, reason=exc.message))
        index += 1
    return ImportSummary(created=created, failed=failed)
