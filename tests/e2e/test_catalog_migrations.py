"""The catalog's schema migrations, on SQLite and PostgreSQL, through its commands.

``python -m examples.catalog migrate`` brings a database to the newest
revision and does nothing when run again; the tables it makes are those the
models describe. At start, the catalog migrates a SQLite database itself
and refuses a PostgreSQL one that is behind, naming the command; a database
migrated by a newer version, or one it cannot reach, is refused in one line.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from examples.catalog import schema
from examples.catalog.database import Base
from tests.e2e import databases
from tests.e2e.databases import URL_ENV, migrate, on
from tests.e2e.postgres import Cluster
from tests.e2e.server import ROOT, free_port, start

COMMAND = "python -m examples.catalog migrate"


def tables(conn: Connection) -> str:
    """Every table's columns, then its indexes, unique constraints and foreign keys
    in any order, as reflected (types by name)."""
    inspector = inspect(conn)

    def unordered(items: list[Any]) -> list[str]:
        return sorted(json.dumps(item, default=str, sort_keys=True) for item in items)

    reflected = {
        name: (
            inspector.get_columns(name),
            unordered(inspector.get_indexes(name)),
            unordered(inspector.get_unique_constraints(name)),
            unordered(inspector.get_foreign_keys(name)),
        )
        for name in sorted(inspector.get_table_names())
    }
    return json.dumps(reflected, default=str, sort_keys=True)


def differences(conn: Connection) -> list[Any]:
    """What Alembic's autogenerate would change to make the tables match the models."""
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def previous() -> str:
    """The revision before the newest."""
    down = schema.scripts().get_revision(schema.head()).down_revision
    assert isinstance(down, str)
    return down


def upgrade_to_previous(conn: Connection) -> None:
    command.upgrade(schema.alembic_config(conn), previous())


def serve_refused(url: str, tmp: Path) -> str:
    """Start the catalog on ``url``, which must refuse to start; what it printed."""
    log = tmp / "refused.log"
    command = [sys.executable, "-m", "twofold", "serve", "examples.catalog:app"]
    command += ["--port", str(free_port()), "--no-grpc"]
    with log.open("wb") as out:
        process = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, URL_ENV: url},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
    output = log.read_text()
    assert process.returncode == 3, output  # uvicorn's "startup failed"
    assert "Traceback" not in output, output
    return output


def error_lines(output: str) -> list[str]:
    """The lines the server logged as errors, but for its final "startup failed"."""
    return [
        line
        for line in output.splitlines()
        if line.startswith("ERROR") and "Application startup failed" not in line
    ]


@pytest.mark.postgresql
def test_migrate_makes_the_models_tables_and_run_again_does_nothing(
    database: databases.Database, tmp_path: Path
) -> None:
    url = database.new_url(tmp_path, migrated=False)
    first = migrate(url)
    assert first.returncode == 0, first.stderr
    assert f"migrated from no schema to schema revision {schema.head()}" in first.stdout
    made = on(url, tables)
    assert on(url, differences) == []  # exactly what the models describe
    second = migrate(url)
    assert second.returncode == 0, second.stderr
    assert f"at schema revision {schema.head()} already: nothing to do" in second.stdout
    assert on(url, tables) == made
    assert on(url, revision) == schema.head()

    def downgrade(conn: Connection) -> None:
        command.downgrade(schema.alembic_config(conn), "base")

    on(url, downgrade, commit=True)  # every revision's downgrade() undoes its upgrade()
    assert on(url, lambda conn: inspect(conn).get_table_names()) == ["alembic_version"]
    assert migrate(url).returncode == 0
    assert on(url, tables) == made


@pytest.mark.postgresql
def test_a_schema_from_a_newer_version_is_refused(
    database: databases.Database, tmp_path: Path
) -> None:
    url = database.new_url(tmp_path, migrated=False)
    assert migrate(url).returncode == 0
    newer = "f0f0f0f0f0f0"

    def from_the_future(conn: Connection) -> None:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newer})

    on(url, from_the_future, commit=True)
    result = migrate(url)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr  # one line
    assert f"at schema revision {newer}, which this version of the catalog does not know" in (
        result.stderr
    )
    assert "refusing to migrate it" in result.stderr
    assert on(url, revision) == newer  # untouched
    [line] = error_lines(serve_refused(url, tmp_path))
    assert "does not know" in line, line
    # SQLite is migrated at start: refused as a migration would be.
    assert f"refusing to {'migrate' if database.kind == 'sqlite' else 'serve'} it" in line


def test_sqlite_is_migrated_when_the_catalog_starts(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    server = start("examples.catalog:app", tmp_path, {URL_ENV: url}, "--no-grpc")
    server.stop()
    assert on(url, revision) == schema.head()
    assert on(url, differences) == []


def test_postgresql_behind_refuses_to_start_and_names_the_command(
    postgres_cluster: Cluster, tmp_path: Path
) -> None:
    url = postgres_cluster.create_database()  # empty: no schema at all
    [line] = error_lines(serve_refused(url, tmp_path))
    assert "has no catalog schema yet" in line and f"run `{COMMAND}`" in line, line
    assert on(url, tables) == "{}"  # nothing was created behind the operator's back
    on(url, upgrade_to_previous, commit=True)
    [line] = error_lines(serve_refused(url, tmp_path))
    assert f"is at schema revision {previous()}, behind {schema.head()}" in line, line
    assert f"run `{COMMAND}`" in line, line
    assert on(url, revision) == previous()
    assert migrate(url).returncode == 0
    server = start("examples.catalog:app", tmp_path, {URL_ENV: url}, "--no-grpc")
    server.stop()


@pytest.mark.parametrize(
    ("wrong", "says"),
    [
        ("port", "cannot connect to the catalog database"),
        ("silent", "no answer within 5 s"),
        ("database", 'database "no_such_catalog" does not exist'),
        ("user", 'role "no_such_user" does not exist'),
        ("driver", "its driver is not installed"),
        ("garbage", f"{URL_ENV} is not a database URL"),
    ],
)
def test_a_wrong_postgresql_url_fails_at_start_in_one_line(
    postgres_cluster: Cluster, tmp_path: Path, wrong: str, says: str
) -> None:
    port = postgres_cluster.port
    # A host that takes the connection and never answers (asyncpg's own
    # timeout is a minute; the catalog's is 5 s).
    silent = socket.create_server(("127.0.0.1", 0), backlog=16)
    url = {
        "silent": f"postgresql+asyncpg://twofold:secret@127.0.0.1:{silent.getsockname()[1]}/c",
        "port": f"postgresql+asyncpg://twofold:secret@127.0.0.1:{free_port()}/catalog",
        "database": f"postgresql+asyncpg://twofold:secret@127.0.0.1:{port}/no_such_catalog",
        "user": f"postgresql+asyncpg://no_such_user:secret@127.0.0.1:{port}/postgres",
        "driver": f"postgresql://twofold:secret@127.0.0.1:{port}/postgres",
        "garbage": "postgres:secret@127.0.0.1/catalog",
    }[wrong]
    with silent, ThreadPoolExecutor(1) as pool:
        # Two processes, each waiting on the same host: side by side.
        refused = pool.submit(serve_refused, url, tmp_path)
        result = migrate(url)
        output = refused.result()
    [line] = error_lines(output)
    assert says in line, output
    assert "secret" not in output  # the password is never printed
    assert result.returncode == 1 and says in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "secret" not in result.stderr, result.stderr


@pytest.mark.postgresql
def test_migrating_from_revision_0001_keeps_the_rows(
    database: databases.Database, tmp_path: Path
) -> None:
    # 0002 is the revision that rebuilds tables; those after it come along.
    url = database.new_url(tmp_path, migrated=False)
    on(url, lambda conn: command.upgrade(schema.alembic_config(conn), "0001"), commit=True)

    def fill(conn: Connection) -> None:
        conn.execute(text(
            "INSERT INTO products (name, price_cents, category, tags, version, updated_at) "
            "VALUES ('Kept', 100, 'Books', '[]', 'v1', 0), ('Gone', 1, 'B', '[]', 'v1', 0)"
        ))  # fmt: skip
        conn.execute(text("INSERT INTO users (name, email) VALUES ('A', 'a@b.co')"))
        conn.execute(text(
            "INSERT INTO orders (user_id, product_id, quantity, total_cents, status, version) "
            "VALUES (1, 1, 1, 100, 'open', 'v1')"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO idempotency_keys (method, key, fingerprint, response, expires_at) "
            "VALUES ('CreateProduct', 'running', :f, NULL, 1e12), "
            "('CreateProduct', 'answered', :f, :r, 1e12)"
        ), {"f": b"f" * 32, "r": b"{}"})  # fmt: skip

    on(url, fill, commit=True)
    result = migrate(url)
    assert result.returncode == 0, result.stderr
    assert f"migrated from 0001 to schema revision {schema.head()}" in result.stdout

    def read(conn: Connection) -> Any:
        keys = "SELECT key, token, expires_at < 1e12 FROM idempotency_keys ORDER BY key"
        return (
            conn.execute(text("SELECT id, name FROM products ORDER BY id")).all(),
            conn.execute(text("SELECT product_id FROM orders")).all(),
            conn.execute(text(keys)).all(),
        )

    products, orders, keys = on(url, read)
    assert products == [(1, "Kept"), (2, "Gone")] and orders == [(1,)]
    # A key an earlier version's call still held is freed; an answered one is kept.
    assert [tuple(k) for k in keys] == [("answered", "", False), ("running", "", True)]
    assert on(url, differences) == []

    def new_product_id(conn: Connection) -> int:
        conn.execute(text("DELETE FROM products WHERE id = 2"))
        insert = (
            "INSERT INTO products (name, price_cents, category, tags, version, updated_at) "
            "VALUES ('New', 1, 'B', '[]', 'v', 0) RETURNING id"
        )
        return int(conn.execute(text(insert)).scalar_one())

    # Not 2, the id of the product just deleted: not even SQLite reuses it now.
    assert on(url, new_product_id, commit=True) == 3
