"""The catalog's write rate limit in one process (examples/catalog/ratelimits.py): on
SQLite its buckets are in memory; the shared one is tests/e2e/test_write_rate_limit.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from examples.catalog import service
from examples.catalog.database import DEPENDENCIES, Database
from examples.catalog.ratelimits import BURST_ENV, RATE_ENV, SqlBuckets, WriteRateLimit
from examples.catalog.ratelimits import write_rate_limit as from_environment
from examples.catalog.security import authentication
from tests.asgi import running
from tests.tokens import AUTHORIZATION
from twofold import App, Deadlines

PRODUCT = {"name": "Limited", "price": "1.00", "category": "Books", "tags": []}


def test_writes_past_the_burst_are_refused_and_reads_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATALOG_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    # A token an hour: none comes back during the test.
    limit = WriteRateLimit(1 / 3600, 3, buckets=SqlBuckets(lambda: app.provided(Database)))
    app = App(
        service, dependencies=DEPENDENCIES, interceptors=[authentication(), Deadlines(), limit]
    )

    async def main() -> None:
        async with running(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://t", headers=AUTHORIZATION
            ) as client:
                created = [await client.post("/products", json=PRODUCT) for _ in range(3)]
                assert [r.status_code for r in created] == [201] * 3
                refused = await client.post("/products", json=PRODUCT)
                assert refused.status_code == 429, refused.text
                assert refused.json()["code"] == "resource_exhausted"
                assert int(refused.headers["retry-after"]) >= 1
                call = {"jsonrpc": "2.0", "id": 1, "method": "DeleteProduct",
                        "params": {"id": 1}}  # fmt: skip
                answer = (await client.post("/jsonrpc", json=call)).json()
                assert answer["error"]["data"]["code"] == "resource_exhausted"
                assert (await client.get("/products/1")).status_code == 200
                assert (await client.get("/products")).status_code == 200

    asyncio.run(main())


@pytest.mark.parametrize(
    ("name", "value"),
    [(RATE_ENV, "fast"), (RATE_ENV, "0"), (RATE_ENV, "-1"), (RATE_ENV, "inf"),
     (RATE_ENV, "nan"), (BURST_ENV, "0"), (BURST_ENV, "2.5"), (BURST_ENV, "many")],
)  # fmt: skip
def test_a_bad_setting_is_refused_by_name(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        from_environment(_no_database)


def test_unset_settings_are_the_generous_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RATE_ENV)
    monkeypatch.delenv(BURST_ENV)
    limit = from_environment(_no_database)
    assert (limit.rate, limit.burst) == (50.0, 500.0)


def _no_database() -> Database:
    raise AssertionError("the settings are read before any database is asked for")
