"""The catalog's streams through twofold.Client, over every wire that carries them:
WatchPrices (server streaming) sees a price change, ImportProducts (client
streaming) creates products and reports the one it could not."""

from __future__ import annotations

import contextlib
import threading
import uuid
from decimal import Decimal

import httpx
import pytest

from examples.catalog import service
from examples.catalog.models import NewProduct
from examples.catalog.streams import ImportProductsRequest
from tests.e2e.server import Server
from tests.tokens import ADMIN, AUTHORIZATION
from twofold.client import BearerToken, Client


@pytest.mark.parametrize("protocol", ["connect", "connect-proto", "grpc-web", "grpc"])
def test_watch_prices_and_import_products(
    catalog: Server, http: httpx.Client, protocol: str
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
    with Client(service, target, protocol=protocol, auth=BearerToken(ADMIN), timeout=20) as c:
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
            NewProduct(name=name, price=Decimal(price), category=category)
            for name, price in [("A", "1.00"), ("B", "2.00"), ("C", "1.001")]
        ]
        summary = c.import_products(ImportProductsRequest(product=p) for p in products)
    assert summary.created == 2
    assert [(f.index, f.name) for f in summary.failed] == [(2, "C")]
