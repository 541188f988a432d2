"""Idempotency keys name the call that holds them; SQLite never reuses a deleted row's id.

Revision ID: 0002
Revises: 0001

- ``idempotency_keys.token``: which call holds a key, so that only that call
  may answer or free it. None of an earlier version's calls can complete
  theirs, so keys still unanswered are freed (expired) now.
- ``products``, ``users``, ``orders`` become AUTOINCREMENT on SQLite, which
  otherwise gives the largest deleted id to the next row: a reused id would
  let a stored idempotent answer, a cached response or a bookmark name
  another row. SQLite cannot change that on a table in place, so each is
  copied into a new one (Alembic's batch mode; the migration runs with
  foreign keys off, see examples/catalog/schema.py). An id deleted before
  this migration above the largest one left may still be given out once.
  PostgreSQL's sequences never reuse an id: nothing to do there.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

KEYED_TABLES = ("products", "users", "orders")


def upgrade() -> None:
    bind = op.get_bind()
    columns = {c["name"] for c in sa.inspect(bind).get_columns("idempotency_keys")}
    # A database from before migrations may have it already (0001 adopts those).
    if "token" not in columns:
        op.add_column(
            "idempotency_keys",
            sa.Column("token", sa.String(64), nullable=False, server_default=""),
        )
        unanswered = sa.text("UPDATE idempotency_keys SET expires_at = :now WHERE response IS NULL")
        op.execute(unanswered.bindparams(now=time.time()))
    if bind.dialect.name == "sqlite":
        for name in KEYED_TABLES:
            if not _autoincrement(bind, name):
                _recreate(name, autoincrement=True)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in KEYED_TABLES:
            _recreate(name, autoincrement=False)
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("token")


def _autoincrement(bind: sa.engine.Connection, name: str) -> bool:
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).scalar_one()
    return "AUTOINCREMENT" in str(sql).upper()


def _recreate(name: str, *, autoincrement: bool) -> None:
    kwargs = {"sqlite_autoincrement": autoincrement}
    with op.batch_alter_table(name, recreate="always", table_kwargs=kwargs):
        pass
