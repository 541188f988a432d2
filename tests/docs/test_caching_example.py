"""docs/caching.md: its example module does what the page says."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from docs_src.caching.articles import ARTICLES, Article, app
from tests.asgi import running
from twofold import Code, Error
from twofold.interceptors.idempotency import Claim


def test_the_caching_example_serves_what_the_page_says() -> None:
    ARTICLES.clear()
    for i in (1, 2, 3):
        ARTICLES[i] = Article(id=i, title=f"t{i}", body="...", etag=f"v{i}")

    async def test(c: httpx.AsyncClient) -> None:
        r = await c.get("/articles/1")
        assert r.headers["etag"] == '"v1"'
        assert r.headers["cache-control"] == "public, max-age=60"
        assert r.headers["vary"] == "Accept, Accept-Encoding"
        r = await c.get("/articles/1", headers={"if-none-match": '"v1"'})
        assert r.status_code == 304 and r.content == b""

        r = await c.patch("/articles/1", json={"title": "new"}, headers={"if-match": '"v1"'})
        assert r.status_code == 200 and r.json()["title"] == "new"
        new_tag = r.headers["etag"]
        r = await c.patch("/articles/1", json={"title": "lost"}, headers={"if-match": '"v1"'})
        assert r.status_code == 412 and r.json()["code"] == "aborted"
        r = await c.patch(
            "/articles/1",
            json={"title": None},
            headers={"content-type": "application/merge-patch+json"},
        )
        assert r.status_code == 400 and r.json()["violations"][0]["field"] == "article.title"
        r = await c.patch("/articles/1", json={"author": "x"})
        assert r.status_code == 400 and r.json()["violations"][0]["field"] == "article.author"
        rpc = {"id": 1, "article": {"body": "b"}, "etag": "v1"}
        r = await c.post("/press.v1.PressService/UpdateArticle", json=rpc)
        assert r.status_code == 409 and r.json()["code"] == "aborted"
        assert (await c.get("/articles/1")).headers["etag"] == new_tag

        # The modification time: Last-Modified, If-Modified-Since, If-Unmodified-Since.
        r = await c.get("/articles/2")
        assert r.headers["last-modified"] == "Thu, 01 Jan 2026 00:00:00 GMT"
        since = {"if-modified-since": r.headers["last-modified"]}
        r = await c.get("/articles/2", headers=since)
        assert r.status_code == 304 and r.content == b""
        earlier = {"if-modified-since": "Wed, 31 Dec 2025 23:59:59 GMT"}
        assert (await c.get("/articles/2", headers=earlier)).status_code == 200
        # If-None-Match decides when both are given (RFC 9110 §13.2.2).
        r = await c.get("/articles/2", headers={**since, "if-none-match": '"other"'})
        assert r.status_code == 200
        before = {"if-unmodified-since": "Wed, 31 Dec 2025 00:00:00 GMT"}
        r = await c.patch("/articles/2", json={"title": "late"}, headers=before)
        assert r.status_code == 412 and r.json()["code"] == "aborted"
        assert ARTICLES[2].title == "t2"  # nothing written
        at = {"if-unmodified-since": "Thu, 01 Jan 2026 00:00:00 GMT"}
        r = await c.patch("/articles/2", json={"title": "on time"}, headers=at)
        assert r.status_code == 200 and r.headers["last-modified"] != at["if-unmodified-since"]
        r = await c.patch("/articles/2", json={"title": "again"}, headers=at)
        assert r.status_code == 412 and ARTICLES[2].title == "on time"
        rpc = {"id": 2, "article": {"title": "x"}, "unmodifiedSince": "2025-12-31T00:00:00Z"}
        r = await c.post("/press.v1.PressService/UpdateArticle", json=rpc)
        assert r.status_code == 409 and r.json()["code"] == "aborted"

        r = await c.get("/articles", params={"page_size": 2})
        assert r.headers["cache-control"] == "no-cache"
        link = r.headers["link"]
        assert link.startswith("</articles?page_size=2&page_token=") and link.endswith(
            '>; rel="next"'
        )
        r = await c.get(link[1 : link.index(">")])
        assert [a["id"] for a in r.json()["articles"]] == [3] and "link" not in r.headers
        for bad in ({"page_size": 0}, {"page_size": -1}, {"page_size": 1000}, {"page_token": "x"}):
            r = await c.get("/articles", params=bad)
            assert r.status_code == 400, bad
            assert r.headers["content-type"] == "application/problem+json"

        new = {"title": "t", "body": "b"}
        first = await c.post("/articles", json=new, headers={"idempotency-key": "k1"})
        again = await c.post("/articles", json=new, headers={"idempotency-key": "k1"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and len(ARTICLES) == 4
        other = {"title": "t2", "body": "b"}
        r = await c.post("/articles", json=other, headers={"idempotency-key": "k1"})
        assert r.status_code == 422 and len(ARTICLES) == 4
        ARTICLES.pop(4)

        r = await c.get("/press.v1.PressService/ArticleStats", params={"encoding": "json"})
        assert r.headers["cache-control"] == "private, max-age=10"
        assert r.json() == {"articles": "3"}  # proto3 JSON: int64 as a string

    async def main() -> None:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
            await test(client)

    asyncio.run(main())


def test_the_receipts_example_completes_keys_in_its_own_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from docs_src.caching import receipts

    monkeypatch.setenv("TILL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'till.db'}")

    async def count() -> int:
        async with receipts.sessions() as session:
            return len((await session.scalars(select(receipts.ReceiptRow))).all())

    async def main() -> None:
        transport = httpx.ASGITransport(receipts.app)
        async with (
            running(receipts.app),
            httpx.AsyncClient(transport=transport, base_url="http://docs") as c,
        ):
            key = {"idempotency-key": "r1"}
            first = await c.post("/receipts", json={"amount": 5}, headers=key)
            again = await c.post("/receipts", json={"amount": 5}, headers=key)
            assert first.status_code == again.status_code == 201
            assert again.json() == first.json() and await count() == 1

            # A call whose lease ran out and was taken over writes nothing.
            store = receipts.SqlKeys()
            late, retry = Claim("m", "k", "late"), Claim("m", "k", "retry")
            assert await store.reserve(late, b"f", time.time() - 1) is None
            assert await store.reserve(retry, b"f", time.time() + 30) is None
            with pytest.raises(Error) as refused:
                async with receipts.sessions.begin() as session:
                    session.add(receipts.ReceiptRow(amount=7))
                    await store.complete(late, b"{}", time.time() + 60, session)
            assert refused.value.code is Code.ABORTED and await count() == 1
            r = await c.post("/receipts", json={"amount": 5}, headers={"idempotency-key": "k"})
            assert r.status_code == 201  # another method's key "k": unrelated
            await store.release(late)  # not its key any more: nothing happens
            assert await store.reserve(Claim("m", "k", "x"), b"f", 0) is not None

    asyncio.run(main())
