"""The catalog's security matrix: every method x every protocol x every kind of caller.

Each protocol gets a fresh catalog (its own SQLite file, its lifespan run)
served in process for HTTP and by a real gRPC server. A spy interceptor just
inside Authentication records which handlers were reached, and a snapshot of
every table shows that a refused call changed nothing.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import select

from examples.catalog import service
from examples.catalog.database import (
    DEPENDENCIES,
    Database,
    OrderRow,
    ProductRow,
    SqlIdempotencyStore,
    UserRow,
)
from examples.catalog.security import AUDIENCE_ENV, InsecureConfiguration, authentication
from tests.asgi import running
from twofold import App, CallNext, Context, Deadlines, IdempotencyKeys
from twofold.interceptors.bearer import DEVELOPMENT_SECRET
from twofold.testing.parity import AsyncWires, serve

AUDIENCE = "catalog"
REACHED: list[str] = []


async def spy(ctx: Context, request: Any, call_next: CallNext) -> Any:
    REACHED.append(ctx.method.name)
    return await call_next(request, ctx)


def token(subject: str, scopes: str, *, secret: str = DEVELOPMENT_SECRET, **claims: Any) -> str:
    now = int(time.time())
    base = {"sub": subject, "aud": AUDIENCE, "exp": now + 300, "scope": scopes}
    return jwt.encode({**base, **claims}, secret.encode(), algorithm="HS256")


ALL = "products:write users:write orders:write"
PUBLIC = {
    "GetProduct",
    "ListProducts",
    "GetUser",
    "ListUsers",
    "GenerateReport",
    "WatchPrices",
    "QuotePrices",
}
OWNED = {"GetOrder", "ListOrders"}  # the owner needs no scope
ORDERS = {"CreateOrder", "GetOrder", "ListOrders", "CancelOrder"}
# In the order they run: the successful call of one may not spoil the next.
METHODS = [
    "GetProduct",
    "ListProducts",
    "CreateProduct",
    "UpdateProduct",
    "ReplaceProduct",
    "DeleteProduct",
    "GetUser",
    "ListUsers",
    "CreateUser",
    "GetOrder",
    "ListOrders",
    "CreateOrder",
    "CancelOrder",
    "GenerateReport",
]
CASES = [
    "no credentials",
    "malformed token",
    "wrong signature",
    "expired",
    "wrong audience",
    "valid without scope",
    "other user's order",
    "valid with scope",
]


def expected(case: str, rpc: str) -> str | None:
    if case == "no credentials":
        return None if rpc in PUBLIC else "unauthenticated"
    if case in ("malformed token", "wrong signature", "expired", "wrong audience"):
        return "unauthenticated"
    if case == "valid without scope":
        return None if rpc in PUBLIC | OWNED else "permission_denied"
    if case == "other user's order":
        return "permission_denied"
    return None


def headers(case: str, alice: int) -> dict[str, str]:
    me = str(alice)
    value = {
        "no credentials": None,
        "malformed token": "not-a-token",
        "wrong signature": token(me, ALL, secret="another secret, at least 32 bytes long"),
        "expired": token(me, ALL, exp=int(time.time()) - 600),
        "wrong audience": token(me, ALL, aud="elsewhere"),
        "valid without scope": token(me, ""),
        "other user's order": token(me, ALL),
        "valid with scope": token(me, ALL),
    }[case]
    return {} if value is None else {"authorization": f"Bearer {value}"}


async def snapshot(app: App) -> list[Any]:
    async with app.provided(Database).transaction() as session:
        rows: list[Any] = []
        for table in (ProductRow, UserRow, OrderRow):
            for row in (await session.scalars(select(table))).all():
                rows.append({c.key: getattr(row, c.key) for c in table.__table__.columns})
        return rows


async def seed(w: AsyncWires, admin: dict[str, str]) -> dict[str, int]:
    async def make(rpc: str, payload: dict[str, Any]) -> int:
        result = await w.call("connect", rpc, payload, admin)
        assert result.code is None, result
        return int(result.output["id"])

    product = {"name": "Kettle", "price": "20.00", "category": "kitchen"}
    ids = {
        "product": await make("CreateProduct", {"product": product}),
        "doomed": await make("CreateProduct", {"product": product}),
        "alice": await make("CreateUser", {"user": {"name": "Alice", "email": "a@example.com"}}),
        "bob": await make("CreateUser", {"user": {"name": "Bob", "email": "b@example.com"}}),
    }
    for owner in ("alice", "bob"):
        order = {"product_id": ids["product"], "quantity": 1}
        ids[f"{owner}_order"] = await make("CreateOrder", {"user_id": ids[owner], "order": order})
    return ids


def payload(rpc: str, ids: dict[str, int], case: str) -> dict[str, Any]:
    owner = "bob" if case == "other user's order" else "alice"
    user, order = ids[owner], ids[f"{owner}_order"]
    product = {"name": "Teapot", "price": "30.00", "category": "kitchen"}
    return {
        "GetProduct": {"id": ids["product"]},
        "ListProducts": {},
        "CreateProduct": {"product": product},
        "UpdateProduct": {"id": ids["product"], "product": {"name": "Renamed"}},
        "ReplaceProduct": {"id": ids["product"], "product": product},
        "DeleteProduct": {"id": ids["doomed"]},
        "GetUser": {"id": user},
        "ListUsers": {},
        "CreateUser": {"user": {"name": "Carol", "email": "c@example.com"}},
        "GetOrder": {"user_id": user, "order_id": order},
        "ListOrders": {"user_id": user},
        "CreateOrder": {"user_id": user, "order": {"product_id": ids["product"], "quantity": 2}},
        "CancelOrder": {"user_id": user, "order_id": order},
        "GenerateReport": {},
    }[rpc]


@pytest.fixture
def catalog_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    monkeypatch.setenv("CATALOG_PAGE_TOKEN_SECRET", "a page token secret for the tests")
    monkeypatch.setenv(AUDIENCE_ENV, AUDIENCE)
    monkeypatch.delenv("CATALOG_JWT_SECRET", raising=False)


@pytest.mark.usefixtures("catalog_env")
def test_every_method_and_caller(protocol: str) -> None:
    app: App = App(
        service,
        dependencies=DEPENDENCIES,
        interceptors=[
            authentication(),
            spy,
            Deadlines(),  # WatchPrices declares a @lifetime
            IdempotencyKeys(SqlIdempotencyStore(lambda: app.provided(Database))),
        ],
    )

    async def main() -> None:
        async with running(app), serve(app, lifespan=False) as w:
            admin = token("admin", f"{ALL} orders:admin")
            ids = await seed(w, {"authorization": f"Bearer {admin}"})
            for rpc in METHODS:
                if protocol in ("rest", "rest-xml") and w.methods[rpc].http is None:
                    continue  # a procedure without a REST route
                for case in CASES:
                    if case == "other user's order" and rpc not in ORDERS:
                        continue
                    code = expected(case, rpc)
                    before = await snapshot(app)
                    REACHED.clear()
                    result = await w.call(
                        protocol, rpc, payload(rpc, ids, case), headers(case, ids["alice"])
                    )
                    where = (rpc, case)
                    assert result.code == code, (where, result)
                    if code is not None:
                        assert REACHED == [], where
                        assert await snapshot(app) == before, where
                    else:
                        assert [rpc] == REACHED, where

    asyncio.run(main())


STREAMS = ["WatchPrices", "ImportProducts", "QuotePrices"]
NEW = {"name": "Imported", "price": "5.00", "category": "import"}
STREAM_PAYLOADS = {
    "WatchPrices": [{"category": ""}],
    "ImportProducts": [{"product": NEW}, {"product": {**NEW, "name": "Imported too"}}],
    # The first product ImportProducts created (ids start at 1), and one that never was.
    "QuotePrices": [{"product_id": 1}, {"product_id": 10**12}],
}


def expected_stream(case: str, rpc: str, protocol: str) -> str | None:
    if protocol in ("jsonrpc", "xmlrpc"):
        return "unimplemented"  # the envelope wires carry no streams: refused before any check
    code = expected(case, rpc)
    if code is None and rpc == "WatchPrices":
        # Allowed: it never ends by itself, so the client's deadline ends it.
        return "deadline_exceeded"
    return code


@pytest.mark.usefixtures("catalog_env")
def test_every_stream_and_caller(protocol: str) -> None:
    app = App(service, dependencies=DEPENDENCIES, interceptors=[authentication(), spy, Deadlines()])

    async def main() -> None:
        async with running(app), serve(app, lifespan=False) as w:
            for rpc in STREAMS:
                if protocol in ("rest", "rest-xml") and w.methods[rpc].http is None:
                    continue  # a client stream has no REST route
                for case in CASES:
                    if case == "other user's order":
                        continue
                    code = expected_stream(case, rpc, protocol)
                    before = await snapshot(app)
                    REACHED.clear()
                    result = await w.stream(
                        protocol, rpc, STREAM_PAYLOADS[rpc], headers(case, 1), timeout_ms=500
                    )
                    where = (rpc, case)
                    assert result.code == code, (where, result)
                    if code in ("deadline_exceeded", None):
                        assert [rpc] == REACHED, where
                    else:
                        assert REACHED == [], where
                        assert await snapshot(app) == before, where
                    if code is None and rpc == "ImportProducts":  # int64: a string in JSON
                        [summary] = result.output
                        assert int(summary["created"]) == 2, where
                    if code is None and rpc == "QuotePrices":
                        assert quotes(result.data) == [(1, True, "5.00"), (10**12, False, None)]

    asyncio.run(main())


def quotes(data: Any) -> list[tuple[int, bool, str | None]]:
    """QuotePrices' answers, whatever the wire: (product_id, found, price)."""
    return [(q.product_id, q.found, None if q.price is None else str(q.price)) for q in data]


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CATALOG_JWT_SECRET", raising=False)
    monkeypatch.setenv("CATALOG_ENV", "production")
    with pytest.raises(InsecureConfiguration, match="CATALOG_JWT_SECRET"):
        authentication()
    monkeypatch.setenv("CATALOG_JWT_SECRET", "a production secret, long enough for HS256")
    authentication()
