"""WatchPrices' record of changes (examples/catalog/streams.py) on each database.

Watchers are fed by polling ``price_changes`` for ids above the last one
seen, which is only right if no change can commit after one with a higher
id has been seen. On PostgreSQL ids come from a sequence when a row is
inserted, not when it commits, so the catalog has to keep them in order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from examples.catalog import streams
from examples.catalog.database import URL_ENV, Database, ProductRow, open_database
from examples.catalog.streams import POLL_INTERVAL, WATCH, PriceChange
from tests.e2e import databases
from tests.e2e.postgres import Cluster

pytestmark = pytest.mark.postgresql


async def change_price(db: Database, product_id: int, cents: int) -> None:
    async with db.transaction(write=True) as session:
        row = await session.get(ProductRow, product_id, with_for_update=True)
        assert row is not None
        row.price_cents = cents


async def watch_two_overlapping_changes() -> tuple[list[int], list[PriceChange]]:
    async with open_database() as db:
        async with db.transaction(write=True) as session:
            rows = [ProductRow(name=n, price_cents=100, category="c", tags=[]) for n in "AB"]
            session.add_all(rows)
        ids = [row.id for row in rows]
        async with WATCH.subscribe(db) as queue:
            async with db.transaction(write=True) as early:
                row = await early.get(ProductRow, ids[0], with_for_update=True)
                assert row is not None
                row.price_cents = 200
                await early.flush()  # its price_changes row is inserted: the lower id
                late = asyncio.create_task(change_price(db, ids[1], 300))
                # Time for the later change to commit first and be polled, if
                # nothing holds it back.
                await asyncio.sleep(POLL_INTERVAL * 3)
            await late
            changes = [await asyncio.wait_for(queue.get(), 10) for _ in range(2)]
    return ids, [change for change in changes if change is not None]


def test_a_change_that_commits_late_still_reaches_watchers(
    database: databases.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_ENV, database.new_url(tmp_path))
    ids, changes = asyncio.run(watch_two_overlapping_changes())
    assert [change.product_id for change in changes] == ids
    assert [str(change.new_price) for change in changes] == ["2.00", "3.00"]


async def watch_across_a_lost_listener() -> list[PriceChange | None]:
    """Two changes, with the LISTEN connection killed from outside between them."""
    async with open_database() as db:
        async with db.transaction(write=True) as session:
            row = ProductRow(name="Watched", price_cents=100, category="c", tags=[])
            session.add(row)
        async with WATCH.subscribe(db) as queue:
            await asyncio.sleep(POLL_INTERVAL * 3)  # listening, and past its first read
            await change_price(db, row.id, 200)
            first = await asyncio.wait_for(queue.get(), 30)
            kill = (
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
            )
            async with db.transaction(write=True) as session:
                assert (await session.execute(text(kill))).all() == [(True,)]
            await asyncio.sleep(POLL_INTERVAL * 3)  # listening again
            await change_price(db, row.id, 300)
            second = await asyncio.wait_for(queue.get(), 30)
    return [first, second]


def test_on_postgresql_a_notification_wakes_the_watchers_and_survives_a_lost_connection(
    postgres_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No look at the table but when notified: only a NOTIFY can deliver these.
    monkeypatch.setattr(streams, "QUIET_POLL", 3600.0)
    database = databases.Database("postgresql", postgres_cluster)
    monkeypatch.setenv(URL_ENV, database.new_url(tmp_path))
    changes = asyncio.run(watch_across_a_lost_listener())
    assert [str(c.new_price) if c else None for c in changes] == ["2.00", "3.00"]
