"""Parity cases: each call declared once, run and reported on every wire."""

import pytest

from docs_src.testing.shelf import Book, app
from twofold import App, Code
from twofold.testing.parity import WIRES, Case, Cases, Wires


@pytest.fixture
def twofold_app() -> App:
    return app


# One test per case and wire: found[rest], found[jsonrpc], ... found[grpc].
test_shelf = Cases(
    Case("found", "get_book", {"id": 1}, expect=Book(1, "Dune")),
    Case("missing", "get_book", {"id": 9}, error=Code.NOT_FOUND),
    Case("id_zero", "get_book", {"id": 0}, error=Code.INVALID_ARGUMENT, violations=["id"]),
    # Protobuf cannot hold "one" in an int64: skipped on connect-proto, grpc-web, grpc.
    Case("id_text", "get_book", {"id": "one"}, error="invalid_argument", violations=["id"]),
    # No REST route, and a write is no Connect GET: skipped on rest, rest-xml, connect-get.
    Case("adds", "add_book", {"title": "Emma"}, expect={"id": 2, "title": "Emma"}),
)


# A test of your own on every wire, through the same fixture.
@pytest.mark.parametrize("wire", WIRES)
def test_found_on_every_wire(twofold_parity: Wires, wire: str) -> None:
    outcome = twofold_parity.call(wire, "get_book", {"id": 1})
    assert outcome.ok and outcome.data == Book(1, "Dune")
    assert outcome.violations == []
