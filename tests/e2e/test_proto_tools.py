"""The exported .proto, judged by other people's tools: protoc, its Python stubs, buf lint."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from examples.catalog import service
from examples.catalog.models import Order, OrderStatus, Product
from tests.e2e.grpc_stubs import CATALOG, GOOGLEAPIS_INCLUDE, export, protoc
from tests.e2e.server import ROOT
from twofold.protobuf import Schema

BUF = ROOT / "node_modules" / ".bin" / "buf"
# buf's STANDARD rules, less two that AIP-style APIs break on purpose (as
# Google's own APIs do): Get/Create/Update return the resource itself, not a
# GetProductResponse, and so one message is the response of several RPCs;
# Delete returns google.protobuf.Empty.
BUF_YAML = """\
version: v2
modules:
  - path: proto
  - path: third_party
lint:
  use: [STANDARD]
  except: [RPC_RESPONSE_STANDARD_NAME, RPC_REQUEST_RESPONSE_UNIQUE]
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The catalog's .proto files as `twofold proto -o` writes them."""
    out = export(CATALOG, tmp_path_factory.mktemp("proto"))
    assert (out / "catalog/v1/catalog.proto").is_file()
    return out


@pytest.fixture(scope="module")
def stubs(exported: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """protoc's Python message classes and gRPC stubs for the catalog."""
    out = tmp_path_factory.mktemp("stubs")
    protoc(
        f"-I{exported}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--descriptor_set_out={out / 'set.bin'}",
        "catalog/v1/catalog.proto",
    )
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("catalog.v1.catalog_pb2")
        grpc_module = importlib.import_module("catalog.v1.catalog_pb2_grpc")
        yield pb2, grpc_module, out / "set.bin"
    finally:
        sys.path.remove(str(out))


def test_protoc_compiles_it_to_the_descriptors_twofold_serves(stubs: Any) -> None:
    _, _, descriptor_set = stubs
    compiled = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    (ours,) = Schema(service).descriptors
    assert compiled.file[-1] == ours


def test_generated_stubs_have_every_method(stubs: Any) -> None:
    pb2, grpc_module, _ = stubs
    stub = grpc_module.CatalogServiceStub
    servicer = grpc_module.CatalogServiceServicer
    for name in service.methods:
        assert hasattr(servicer, name), name
    assert stub.__name__ == "CatalogServiceStub"
    assert pb2.DESCRIPTOR.services_by_name["CatalogService"].methods_by_name["GetProduct"]


def test_bytes_cross_between_our_codec_and_protoc_classes(stubs: Any) -> None:
    pb2, _, _ = stubs
    schema = Schema(service)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    product = Product(
        id=2**40,
        name="Café",
        price=Decimal("22.00"),
        category="Clothes",
        tags=["a", "b"],
        updated_at=when,
    )
    theirs = pb2.Product.FromString(schema.codec(Product).encode(product))
    assert (theirs.id, theirs.name, theirs.price, list(theirs.tags)) == (
        2**40,
        "Café",
        "22.00",
        ["a", "b"],
    )
    assert theirs.updated_at.ToDatetime(tzinfo=UTC) == when  # a google.protobuf.Timestamp
    order = pb2.Order(
        id=1, user_id=2, product_id=3, quantity=4, total="9.99", status=pb2.ORDER_STATUS_CANCELLED
    )
    decoded = schema.codec(Order).decode(order.SerializeToString())
    assert decoded.status is OrderStatus.CANCELLED and decoded.total == Decimal("9.99")
    assert schema.codec(Order).encode(decoded) == order.SerializeToString()
    request_type = service.methods["ListProducts"].input_type
    request = pb2.ListProductsRequest(page_token="t")  # page_size not sent: the default
    assert schema.codec(request_type).decode(request.SerializeToString()).page_size == 20


def test_buf_lint_accepts_it(exported: Path, tmp_path: Path) -> None:
    if not BUF.exists():
        pytest.fail("buf is not installed: run `npm ci` (make test does)")
    shutil.copytree(exported, tmp_path / "proto")
    third_party = tmp_path / "third_party/google/api"
    third_party.mkdir(parents=True)
    for name in ("annotations.proto", "http.proto"):
        shutil.copy(GOOGLEAPIS_INCLUDE / "google/api" / name, third_party)
    (tmp_path / "buf.yaml").write_text(BUF_YAML)
    # Everything is local (google/protobuf is built into buf): no BSR, no network.
    env = {**os.environ, "BUF_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [str(BUF), "lint", "--path", "proto/catalog"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
