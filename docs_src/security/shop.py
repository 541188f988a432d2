"""docs/security.md: a service that declares who may call what."""

from __future__ import annotations

import os
from typing import Any

import msgspec

from twofold import (
    AUTHENTICATED,
    ApiKeys,
    App,
    Authentication,
    Context,
    Identity,
    JwtBearer,
    Service,
    StoredApiKey,
    requires,
)
from twofold.interceptors.bearer import DEVELOPMENT_SECRET


class Invoice(msgspec.Struct):
    id: int
    customer: str
    total: int


INVOICES: dict[int, Invoice] = {}


def own_invoice(identity: Identity, request: Any) -> bool:
    """A customer sees only their invoices; billing staff see all."""
    invoice = INVOICES.get(request.id)
    return invoice is None or invoice.customer == identity.subject or "billing" in identity.scopes


# Every method needs an identity unless it says otherwise.
service = Service("shop.v1", security=AUTHENTICATED)
invoices = service.resource("invoices")


@invoices.get
@requires(check=own_invoice)
async def get_invoice(id: int) -> Invoice:
    return INVOICES[id]


@invoices.create
@requires("invoices:write")
async def create_invoice(invoice: Invoice, ctx: Context) -> Invoice:
    assert ctx.identity is not None  # who is calling, from the token or key
    INVOICES[invoice.id] = invoice
    return invoice


authentication = Authentication(
    JwtBearer(
        secret=os.environ.get("SHOP_JWT_SECRET", DEVELOPMENT_SECRET),
        audience="shop",
        issuer="https://login.example.com",
    ),
    # Only the SHA-256 of each key is kept: StoredApiKey.of hashes it.
    ApiKeys([StoredApiKey.of("robot-key-1", "billing-robot", ["invoices:write", "billing"])]),
)
app = App(service, interceptors=[authentication])
