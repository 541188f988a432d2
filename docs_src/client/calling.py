"""Calling the shelf service with twofold.AsyncClient, in process or over HTTP.

``main(app)`` runs against the app itself (no socket); ``main(url)`` against
a server, e.g. ``twofold serve docs_src.quickstart.app:app``.
"""

from decimal import Decimal
from typing import Any

from docs_src.quickstart.app import service
from twofold import AsyncClient, Code, Error
from twofold.client import Target


async def main(target: Target, protocol: str = "connect") -> dict[str, Any]:
    async with AsyncClient(service, target, protocol=protocol) as client:
        # A method is its Python name; its arguments are the request's fields.
        book = await client.create_book(book={"title": "Dune", "price": Decimal("9.99")})
        again = await client.get_book(id=book.id)  # a Book, like the handler returned
        stats = await client.call("ShelfStats")  # or by RPC name
        try:
            await client.get_book(id=999)
        except Error as exc:  # the server's error: same code, message and details
            assert exc.code is Code.NOT_FOUND
            missing = exc.message
    return {"book": book, "again": again, "stats": stats, "missing": missing}
