"""docs/compatibility.md: the shop in a pull request: a field gone, a bound narrowed."""

from __future__ import annotations

from typing import Annotated

import msgspec

from twofold import Service


class NewItem(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]  # was 200
    price: str
    note: str | None = None  # new and optional: breaks nothing


class Item(msgspec.Struct):
    """An item for sale."""

    id: int
    name: str
    price: str
    note: str | None = None


service = Service("shop.v1")  # the same lock file as shop_v1
items = service.resource("items")


@items.get
async def get_item(id: int) -> Item:
    """Get an item."""
    raise NotImplementedError


@items.create
async def create_item(item: NewItem) -> Item:
    """Add an item."""
    raise NotImplementedError
