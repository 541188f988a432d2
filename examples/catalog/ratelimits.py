"""The catalog's write rate limit: a token bucket per caller, shared by every process.

Every call that may write (all but the reads and WatchPrices) takes a token
from its caller's bucket: ``CATALOG_WRITE_RATE`` tokens a second, bursts of
up to ``CATALOG_WRITE_BURST``; one over gets RESOURCE_EXHAUSTED with a
``Retry-After`` (429 on REST). On PostgreSQL the buckets are rows of the
``rate_buckets`` table, taken by one statement each (:class:`SqlBuckets`),
so ``--workers N`` and N hosts grant the rate once between them; on SQLite,
a development database, each process keeps its own in memory.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from sqlalchemy import Float, String, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from examples.catalog.database import Base, current
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


class RateBucketRow(Base):
    """One caller's bucket: its tokens at ``updated_at`` (Unix time, the database's clock)."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(MAX_KEY), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float, index=True)


# One statement, so one round trip and atomic on its row: a new bucket starts
# full less this token; an existing one is refilled for the time since it was
# last taken from, capped at the burst, and taken from only if that leaves a
# whole token (the WHERE of DO UPDATE: otherwise no row is returned and
# nothing changes). Time is the database's, so hosts whose clocks disagree
# still share one bucket correctly.
_REFILLED = """least(CAST(:burst AS float8),
      b.tokens + greatest(0, excluded.updated_at - b.updated_at) * CAST(:rate AS float8))"""
_TAKE = text(f"""
INSERT INTO rate_buckets AS b (key, tokens, updated_at)
VALUES (:key, CAST(:burst AS float8) - 1, extract(epoch FROM clock_timestamp())::float8)
ON CONFLICT (key) DO UPDATE
SET tokens = {_REFILLED} - 1,
    updated_at = greatest(b.updated_at, excluded.updated_at)
WHERE {_REFILLED} >= 1
RETURNING b.tokens
""")
_PRUNE = text("""
DELETE FROM rate_buckets
WHERE updated_at < extract(epoch FROM clock_timestamp())::float8 - :full_after
""")


class SqlBuckets:
    """Token buckets in the catalog's PostgreSQL database, which every process shares.

    Measured on this machine (docs/deploy.md): a take costs one round trip,
    about 0.1 to 0.2 ms on a local PostgreSQL, against about 1 µs in memory;
    paid by writes only, which spend milliseconds in their own transaction.
    PostgreSQL rather than Redis: the catalog already depends on it, so the
    limit adds no component to run, secure and fail over, and a limit no
    faster than the write it guards is fast enough. On any other database
    (SQLite) each process keeps its own buckets in memory.

    A database that cannot be reached refuses the call with UNAVAILABLE:
    the limit never fails open.
    """

    def __init__(self) -> None:
        self.memory = MemoryBuckets()
        self._engine: AsyncEngine | None = None
        self._autocommit: AsyncEngine | None = None
        self._pruned = time.monotonic()

    async def take(self, key: str, rate: float, burst: float) -> float:
        engine = current().engine
        if engine.dialect.name != "postgresql":
            return await self.memory.take(key, rate, burst)
        if self._engine is not engine:
            # One statement needs no BEGIN and COMMIT around it: two round trips saved.
            self._engine = engine
            self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        assert self._autocommit is not None
        if len(key) > MAX_KEY:  # a subject of any length, in the column's bound
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        try:
            async with self._autocommit.connect() as conn:
                taken: Any = await conn.execute(_TAKE, {"key": key, "rate": rate, "burst": burst})
                granted = taken.first() is not None
                if time.monotonic() - self._pruned > PRUNE_EVERY:
                    self._pruned = time.monotonic()
                    await conn.execute(_PRUNE, {"full_after": burst / rate + PRUNE_EVERY})
        except (OSError, DBAPIError):
            raise Error(
                Code.UNAVAILABLE,
                "the write rate limit cannot be checked: the database is unavailable",
                headers={"Retry-After": "1"},
            ) from None
        # Refused, the bucket had less than a token: one arrives within 1/rate.
        return 0.0 if granted else 1 / rate


class WriteRateLimit(RateLimit):
    """:class:`~twofold.RateLimit` on the calls that may write; reads pass untaken."""

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        if ctx.method.idempotency is Idempotency.NO_SIDE_EFFECTS:
            return await call_next(request, ctx)
        return await super().__call__(ctx, request, call_next)


def write_rate_limit() -> WriteRateLimit:
    """The limit the environment configures (see the module's docstring)."""
    rate = _setting(RATE_ENV, DEFAULT_RATE)
    burst = _setting(BURST_ENV, DEFAULT_BURST)
    if burst < 1 or burst != int(burst):
        raise ValueError(f"{BURST_ENV} must be a whole number of at least 1, not {burst:g}")
    return WriteRateLimit(rate, int(burst), buckets=SqlBuckets())


def _setting(name: str, default: float) -> float:
    raw = os.environ.get(name) or ""
    try:
        value = float(raw) if raw.strip() else default
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive number, not {raw!r}")
    return value
