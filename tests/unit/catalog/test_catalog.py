"""The example catalog over REST, in process, on a fresh SQLite file per test.

The app's own ASGI lifespan is run around each scenario (httpx's
ASGITransport does not run it), so the tests go through the same startup as
a server: read the environment, open the engine, create tables.
"""

from __future__ import annotations

import asyncio
import importlib
import sqlite3
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.catalog import app, service
from examples.catalog.database import Database
from examples.catalog.models import Report
from examples.catalog.service import generate_report
from tests.asgi import running
from tests.tokens import AUTHORIZATION

# The package's ``service`` attribute is the Service, which hides the module of
# the same name from attribute access; import_module finds the module itself.
handlers = importlib.import_module("examples.catalog.service")

Scenario = Callable[[httpx.AsyncClient], Awaitable[None]]
Run = Callable[[Scenario], None]


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    monkeypatch.setenv("CATALOG_DATABASE_URL", url)
    monkeypatch.setenv("CATALOG_PAGE_TOKEN_SECRET", "a page token secret for the tests")
    return url


@pytest.fixture
def run(database_url: str) -> Run:
    """Run a scenario against a started catalog with an empty database."""

    def run(scenario: Scenario) -> None:
        async def main() -> None:
            async with running(app):
                transport = httpx.ASGITransport(app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://t", headers=AUTHORIZATION
                ) as client:
                    await scenario(client)

        asyncio.run(main())

    return run


async def ok(response: Awaitable[httpx.Response], status: int = 200) -> Any:
    r = await response
    assert r.status_code == status, r.text
    return r.json() if r.content else None


async def problem(response: Awaitable[httpx.Response], status: int, code: str) -> dict[str, Any]:
    r = await response
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = r.json()
    assert doc["code"] == code, doc
    return doc


def fields(doc: dict[str, Any]) -> list[str]:
    return [v["field"] for v in doc.get("violations", [])]


async def new_product(
    client: httpx.AsyncClient,
    name: str = "T-Shirt",
    price: str = "22.00",
    category: str = "Clothes",
) -> dict[str, Any]:
    body = {"name": name, "price": price, "category": category}
    product: dict[str, Any] = await ok(client.post("/products", json=body), 201)
    return product


async def new_user(client: httpx.AsyncClient, email: str = "ada@example.com") -> dict[str, Any]:
    user: dict[str, Any] = await ok(
        client.post("/users", json={"name": "Ada", "email": email}), 201
    )
    return user


async def every_page(client: httpx.AsyncClient, url: str, key: str, **params: Any) -> list[int]:
    ids: list[int] = []
    token = ""
    while True:
        page = await ok(client.get(url, params={**params, "page_token": token}))
        ids += [item["id"] for item in page[key]]
        token = page["next_page_token"]
        if not token:
            return ids


def test_the_service_is_catalog_v1() -> None:
    assert service.full_name == "catalog.v1.CatalogService"
    assert set(service.methods) == {
        *(f"{verb}Product" for verb in ("Create", "Get", "Update", "Replace", "Delete")),
        "ListProducts",
        "CreateUser",
        "GetUser",
        "ListUsers",
        "CreateOrder",
        "GetOrder",
        "ListOrders",
        "CancelOrder",
        "GenerateReport",
        "WatchPrices",  # examples/catalog/streams.py
        "ImportProducts",
        "QuotePrices",  # examples/catalog/quotes.py
        "PutProductImage",  # examples/catalog/images.py
        "GetProductImage",
    }
    for method in service.methods.values():
        assert method.summary, f"{method.name} has no docstring"


def test_streams_are_documented_as_what_they_send() -> None:
    doc = app.openapi
    watch = doc["paths"]["/products:watchPrices"]["get"]
    ok = watch["responses"]["200"]
    event = ok["content"]["text/event-stream"]["schema"]
    # An event stream, or with ?wait= a long poll's batch in JSON or XML
    # (docs/rest.md#long-polling).
    assert list(ok["content"]) == ["text/event-stream", "application/json", "application/xml"]
    assert event["required"] == ["data"]
    poll = ok["content"]["application/json"]["schema"]
    assert ok["content"]["application/xml"]["schema"] == poll
    items = poll["properties"]["events"]["items"]
    assert items["$ref"] == "#/components/schemas/PriceChange"
    assert poll["required"] == ["events", "cursor"]
    # In XML: <Batch>, each event an <events> element (not the message's root name).
    assert poll["xml"] == {"name": "Batch"} and items["xml"] == {"name": "events"}
    assert "Link" in watch["responses"]["204"]["headers"]
    wait = next(p for p in watch["parameters"] if p["name"] == "wait")
    assert wait["in"] == "query" and wait["schema"] == {"type": "number", "minimum": 0}
    assert event["else"]["properties"]["data"]["contentSchema"] == {
        "$ref": "#/components/schemas/PriceChange"
    }
    # Every message event has an id (the change's), and Last-Event-ID resumes after it.
    assert event["else"]["required"] == ["id"]
    assert "`id`" in event["properties"]["id"]["description"]
    assert event["properties"]["retry"]["type"] == "integer"
    resume = next(p for p in watch["parameters"] if p["name"] == "Last-Event-ID")
    assert resume["in"] == "header" and "after_id" in resume["description"]
    # A failure after the first event: a last `event: error` with a problem document.
    assert event["if"]["properties"]["event"] == {"const": "error"}
    assert event["then"]["properties"]["data"]["contentSchema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    # Live: no validator, so no If-None-Match, ETag or 304.
    assert "ETag" not in ok["headers"] and "304" not in watch["responses"]
    assert "If-None-Match" not in {p["name"] for p in watch["parameters"]}
    # Enveloped Connect streams are the .proto's to describe, not OpenAPI's.
    rpc = "/catalog.v1.CatalogService"
    for stream in ("WatchPrices", "ImportProducts", "QuotePrices"):
        assert f"{rpc}/{stream}" not in doc["paths"], stream
    assert f"{rpc}/GenerateReport" in doc["paths"]


def test_product_lifecycle(run: Run) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        body = {"name": "T-Shirt", "price": "22.00", "category": "Clothes"}
        r = await client.post("/products", json=body)
        assert r.status_code == 201, r.text
        created = r.json()
        server_set = {k: created[k] for k in ("id", "etag", "updated_at")}
        assert created == {**body, **server_set, "tags": []}
        assert r.headers["location"] == f"/products/{created['id']}"
        url = r.headers["location"]

        assert await ok(client.get(url)) == created
        patched = await ok(client.patch(url, json={"price": "20.00"}))
        assert patched["etag"] != created["etag"]  # every write is a new version
        assert patched["updated_at"] >= created["updated_at"]  # and a modification time
        versioned = {"etag": patched["etag"], "updated_at": patched["updated_at"]}
        assert patched == {**created, "price": "20.00", **versioned}
        patched = await ok(client.patch(url, json={"tags": ["cotton", "summer"]}))
        versioned = {"etag": patched["etag"], "updated_at": patched["updated_at"]}
        assert patched == {**created, "price": "20.00", "tags": ["cotton", "summer"], **versioned}
        patched = await ok(client.patch(url, json={}))
        assert await ok(client.get(url)) == patched

        new = {"name": "Polo", "price": "35.50", "category": "Shirts"}
        replaced = await ok(client.put(url, json=new))
        # tags reset too
        versioned = {"etag": replaced["etag"], "updated_at": replaced["updated_at"]}
        assert replaced == {**new, "id": created["id"], "tags": [], **versioned}

        assert await ok(client.delete(url), 204) is None
        await problem(client.get(url), 404, "not_found")
        await problem(client.delete(url), 404, "not_found")
        await problem(client.patch(url, json={"name": "x"}), 404, "not_found")
        await problem(client.put(url, json=new), 404, "not_found")

    run(scenario)


def test_list_pages_through_one_category(run: Run) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        books = []
        for i in range(5):
            books.append((await new_product(client, f"B{i}", "1.00", "Books"))["id"])
            await new_product(client, f"C{i}", "2.00", "Clothes")

        first = await ok(client.get("/products", params={"category": "Books", "page_size": 2}))
        assert [p["id"] for p in first["products"]] == books[:2]
        assert first["next_page_token"]
        assert await every_page(client, "/products", "products", category="Books", page_size=2) == (
            books
        )
        # A page that ends exactly at the last item has no next page.
        assert await every_page(client, "/products", "products", category="Books", page_size=5) == (
            books
        )
        everything = await ok(client.get("/products", params={"page_size": 100}))
        assert len(everything["products"]) == 10 and everything["next_page_token"] == ""
        assert len((await ok(client.get("/products")))["products"]) == 10  # default size 20

        token = first["next_page_token"]
        for params in ({"category": "Clothes"}, {}, {"category": "books"}):
            doc = await problem(
                client.get("/products", params={**params, "page_token": token}),
                400,
                "invalid_argument",
            )
            assert fields(doc) == ["page_token"]
        # The page size may change between pages (AIP-158); the filter may not.
        page = await ok(client.get("/products", params={"category": "Books", "page_token": token}))
        assert [p["id"] for p in page["products"]] == books[2:]

    run(scenario)


def test_tampered_and_garbage_page_tokens(run: Run) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        for i in range(3):
            await new_product(client, f"P{i}")
        page = await ok(client.get("/products", params={"page_size": 1}))
        token = page["next_page_token"]
        flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
        users_token = await ok(client.get("/users", params={"page_token": ""}))
        assert users_token["next_page_token"] == ""
        for bad in (flipped, token[:-1], token + "A", "garbage", "x" * 2000):
            doc = await problem(
                client.get("/products", params={"page_token": bad}), 400, "invalid_argument"
            )
            assert fields(doc) == ["page_token"]
        # A products token is no users token.
        doc = await problem(
            client.get("/users", params={"page_token": token}), 400, "invalid_argument"
        )
        assert fields(doc) == ["page_token"]

    run(scenario)


def test_users(run: Run) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        r = await client.post("/users", json={"name": "Ada", "email": "ada@example.com"})
        assert r.status_code == 201, r.text
        ada = r.json()
        assert ada == {"id": ada["id"], "name": "Ada", "email": "ada@example.com"}
        assert r.headers["location"] == f"/users/{ada['id']}"
        assert await ok(client.get(f"/users/{ada['id']}")) == ada
        await problem(client.get("/users/987654321"), 404, "not_found")

        duplicate = {"name": "Other", "email": "ada@example.com"}
        await problem(client.post("/users", json=duplicate), 409, "already_exists")

        ids = [ada["id"]] + [(await new_user(client, f"u{i}@example.com"))["id"] for i in range(4)]
        assert await every_page(client, "/users", "users", page_size=2) == ids

    run(scenario)


def test_orders_and_cancel(run: Run) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        product = await new_product(client, price="3.25")
        ada, bob = await new_user(client), await new_user(client, "bob@example.com")
        orders_url = f"/users/{ada['id']}/orders"

        r = await client.post(orders_url, json={"product_id": product["id"], "quantity": 4})
        assert r.status_code == 201, r.text
        order = r.json()
        assert order == {
            "id": order["id"],
            "user_id": ada["id"],
            "product_id": product["id"],
            "quantity": 4,
            "total": "13.00",
            "status": "open",
            "etag": order["etag"],
        }
        url = f"{orders_url}/{order['id']}"
        assert r.headers["location"] == url
        assert await ok(client.get(url)) == order
        # Another user's order is not found under this one, and vice versa.
        await problem(client.get(f"/users/{bob['id']}/orders/{order['id']}"), 404, "not_found")
        await problem(
            client.post(f"/users/{bob['id']}/orders/{order['id']}:cancel"), 404, "not_found"
        )

        cancelled = await ok(client.post(f"{url}:cancel"))
        assert cancelled == {**order, "status": "cancelled", "etag": cancelled["etag"]}
        doc = await problem(client.post(f"{url}:cancel"), 400, "failed_precondition")
        assert "already cancelled" in doc["detail"]
        assert (await ok(client.get(url)))["status"] == "cancelled"
        await problem(client.post(f"{orders_url}/999:cancel"), 404, "not_found")

        # The total is fixed when the order is placed.
        await ok(client.patch(f"/products/{product['id']}", json={"price": "100.00"}))
        assert (await ok(client.get(url)))["total"] == "13.00"

        ids = [order["id"]]
        for quantity in (1, 2, 3):
            body = {"product_id": product["id"], "quantity": quantity}
            ids.append((await ok(client.post(orders_url, json=body), 201))["id"])
        await ok(client.post(f"/users/{bob['id']}/orders", json=body), 201)
        assert await every_page(client, orders_url, "orders", page_size=3) == ids
        page = await ok(client.get(orders_url, params={"page_size": 1}))
        bobs = f"/users/{bob['id']}/orders"
        doc = await problem(
            client.get(bobs, params={"page_token": page["next_page_token"]}),
            400,
            "invalid_argument",
        )
        assert fields(doc) == ["page_token"]

        await problem(client.get("/users/424242/orders"), 404, "not_found")
        body = {"product_id": product["id"], "quantity": 1}
        await problem(client.post("/users/424242/orders", json=body), 404, "not_found")
        body = {"product_id": 424242, "quantity": 1}
        await problem(client.post(orders_url, json=body), 404, "not_found")

        # A product that was ordered stays: orders keep pointing at it.
        doc = await problem(client.delete(f"/products/{product['id']}"), 400, "failed_precondition")
        assert "has orders" in doc["detail"]
        await ok(client.get(f"/products/{product['id']}"))

    run(scenario)


async def report_of(category: str | None = None) -> Report:
    """The handler called as a function, given the running app's database."""
    return await generate_report(app.provided(Database), category)


def test_report_sums_prices_exactly_per_category(run: Run) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        assert await report_of() == await report_of(None)
        assert (await report_of()).categories == []
        for _ in range(10):
            await new_product(client, price="0.10", category="Pens")  # 0.1 * 10 != 1.0 in floats
        await new_product(client, price="0.20", category="Pens")
        await new_product(client, price="19.99", category="Books")
        await new_product(client, price="0", category="Free")

        report = await report_of()
        lines = [(c.category, c.product_count, str(c.total_value)) for c in report.categories]
        assert lines == [("Books", 1, "19.99"), ("Free", 1, "0.00"), ("Pens", 11, "1.20")]
        only = await report_of("Pens")
        assert [(c.category, str(c.total_value)) for c in only.categories] == [("Pens", "1.20")]
        assert (await report_of("Nothing")).categories == []
        assert all(isinstance(c.total_value, Decimal) for c in report.categories)

        method = service.methods["GenerateReport"]
        assert method.http is None and method.idempotency.value == "no_side_effects"
        assert (await client.post("/reports", json={})).status_code == 404

    run(scenario)


def test_prices_are_exact_decimal_strings(run: Run) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        cases = {"22": "22.00", "0.1": "0.10", "022.5": "22.50", "0": "0.00"}
        for given, stored in cases.items():
            assert (await new_product(client, price=given))["price"] == stored
        big = await new_product(client, price="999999999.99")
        assert big["price"] == "999999999.99"
        user = await new_user(client)
        body = {"product_id": big["id"], "quantity": 1_000_000}
        order = await ok(client.post(f"/users/{user['id']}/orders", json=body), 201)
        assert order["total"] == "999999999990000.00"

    run(scenario)


def test_validation_names_the_field(run: Run) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        product = await new_product(client)
        url = f"/products/{product['id']}"
        good = {"name": "x", "price": "1.00", "category": "c"}
        refused = ("-0.01", "0.001", "1.234", "NaN", "Infinity", "cheap", "1000000000.01")
        # What the published pattern refuses though Decimal() reads it.
        refused += ("22.000", "1e1", "+1", " 1", "1_000", "\u0661\u0662", "-0", "1.", ".5")
        for price in refused:
            for call in (
                client.post("/products", json={**good, "price": price}),
                client.put(url, json={**good, "price": price}),
                client.patch(url, json={"price": price}),
            ):
                assert fields(await problem(call, 400, "invalid_argument")) == ["product.price"]
        bad_products = [
            ({"price": "1.00", "category": "c"}, "product.name"),
            ({**good, "name": ""}, "product.name"),
            ({**good, "category": ""}, "product.category"),
            ({**good, "tags": [""]}, "product.tags[0]"),
            ({**good, "tags": ["t"] * 21}, "product.tags"),
            ({**good, "colour": "red"}, "product.colour"),
        ]
        for body, field in bad_products:
            doc = await problem(client.post("/products", json=body), 400, "invalid_argument")
            assert fields(doc) == [field], body
        doc = await problem(client.patch(url, json={"name": None}), 400, "invalid_argument")
        assert fields(doc) == ["product.name"]

        for bad_id in ("abc", "0", "-1", "99999999999999999999999999"):
            doc = await problem(client.get(f"/products/{bad_id}"), 400, "invalid_argument")
            assert fields(doc) == ["id"]
        for size in ("0", "101", "ten"):
            doc = await problem(
                client.get("/products", params={"page_size": size}), 400, "invalid_argument"
            )
            assert fields(doc) == ["page_size"]

        for email in ("no-at-sign", "a@b", "a b@example.com", ""):
            body = {"name": "Ada", "email": email}
            doc = await problem(client.post("/users", json=body), 400, "invalid_argument")
            assert fields(doc) == ["user.email"]
        user = await new_user(client)
        for quantity in (0, -1, "2", 1.5):
            body = {"product_id": product["id"], "quantity": quantity}
            doc = await problem(
                client.post(f"/users/{user['id']}/orders", json=body), 400, "invalid_argument"
            )
            assert fields(doc) == ["order.quantity"]

    run(scenario)


async def snapshot(client: httpx.AsyncClient) -> dict[str, Any]:
    """Everything the API can show, to compare before and after a failed call."""
    user_ids = await every_page(client, "/users", "users", page_size=100)
    return {
        "products": (await ok(client.get("/products", params={"page_size": 100})))["products"],
        "users": (await ok(client.get("/users", params={"page_size": 100})))["users"],
        "orders": [
            (await ok(client.get(f"/users/{i}/orders", params={"page_size": 100})))["orders"]
            for i in user_ids
        ],
    }


def test_a_failed_write_changes_nothing(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        product = await new_product(client)
        user = await new_user(client)
        orders_url = f"/users/{user['id']}/orders"
        order = await ok(
            client.post(orders_url, json={"product_id": product["id"], "quantity": 1}), 201
        )
        before = await snapshot(client)

        url = f"/products/{product['id']}"
        # Valid name, invalid price: the name must not change either.
        await problem(
            client.patch(url, json={"name": "New", "price": "1.001"}), 400, "invalid_argument"
        )
        await problem(
            client.put(url, json={"name": "New", "price": "-1", "category": "c"}),
            400,
            "invalid_argument",
        )
        await problem(
            client.post("/users", json={"name": "B", "email": user["email"]}), 409, "already_exists"
        )
        await problem(
            client.post(orders_url, json={"product_id": 999, "quantity": 1}), 404, "not_found"
        )
        await problem(client.delete(url), 400, "failed_precondition")
        await ok(client.post(f"{orders_url}/{order['id']}:cancel"))
        cancelled = await snapshot(client)
        await problem(client.post(f"{orders_url}/{order['id']}:cancel"), 400, "failed_precondition")
        assert await snapshot(client) == cancelled
        before["orders"][0][0]["status"] = "cancelled"
        before["orders"][0][0]["etag"] = cancelled["orders"][0][0]["etag"]
        assert cancelled == before

        # A handler that fails after it wrote (here: while building its answer)
        # leaves nothing behind: the transaction is rolled back.
        def broken(row: Any) -> Any:
            raise RuntimeError("boom")

        monkeypatch.setattr(handlers, "_product", broken)
        doc = await problem(
            client.post("/products", json={"name": "Ghost", "price": "1.00", "category": "c"}),
            500,
            "internal",
        )
        assert doc["detail"] == "internal error"
        await problem(client.patch(url, json={"name": "Ghost"}), 500, "internal")
        monkeypatch.undo()
        assert await snapshot(client) == cancelled

    run(scenario)


def test_concurrent_writes_are_serialised(run: Run) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        product = await new_product(client, price="0.01")
        user = await new_user(client)
        orders_url = f"/users/{user['id']}/orders"
        body = {"product_id": product["id"], "quantity": 1}
        created = await asyncio.gather(*(client.post(orders_url, json=body) for _ in range(30)))
        assert [r.status_code for r in created] == [201] * 30
        order_id = created[0].json()["id"]
        cancels = await asyncio.gather(
            *(client.post(f"{orders_url}/{order_id}:cancel") for _ in range(10))
        )
        assert sorted(r.status_code for r in cancels) == [200] + [400] * 9
        assert len(await every_page(client, orders_url, "orders", page_size=7)) == 30

    run(scenario)


def test_data_and_tokens_survive_a_restart(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without CATALOG_PAGE_TOKEN_SECRET the development key is derived, not
    # random: a token from one process (or worker) is good on the next.
    monkeypatch.delenv("CATALOG_PAGE_TOKEN_SECRET")

    async def main() -> None:
        transport = httpx.ASGITransport(app)
        async with (
            running(app),
            httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTHORIZATION) as c,
        ):
            for i in range(3):
                await new_product(c, f"P{i}", category="Books")
            page = await ok(c.get("/products", params={"category": "Books", "page_size": 2}))
        async with (
            running(app),
            httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTHORIZATION) as c,
        ):
            params = {"category": "Books", "page_token": page["next_page_token"]}
            rest = await ok(c.get("/products", params=params))
            assert [p["name"] for p in rest["products"]] == ["P2"]
        monkeypatch.setenv("CATALOG_PAGE_TOKEN_SECRET", "a production secret, set by the operator")
        async with (
            running(app),
            httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTHORIZATION) as c,
        ):
            params = {"category": "Books", "page_token": page["next_page_token"]}
            await problem(c.get("/products", params=params), 400, "invalid_argument")

    asyncio.run(main())


def test_a_database_from_before_updated_at_still_starts(database_url: str, tmp_path: Path) -> None:
    # A catalog.db written before products had updated_at: the column is added
    # on start, the old row keeps its data and gains a Last-Modified.
    with sqlite3.connect(tmp_path / "catalog.db") as db:
        db.execute(
            "CREATE TABLE products (id INTEGER PRIMARY KEY, name VARCHAR(200), "
            "price_cents BIGINT, category VARCHAR(100), tags JSON, version VARCHAR(32))"
        )
        db.execute("INSERT INTO products VALUES (7, 'Old', 1250, 'Books', '[]', 'v1')")
    db.close()

    async def main() -> None:
        async with (
            running(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client,
        ):
            r = await client.get("/products/7")
            assert r.status_code == 200, r.text
            assert r.json()["name"] == "Old" and r.json()["price"] == "12.50"
            assert "last-modified" in r.headers
            again = await client.get(
                "/products/7", headers={"if-modified-since": r.headers["last-modified"]}
            )
            assert again.status_code == 304

    asyncio.run(main())


def test_a_database_from_before_autoincrement_never_reuses_ids(run: Run, tmp_path: Path) -> None:
    # Tables an earlier version created without AUTOINCREMENT, where SQLite
    # gives the largest deleted id to the next row: rebuilt once on start,
    # their rows, indexes and foreign keys intact.
    with sqlite3.connect(tmp_path / "catalog.db") as db:
        db.executescript(
            "CREATE TABLE products (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(200), "
            "price_cents BIGINT, category VARCHAR(100), tags JSON, version VARCHAR(32), "
            "updated_at FLOAT NOT NULL DEFAULT 0);"
            "CREATE TABLE users (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(200), "
            "email VARCHAR(254) UNIQUE);"
            "CREATE TABLE orders (id INTEGER NOT NULL PRIMARY KEY, "
            "user_id INTEGER REFERENCES users (id), product_id INTEGER REFERENCES products (id), "
            "quantity INTEGER, total_cents BIGINT, status VARCHAR(16), version VARCHAR(32));"
            "INSERT INTO products VALUES (1, 'Kept', 100, 'Books', '[]', 'v1', 0);"
            "INSERT INTO products VALUES (2, 'Gone', 100, 'Books', '[]', 'v1', 0);"
            "INSERT INTO users VALUES (1, 'A', 'a@b.co');"
            "INSERT INTO orders VALUES (1, 1, 1, 1, 100, 'open', 'v1');"
        )
    db.close()

    async def scenario(client: httpx.AsyncClient) -> None:
        assert (await ok(client.get("/products/1")))["name"] == "Kept"
        await ok(client.delete("/products/2"), 204)
        body = {"name": "New", "price": "1.00", "category": "Books"}
        assert (await ok(client.post("/products", json=body), 201))["id"] == 3
        await problem(client.delete("/products/1"), 400, "failed_precondition")
        assert (await ok(client.get("/users/1/orders")))["orders"][0]["product_id"] == 1

    run(scenario)
    with sqlite3.connect(tmp_path / "catalog.db") as db:
        for (sql,) in db.execute("SELECT sql FROM sqlite_master WHERE type = 'table'"):
            assert "_new_" not in sql
        indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        assert {"ix_products_category_id", "ix_orders_user_id_id"} <= indexes
    db.close()


def test_without_startup_the_database_is_unavailable() -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await problem(client.get("/products/1"), 503, "unavailable")

    asyncio.run(main())


def test_idempotency_keys_are_kept_in_the_database(run: Run) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        body = {"name": "Kettle", "price": "30.00", "category": "Kitchen"}
        key = {"idempotency-key": "2f1c-retry"}
        first = await ok(client.post("/products", json=body, headers=key), 201)
        again = await ok(client.post("/products", json=body, headers=key), 201)
        assert again == first
        rpc = {"product": body, "idempotencyKey": "2f1c-retry"}
        r = await client.post("/catalog.v1.CatalogService/CreateProduct", json=rpc)
        assert r.status_code == 200, r.text
        assert r.json()["id"] == str(first["id"])  # proto3 JSON: int64 as a string
        products = (await ok(client.get("/products")))["products"]
        assert [p["id"] for p in products] == [first["id"]]  # one create, three calls

        changed = {**body, "price": "31.00"}
        await problem(client.post("/products", json=changed, headers=key), 422, "invalid_argument")
        long_key = {"idempotency-key": "k" * 256}
        await problem(
            client.post("/products", json=body, headers=long_key), 400, "invalid_argument"
        )
        assert len((await ok(client.get("/products")))["products"]) == 1

        user = (await ok(client.post("/users", json={"name": "A", "email": "a@b.co"}), 201))["id"]
        order = {"product_id": first["id"], "quantity": 2}
        orders_url = f"/users/{user}/orders"
        placed = await ok(client.post(orders_url, json=order, headers=key), 201)
        # Keys are per method: the product's key does not answer for the order.
        assert placed["product_id"] == first["id"]
        assert await ok(client.post(orders_url, json=order, headers=key), 201) == placed
        assert len((await ok(client.get(orders_url)))["orders"]) == 1

    run(scenario)
