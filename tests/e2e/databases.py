"""Where the catalogs under test keep their data: a SQLite file each, or a
database each in one throwaway PostgreSQL cluster (tests/e2e/postgres.py).

Tests that start a catalog take the ``database`` fixture (tests/e2e/conftest.py)
and ask it for a URL; those marked ``postgresql`` run once per kind. A new
PostgreSQL database is migrated as an operator would, with
``python -m examples.catalog migrate``: the catalog refuses to serve one
that is not (a SQLite one it migrates itself when it starts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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
