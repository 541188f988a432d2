"""Using a generated client module: every method and message typed.

``shelf_client.py`` was written by
``twofold client docs_src.quickstart.app:app -o docs_src/client/shelf_client.py``.
"""

from decimal import Decimal

from docs_src.client.shelf_client import (
    AsyncShelfServiceClient,
    Book,
    NewBook,
    ShelfServiceClient,
    Stats,
)
from twofold.client import Target


def shelve(target: Target) -> tuple[Book, Stats]:
    with ShelfServiceClient(target, protocol="jsonrpc", timeout=5.0) as shelf:
        book = shelf.create_book(book=NewBook(title="Emma", price=Decimal("5.00")))
        return book, shelf.shelf_stats()  # mypy knows: a Book, then Stats


async def count(target: Target) -> int:
    async with AsyncShelfServiceClient(target) as shelf:
        stats = await shelf.shelf_stats()
        return stats.count
