"""docs/middleware.md: the same App wrapped by hand, as other ASGI frameworks do it."""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from docs_src.middleware.app import service
from twofold import App

api = App(service)
# `twofold serve docs_src.middleware.wrapped:app` serves HTTP through both
# middlewares and native gRPC from `api`, which it finds inside them.
app = TrustedHostMiddleware(
    GZipMiddleware(api, minimum_size=500), allowed_hosts=["news.example.com", "127.0.0.1"]
)
