"""The catalog through a generated client module (``twofold client``), over every wire.

Unary calls and an error over all six protocols; over those that carry
streams, WatchPrices (server streaming; over REST, Server-Sent Events) sees a
price change and ImportProducts (client streaming) creates products and
reports the one it could not. The module is imported from a temporary directory, as a consumer
would, with the catalog's own types nowhere in its calls.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from examples.catalog import service
from tests.e2e.server import Server
from tests.tokens import ADMIN, AUTHORIZATION
from twofold import Code, Error
from twofold.client import BearerToken
from twofold.client.generator import generate

pytestmark = pytest.mark.postgresql


@pytest.fixture(scope="module")
def cc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    path: Path = tmp_path_factory.mktemp("generated") / "catalog_client.py"
    path.write_text(generate([service]))
    spec = importlib.util.spec_from_file_location("catalog_client", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["catalog_client"] = module  # msgspec resolves the annotations through it
    spec.loader.exec_module(module)
    yield module
    del sys.modules["catalog_client"]


@pytest.mark.parametrize(
    "protocol", ["rest", "jsonrpc", "connect", "connect-proto", "grpc-web", "grpc"]
)
def test_unary_calls(catalog: Server, cc: ModuleType, protocol: str) -> None:
    target = catalog.grpc_target if protocol == "grpc" else catalog.url
    with cc.CatalogServiceClient(target, protocol=protocol, auth=BearerToken(ADMIN)) as c:
        new = cc.NewProduct(name="Kettle", price=Decimal("30.50"), category="Kitchen")
        created = c.create_product(product=new)
        assert isinstance(created, cc.Product)
        assert c.get_product(id=created.id) == created
        with pytest.raises(Error) as info:
            c.get_product(id=10**12)
        assert info.value.code is Code.NOT_FOUND


@pytest.mark.parametrize("protocol", ["rest", "connect", "connect-proto", "grpc-web", "grpc"])
def test_watch_prices_and_import_products(
    catalog: Server, http: httpx.Client, cc: ModuleType, protocol: str
) -> None:
    category = f"client-{uuid.uuid4().hex[:8]}"
    created = http.post("/products", json={"name": "Lamp", "price": "10.00", "category": category})
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]
    done = threading.Event()

    def change_prices() -> None:
        # Until the watcher has seen one: when its stream started is not ours to know.
        with httpx.Client(base_url=catalog.url, headers=AUTHORIZATION, timeout=10) as writer:
            cents = 1000
            while not done.wait(0.3):
                cents += 1
                price = f"{cents // 100}.{cents % 100:02d}"
                writer.patch(f"/products/{product_id}", json={"price": price})

    target = catalog.grpc_target if protocol == "grpc" else catalog.url
    changer = threading.Thread(target=change_prices, daemon=True)
    options = {"protocol": protocol, "auth": BearerToken(ADMIN), "timeout": 20}
    with cc.CatalogServiceClient(target, **options) as c:
        changer.start()
        try:
            with contextlib.closing(c.watch_prices(category=category)) as changes:
                change = next(changes)
        finally:
            done.set()
            changer.join()
        assert (change.product_id, change.category) == (product_id, category)
        assert change.new_price > change.old_price

        products = [
            cc.NewProduct(name=name, price=Decimal(price), category=category)
            for name, price in [("A", "1.00"), ("B", "2.00"), ("A", "1.00")]  # A repeats
        ]
        requests = [cc.ImportProductsRequest(product=p) for p in products]
        if protocol == "rest":  # Server-Sent Events go one way only
            with pytest.raises(Error) as info:
                c.import_products(requests)
            assert info.value.code is Code.UNIMPLEMENTED
            return
        summary = c.import_products(iter(requests))
    assert summary.created == 2
    assert [(f.index, f.name) for f in summary.failed] == [(2, "A")]
