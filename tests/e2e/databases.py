"""Where the catalogs under test keep their data: a SQLite file each, or a
database each in one throwaway PostgreSQL cluster (tests/e2e/postgres.py).

Tests that start a catalog take the ``database`` fixture (tests/e2e/conftest.py)
and ask it for a URL; those marked ``postgresql`` run once per kind. A new
PostgreSQL database is migrated as an operator would, with
``python -m examples.catalog migrate``: the catalog refuses to serve one
that is not (a SQLite one it migrates itself when it starts).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from examples.catalog.database import create_engine
from tests.e2e.postgres import Cluster
from tests.e2e.server import ROOT

KINDS = ("sqlite", "postgresql")
URL_ENV = "CATALOG_DATABASE_URL"


def migrate(url: str) -> subprocess.CompletedProcess[str]:
    """``python -m examples.catalog migrate`` on ``url``."""
    return subprocess.run(
        [sys.executable, "-m", "examples.catalog", "migrate"],
        cwd=ROOT,
        env={**os.environ, URL_ENV: url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def on(url: str, work: Callable[[Connection], Any], *, commit: bool = False) -> Any:
    """``work(connection)`` on the database at ``url``, from outside the catalog."""

    async def main() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                result = await conn.run_sync(work)
                if commit:
                    await conn.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(main())


def rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """What a query (``:name`` parameters) reads from the database at ``url``."""
    return on(url, lambda conn: [tuple(row) for row in conn.execute(text(sql), params)])


@dataclass(frozen=True)
class Database:
    kind: str
    cluster: Cluster | None = None

    def new_url(self, tmp: Path, *, migrated: bool = True) -> str:
        """The URL of a new database (a file in ``tmp`` for SQLite), with the
        catalog's schema on PostgreSQL unless not ``migrated`` (SQLite: always empty)."""
        if self.cluster is None:
            return f"sqlite+aiosqlite:///{tmp / 'catalog.db'}"
        url = self.cluster.create_database()
        if migrated:
            result = migrate(url)
            assert result.returncode == 0, result.stdout + result.stderr
        return url

    def env(self, tmp: Path) -> dict[str, str]:
        """The environment of a catalog on a new database."""
        return {URL_ENV: self.new_url(tmp)}
