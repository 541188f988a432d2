"""Where the catalogs under test keep their data: a SQLite file each, or a
database each in one throwaway PostgreSQL cluster (tests/e2e/postgres.py).

Tests that start a catalog take the ``database`` fixture (tests/e2e/conftest.py)
and ask it for a URL; those marked ``postgresql`` run once per kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.e2e.postgres import Cluster

KINDS = ("sqlite", "postgresql")
URL_ENV = "CATALOG_DATABASE_URL"


@dataclass(frozen=True)
class Database:
    kind: str
    cluster: Cluster | None = None

    def new_url(self, tmp: Path) -> str:
        """The URL of a new, empty database (a file in ``tmp`` for SQLite)."""
        if self.cluster is None:
            return f"sqlite+aiosqlite:///{tmp / 'catalog.db'}"
        return self.cluster.create_database()

    def env(self, tmp: Path) -> dict[str, str]:
        """The environment of a catalog on a new, empty database."""
        return {URL_ENV: self.new_url(tmp)}
