"""docs/catalog.md: what it shows `migrate` and the catalog print is what they print."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.databases import migrate

ROOT = Path(__file__).resolve().parents[2]
PAGE = " ".join((ROOT / "docs/catalog.md").read_text().split())  # lines joined as the page wraps
SHOWN_URL = "postgresql+asyncpg://catalog:***@db.internal:5432/catalog"


def test_migrate_prints_what_the_page_shows(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    for _run in range(2):  # migrated, then nothing to do
        result = migrate(url)
        assert result.returncode == 0, result.stderr
        assert (
            f"$ python -m examples.catalog migrate {result.stdout.strip()}".replace(url, SHOWN_URL)
            in PAGE
        ), result.stdout
