"""The write rate limit's token buckets, one row per caller (examples/catalog/ratelimits.py).

Revision ID: 0003
Revises: 0002

Only PostgreSQL uses the table (SQLite's processes keep their buckets in
memory), but every database gets it, so that a schema is the same wherever
it runs. Its rows are disposable, so on PostgreSQL it is UNLOGGED: a take
writes no WAL and waits for no flush, and a crash empties the table, which
only gives every caller a full bucket. No index but the key's, so that an
update of a bucket stays a heap-only (HOT) one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        prefixes=["UNLOGGED"] if postgresql else [],
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
