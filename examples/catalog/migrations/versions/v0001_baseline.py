"""The catalog's tables: products, users, orders, idempotency keys, price changes.

Revision ID: 0001
Revises: (none)

Also adopts a database created before the catalog had migrations, when it
made its tables on start: what such a database has is kept, what it lacks
(tables and indexes added since, and products.updated_at) is added, and
from then on it is a database like any other.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# SQLite makes an INTEGER PRIMARY KEY an alias of the rowid only when it is
# spelled INTEGER; BIGINT elsewhere, so ids up to 2**63 - 1 fit.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

INDEXES = {
    "ix_products_category_id": ("products", ["category", "id"]),
    "ix_orders_user_id_id": ("orders", ["user_id", "id"]),
    "ix_orders_product_id": ("orders", ["product_id"]),
    "ix_idempotency_keys_expires_at": ("idempotency_keys", ["expires_at"]),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    if "products" not in existing:
        op.create_table(
            "products",
            sa.Column("id", ID, primary_key=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("price_cents", sa.BigInteger(), nullable=False),
            sa.Column("category", sa.String(100), nullable=False),
            sa.Column("tags", sa.JSON(), nullable=False),
            sa.Column("version", sa.String(32), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False),
        )
    elif "updated_at" not in {c["name"] for c in inspector.get_columns("products")}:
        # When each product last changed is unknown: now, so that the first
        # Last-Modified a client sees is no earlier than the truth.
        op.add_column(
            "products",
            sa.Column("updated_at", sa.Float(), nullable=False, server_default="0"),
        )
        op.execute(sa.text("UPDATE products SET updated_at = :now").bindparams(now=time.time()))
    if "users" not in existing:
        op.create_table(
            "users",
            sa.Column("id", ID, primary_key=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("email", sa.String(254), nullable=False),
            sa.UniqueConstraint("email"),
        )
    if "orders" not in existing:
        op.create_table(
            "orders",
            sa.Column("id", ID, primary_key=True),
            sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
            # No ON DELETE: a product that has orders cannot be deleted.
            sa.Column("product_id", ID, sa.ForeignKey("products.id"), nullable=False),
            sa.Column("quantity", sa.Integer(), nullable=False),
            sa.Column("total_cents", sa.BigInteger(), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("version", sa.String(32), nullable=False),
        )
    if "idempotency_keys" not in existing:
        op.create_table(
            "idempotency_keys",
            sa.Column("method", sa.String(200), primary_key=True),
            sa.Column("key", sa.String(255), primary_key=True),
            sa.Column("fingerprint", sa.LargeBinary(32), nullable=False),
            sa.Column("response", sa.LargeBinary(), nullable=True),
            sa.Column("expires_at", sa.Float(), nullable=False),
        )
    if "price_changes" not in existing:
        op.create_table(
            "price_changes",
            sa.Column("id", ID, primary_key=True),
            sa.Column("product_id", sa.BigInteger(), nullable=False),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("category", sa.String(100), nullable=False),
            sa.Column("old_price_cents", sa.BigInteger(), nullable=False),
            sa.Column("new_price_cents", sa.BigInteger(), nullable=False),
            sa.Column("changed_at", sa.Float(), nullable=False),
        )
    for name, (table, columns) in INDEXES.items():
        if table not in existing or name not in {i["name"] for i in inspector.get_indexes(table)}:
            op.create_index(name, table, columns)


def downgrade() -> None:
    for table in ("price_changes", "idempotency_keys", "orders", "users", "products"):
        op.drop_table(table)
