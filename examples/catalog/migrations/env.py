"""Alembic's environment for the catalog: run the migrations on the caller's connection.

:mod:`examples.catalog.schema` opens the connection, takes the lock and
commits; here the migrations only run, inside that transaction (Alembic
starts none of its own on a connection already in one).
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the catalog's migrations run through `python -m examples.catalog migrate`")
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
