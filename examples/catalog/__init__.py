"""The product catalog: products, users and their orders, and a report.

Serve it with ``twofold serve examples.catalog:app`` (or any ASGI server:
``uvicorn examples.catalog:app``). Settings come from the environment when
the app starts:

- ``CATALOG_DATABASE_URL``: where the data lives; default
  ``sqlite+aiosqlite:///catalog.db`` in the working directory, or e.g.
  ``postgresql+asyncpg://user:password@host/catalog``. Its schema is brought
  to this version's with ``python -m examples.catalog migrate`` (SQLite's
  when the catalog starts; see :mod:`examples.catalog.schema`).
- ``CATALOG_PAGE_TOKEN_SECRET``: the key that signs page tokens; set it in
  production, and to the same value on every process serving the catalog.
- ``CATALOG_JWT_SECRET``, ``CATALOG_JWT_AUDIENCE``, ``CATALOG_ENV``: who may
  write, see :mod:`examples.catalog.security` (``twofold token`` makes a
  development token).
- ``CATALOG_TIMEOUT``: the server-side timeout of every call, in seconds
  (default 30; a QuotePrices stream's too, from its start); WatchPrices has
  none, and instead ends cleanly after ``CATALOG_WATCH_LIFETIME`` seconds
  (default 600), when its client reconnects.
- ``CATALOG_MAX_POLL_WAIT``: the longest a long poll of WatchPrices
  (``?wait=``, docs/rest.md) is held, in seconds (default 30); a longer
  ``wait`` is taken as this.
- ``CATALOG_CORS_ORIGINS``: the browser origins whose pages may call the
  catalog, comma-separated (default ``http://localhost:5173``, a Vite dev
  server); patterns like ``https://*.example.com`` work, ``*`` allows any.
  ``CATALOG_CORS_CREDENTIALS=1`` lets pages send cookies too (the catalog
  itself reads only the Authorization header); with ``*`` it refuses to start.
- ``CATALOG_WRITE_RATE``, ``CATALOG_WRITE_BURST``: each caller's writes, per
  second and in a burst (default 50 and 500); see :mod:`examples.catalog.ratelimits`.

Reads, WatchPrices and QuotePrices are public, so the concurrency budgets are what stand
between anonymous callers and everyone else: unary calls and streams have
separate budgets, a share of each is kept for callers with credentials, and
one address may hold at most 64 anonymous streams (behind a proxy, the
proxy's address: cap connections per client there, e.g. nginx's
``limit_conn``). The limit runs before ``Authentication``, so a refused call
costs no token check; it tells identified callers by their ``Authorization``
header, which ``Authentication`` then verifies.
"""

import os

from examples.catalog import (
    images,  # noqa: F401  (adds PutProductImage and GetProductImage)
    quotes,  # noqa: F401  (adds QuotePrices)
    streams,  # noqa: F401  (adds WatchPrices and ImportProducts)
)
from examples.catalog.database import DEPENDENCIES, Database, SqlIdempotencyStore
from examples.catalog.ratelimits import write_rate_limit
from examples.catalog.security import authentication
from examples.catalog.service import service
from examples.catalog.webpage import WebPage
from twofold import (
    AccessLog,
    App,
    Budget,
    ConcurrencyLimit,
    Cors,
    Deadlines,
    IdempotencyKeys,
    Metrics,
    Options,
    RequestIds,
)


def cors() -> Cors:
    """Which browser origins may call the catalog, from the environment."""
    listed = os.environ.get("CATALOG_CORS_ORIGINS") or "http://localhost:5173"
    origins = [origin.strip() for origin in listed.split(",") if origin.strip()]
    return Cors(origins, credentials=os.environ.get("CATALOG_CORS_CREDENTIALS") == "1")


app: App = App(
    service,
    dependencies=DEPENDENCIES,  # the database, opened when the App starts
    title="Product catalog",
    cors=cors(),
    middleware=[WebPage],  # the web page at /ui (docs/ui.md)
    options=Options(max_poll_wait=float(os.environ.get("CATALOG_MAX_POLL_WAIT") or 30)),
    interceptors=[
        RequestIds(),  # X-Request-Id on every answer, in every log line
        Metrics(),  # GET /metrics
        AccessLog(),
        ConcurrencyLimit(
            unary=Budget(512, anonymous_share=0.75),
            streams=Budget(1024, anonymous_share=0.5, per_address=64),
        ),
        # Before the idempotency store: a refused call never touches it.
        authentication(),
        Deadlines(default=float(os.environ.get("CATALOG_TIMEOUT") or 30)),
        # Per subject, shared by every process on PostgreSQL; before the
        # idempotency store, so that a refused write never claims a key.
        write_rate_limit(lambda: app.provided(Database)),
        IdempotencyKeys(SqlIdempotencyStore(lambda: app.provided(Database))),
    ],
)

__all__ = ["app", "service"]
