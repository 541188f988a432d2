"""Every example in the README and docs/ is a module under docs_src/, run here."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from twofold import App

ROOT = Path(__file__).resolve().parents[2]


def run(app: App, test: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
            await test(client)

    asyncio.run(main())


def test_readme_example_is_the_quickstart_module() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme, re.S)
    assert block is not None
    module = (ROOT / "docs_src/quickstart/app.py").read_text()
    assert block.group(1) in module


def test_quickstart_serves_rest_jsonrpc_and_connect() -> None:
    from docs_src.quickstart.app import app

    async def test(c: httpx.AsyncClient) -> None:
        r = await c.post("/books", json={"title": "Dune", "price": "9.99"})
        assert r.status_code == 201, r.text
        book = r.json()
        assert r.headers["location"] == f"/books/{book['id']}"
        r = await c.post(
            "/jsonrpc",
            json={"jsonrpc": "2.0", "id": 1, "method": "GetBook", "params": {"id": book["id"]}},
        )
        assert r.json()["result"] == book
        r = await c.post("/shelf.v1.ShelfService/ShelfStats", json={})
        assert r.status_code == 200, r.text
        assert r.json()["total"] != "0"
        r = await c.get("/books/999")
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        r = await c.post("/books", json={"title": "", "price": "-1"})
        assert r.status_code == 400

    run(app, test)


def test_interceptor_example_times_every_protocol() -> None:
    from docs_src.interceptors.timing import TIMINGS, app

    async def test(c: httpx.AsyncClient) -> None:
        await c.post("/books", json={"title": "Emma", "price": "5.00"})
        await c.post("/jsonrpc", json={"jsonrpc": "2.0", "id": 1, "method": "ShelfStats"})
        await c.post("/shelf.v1.ShelfService/ShelfStats", json={})

    run(app, test)
    assert [(p, m) for p, m, _ in TIMINGS] == [
        ("rest", "CreateBook"),
        ("jsonrpc", "ShelfStats"),
        ("connect", "ShelfStats"),
    ]
    assert all(seconds >= 0 for _, _, seconds in TIMINGS)


def test_error_table_in_docs_matches_the_code() -> None:
    from twofold.core.code import HTTP_STATUS, JSONRPC_CODE

    text = (ROOT / "docs/errors.md").read_text()
    for code, status in HTTP_STATUS.items():
        row = re.search(rf"^\| `{code.wire_name}` \| (\d+).*\| (\d+) \| (-?\d+) \|$", text, re.M)
        assert row is not None, code
        assert int(row.group(1)) == status and int(row.group(2)) == status
        assert int(row.group(3)) == JSONRPC_CODE[code]


def python_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S):
            blocks.append((page.name, block))
    return blocks


def test_every_python_block_in_the_docs_is_from_a_tested_module() -> None:
    sources = [p.read_text() for p in (ROOT / "docs_src").rglob("*.py")]
    blocks = python_blocks()
    assert len(blocks) >= 15
    for page, block in blocks:
        # A block may name its module on its first line ("# docs_src/x/y.py").
        named = re.match(r"# (docs_src/\S+\.py)\n", block)
        if named:
            block = block[named.end() :]
            candidates = [(ROOT / named.group(1)).read_text()]
        else:
            candidates = sources
        assert any(block in source for source in candidates), f"{page}: not in docs_src:\n{block}"


def test_definition_example_serves_what_the_page_says() -> None:
    from docs_src.definition.library import BOOKS, app

    assert [m.full_name for m in app.table][-1] == "library.v1.Loans/LendBook"

    async def test(c: httpx.AsyncClient) -> None:
        r = await c.post(
            "/books", json={"title": "Emma", "copies": 2}, headers={"x-request-id": "r1"}
        )
        assert r.status_code == 201 and r.headers["x-request-id"] == "r1"
        book_id = r.json()["id"]
        r = await c.patch(f"/books/{book_id}", json={"copies": 5})
        assert r.json() == {"id": book_id, "title": "Emma", "copies": 5}
        r = await c.patch(f"/books/{book_id}", json={"copies": -1})
        assert r.status_code == 400 and r.json()["violations"][0]["field"] == "book.copies"
        assert BOOKS[book_id].copies == 5
        r = await c.post(f"/books/{book_id}/reviews", json={"stars": 5})
        assert r.status_code == 201 and r.headers["location"].startswith(
            f"/books/{book_id}/reviews/"
        )
        assert (await c.post(f"/books/{book_id}/reviews", json={"stars": 6})).status_code == 400
        r = await c.post(f"/books/{book_id}:withdraw", json={})
        assert r.json()["copies"] == 0
        r = await c.post("/books:search", json={"text": "em"})
        assert [b["title"] for b in r.json()["books"]] == ["Emma"]
        r = await c.post("/library.v1.LibraryService/LibraryStats", json={})
        assert r.json() == {"books": "1", "copies": "0"}  # proto3 JSON: int64 as strings
        assert (await c.post("/library_stats")).status_code == 404
        r = await c.post(
            "/jsonrpc",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "LendBook",
                "params": {"book_id": 999, "borrower": "ann"},
            },
        )
        assert r.json()["error"]["data"]["code"] == "not_found"

    run(app, test)


def test_errors_example_renders_on_every_protocol() -> None:
    from docs_src.errors.raising import app

    async def test(c: httpx.AsyncClient) -> None:
        assert (await c.post("/orders/5:cancel")).status_code == 200
        r = await c.post("/orders/5:cancel")
        problem = r.json()
        assert r.status_code == 400 and problem["code"] == "failed_precondition"
        assert problem["details"] == [
            {
                "type": "google.rpc.ErrorInfo",
                "reason": "ORDER_CANCELLED",
                "domain": "shop.example.com",
            }
        ]
        r = await c.post("/shop.v1.ShopService/CancelOrder", json={"id": 5})
        assert r.status_code == 400 and r.json()["code"] == "failed_precondition"
        assert r.json()["details"][0]["type"] == "google.rpc.ErrorInfo"
        r = await c.post(
            "/jsonrpc",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "RefundOrder",
                "params": {"id": 1, "amount": "1.001"},
            },
        )
        error = r.json()["error"]
        assert error["code"] == -32602
        assert error["data"]["violations"] == [
            {"field": "amount", "description": "at most two decimal places"}
        ]
        assert (await c.get("/orders/101")).json()["code"] == "not_found"

    run(app, test)
