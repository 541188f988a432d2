"""A small library, served over Connect (and REST, and JSON-RPC) by one App."""

from datetime import datetime
from typing import Annotated

import msgspec

from twofold import App, Code, Error, Service

library = Service("library.v1")
books = library.resource("books")

# Bounds that fit in 32 bits make an int32: a JSON number on the Connect wire.
# A bare int is an int64, which travels as a string.
PageCount = Annotated[int, msgspec.Meta(ge=1, le=100_000)]


class Book(msgspec.Struct, kw_only=True):
    id: int = 0
    title: str
    page_count: PageCount
    published_at: datetime | None = None


BOOKS = {
    1: Book(id=1, title="Dune", page_count=412),
    2: Book(id=2, title="Solaris", page_count=204),
}


@books.get
async def get_book(id: int) -> Book:
    """Fetch one book; a read, so Connect also serves it by GET."""
    book = BOOKS.get(id)
    if book is None:
        raise Error(Code.NOT_FOUND, f"no book {id}")
    return book


@books.create
async def create_book(book: Book) -> Book:
    """Add a book; it gets the next id."""
    book = msgspec.structs.replace(book, id=max(BOOKS) + 1)
    BOOKS[book.id] = book
    return book


app = App(library)
