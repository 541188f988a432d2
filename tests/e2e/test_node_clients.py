"""Clients no one here wrote: connect-es under Node, with code protoc-gen-es
generated from the exported .proto, against the running catalog.

``npm ci`` (the Makefile) installs the pinned packages; the code is generated
at test time into a temporary directory, with protoc from grpcio-tools and
the protoc-gen-es plugin from node_modules: no network.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.programs import node_json
from tests.e2e.server import ROOT, Server, hypercorn
from tests.tokens import ADMIN

NODE_MODULES = ROOT / "node_modules"
PLUGIN = NODE_MODULES / ".bin" / "protoc-gen-es"
CLIENT = Path(__file__).parent / "node" / "catalog_client.mjs"
IMPORT_CLIENT = Path(__file__).parent / "node" / "import_client.mjs"
GET_PRODUCT_BY_GET = "GET /catalog.v1.CatalogService/GetProduct"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not PLUGIN.exists(),
    reason="needs node and `npm ci` (make does both)",
)


@pytest.fixture(scope="module")
def results(catalog_es: Path, catalog: Server) -> dict[str, Any]:
    before = _gets(catalog)
    grpc_url = f"http://{catalog.grpc_target}"
    env = {**os.environ, "CATALOG_TOKEN": ADMIN}  # the catalog's writes need a token
    out = node_json(CLIENT, catalog_es, catalog.url, grpc_url, env=env)
    out["gets"] = _gets(catalog) - before
    return dict(out)


def _gets(catalog: Server) -> int:
    """Connect GETs of GetProduct the catalog answered, by its access log."""
    return sum(1 for line in catalog.access_log() if line.get("request") == GET_PRODUCT_BY_GET)


UNARY = {
    "same": True,
    "idType": "bigint",  # int64 is a BigInt in connect-es, whatever the wire
    "tags": ["kitchen"],
    "listed": [True],  # ListProducts of its category: the product it created, alone
    "missing": "NotFound",
    "invalid": "InvalidArgument",
    "total": "49.00",
    "status": "CANCELLED",  # the enum by its proto name, read back by connect-es
}
STREAM = {"productId": True, "oldPrice": "10.00", "newPrice": "12.00"}


@pytest.mark.parametrize("transport", ["connect-json", "connect-binary", "grpc-web", "grpc"])
def test_unary_and_server_streaming(results: dict[str, Any], transport: str) -> None:
    assert results[transport] == {"unary": UNARY, "stream": STREAM}


def test_connect_get_for_side_effect_free_methods(results: dict[str, Any]) -> None:
    assert results["connect-get"] == {"unary": UNARY}
    # GetProduct twice (found and not found), both by GET: the server log says so.
    assert results["gets"] == 2


@pytest.fixture(scope="module")
def hypercorn_catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The catalog under hypercorn, which speaks HTTP/2 (h2c) as client streaming needs."""
    tmp = tmp_path_factory.mktemp("catalog-h2")
    env = {"CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'catalog.db'}"}
    server = hypercorn("examples.catalog:app", tmp, env)
    yield server.url
    server.stop()


def test_client_streaming_over_http2(catalog_es: Path, hypercorn_catalog: str) -> None:
    env = {**os.environ, "CATALOG_TOKEN": ADMIN}  # ImportProducts needs products:write
    out = node_json(IMPORT_CLIENT, catalog_es, hypercorn_catalog, env=env)
    expected = {"created": 2, "failed": [[2, "A"]]}  # the second A repeats the first
    assert out == {"json": expected, "binary": expected}
