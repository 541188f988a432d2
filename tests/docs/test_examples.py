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
    from twofold.code import HTTP_STATUS
    from twofold.protocols.jsonrpc import ERROR_CODES

    text = (ROOT / "docs/errors.md").read_text()
    for code, status in HTTP_STATUS.items():
        row = re.search(rf"^\| `{code.wire_name}` \| (\d+).*\| (\d+) \| (-?\d+) \|$", text, re.M)
        assert row is not None, code
        assert int(row.group(1)) == status and int(row.group(2)) == status
        assert int(row.group(3)) == ERROR_CODES[code]
