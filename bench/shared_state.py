"""``python -m bench.shared_state``: what sharing the catalog's state across processes costs.

A token taken from a rate-limit bucket in memory, in PostgreSQL (the
catalog's :class:`~examples.catalog.ratelimits.SqlBuckets`, one statement)
and in Redis (the usual Lua script, when ``redis-server`` and the ``redis``
package are installed), one at a time and 16 at once on one key; and how
long a committed price change takes to reach a WatchPrices watcher in the
same process: PostgreSQL's NOTIFY against SQLite's poll. Printed as
markdown, never asserted; the databases are throwaway ones on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.e2e import postgres
from tests.e2e.server import free_port

REPO = Path(__file__).resolve().parents[1]
SERIAL = 2000
CONCURRENT = 16
RATE, BURST = 1e9, 10**9  # never refused: the cost of a take, not of a refusal

# Redis' classic token bucket: one script, atomic on the server.
REDIS_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or t
tokens = math.min(burst, tokens + math.max(0, t - at) * rate)
if tokens < 1 then return 0 end
redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'at', t)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return 1
"""


async def timed(take: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(µs per take one at a time, takes a second with CONCURRENT at once)."""
    for _ in range(100):  # warm-up: connections opened, statements prepared
        await take()
    start = time.perf_counter()
    for _ in range(SERIAL):
        await take()
    serial = (time.perf_counter() - start) / SERIAL * 1e6

    async def worker() -> None:
        for _ in range(SERIAL // CONCURRENT):
            await take()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENT)))
    return serial, SERIAL // CONCURRENT * CONCURRENT / (time.perf_counter() - start)


def migrate(url: str) -> None:
    env = {**os.environ, "CATALOG_DATABASE_URL": url}
    command = [sys.executable, "-m", "examples.catalog", "migrate"]
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)


async def buckets(url: str | None) -> dict[str, tuple[float, float]]:
    from examples.catalog.database import open_database
    from examples.catalog.ratelimits import SqlBuckets
    from twofold.interceptors.limits import MemoryBuckets

    memory = MemoryBuckets()
    found = {"memory (one process)": await timed(lambda: memory.take("k", RATE, BURST))}
    if url is not None:
        os.environ["CATALOG_DATABASE_URL"] = url
        async with open_database() as database:
            shared = SqlBuckets(lambda: database)
            found["PostgreSQL, one UPSERT"] = await timed(lambda: shared.take("k", RATE, BURST))
            pool = shared._pool  # the same connections: a bare round trip for scale

            async def select_1() -> None:
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")

            found["PostgreSQL, SELECT 1 (a bare round trip)"] = await timed(select_1)
    return found


async def redis_buckets(port: int) -> tuple[tuple[float, float], tuple[float, float]]:
    import redis.asyncio as redis

    client: Any = redis.Redis(port=port, max_connections=CONCURRENT * 2)
    try:
        script = client.register_script(REDIS_TAKE)
        take = await timed(lambda: script(keys=["k"], args=[RATE, BURST]))
        return take, await timed(client.ping)
    finally:
        await client.aclose()


async def watch_latency(url: str, changes: int = 20) -> list[float]:
    """Seconds from a price change's commit to its arrival in a watcher's queue."""
    from examples.catalog.database import ProductRow, open_database
    from examples.catalog.streams import WATCH

    os.environ["CATALOG_DATABASE_URL"] = url
    seen: list[float] = []
    async with open_database() as db:
        async with db.transaction(write=True) as session:
            row = ProductRow(name="Watched", price_cents=100, category="c", tags=[])
            session.add(row)
        async with WATCH.subscribe(db) as queue:
            await asyncio.sleep(0.5)  # the poller is listening
            for price in range(200, 200 + changes):
                async with db.transaction(write=True) as session:
                    product = await session.get(ProductRow, row.id, with_for_update=True)
                    assert product is not None
                    product.price_cents = price
                committed = time.perf_counter()
                await asyncio.wait_for(queue.get(), 30)
                seen.append(time.perf_counter() - committed)
                await asyncio.sleep(0.05)  # not in step with the poll
    return seen


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="twofold-bench-shared-"))
    directory = postgres.bindir()
    cluster = postgres.start(directory) if directory is not None else None
    redis_server = None
    try:
        url = None
        if cluster is not None:
            url = cluster.create_database("bench")
            migrate(url)
        rows = asyncio.run(buckets(url))
        if shutil.which("redis-server"):
            try:
                import redis  # noqa: F401
            except ImportError:
                print("(Redis left out: pip install redis)")
            else:
                port = free_port()
                redis_server = subprocess.Popen(
                    ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                    stdout=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(0.5)
                take, ping = asyncio.run(redis_buckets(port))
                rows["Redis, one Lua script"] = take
                rows["Redis, PING (a bare round trip)"] = ping
        else:
            print("(Redis left out: apt-get install redis-server)")
        print("| bucket store | µs per take, one at a time | takes/s, 16 at once on one key |")
        print("|---|---|---|")
        for name, (serial, concurrent) in rows.items():
            print(f"| {name} | {serial:,.1f} | {concurrent:,.0f} |")
        print()
        print("| WatchPrices, commit to watcher | p50 ms | max ms |")
        print("|---|---|---|")
        sqlite = asyncio.run(watch_latency(f"sqlite+aiosqlite:///{tmp / 'watch.db'}"))
        kinds = [("SQLite, polled every 0.2 s", sqlite)]
        if cluster is not None:
            pg = cluster.create_database("watch")
            migrate(pg)
            kinds.append(("PostgreSQL, LISTEN/NOTIFY", asyncio.run(watch_latency(pg))))
        for name, seconds in kinds:
            print(f"| {name} | {statistics.median(seconds) * 1e3:.1f} | {max(seconds) * 1e3:.1f} |")
    finally:
        if redis_server is not None:
            redis_server.terminate()
            redis_server.wait()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
