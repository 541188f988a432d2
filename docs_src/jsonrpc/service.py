"""A small bookshop, served over JSON-RPC 2.0 (and REST) by one App."""

import msgspec

from twofold import App, Code, Error, Service

shop = Service("shop.v1")
books = shop.resource("books")


class Book(msgspec.Struct):
    id: int
    title: str
    author: str


class SearchResult(msgspec.Struct):
    books: list[Book]


BOOKS = {
    1: Book(1, "Dune", "Frank Herbert"),
    2: Book(2, "Solaris", "Stanisław Lem"),
}
VISITS: list[str] = []


@books.get
async def get_book(id: int) -> Book:
    """Fetch one book by id."""
    book = BOOKS.get(id)
    if book is None:
        raise Error(Code.NOT_FOUND, f"no book {id}")
    return book


@shop.procedure
async def search(query: str, limit: int = 10) -> SearchResult:
    """Books whose title contains ``query``, at most ``limit`` of them."""
    found = [b for b in BOOKS.values() if query.lower() in b.title.lower()]
    return SearchResult(found[:limit])


@shop.procedure
async def count_visit(page: str) -> None:
    """Record a page view; clients send it as a notification."""
    VISITS.append(page)


app = App(shop)
