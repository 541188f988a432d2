"""docs/definition.md's Bounds example: a price with bounds, and every violation."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import Meta

from twofold import App, Bounds, Service

Price = Annotated[
    Decimal,
    Bounds(ge=0, le=5000, places=2),  # published and enforced alike
    Meta(description="A price in euros, at most 5000.", examples=["22.00"]),
]


class Offer(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, Meta(min_length=1)]
    price: Price
    tags: list[Annotated[str, Meta(max_length=10)]] = []


class Listed(Offer, kw_only=True):
    id: int


service = Service("shop.v1")
offers = service.resource("offers")
OFFERS: dict[int, Offer] = {}


@offers.create
async def create_offer(offer: Offer) -> Listed:
    listed = Listed(id=len(OFFERS) + 1, **msgspec.structs.asdict(offer))
    OFFERS[listed.id] = offer
    return listed


app = App(service)
