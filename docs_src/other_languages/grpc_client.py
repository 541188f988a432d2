"""The catalog over native gRPC from the stubs grpcio-tools generated.

``python -m grpc_tools.protoc`` wrote ``catalog/v1/catalog_pb2.py`` (the
messages) and ``catalog_pb2_grpc.py`` (the stub) from the ``.proto`` that
``twofold proto`` exported; this program imports only them and grpcio:

    python grpc_client.py HOST:PORT TOKEN

It prints what it saw as JSON (tests/e2e/test_other_languages.py judges it).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import grpc
from catalog.v1 import catalog_pb2, catalog_pb2_grpc


def call_catalog(target: str, token: str) -> dict[str, Any]:
    category = f"grpc-{time.time_ns()}"
    auth = [("authorization", f"Bearer {token}")]
    with grpc.insecure_channel(target) as channel:
        catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        new = catalog_pb2.NewProduct(
            name="Kettle", price="24.50", category=category, tags=["kitchen"]
        )
        product = catalog.CreateProduct(
            catalog_pb2.CreateProductRequest(product=new), metadata=auth, timeout=10
        )
        got = catalog.GetProduct(catalog_pb2.GetProductRequest(id=product.id), timeout=10)
        page = catalog.ListProducts(
            catalog_pb2.ListProductsRequest(category=category, page_size=10), timeout=10
        )
        # An error is a grpc.RpcError with the status code the server chose.
        try:
            catalog.GetProduct(catalog_pb2.GetProductRequest(id=987654321), timeout=10)
            missing = {"code": "OK", "details": ""}
        except grpc.RpcError as error:
            missing = {"code": error.code().name, "details": error.details()}

    return {
        "created": {"id": product.id, "name": product.name, "category": product.category},
        "same": got == product,
        "listed": [p.id for p in page.products],
        "missing": missing,
    }


if __name__ == "__main__":
    print(json.dumps(call_catalog(*sys.argv[1:3])))
