"""The catalog's write rate limit: a token bucket per caller, shared by every process.

Every call that may write (all but those free of side effects: the reads,
the report, WatchPrices, QuotePrices; an ImportProducts stream is one) takes a token
from its caller's bucket: ``CATALOG_WRITE_RATE`` tokens a second, bursts of
up to ``CATALOG_WRITE_BURST``; one over gets RESOURCE_EXHAUSTED with a
``Retry-After`` (429 on REST). On PostgreSQL the buckets are rows of the
``rate_buckets`` table, taken by one statement each (:class:`SqlBuckets`),
so ``--workers N`` and N hosts grant the rate once between them; on SQLite,
a development database, each process keeps its own in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Float, String, event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from examples.catalog.database import Base, Database
from examples.catalog.schema import CONNECT_TIMEOUT
from twofold import Code, Context, Error, Idempotency
from twofold.core.chain import CallNext
from twofold.interceptors.limits import MemoryBuckets, RateLimit

RATE_ENV = "CATALOG_WRITE_RATE"
BURST_ENV = "CATALOG_WRITE_BURST"
# Generous: a person or a script importing products stays far below them; a
# runaway client loop (or a stolen token) does not.
DEFAULT_RATE = 50.0
DEFAULT_BURST = 500
# How often a process deletes buckets that have been full for a while: a
# full bucket and no bucket mean the same, so idle callers cost no rows.
PRUNE_EVERY = 60.0
MAX_KEY = 300

logger = logging.getLogger(__name__)


class RateBucketRow(Base):
    """One caller's bucket: its tokens at ``updated_at`` (Unix time, the database's clock).

    UNLOGGED on PostgreSQL (see migration 0003): a crash forgets the buckets.
    """

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(MAX_KEY), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


# One statement, so one round trip and atomic on its row: a new bucket starts
# full less this token; an existing one is refilled for the time since it was
# last taken from, capped at the burst ($2), and taken from only if that
# leaves a whole token (the WHERE of DO UPDATE: otherwise no row is returned
# and nothing changes). Time is the database's, so hosts whose clocks
# disagree still share one bucket correctly.
_REFILLED = "least($2, b.tokens + greatest(0, excluded.updated_at - b.updated_at) * $3)"
TAKE = f"""
INSERT INTO rate_buckets AS b (key, tokens, updated_at)
VALUES ($1, $2::float8 - 1, extract(epoch FROM clock_timestamp())::float8)
ON CONFLICT (key) DO UPDATE
SET tokens = {_REFILLED} - 1, updated_at = greatest(b.updated_at, excluded.updated_at)
WHERE {_REFILLED} >= 1
RETURNING b.tokens
"""
PRUNE = """
DELETE FROM rate_buckets WHERE updated_at < extract(epoch FROM clock_timestamp())::float8 - $1
"""
# Connections of a process's bucket pool: a take holds one for one round trip.
POOL_SIZE = 4


class SqlBuckets:
    """Token buckets in the catalog's PostgreSQL database, which every process shares.

    Measured on this machine (``python -m bench.shared_state``, docs/deploy.md):
    a take is one round trip on a small asyncpg pool of its own, a fraction
    of a millisecond, against about 1 µs in memory; writes alone pay it,
    and each spends milliseconds in its own transaction. Through
    SQLAlchemy's pool a take cost several times more (checkout, reset).
    PostgreSQL rather than Redis, although Redis takes faster: the catalog
    already depends on PostgreSQL, so the limit adds no component to run,
    secure and fail over, and a limit a little faster than the write it
    guards is fast enough. On any other database (SQLite) each process
    keeps its buckets in memory.

    A database that cannot be reached refuses the call with UNAVAILABLE:
    the limit never fails open.
    """

    def __init__(self, database: Callable[[], Database]) -> None:
        self._database = database  # the App's, once it has started
        self.memory = MemoryBuckets()
        self._engine: AsyncEngine | None = None
        self._pool: Any = None  # an asyncpg.Pool, for self._engine
        self._opening = asyncio.Lock()
        self._pruned = time.monotonic()

    async def take(self, key: str, rate: float, burst: float) -> float:
        engine = self._database().engine
        if engine.dialect.name != "postgresql":
            return await self.memory.take(key, rate, burst)
        if len(key) > MAX_KEY:  # a subject of any length, in the column's bound
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        try:
            pool = await self._pool_of(engine)
            async with pool.acquire() as conn:
                granted = await conn.fetchrow(TAKE, key, burst, rate) is not None
                if time.monotonic() - self._pruned > PRUNE_EVERY:
                    self._pruned = time.monotonic()
                    await conn.execute(PRUNE, burst / rate + PRUNE_EVERY)
        except Exception as exc:
            if isinstance(exc, Error):
                raise
            # The database went away (or refused): no way to tell a token was left.
            logger.warning("the write rate limit cannot be checked: %s", exc)
            raise Error(
                Code.UNAVAILABLE,
                "the write rate limit cannot be checked: the database is unavailable",
                headers={"Retry-After": "1"},
            ) from None
        # Refused, the bucket had less than a token: one arrives within 1/rate.
        return 0.0 if granted else 1 / rate

    async def _pool_of(self, engine: AsyncEngine) -> Any:
        """A pool of asyncpg connections to ``engine``'s database, closed with the engine."""
        if self._engine is engine and self._pool is not None:
            return self._pool
        async with self._opening:  # one pool, however many calls come first
            if self._engine is not engine or self._pool is None:
                await self._open(engine)
        return self._pool

    async def _open(self, engine: AsyncEngine) -> None:
        import asyncpg  # type: ignore[import-untyped]  # only a PostgreSQL catalog gets here

        if self._pool is not None:
            self._pool.terminate()
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._engine = engine
        # min_size=0: a pool with a floor reconnects in the background while the
        # database is away and logs a traceback for each attempt; without one,
        # a take that finds no connection opens one and reports its own failure.
        self._pool = await asyncpg.create_pool(
            dsn, min_size=0, max_size=POOL_SIZE, timeout=CONNECT_TIMEOUT
        )
        event.listen(engine.sync_engine, "engine_disposed", self._disposed)

    def _disposed(self, engine: Any) -> None:
        pool, self._pool, self._engine = self._pool, None, None
        if pool is not None:
            pool.terminate()


class WriteRateLimit(RateLimit):
    """:class:`~twofold.RateLimit` on the calls that may write; reads pass untaken."""

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        if ctx.method.idempotency is Idempotency.NO_SIDE_EFFECTS:
            return await call_next(request, ctx)
        return await super().__call__(ctx, request, call_next)


def write_rate_limit(database: Callable[[], Database]) -> WriteRateLimit:
    """The limit the environment configures (see the module's docstring), on ``database``."""
    rate = _setting(RATE_ENV, DEFAULT_RATE)
    burst = _setting(BURST_ENV, DEFAULT_BURST)
    if burst < 1 or burst != int(burst):
        raise ValueError(f"{BURST_ENV} must be a whole number of at least 1, not {burst:g}")
    return WriteRateLimit(rate, int(burst), buckets=SqlBuckets(database))


def _setting(name: str, default: float) -> float:
    raw = os.environ.get(name) or ""
    try:
        value = float(raw) if raw.strip() else default
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive number, not {raw!r}")
    return value
