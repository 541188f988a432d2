"""docs/client.md: its examples (docs_src/client/) run, and its tables match the code."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path

import pytest

from docs_src.quickstart.app import app, service
from tests.e2e.threaded import serve, serve_grpc
from twofold import Code
from twofold.cli.call import exit_status
from twofold.client.generator import generate

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs/client.md").read_text()


@pytest.mark.parametrize("protocol", ["jsonrpc", "connect"])  # ShelfStats has no REST route
def test_calling_in_process(protocol: str) -> None:
    from docs_src.client.calling import main

    result = asyncio.run(main(app, protocol))
    assert result["again"] == result["book"] and result["book"].title == "Dune"
    assert result["stats"].count >= 1
    assert result["missing"] == "book 999 not found"


def test_calling_over_http_and_the_options() -> None:
    from docs_src.client.calling import main
    from docs_src.client.options import report

    with serve(app) as url:
        book = asyncio.run(main(url))["book"]
        assert book.price == Decimal("9.99")
        assert report(url, "t0ken") == ["Dune"]  # the shelf's first book


def test_testing_example_passes() -> None:
    from docs_src.client import testing

    testing.test_a_missing_book_is_not_found()


def test_generated_example_and_module() -> None:
    from docs_src.client.generated import count, shelve

    book, stats = shelve(app)
    assert book.title == "Emma" and stats.count >= 1
    assert asyncio.run(count(app)) == stats.count
    written = (ROOT / "docs_src/client/shelf_client.py").read_text()
    assert written == generate([service], command="twofold client docs_src.quickstart.app:app"), (
        "docs_src/client/shelf_client.py is stale: run "
        "twofold client docs_src.quickstart.app:app -o docs_src/client/shelf_client.py"
    )


def test_exit_status_table() -> None:
    cli = (ROOT / "docs/cli.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| (\d+) \|$", cli, re.M))
    assert {c.wire_name: str(exit_status(c)) for c in Code} == rows


@pytest.mark.parametrize("protocol", ["connect", "connect-proto", "grpc-web"])
def test_streaming_in_process(protocol: str) -> None:
    from docs_src.client.streaming import trade
    from docs_src.streaming.ticker import app as ticker

    quotes, total = trade(ticker, protocol)
    assert [q.cents for q in quotes] == [100, 101, 102]
    assert (total.trades, total.shares) == (2, 350)


def test_streaming_over_grpc() -> None:
    from docs_src.client.streaming import first_quote, trade
    from docs_src.streaming.ticker import app as ticker

    with serve_grpc(ticker) as address:
        quote, total = asyncio.run(first_quote(address))
        assert [q.symbol for q in trade(address, "grpc")[0]] == ["ACME"] * 3
    assert quote.cents == 100 and total.shares == 10
