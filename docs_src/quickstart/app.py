"""The README's example: one definition, served as REST, JSON-RPC and Connect."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from twofold import App, Code, Error, Idempotency, Service


class Book(msgspec.Struct):
    """A book on the shelf."""

    id: int
    title: str
    price: Decimal


class NewBook(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    price: Decimal


class Stats(msgspec.Struct):
    count: int
    total: Decimal


service = Service("shelf.v1")  # serves as shelf.v1.ShelfService
books = service.resource("books")
SHELF: dict[int, Book] = {}


@books.create
async def create_book(book: NewBook) -> Book:
    """Put a book on the shelf."""
    if book.price < 0:
        # msgspec bounds apply to int and float only; a Decimal is checked here.
        raise Error.invalid("book.price", "must not be negative")
    created = Book(id=len(SHELF) + 1, title=book.title, price=book.price)
    SHELF[created.id] = created
    return created


@books.get
async def get_book(id: int) -> Book:
    """Fetch one book."""
    if id not in SHELF:
        raise Error(Code.NOT_FOUND, f"book {id} not found")
    return SHELF[id]


@service.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
async def shelf_stats() -> Stats:
    """Count the books and add up their prices (an RPC-only procedure)."""
    return Stats(count=len(SHELF), total=sum((b.price for b in SHELF.values()), Decimal(0)))


app = App(service)
