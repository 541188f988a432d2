"""Testing an app with the sync client and no server: a plain pytest function."""

from decimal import Decimal

from docs_src.quickstart.app import app, service
from twofold import Client, Code, Error


def test_a_missing_book_is_not_found() -> None:
    with Client(service, app) as client:  # the app itself: no socket, no port
        created = client.create_book(book={"title": "Emma", "price": Decimal("5.00")})
        assert client.get_book(id=created.id) == created
        try:
            client.get_book(id=12345)
        except Error as exc:
            assert exc.code is Code.NOT_FOUND
        else:
            raise AssertionError("expected NOT_FOUND")
