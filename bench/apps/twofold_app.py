"""The peer workload served by Twofold: one resource, ``GetProduct`` and ``CreateProduct``.

Served exactly like the peers: ``uvicorn --loop uvloop --http httptools
--no-access-log``, one worker. The service is ``catalog.v1.ProductService``
so that its Connect paths are the connectrpc peer's.
"""

from __future__ import annotations

import msgspec

from bench.apps.catalog import PRODUCTS
from twofold import App, Code, Error, Service


class Product(msgspec.Struct):
    id: int
    name: str
    price: str
    category: str
    tags: list[str]


DB: dict[int, Product] = {k: Product(**v) for k, v in PRODUCTS.items()}

service = Service("catalog.v1", "ProductService")
products = service.resource("products")


@products.get
async def get_product(id: int) -> Product:
    product = DB.get(id)
    if product is None:
        raise Error(Code.NOT_FOUND, "not found")
    return product


@products.create
async def create_product(product: Product) -> Product:
    DB[product.id] = product
    return product


app = App(service)
