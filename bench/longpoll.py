"""``python -m bench.longpoll``: how long a held long poll takes to answer a price change.

The example catalog (``twofold serve examples.catalog:app``, every
interceptor of the example on) on SQLite and on a throwaway PostgreSQL
(tests/e2e/postgres.py). Each round holds one ``GET
/products:watchPrices?wait=30&after_id=CURSOR``, lets it wait a moment, then
``PATCH``es a price; the figure is the time from the PATCH's answer (the
change committed) to the poll's answer (the change delivered), and the
PATCH's own time beside it. Printed as a markdown table, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.shared_state import migrate
from tests.e2e import postgres
from tests.e2e.server import start
from twofold.interceptors.bearer import DEVELOPMENT_SECRET, issue

TOKEN = issue(DEVELOPMENT_SECRET, "bench", ["products:write"], expires_in=3600)
WATCH = "/products:watchPrices"
DATABASE_URL = "CATALOG_DATABASE_URL"


async def rounds(url: str, count: int) -> tuple[list[float], list[float]]:
    """Seconds from each PATCH's answer to the held poll's, and each PATCH's own."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    category = f"bench-{uuid.uuid4().hex[:8]}"
    delivered: list[float] = []
    patched: list[float] = []
    async with (
        httpx.AsyncClient(base_url=url, headers=auth, timeout=60) as writer,
        httpx.AsyncClient(base_url=url, timeout=60) as poller,
    ):
        new = {"name": "B", "price": "1.00", "category": category}
        product = (await writer.post("/products", json=new)).json()["id"]
        cursor = "0"
        for n in range(count):
            params: dict[str, str | int] = {"category": category, "wait": 30, "after_id": cursor}
            poll = asyncio.ensure_future(poller.get(WATCH, params=params))
            await asyncio.sleep(0.3)  # held by now
            started = time.perf_counter()
            r = await writer.patch(f"/products/{product}", json={"price": f"{2 + n}.00"})
            committed = time.perf_counter()
            assert r.status_code == 200, r.text
            answer = await poll
            delivered.append(time.perf_counter() - committed)
            patched.append(committed - started)
            assert answer.status_code == 200, answer.text
            cursor = answer.json()["cursor"]
    return delivered, patched


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.longpoll", description=__doc__)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--no-postgres", action="store_true")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="twofold-bench-longpoll-"))
    kinds = [("SQLite", f"sqlite+aiosqlite:///{tmp / 'catalog.db'}")]
    directory = None if args.no_postgres else postgres.bindir()
    cluster = postgres.start(directory) if directory is not None else None
    try:
        if cluster is not None:
            url = cluster.create_database("longpoll")
            migrate(url)
            kinds.append(("PostgreSQL", url))
        print("| catalog on | PATCH answered → poll answered, p50 ms | max ms | PATCH p50 ms |")
        print("|---|---|---|---|")
        for name, url in kinds:
            where = tmp / name
            where.mkdir()
            server = start("examples.catalog:app", where, {DATABASE_URL: url}, "--no-grpc")
            try:
                delivered, patched = asyncio.run(rounds(server.url, args.rounds))
            finally:
                server.stop()
            print(
                f"| {name} | {statistics.median(delivered) * 1e3:.1f} "
                f"| {max(delivered) * 1e3:.1f} | {statistics.median(patched) * 1e3:.1f} |"
            )
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
