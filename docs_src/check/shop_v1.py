"""docs/compatibility.md: the shop as it was released."""

from __future__ import annotations

from typing import Annotated

import msgspec

from twofold import Service


class NewItem(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    price: str
    colour: str = ""


class Item(msgspec.Struct):
    """An item for sale."""

    id: int
    name: str
    price: str
    colour: str = ""


service = Service("shop.v1")  # numbered by docs_src/check/twofold.lock.json
items = service.resource("items")


@items.get
async def get_item(id: int) -> Item:
    """Get an item."""
    raise NotImplementedError


@items.create
async def create_item(item: NewItem) -> Item:
    """Add an item."""
    raise NotImplementedError
