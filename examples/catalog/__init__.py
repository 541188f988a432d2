"""The product catalog: products, users and their orders, and a report.

Serve it with ``twofold serve examples.catalog:app`` (or any ASGI server:
``uvicorn examples.catalog:app``). Settings come from the environment when
the app starts:

- ``CATALOG_DATABASE_URL``: where the data lives; default
  ``sqlite+aiosqlite:///catalog.db`` in the working directory, or e.g.
  ``postgresql+asyncpg://user:password@host/catalog``.
- ``CATALOG_PAGE_TOKEN_SECRET``: the key that signs page tokens; set it in
  production, and to the same value on every process serving the catalog.
- ``CATALOG_JWT_SECRET``, ``CATALOG_JWT_AUDIENCE``, ``CATALOG_ENV``: who may
  write, see :mod:`examples.catalog.security` (``twofold token`` makes a
  development token).
"""

from examples.catalog import streams  # noqa: F401  (adds WatchPrices and ImportProducts)
from examples.catalog.database import SqlIdempotencyStore, lifespan
from examples.catalog.security import authentication
from examples.catalog.service import service
from twofold import (
    AccessLog,
    App,
    ConcurrencyLimit,
    Deadlines,
    IdempotencyKeys,
    Metrics,
    RequestIds,
)

app = App(
    service,
    lifespan=lifespan,
    title="Product catalog",
    interceptors=[
        RequestIds(),  # X-Request-Id on every answer, in every log line
        Metrics(),  # GET /metrics
        AccessLog(),
        ConcurrencyLimit(512),
        # Before the idempotency store: a refused call never touches it.
        authentication(),
        Deadlines(default=30.0),
        IdempotencyKeys(SqlIdempotencyStore()),
    ],
)

__all__ = ["app", "service"]
