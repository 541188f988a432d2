"""Prices the published pattern refuses are refused on every wire of the real
server, though Python's ``Decimal()`` reads each of them; nothing is written."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import grpc
import httpx
import pytest

from tests.e2e.server import Server
from tests.e2e.test_bad_input import CREATE, all_products
from tests.e2e.test_bad_input_wires import WEB, grpc_status
from tests.tokens import AUTHORIZATION
from twofold.http.envelope import frame
from twofold.testing.parity.answers import status_of, violations

Stubs = tuple[ModuleType, ModuleType]
# Each was stored as a price before: 0.00, 12.00, 1000.00, 1.00, 1.00, 100.00, 1.00.
REFUSED = ["1E-999999999", "\u0661\u0662", "1_000", " 1", "+1", "1e2", "1.000"]
GOOD = {"name": "Pen", "category": "decimal-input", "tags": []}


@pytest.fixture(scope="module")
def product_url(catalog: Server) -> str:
    with httpx.Client(base_url=catalog.url, headers=AUTHORIZATION, timeout=10) as http:
        r = http.post("/products", json={**GOOD, "price": "1.00"})
        assert r.status_code == 201, r.text
        return str(r.headers["location"])


@pytest.fixture
def unchanged(http: httpx.Client, product_url: str) -> Iterator[None]:
    before = all_products(http)
    yield
    assert all_products(http) == before


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("price", REFUSED)
class TestRefusedPrices:
    def test_rest(self, http: httpx.Client, product_url: str, price: str) -> None:
        for r in (
            http.post("/products", json={**GOOD, "price": price}),
            http.put(product_url, json={**GOOD, "price": price}),
            http.patch(product_url, json={"price": price}),
        ):
            assert r.status_code == 400, r.text
            doc = r.json()
            assert doc["code"] == "invalid_argument"
            assert [v["field"] for v in doc["violations"]] == ["product.price"]

    def test_connect_json(self, http: httpx.Client, price: str) -> None:
        r = http.post(CREATE, json={"product": {**GOOD, "price": price}})
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "invalid_argument"
        assert r.json()["details"][0]["debug"]["fieldViolations"][0]["field"] == "product.price"

    def test_jsonrpc(self, http: httpx.Client, price: str) -> None:
        call = {"jsonrpc": "2.0", "id": 1, "method": "CreateProduct"}
        r = http.post("/jsonrpc", json={**call, "params": {"product": {**GOOD, "price": price}}})
        error = r.json()["error"]
        assert error["code"] == -32602, error
        assert error["data"]["code"] == "invalid_argument"

    def test_binary_wires(
        self, http: httpx.Client, channel: grpc.Channel, stubs: Stubs, price: str
    ) -> None:
        pb2, grpc_pb2 = stubs
        request = pb2.CreateProductRequest(
            product=pb2.NewProduct(name="Pen", price=price, category="decimal-input")
        )
        data = request.SerializeToString()
        r = http.post(CREATE, content=data, headers={"content-type": "application/proto"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_argument", r.text
        assert grpc_status(http.post(CREATE, content=frame(data), headers=WEB)) == "3"
        with pytest.raises(grpc.RpcError) as info:
            grpc_pb2.CatalogServiceStub(channel).CreateProduct(request, timeout=10)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert violations(status_of(info.value)) == ["product.price"]


def test_the_published_pattern_is_what_refused_them(http: httpx.Client) -> None:
    schemas = http.get("/openapi.json").json()["components"]["schemas"]
    pattern = schemas["NewProduct"]["properties"]["price"]["pattern"]
    assert pattern == r"^[0-9]{1,9}(\.[0-9]{1,2})?$"
    r = http.post("/products", json={**GOOD, "price": "12.5"})
    assert r.status_code == 201 and r.json()["price"] == "12.50", r.text


# Three bad fields of a NewProduct: each is named, in the order sent.
THREE_BAD = {"name": "", "price": "-1", "category": "decimal-input", "tags": ["ok", ""]}
THREE_FIELDS = ["product.name", "product.price", "product.tags[1]"]


@pytest.mark.usefixtures("unchanged")
def test_three_bad_fields_are_three_violations_on_every_wire(
    http: httpx.Client, channel: grpc.Channel, stubs: Stubs
) -> None:
    r = http.post("/products", json=THREE_BAD)
    assert [v["field"] for v in r.json()["violations"]] == THREE_FIELDS, r.text
    r = http.post(CREATE, json={"product": THREE_BAD})
    found = r.json()["details"][0]["debug"]["fieldViolations"]
    assert [v["field"] for v in found] == THREE_FIELDS, r.text
    call = {"jsonrpc": "2.0", "id": 1, "method": "CreateProduct"}
    error = http.post("/jsonrpc", json={**call, "params": {"product": THREE_BAD}}).json()["error"]
    assert [v["field"] for v in error["data"]["violations"]] == THREE_FIELDS, error
    pb2, grpc_pb2 = stubs
    request = pb2.CreateProductRequest(
        product=pb2.NewProduct(name="", price="-1", category="decimal-input", tags=["ok", ""])
    )
    with pytest.raises(grpc.RpcError) as info:
        grpc_pb2.CatalogServiceStub(channel).CreateProduct(request, timeout=10)
    assert violations(status_of(info.value)) == THREE_FIELDS


def test_the_price_bounds_are_published(http: httpx.Client) -> None:
    price = http.get("/openapi.json").json()["components"]["schemas"]["NewProduct"]
    assert price["properties"]["price"]["x-maximum"] == "999999999.99"
    assert price["properties"]["price"]["x-minimum"] == "0"
