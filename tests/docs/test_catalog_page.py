"""docs/catalog.md: what it shows `migrate` and the catalog print is what they print."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command

from examples.catalog import schema
from examples.catalog.database import create_engine
from tests.e2e.databases import migrate

ROOT = Path(__file__).resolve().parents[2]
PAGE = " ".join((ROOT / "docs/catalog.md").read_text().split())  # lines joined as the page wraps
SHOWN_URL = "postgresql+asyncpg://catalog:***@db.internal:5432/catalog"


def test_migrate_prints_what_the_page_shows(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    for _run in range(2):  # migrated, then nothing to do
        result = migrate(url)
        assert result.returncode == 0, result.stderr
        shown = f"$ python -m examples.catalog migrate {result.stdout.strip()}"
        assert shown.replace(url, SHOWN_URL) in PAGE, result.stdout


def test_a_database_behind_is_refused_as_the_page_shows(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"

    async def refusal() -> str:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(lambda c: command.upgrade(schema.alembic_config(c), "0001"))
            with pytest.raises(schema.Unusable) as refused:
                await schema.check(engine)
        finally:
            await engine.dispose()
        return str(refused.value)

    message = asyncio.run(refusal())
    assert f"ERROR: {message.replace(url, SHOWN_URL)}" in PAGE, message
