"""``python -m examples.catalog migrate``: bring the catalog's database to the newest schema.

The database is the one ``CATALOG_DATABASE_URL`` names, as for serving. Run
it before starting a new version of the catalog on PostgreSQL (a SQLite
database is migrated when the catalog starts); run again, it does nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from examples.catalog import schema
from examples.catalog.database import DEFAULT_URL, URL_ENV, create_engine


async def migrate(url: str) -> str:
    """Migrate the database at ``url``; what was done, in one line."""
    engine = create_engine(url)
    try:
        before, after = await schema.upgrade(engine)
    finally:
        await engine.dispose()
    where = schema.describe(engine)
    if before == after:
        return f"{where} is at schema revision {after} already: nothing to do"
    return f"{where}: migrated from {before or 'no schema'} to schema revision {after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.catalog", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "migrate", help=f"bring the database of {URL_ENV} to the newest schema revision"
    )
    parser.parse_args(argv)
    try:
        print(asyncio.run(migrate(os.environ.get(URL_ENV, DEFAULT_URL))))
    except schema.Unusable as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
