"""docs/security.md: its example module does what the page says."""

from __future__ import annotations

import asyncio

import httpx

from docs_src.security.shop import INVOICES, app
from twofold.interceptors.bearer import DEVELOPMENT_SECRET, issue


def token(subject: str, *scopes: str) -> dict[str, str]:
    value = issue(
        DEVELOPMENT_SECRET, subject, scopes, audience="shop", issuer="https://login.example.com"
    )
    return {"authorization": f"Bearer {value}"}


def test_the_security_example_serves_what_the_page_says() -> None:
    INVOICES.clear()

    async def main() -> None:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as c:
            invoice = {"id": 1, "customer": "alice", "total": 100}
            r = await c.post("/invoices", json=invoice)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == 'Bearer realm="twofold"'
            r = await c.post("/invoices", json=invoice, headers=token("alice"))
            assert r.status_code == 403 and r.json()["code"] == "permission_denied"
            robot = {"x-api-key": "robot-key-1"}
            r = await c.post("/invoices", json=invoice, headers=robot)
            assert r.status_code == 201
            assert (await c.get("/invoices/1", headers=token("alice"))).status_code == 200
            assert (await c.get("/invoices/1", headers=token("bob"))).status_code == 403
            assert (await c.get("/invoices/1", headers=token("bob", "billing"))).status_code == 200
            r = await c.post("/shop.v1.ShopService/GetInvoice", json={"id": 1})
            assert r.status_code == 401 and r.json()["code"] == "unauthenticated"

    asyncio.run(main())
