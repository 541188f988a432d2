"""A small shelf for the parity kit's examples: a read with a REST route, a write without."""

from __future__ import annotations

from typing import Annotated

import msgspec

from twofold import App, Code, Error, Idempotency, Service

service = Service("shelf.v1")


class Book(msgspec.Struct):
    id: int
    title: str


BOOKS = {1: Book(1, "Dune")}


@service.procedure(http=("GET", "/books/{id}"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def get_book(id: Annotated[int, msgspec.Meta(ge=1)]) -> Book:
    """A book by its id."""
    book = BOOKS.get(id)
    if book is None:
        raise Error(Code.NOT_FOUND, f"no book {id}")
    return book


@service.procedure
async def add_book(title: Annotated[str, msgspec.Meta(min_length=1)]) -> Book:
    """Shelve a book: an RPC with no REST route."""
    return Book(len(BOOKS) + 1, title)


app = App(service)
