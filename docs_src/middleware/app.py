"""docs/middleware.md: a news API behind Starlette's TrustedHost and GZip middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from twofold import App, Idempotency, Middleware, Service

service = Service("news.v1")
articles = service.resource("articles")


class Article(msgspec.Struct):
    id: int
    title: str
    body: str


class Headline(msgspec.Struct):
    id: int
    title: str


ARTICLES = {i: Article(i, f"Article {i}", "All the news that fits. " * 40) for i in (1, 2, 3)}


@articles.get
async def get_article(id: int) -> Article:
    return ARTICLES[id]


@service.procedure(http=("GET", "/headlines:watch"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def watch_headlines(count: int = 3) -> AsyncIterator[Headline]:
    for article in list(ARTICLES.values())[:count]:
        yield Headline(article.id, article.title)


app = App(
    service,
    middleware=[
        # First outermost: a request for a host this API is not (a DNS
        # rebinding page, a poisoned link) is answered 400 before anything else.
        Middleware(TrustedHostMiddleware, allowed_hosts=["news.example.com", "127.0.0.1"]),
        # Answers of 500 bytes and more are gzipped for clients that accept it.
        Middleware(GZipMiddleware, minimum_size=500),
    ],
)
