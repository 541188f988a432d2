"""The messages of the catalog API: what goes over the wire, whatever the protocol.

Docstrings and ``Meta`` constraints are part of the contract: they become the
OpenAPI descriptions and the validation every protocol applies before a
handler runs. Prices are ``Decimal`` and travel as strings ("22.00"), never as
floats; their rules (not negative, below a billion, at most two decimal places)
are ``Price``'s ``Bounds``, which every protocol holds a price to before the
handler runs.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from twofold import Bounds

Id = Annotated[int, Meta(ge=1, le=2**63 - 1, description="A server-assigned identifier.")]
PageSize = Annotated[int, Meta(ge=1, le=100, description="Most items in one page.")]
# PostgreSQL's text cannot hold U+0000 (SQLite's can): every text the catalog
# stores or looks up refuses it, so the API is the same whichever database
# serves it. (Raw string: both Python and ECMA-262 read \x00 in a pattern.)
_NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=_NO_NUL)]
Category = Annotated[str, Meta(min_length=1, max_length=100, pattern=_NO_NUL, examples=["Clothes"])]
CategoryFilter = Annotated[str, Meta(pattern=_NO_NUL)]
Tag = Annotated[str, Meta(min_length=1, max_length=50, pattern=_NO_NUL)]
Tags = Annotated[list[Tag], Meta(max_length=20)]
# Declared once: published (a pattern for the sign and places, x-minimum and
# x-maximum for the values) and enforced on every protocol as published, so
# that a client (or a fuzzer) can tell a valid price from the schema alone.
Price = Annotated[
    Decimal,
    Bounds(ge=0, le=Decimal("999999999.99"), places=2),
    Meta(
        description="A price in the catalog's currency: not negative, below a billion, "
        "at most 2 decimal places.",
        examples=["22.00"],
    ),
]
# No \s: Python's also matches \x1c-\x1f, ECMA-262's (JSON Schema's) does not, so
# the two dialects would disagree on what an email is. Spelled as one class
# both read alike: no @, no ASCII control character or space.
_EMAIL_PART = r"[^@\x00-\x20\x7f]+"
Email = Annotated[
    str,
    Meta(
        pattern=rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$",
        max_length=254,
        examples=["ada@example.com"],
    ),
]
Quantity = Annotated[int, Meta(ge=1, le=1_000_000)]
Etag = Annotated[
    str,
    Meta(
        description="The version of the resource, sent back in If-Match (or as etag) "
        "to make a write conditional."
    ),
]
UpdatedAt = Annotated[
    datetime,
    Meta(
        description="When the resource last changed: its Last-Modified, sent back in "
        "If-Unmodified-Since (or as unmodified_since) to make a write conditional."
    ),
]
UnmodifiedSince = Annotated[
    datetime | None,
    Meta(description="Write only if the resource has not changed since (else ABORTED)."),
]
NextPageToken = Annotated[
    str, Meta(description="Pass as page_token to get the next page; empty on the last page.")
]


class Product(msgspec.Struct, kw_only=True):
    """A product of the catalog."""

    id: int
    name: str
    price: Decimal
    category: str
    tags: list[str]
    etag: Etag = ""
    # Last, so that declaration order keeps the protobuf numbers of the lock
    # (a client built from the methods alone numbers fields in that order).
    updated_at: UpdatedAt


class NewProduct(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A product to create, or the full new state of one (replace)."""

    name: Name
    price: Price
    category: Category
    tags: Tags = []


class ProductPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A partial update: only the fields given change, the others keep their value."""

    name: Name | UnsetType = UNSET
    price: Price | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET


class ListProductsResponse(msgspec.Struct, kw_only=True):
    """One page of products, in ascending id order."""

    products: list[Product]
    next_page_token: NextPageToken = ""


class User(msgspec.Struct, kw_only=True):
    """A customer who places orders."""

    id: int
    name: str
    email: str


class NewUser(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A user to create; the email must not be taken."""

    name: Name
    email: Email


class ListUsersResponse(msgspec.Struct, kw_only=True):
    """One page of users, in ascending id order."""

    users: list[User]
    next_page_token: NextPageToken = ""


class OrderStatus(enum.Enum):
    """Where an order is in its life."""

    OPEN = "open"
    CANCELLED = "cancelled"


class Order(msgspec.Struct, kw_only=True):
    """A user's order of some quantity of one product."""

    id: int
    user_id: int
    product_id: int
    quantity: int
    total: Annotated[
        Decimal, Meta(description="Price times quantity, at the price when it was placed.")
    ]
    status: OrderStatus
    etag: Etag = ""


class NewOrder(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An order to place; the server computes its total."""

    product_id: Id
    quantity: Quantity


class ListOrdersResponse(msgspec.Struct, kw_only=True):
    """One page of a user's orders, in ascending id order."""

    orders: list[Order]
    next_page_token: NextPageToken = ""


class CategorySummary(msgspec.Struct, kw_only=True):
    """The products of one category: how many, and what they are worth together."""

    category: str
    product_count: int
    total_value: Decimal


class Report(msgspec.Struct, kw_only=True):
    """The catalog by category, sorted by category name."""

    categories: list[CategorySummary]
