"""docs/definition.md's example: every kind of declaration, in one library service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec

from twofold import App, Code, Context, Error, Idempotency, Service

service = Service("library.v1")  # library.v1.LibraryService
loans = Service("library.v1", "Loans")  # library.v1.Loans


class Book(msgspec.Struct):
    """A book in the catalog."""

    id: int
    title: str
    copies: int


class NewBook(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1)]
    copies: Annotated[int, msgspec.Meta(ge=0)] = 1


class BookPatch(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1)] | msgspec.UnsetType = msgspec.UNSET
    copies: Annotated[int, msgspec.Meta(ge=0)] | msgspec.UnsetType = msgspec.UNSET


class Review(msgspec.Struct):
    id: int
    book_id: int
    stars: int


class Stats(msgspec.Struct):
    books: int
    copies: int


@dataclass
class Search:
    text: str
    limit: int = 10


class SearchResult(msgspec.Struct):
    books: list[Book]


BOOKS: dict[int, Book] = {}
REVIEWS: dict[int, Review] = {}

books = service.resource("books")  # key "id": /books/{id}


@books.get
async def get_book(id: int) -> Book:
    """One book by id."""
    if id not in BOOKS:
        raise Error(Code.NOT_FOUND, f"book {id} not found")
    return BOOKS[id]


@books.create
async def create_book(book: NewBook, ctx: Context) -> Book:
    """Add a book; the caller's request id, if any, is echoed."""
    created = Book(id=len(BOOKS) + 1, title=book.title, copies=book.copies)
    BOOKS[created.id] = created
    if "x-request-id" in ctx.headers:
        ctx.response_headers["x-request-id"] = ctx.headers["x-request-id"]
    return created


@books.update
async def update_book(id: int, book: BookPatch) -> Book:
    """Change only the fields the client sent."""
    current = await get_book(id)
    changes = {f: v for f in ("title", "copies") if (v := getattr(book, f)) is not msgspec.UNSET}
    BOOKS[id] = updated = msgspec.structs.replace(current, **changes)
    return updated


@books.action("withdraw")
async def withdraw_book(id: int, reason: str = "") -> Book:
    """POST /books/{id}:withdraw: no copies left to lend."""
    current = await get_book(id)
    BOOKS[id] = withdrawn = msgspec.structs.replace(current, copies=0)
    return withdrawn


reviews = books.resource("reviews")  # /books/{book_id}/reviews/{review_id}


@reviews.create
async def create_review(book_id: int, stars: Annotated[int, msgspec.Meta(ge=1, le=5)]) -> Review:
    """Rate a book from 1 to 5 stars."""
    await get_book(book_id)
    review = Review(id=len(REVIEWS) + 1, book_id=book_id, stars=stars)
    REVIEWS[review.id] = review
    return review


@service.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
async def library_stats() -> Stats:
    """How many books and copies there are (RPC only: no REST route)."""
    return Stats(books=len(BOOKS), copies=sum(b.copies for b in BOOKS.values()))


@service.procedure(http=("POST", "/books:search"))
async def search_books(query: Search, /) -> SearchResult:
    """A procedure that takes a whole message, with a REST binding too."""
    found = [b for b in BOOKS.values() if query.text.lower() in b.title.lower()]
    return SearchResult(books=found[: query.limit])


@loans.procedure
def lend_book(book_id: int, borrower: str) -> None:
    """A plain function: it runs in a worker thread, off the event loop."""
    if book_id not in BOOKS:
        raise Error(Code.NOT_FOUND, f"book {book_id} not found")


app = App([service, loans])
