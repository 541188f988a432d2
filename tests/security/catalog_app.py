"""The catalog with a short idempotency lease, for the tests that kill calls and servers.

Its lease is short so that a key a killed process left claimed frees up
within the test; otherwise the interceptors that matter here are the
catalog's own (examples/catalog/__init__.py).
"""

from __future__ import annotations

from examples.catalog import streams  # noqa: F401  (the catalog's streams, as in the app)
from examples.catalog.database import DEPENDENCIES, Database, SqlIdempotencyStore
from examples.catalog.security import authentication
from examples.catalog.service import service
from twofold import App, Deadlines, IdempotencyKeys

LEASE = 2.0

app: App = App(
    service,
    dependencies=DEPENDENCIES,
    interceptors=[
        authentication(),
        Deadlines(default=30.0),
        IdempotencyKeys(SqlIdempotencyStore(lambda: app.provided(Database)), lease=LEASE),
    ],
)
