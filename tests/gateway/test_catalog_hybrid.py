"""The hybrid: the example catalog's native gRPC inside, ``twofold gateway`` as its public edge.

The catalog is served as usual (``twofold serve``); the gateway reads its
schema from the catalog's server reflection (the exported .proto carries
the google.api.http rules) and answers REST for it, credentials forwarded.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.databases import Database
from tests.e2e.server import Server, spawn, start
from tests.tokens import AUTHORIZATION


@pytest.fixture(scope="module")
def edge(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("hybrid")
    catalog = start("examples.catalog:app", tmp, database.env(tmp))

    def argv(port: int, _: int | None) -> list[str]:
        return [sys.executable, "-m", "twofold", "gateway", "--upstream", catalog.grpc_target,
                "--port", str(port)]  # fmt: skip

    gateway: Server | None = None
    try:
        gateway = spawn(argv, tmp)
        yield gateway.url
    finally:
        if gateway is not None:
            gateway.stop()
        catalog.stop()


def test_rest_through_the_gateway_to_the_catalogs_grpc(edge: str) -> None:
    with httpx.Client(base_url=edge, timeout=10) as http:
        body = {"name": "Kettle", "price": "24.50", "category": "hybrid"}
        refused = http.post("/products", json=body)
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthenticated"
        created = http.post("/products", json=body, headers=AUTHORIZATION)
        assert created.status_code == 200, created.text
        product = created.json()
        assert product["name"] == "Kettle" and product["price"] == "24.50"
        got = http.get(f"/products/{product['id']}")
        assert got.json() == product
        assert (
            http.get(
                f"/products/{product['id']}", headers={"if-none-match": got.headers["etag"]}
            ).status_code
            == 304
        )
        listed = http.get("/products", params={"category": "hybrid"}).json()
        assert [p["id"] for p in listed["products"]] == [product["id"]]
        missing = http.get("/products/987654321")
        assert missing.status_code == 404
        assert missing.json()["detail"] == "product 987654321 does not exist"
