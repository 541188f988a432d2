"""docs/caching.md: validators, Cache-Control, conditional writes and pages."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated

import msgspec

from twofold import (
    App,
    Cache,
    Code,
    Context,
    Deadlines,
    Error,
    Idempotency,
    IdempotencyKeys,
    PageTokens,
    Service,
    check_etag,
    check_unmodified,
)
from twofold.interceptors import idempotency
from twofold.interceptors.idempotency import MemoryStore


class Article(msgspec.Struct, kw_only=True):
    id: int
    title: str
    body: str
    etag: str = ""  # the version: the ETag of GET /articles/{id}, If-Match of writes
    # When it last changed: Last-Modified of reads, If-Unmodified-Since of writes.
    updated_at: datetime = datetime(2026, 1, 1, tzinfo=UTC)


class NewArticle(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: str
    body: str


class ArticlePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: str | msgspec.UnsetType = msgspec.UNSET
    body: str | msgspec.UnsetType = msgspec.UNSET


class ArticlePage(msgspec.Struct, kw_only=True):
    articles: list[Article]
    next_page_token: str = ""  # REST also sends it as Link: <...>; rel="next"


class Stats(msgspec.Struct, kw_only=True):
    articles: int


service = Service("press.v1")
articles = service.resource("articles")
ARTICLES: dict[int, Article] = {}


def _find(id: int) -> Article:
    if id not in ARTICLES:
        raise Error(Code.NOT_FOUND, f"article {id} does not exist")
    return ARTICLES[id]


@articles.create
async def create_article(article: NewArticle, ctx: Context, idempotency_key: str = "") -> Article:
    """POST with Idempotency-Key: k1 (REST) or {"idempotency_key": "k1"} (RPC):
    a retry returns the first answer instead of creating a second article."""
    id = max(ARTICLES, default=0) + 1
    ARTICLES[id] = Article(id=id, title=article.title, body=article.body, etag="v1")
    # The key's answer, with the write: no await between them, so no deadline
    # can fall in between. With a database: inside the transaction, within=session.
    await idempotency.complete(ctx, ARTICLES[id])
    return ARTICLES[id]


@articles.get(cache=Cache(max_age=60, public=True))
async def get_article(id: int) -> Article:
    """Shared caches may serve an article for a minute, then revalidate it."""
    return _find(id)


@articles.update
async def update_article(
    id: int, article: ArticlePatch, etag: str = "", unmodified_since: datetime | None = None
) -> Article:
    """PATCH with If-Match: "v1" (REST) or {"etag": "v1"} (RPC) writes only
    if the article is still at that version; with If-Unmodified-Since (REST)
    or unmodified_since (RPC), only if it has not changed since then."""
    current = _find(id)
    # In a database: lock the row first (SELECT ... FOR UPDATE), then check.
    check_etag(etag, current.etag, f"article {id}")
    check_unmodified(unmodified_since, current.updated_at, f"article {id}")
    changes = {k: v for k, v in msgspec.structs.asdict(article).items() if v is not msgspec.UNSET}
    ARTICLES[id] = msgspec.structs.replace(
        current, **changes, etag=secrets.token_hex(8), updated_at=datetime.now(UTC)
    )
    return ARTICLES[id]


PageSize = Annotated[int, msgspec.Meta(ge=1, le=50)]  # 0, -1 or 1000: 400
TOKENS = PageTokens(b"from the environment in production")


@articles.list
async def list_articles(page_size: PageSize = 2, page_token: str = "") -> ArticlePage:
    filters = {"list": "articles"}  # a token only continues the listing it came from
    after = TOKENS.decode(page_token, filters).get("id", 0)  # garbage: 400
    ids = sorted(i for i in ARTICLES if i > int(after))
    page = [ARTICLES[i] for i in ids[:page_size]]
    more = len(ids) > page_size
    token = TOKENS.encode({"id": page[-1].id}, filters) if more else ""
    return ArticlePage(articles=page, next_page_token=token)


@service.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS, cache=Cache(private=True, max_age=10))
async def article_stats() -> Stats:
    """Connect GET /press.v1.PressService/ArticleStats: the caller's cache only."""
    return Stats(articles=len(ARTICLES))


# Answers are kept for a day; a call holds its key for at most 30 s (its lease).
# With several processes, use a store in your database.
app = App(
    service, interceptors=[Deadlines(), IdempotencyKeys(MemoryStore(), ttl=24 * 3600, lease=30)]
)
