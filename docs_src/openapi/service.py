"""A lending library: the service whose OpenAPI document docs/openapi.md shows."""

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from twofold import App, Code, Error, Idempotency, Service

library = Service("library.v1", description="The books of a small lending library.")
books = library.resource("books")

Isbn = Annotated[str, Meta(pattern="^[0-9]{13}$", description="13 digits, no dashes.")]
Title = Annotated[str, Meta(min_length=1, max_length=200)]
Copies = Annotated[int, Meta(ge=0, le=1000)]


class Book(msgspec.Struct):
    """A book on the shelves."""

    id: int
    isbn: Isbn
    title: Title
    copies: Copies = 1
    subtitle: str | None = None


class NewBook(msgspec.Struct, forbid_unknown_fields=True):
    """What a librarian types in to add a book."""

    isbn: Isbn
    title: Title
    copies: Copies = 1
    subtitle: str | None = None


class Overdue(msgspec.Struct):
    book_ids: list[int]
    as_of: datetime


BOOKS: dict[int, Book] = {}


@books.get
async def get_book(id: int) -> Book:
    """Fetch one book."""
    if id not in BOOKS:
        raise Error(Code.NOT_FOUND, f"no book {id}")
    return BOOKS[id]


@books.create
async def create_book(book: NewBook) -> Book:
    """Add a book to the catalogue."""
    created = Book(len(BOOKS) + 1, book.isbn, book.title, book.copies, book.subtitle)
    BOOKS[created.id] = created
    return created


@library.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
async def list_overdue(days: Annotated[int, Meta(ge=1, le=365)] = 14) -> Overdue:
    """The books out for more than ``days`` days."""
    return Overdue(sorted(BOOKS), datetime.now(UTC))


app = App(library, title="Library", version="1.0.0")
