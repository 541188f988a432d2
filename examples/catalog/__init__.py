"""The product catalog: products, users and their orders, and a report.

Serve it with ``twofold serve examples.catalog:app`` (or any ASGI server:
``uvicorn examples.catalog:app``). Settings come from the environment when
the app starts:

- ``CATALOG_DATABASE_URL``: where the data lives; default
  ``sqlite+aiosqlite:///catalog.db`` in the working directory, or e.g.
  ``postgresql+asyncpg://user:password@host/catalog``.
- ``CATALOG_PAGE_TOKEN_SECRET``: the key that signs page tokens; set it in
  production, and to the same value on every process serving the catalog.
"""

from examples.catalog import streams  # noqa: F401  (adds WatchPrices and ImportProducts)
from examples.catalog.database import SqlIdempotencyStore, lifespan
from examples.catalog.service import service
from twofold import App
from twofold.idempotency import IdempotencyKeys

app = App(
    service,
    lifespan=lifespan,
    title="Product catalog",
    interceptors=[IdempotencyKeys(SqlIdempotencyStore())],
)

__all__ = ["app", "service"]
