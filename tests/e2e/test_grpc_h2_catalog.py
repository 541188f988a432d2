"""The catalog over native gRPC with no grpcio on the client (``transport="h2"``):
the same answers and the same errors, details included, as over grpcio's channel,
from ``twofold serve``'s grpcio port and from ``--server pyvoy``'s one port."""

from __future__ import annotations

import contextlib
import importlib.util
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from examples.catalog import service
from tests.e2e.databases import Database
from tests.e2e.server import Server, start
from tests.tokens import ADMIN
from twofold import Client, Code, Error
from twofold.client import BearerToken
from twofold.core.details import BadRequest, FieldViolation

pytestmark = pytest.mark.postgresql


@pytest.fixture(scope="module", params=["grpcio", "pyvoy"])
def served(
    request: pytest.FixtureRequest,
    catalog: Server,
    database: Database,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    if request.param == "grpcio":
        yield catalog
        return
    if importlib.util.find_spec("pyvoy") is None:
        pytest.skip("pyvoy is not installed (pip install twofold[pyvoy])")
    tmp: Path = tmp_path_factory.mktemp("catalog-pyvoy")
    server = start("examples.catalog:app", tmp, database.env(tmp), "--server", "pyvoy")
    yield server
    server.stop()


def test_calls_and_errors_match_grpcio(served: Server) -> None:
    catalog = served
    category = f"h2-{uuid.uuid4().hex[:8]}"
    options = {"protocol": "grpc", "auth": BearerToken(ADMIN), "timeout": 20}
    with (
        Client(service, catalog.grpc_target, transport="h2", **options) as own,  # type: ignore[arg-type]
        Client(service, catalog.grpc_target, **options) as grpcio,  # type: ignore[arg-type]
    ):
        created = own.create_product(
            product={"name": "Kettle", "price": Decimal("30.50"), "category": category}
        )
        assert own.get_product(id=created.id) == created == grpcio.get_product(id=created.id)

        errors = []
        for c in (own, grpcio):
            with pytest.raises(Error) as info:
                c.list_products(page_token="not-a-token")
            errors.append(info.value)
        mine, theirs = errors
        assert mine.code is Code.INVALID_ARGUMENT
        assert list(mine.details) == [
            BadRequest((FieldViolation("page_token", "not a page token"),))
        ]
        assert (mine.code, mine.message, mine.details) == (
            theirs.code,
            theirs.message,
            theirs.details,
        )
        with pytest.raises(Error) as info:
            own.get_product(id=10**12)
        assert info.value.code is Code.NOT_FOUND

        # Client streaming: ImportProducts; then a server stream left at once.
        summary = own.import_products(
            iter(
                {"product": {"name": name, "price": Decimal("1.00"), "category": category}}
                for name in ("A", "B", "A")
            )
        )
        assert summary.created == 2
        assert [(f.index, f.name) for f in summary.failed] == [(2, "A")]
        with contextlib.closing(own.watch_prices(category=category)) as changes:
            del changes  # started and closed: the call ends with no output read
        assert own.get_product(id=created.id) == created  # the connection serves on
