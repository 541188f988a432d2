"""The catalog over native gRPC, called by other people's clients against the real server.

The stubs are protoc's (grpcio-tools) from the ``.proto`` that ``twofold
proto`` exports; reflection is read with grpcio-reflection's own client and
by ``buf curl``, and health with grpcio-health-checking's stubs. Each test
runs against both servers of ``twofold serve``: uvicorn with grpcio's gRPC
server on its own port, and pyvoy with the App's gRPC wire on the one port.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from examples.catalog import service
from tests.conftest import Database
from tests.e2e.server import ROOT, Server, start
from tests.tokens import ADMIN, authorized
from twofold.protobuf import Schema
from twofold.testing.parity.answers import status_of, violations

Stubs = tuple[ModuleType, ModuleType]
BUF = ROOT / "node_modules" / ".bin" / "buf"


@pytest.fixture(scope="module", params=["grpcio", "one-port"])
def catalog(
    request: pytest.FixtureRequest, database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The catalog of the session (uvicorn, grpcio on a second port), or on pyvoy (one port)."""
    if request.param == "grpcio":
        yield request.getfixturevalue("catalog")
        return
    tmp: Path = tmp_path_factory.mktemp("one-port")
    server = start("examples.catalog:app", tmp, database.env(tmp), "--server", "pyvoy")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def channel(catalog: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(catalog.grpc_target) as channel:
        yield authorized(channel)


@pytest.fixture
def stub(channel: grpc.Channel, stubs: Stubs) -> Any:
    return stubs[1].CatalogServiceStub(channel)


def new_product(pb2: ModuleType, category: str, price: str = "22.00") -> Any:
    return pb2.NewProduct(name="T-Shirt", price=price, category=category, tags=["a"])


def test_unary_methods_with_generated_stubs(stub: Any, stubs: Stubs) -> None:
    pb2, _ = stubs
    category = f"grpc-{uuid.uuid4().hex[:8]}"
    created = stub.CreateProduct(pb2.CreateProductRequest(product=new_product(pb2, category)))
    assert (created.name, created.price, created.category, list(created.tags)) == (
        "T-Shirt",
        "22.00",
        category,
        ["a"],
    )
    assert stub.GetProduct(pb2.GetProductRequest(id=created.id)) == created
    second = stub.CreateProduct(pb2.CreateProductRequest(product=new_product(pb2, category)))
    page = stub.ListProducts(pb2.ListProductsRequest(category=category, page_size=1))
    assert [p.id for p in page.products] == [created.id] and page.next_page_token
    page = stub.ListProducts(
        pb2.ListProductsRequest(category=category, page_size=1, page_token=page.next_page_token)
    )
    assert [p.id for p in page.products] == [second.id]
    patch = pb2.ProductPatch(price="20.00")  # proto3 optional: only price is present
    updated = stub.UpdateProduct(pb2.UpdateProductRequest(id=created.id, product=patch))
    assert (updated.price, updated.name) == ("20.00", "T-Shirt")
    assert stub.DeleteProduct(pb2.DeleteProductRequest(id=created.id)) == empty_pb2.Empty()
    with pytest.raises(grpc.RpcError) as info:
        stub.GetProduct(pb2.GetProductRequest(id=created.id))
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    assert status_of(info.value).message == f"product {created.id} does not exist"


def test_cancel_twice_is_failed_precondition(stub: Any, stubs: Stubs) -> None:
    pb2, _ = stubs
    product = stub.CreateProduct(
        pb2.CreateProductRequest(product=new_product(pb2, "grpc-orders", "3.25"))
    )
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    user = stub.CreateUser(pb2.CreateUserRequest(user=pb2.NewUser(name="Ada", email=email)))
    order = stub.CreateOrder(
        pb2.CreateOrderRequest(
            user_id=user.id, order=pb2.NewOrder(product_id=product.id, quantity=4)
        )
    )
    assert order.total == "13.00"
    ids = pb2.CancelOrderRequest(user_id=user.id, order_id=order.id)
    assert stub.CancelOrder(ids).status == pb2.ORDER_STATUS_CANCELLED
    with pytest.raises(grpc.RpcError) as info:
        stub.CancelOrder(ids)
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    status = status_of(info.value)  # grpc-status-details-bin decodes to the same status
    assert status.code == 9 and status.message == f"order {order.id} is already cancelled"


def test_validation_errors_carry_bad_request_details(stub: Any, stubs: Stubs) -> None:
    pb2, _ = stubs
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateProduct(
            pb2.CreateProductRequest(product=pb2.NewProduct(name="X", price="cheap", category="c"))
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(status_of(info.value)) == ["product.price"]
    with pytest.raises(grpc.RpcError) as info:
        stub.GetUser(pb2.GetUserRequest(id=0))  # proto3's zero: the Meta(ge=1) bound fails
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(status_of(info.value)) == ["id"]


def test_deadline_exceeded(stub: Any, stubs: Stubs) -> None:
    pb2, _ = stubs
    with pytest.raises(grpc.RpcError) as info:
        stub.GenerateReport(pb2.GenerateReportRequest(), timeout=0.000_001)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert stub.GenerateReport(pb2.GenerateReportRequest(), timeout=10).categories is not None


def test_reflection_lists_and_describes_the_services(
    catalog: Server, channel: grpc.Channel
) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    # The App's own reflection serves v1 too, which grpcio-reflection lacks.
    v1 = set() if catalog.grpc_port else {"grpc.reflection.v1.ServerReflection"}
    assert set(database.get_services()) == {
        "catalog.v1.CatalogService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        *v1,
    }
    pool = descriptor_pool.DescriptorPool(database)
    described = pool.FindServiceByName("catalog.v1.CatalogService")
    assert set(described.methods_by_name) == set(service.methods)
    get = described.methods_by_name["GetProduct"]
    assert (get.input_type.full_name, get.output_type.full_name) == (
        "catalog.v1.GetProductRequest",
        "catalog.v1.Product",
    )
    served = descriptor_pb2.FileDescriptorProto()
    described.file.CopyToProto(served)
    assert served == Schema(service).descriptors[0]  # what `twofold proto` exports
    assert pool.FindServiceByName("grpc.health.v1.Health").methods_by_name["Check"]


def test_health_serves_every_service(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "catalog.v1.CatalogService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=name))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as info:
        health.Check(health_pb2.HealthCheckRequest(service="nope.v1.Nope"))
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_bad_input_changes_nothing(channel: grpc.Channel, stub: Any, stubs: Stubs) -> None:
    pb2, _ = stubs
    category = f"grpc-bad-{uuid.uuid4().hex[:8]}"
    create = channel.unary_unary("/catalog.v1.CatalogService/CreateProduct")
    bad: list[tuple[bytes, grpc.StatusCode]] = [
        (b"\x0a\x05\x0a\x03", grpc.StatusCode.INVALID_ARGUMENT),  # truncated
        (b"\xff\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT),  # not protobuf
        # Over max_body_size (1 MiB): refused before it is read.
        (
            pb2.CreateProductRequest(
                product=pb2.NewProduct(name="x" * (1 << 20), price="1.00", category=category)
            ).SerializeToString(),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ),
    ]
    for data, code in bad:
        with pytest.raises(grpc.RpcError) as info:
            create(data, timeout=10)
        assert info.value.code() is code, info.value
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/catalog.v1.CatalogService/Nope")(b"", timeout=10)
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/nope.v1.Nope/GetProduct")(b"", timeout=10)
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    # Still serving, and nothing was written.
    assert list(stub.ListProducts(pb2.ListProductsRequest(category=category)).products) == []


def test_grpc_and_http_share_one_database(catalog: Server, stub: Any, stubs: Stubs) -> None:
    pb2, _ = stubs
    category = f"grpc-{uuid.uuid4().hex[:8]}"
    created = stub.CreateProduct(pb2.CreateProductRequest(product=new_product(pb2, category)))
    response = httpx.get(f"{catalog.url}/products/{created.id}")
    assert response.status_code == 200 and response.json()["category"] == category


def test_buf_curl_lists_and_calls_through_reflection(catalog: Server, stub: Any) -> None:
    """``buf curl`` (npm @bufbuild/buf) knows the API only from our reflection service."""
    if not BUF.exists():
        pytest.fail("buf is not installed: run `npm ci` (make test does)")
    url = f"http://{catalog.grpc_target}"

    def buf_curl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "BUF_CACHE_DIR": str(catalog.log.parent / "buf-cache")},
            check=False,
        )

    listed = buf_curl("--list-services", url)
    assert listed.returncode == 0, listed.stderr
    assert "catalog.v1.CatalogService" in listed.stdout.split()
    product = {"name": "Buf", "price": "1.50", "category": f"buf-{uuid.uuid4().hex[:8]}"}
    created = buf_curl(
        "-H",
        f"authorization: Bearer {ADMIN}",
        "-d",
        json.dumps({"product": product}),
        f"{url}/catalog.v1.CatalogService/CreateProduct",
    )
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert (body["name"], body["price"], body["category"]) == tuple(product.values())
    missing = buf_curl("-d", '{"id": "999999999"}', f"{url}/catalog.v1.CatalogService/GetProduct")
    assert missing.returncode == 5 * 8, missing  # buf curl exits with the gRPC code times 8
    assert json.loads(missing.stderr)["code"] == "not_found"
