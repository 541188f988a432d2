"""The OpenAPI document: valid, true to the types, and true to what the app serves."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import httpx
import msgspec
import pytest
from msgspec import Meta
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from docs_src.openapi import service as docs_example
from twofold import App, Code, Error, Idempotency, Options, Service
from twofold.contracts import openapi, schemas
from twofold.core import decimals, messages

Small = Annotated[int, Meta(ge=0, le=100_000)]


class Dimensions(msgspec.Struct):
    """A box size, in millimetres."""

    width: Small
    height: Small


class Product(msgspec.Struct):
    """Something we sell.

    Prices are in euros.
    """

    id: int
    name: Annotated[str, Meta(min_length=1, max_length=80)]
    price: Decimal
    created: datetime
    tags: list[str] = []
    size: Dimensions | None = None
    stock: Small = 0


class NewProduct(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=80)]
    price: Decimal
    tags: list[str] = []
    size: Dimensions | None = None


class ProductPage(msgspec.Struct):
    products: list[Product]
    next_page_token: str = ""


class Order(msgspec.Struct):
    id: int
    user_id: int
    status: str


class Report(msgspec.Struct):
    rows: Small
    title: str


service = Service("catalog.v1", description="The product catalog.")
products = service.resource("products")
users = service.resource("users")
orders = users.resource("orders")
PRODUCTS: dict[int, Product] = {}
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@products.get
async def get_product(id: int) -> Product:
    """Fetch one product."""
    if id not in PRODUCTS:
        raise Error(Code.NOT_FOUND, f"no product {id}")
    return PRODUCTS[id]


@products.list
async def list_products(
    page_size: Annotated[int, Meta(ge=1, le=100, description="Items per page.")] = 20,
    page_token: str = "",
    tag: list[str] = [],  # noqa: B006
    min_price: Decimal | None = None,
) -> ProductPage:
    return ProductPage(list(PRODUCTS.values())[:page_size])


@products.create
async def create_product(product: NewProduct) -> Product:
    created = Product(2**40 + len(PRODUCTS), product.name, product.price, WHEN, product.tags)
    PRODUCTS[created.id] = created
    return created


@products.update
async def update_product(id: int, product: NewProduct) -> Product:
    old = await get_product(id)
    PRODUCTS[id] = new = Product(id, product.name, product.price, old.created, product.tags)
    return new


@products.delete
async def delete_product(id: int) -> None:
    PRODUCTS.pop(id, None)


@orders.get
async def get_order(user_id: int, order_id: int) -> Order:
    return Order(order_id, user_id, "open")


@orders.action("cancel")
async def cancel_order(user_id: int, order_id: int, reason: str = "") -> Order:
    return Order(order_id, user_id, "cancelled")


@service.procedure
async def generate_report(since: datetime, limit: Small = 10) -> Report:
    """Build a sales report.

    It takes a while.
    """
    return Report(limit, "sales")


@service.procedure(http=("GET", "/products:search"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def search_products(query: str, limit: int = 10) -> ProductPage:
    return ProductPage([p for p in PRODUCTS.values() if query in p.name][:limit])


@service.procedure(http=("POST", "/reports:email"))
async def email_report(to: str, order_id: int) -> None:
    return None


DOC = App(service).openapi


def op(path: str, verb: str) -> dict[str, Any]:
    result: dict[str, Any] = DOC["paths"][path][verb]
    return result


def params(path: str, verb: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op(path, verb).get("parameters", [])}


def component(name: str) -> dict[str, Any]:
    result: dict[str, Any] = DOC["components"]["schemas"][name]
    return result


def validator(schema: dict[str, Any], doc: dict[str, Any] = DOC) -> OAS31Validator:
    # Put the components beside the schema so that "#/components/..." resolves.
    return OAS31Validator({**schema, "components": doc["components"]})


def test_document_is_valid_openapi_3_1() -> None:
    validate(DOC)
    assert DOC["openapi"] == "3.1.0"
    assert DOC["info"] == {
        "title": "catalog.v1.CatalogService",
        "version": "0.1.0",
        "description": "The product catalog.",
    }


def test_every_route_and_procedure_is_documented_once() -> None:
    found = {(path, verb) for path, item in DOC["paths"].items() for verb in item}
    rpc = "/catalog.v1.CatalogService"
    assert found == {
        ("/products/{id}", "get"),
        ("/products/{id}", "patch"),
        ("/products/{id}", "delete"),
        ("/products", "get"),
        ("/products", "post"),
        ("/users/{user_id}/orders/{order_id}", "get"),
        ("/users/{user_id}/orders/{order_id}:cancel", "post"),
        ("/products:search", "get"),
        ("/reports:email", "post"),
        (f"{rpc}/GenerateReport", "post"),
        (f"{rpc}/SearchProducts", "post"),
        (f"{rpc}/SearchProducts", "get"),
        (f"{rpc}/EmailReport", "post"),
    }


def test_operation_ids_are_rpc_names_and_unique() -> None:
    ids = [o["operationId"] for item in DOC["paths"].values() for o in item.values()]
    assert len(ids) == len(set(ids))
    assert op("/products/{id}", "get")["operationId"] == "GetProduct"
    assert op("/catalog.v1.CatalogService/GenerateReport", "post")["operationId"] == (
        "GenerateReport"
    )
    # A procedure with a REST binding: the REST operation keeps the RPC name.
    assert op("/products:search", "get")["operationId"] == "SearchProducts"
    assert op("/catalog.v1.CatalogService/SearchProducts", "post")["operationId"] == (
        "SearchProductsConnect"
    )
    assert op("/catalog.v1.CatalogService/SearchProducts", "get")["operationId"] == (
        "SearchProductsConnectGet"
    )


class AdminReportRequest(msgspec.Struct):
    since: datetime


def test_operation_ids_shared_by_two_services_are_qualified() -> None:
    admin = Service("admin.v1")
    admin.procedure(name="GenerateReport")(_admin_report)
    doc = App([service, admin]).openapi
    validate(doc)
    assert doc["paths"]["/admin.v1.AdminService/GenerateReport"]["post"]["operationId"] == (
        "admin_v1_AdminService_GenerateReport"
    )
    assert doc["paths"]["/catalog.v1.CatalogService/GenerateReport"]["post"]["operationId"] == (
        "catalog_v1_CatalogService_GenerateReport"
    )
    assert doc["info"]["description"] == "**catalog.v1.CatalogService**: The product catalog."


async def _admin_report(request: AdminReportRequest, /) -> Report:
    return Report(0, "")


def test_summary_description_and_tags() -> None:
    assert op("/products/{id}", "get")["summary"] == "Fetch one product."
    assert "description" not in op("/products/{id}", "get")
    report = op("/catalog.v1.CatalogService/GenerateReport", "post")
    assert report["summary"] == "Build a sales report."
    assert report["description"] == "Build a sales report.\n\nIt takes a while."
    assert report["tags"] == ["catalog.v1.CatalogService"]
    assert op("/users/{user_id}/orders/{order_id}:cancel", "post")["tags"] == ["orders"]
    assert DOC["tags"] == [
        {"name": "products"},
        {"name": "orders"},
        {"name": "catalog.v1.CatalogService", "description": "The product catalog."},
    ]


def test_path_parameters_are_required_and_typed() -> None:
    found = params("/users/{user_id}/orders/{order_id}:cancel", "post")
    assert list(found) == ["user_id", "order_id"]
    for p in found.values():
        assert p["in"] == "path"
        assert p["required"] is True
        assert p["schema"] == {"type": "integer", "format": "int64"}


def test_query_parameters_follow_the_request_fields() -> None:
    found = params("/products", "get")
    assert list(found) == ["page_size", "page_token", "tag", "min_price", "If-None-Match"]
    assert found["If-None-Match"]["in"] == "header"
    found.pop("If-None-Match")
    assert all(p["in"] == "query" and p["required"] is False for p in found.values())
    assert found["page_size"]["description"] == "Items per page."
    assert found["page_size"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "format": "int32",
        "default": 20,
    }
    assert found["tag"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert (found["tag"]["style"], found["tag"]["explode"]) == ("form", True)
    # A query string cannot say null: an Optional field is just not required.
    assert found["min_price"]["schema"] == {
        "type": "string",
        "format": "decimal",
        "pattern": decimals.PATTERN,
    }
    search = params("/products:search", "get")
    assert search["query"]["required"] is True
    assert search["limit"]["required"] is False


def test_request_bodies() -> None:
    create = op("/products", "post")
    assert "parameters" not in create
    assert create["requestBody"] == {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/NewProduct"}},
            "application/xml": {"schema": {"$ref": "#/components/schemas/NewProduct"}},
        },
    }
    assert component("NewProduct")["xml"] == {"name": "NewProduct"}
    assert component("NewProduct")["properties"]["tags"]["xml"] == {"wrapped": False}
    # body "*" with path fields: the message less its path fields.
    cancel = op("/users/{user_id}/orders/{order_id}:cancel", "post")["requestBody"]
    assert cancel["required"] is False
    body = cancel["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert list(component(body)["properties"]) == ["reason"]
    email = op("/reports:email", "post")["requestBody"]
    assert email["required"] is True
    assert email["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EmailReportRequest"
    }
    assert "requestBody" not in op("/products/{id}", "delete")


def test_components_keep_required_constraints_and_docstrings() -> None:
    product = component("Product")
    assert product["required"] == ["id", "name", "price", "created"]
    assert product["description"] == "Something we sell.\n\nPrices are in euros."
    assert product["properties"]["name"] == {"type": "string", "maxLength": 80, "minLength": 1}
    assert product["properties"]["price"] == {
        "type": "string",
        "format": "decimal",
        "pattern": decimals.PATTERN,
    }
    assert product["properties"]["size"]["anyOf"] == [
        {"$ref": "#/components/schemas/Dimensions"},
        {"type": "null"},
    ]
    assert product["properties"]["tags"]["items"] == {"type": "string"}
    assert component("NewProduct")["additionalProperties"] is False
    assert component("Dimensions")["description"] == "A box size, in millimetres."
    # Only referenced components: a REST method's request message is not a body.
    assert "GetProductRequest" not in DOC["components"]["schemas"]


def test_success_responses() -> None:
    get = op("/products/{id}", "get")["responses"]["200"]
    assert get["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Product"}
    created = op("/products", "post")["responses"]
    assert "200" not in created
    assert created["201"]["headers"]["Location"]["schema"]["type"] == "string"
    assert created["201"]["headers"]["Location"]["required"] is True
    deleted = op("/products/{id}", "delete")["responses"]["204"]
    assert deleted["description"] == "No Content" and "content" not in deleted
    assert list(deleted["headers"]) == ["Cache-Control"]
    read = op("/products/{id}", "get")["responses"]
    assert list(read["200"]["headers"]) == ["Cache-Control", "ETag", "Vary"]
    assert read["304"]["headers"]["ETag"]["required"] is True and "content" not in read["304"]
    assert "content" not in op("/reports:email", "post")["responses"]["204"]


def test_problem_responses_are_the_ones_a_route_can_return() -> None:
    def statuses(path: str, verb: str) -> list[str]:
        return list(op(path, verb)["responses"])

    assert statuses("/products/{id}", "get") == ["200", "304", "400", "404", "406", "default"]
    assert statuses("/products", "get") == ["200", "304", "400", "406", "default"]
    assert statuses("/products", "post") == ["201", "400", "406", "413", "415", "default"]
    assert statuses("/products/{id}", "patch") == [
        "200",
        "400",
        "404",
        "406",
        "413",
        "415",
        "default",
    ]
    assert op("/products/{id}", "get")["responses"]["404"] == {
        "$ref": "#/components/responses/NotFound"
    }
    responses = DOC["components"]["responses"]
    for name in ("BadRequest", "NotFound", "ContentTooLarge", "UnsupportedMediaType", "Problem"):
        assert responses[name]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
            "application/problem+xml": {"schema": {"$ref": "#/components/schemas/Problem"}},
        }
    problem = component("Problem")
    assert problem["xml"] == {"name": "problem", "namespace": "urn:ietf:rfc:7807"}
    assert problem["required"] == ["type", "title", "status", "detail", "instance", "code"]
    assert problem["properties"]["violations"]["items"]["required"] == ["field", "description"]
    assert component("ErrorCode")["enum"] == [c.wire_name for c in Code]
    assert len(component("ErrorCode")["enum"]) == 16


def test_no_input_means_no_400() -> None:
    svc = Service("health.v1")
    svc.procedure(http=("GET", "/ping"))(_ping)
    doc = App(svc).openapi
    validate(doc)
    assert list(doc["paths"]["/ping"]["get"]["responses"]) == ["200", "304", "406", "default"]


async def _ping() -> Report:
    return Report(0, "ok")


def test_connect_operations() -> None:
    report = op("/catalog.v1.CatalogService/GenerateReport", "post")
    assert report["requestBody"]["required"] is True
    assert list(params("/catalog.v1.CatalogService/GenerateReport", "post")) == [
        "Connect-Protocol-Version",
        "Connect-Timeout-Ms",
    ]
    # No int64 anywhere in these messages, but the request refuses unknown
    # fields on REST, which Connect ignores: a variant that admits them.
    assert report["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/GenerateReportRequest.ProtoJSON"
    }
    variant = component("GenerateReportRequest.ProtoJSON")
    assert "additionalProperties" not in variant
    assert "GenerateReportRequest" not in DOC["components"]["schemas"]  # only REST's is closed
    assert variant["description"].endswith("unknown fields are ignored.")
    assert report["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Report"
    }
    assert report["responses"]["default"] == {"$ref": "#/components/responses/ConnectError"}
    assert "get" not in DOC["paths"]["/catalog.v1.CatalogService/GenerateReport"]
    connect_error = DOC["components"]["responses"]["ConnectError"]["content"]
    assert connect_error == {
        "application/json": {"schema": {"$ref": "#/components/schemas/ConnectError"}}
    }
    assert component("ConnectError")["required"] == ["code"]
    assert list(component("ConnectError")["properties"]) == ["code", "message", "details"]


def test_connect_get_for_side_effect_free_procedures() -> None:
    found = params("/catalog.v1.CatalogService/SearchProducts", "get")
    assert list(found) == ["message", "encoding", "connect", "Connect-Timeout-Ms"]
    assert found["message"]["required"] is True  # "query" is a required field
    assert found["message"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SearchProductsRequest.ProtoJSON"
    }
    assert found["encoding"]["schema"]["enum"] == ["json"]
    responses = op("/catalog.v1.CatalogService/SearchProducts", "get")["responses"]
    assert responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProductPage.ProtoJSON"
    }


def test_int64_variants_for_connect() -> None:
    names = {n for n in DOC["components"]["schemas"] if n.endswith(".ProtoJSON")}
    # Dimensions and Report hold only int32; Empty nothing; ProductPage only
    # through Product.
    assert names == {
        "EmailReportRequest.ProtoJSON",
        "GenerateReportRequest.ProtoJSON",  # closed, not int64: see test_connect_operations
        "Product.ProtoJSON",
        "ProductPage.ProtoJSON",
        "SearchProductsRequest.ProtoJSON",
    }
    variant = component("Product.ProtoJSON")
    assert variant["title"] == "Product.ProtoJSON"
    assert variant["description"].endswith("an int64 may be a string.")
    assert variant["properties"]["id"] == {
        "type": ["integer", "string"],
        "format": "int64",
        "pattern": "^-?[0-9]+$",
    }
    assert variant["properties"]["stock"] == component("Product")["properties"]["stock"]
    # The same but for the XML mapping's names, which a Connect (JSON-only) variant has not.
    size = {k: v for k, v in component("Product")["properties"]["size"].items() if k != "xml"}
    assert variant["properties"]["size"] == size
    assert variant["required"] == component("Product")["required"]
    page = component("ProductPage.ProtoJSON")["properties"]["products"]["items"]
    assert page == {"$ref": "#/components/schemas/Product.ProtoJSON"}
    email = op("/catalog.v1.CatalogService/EmailReport", "post")
    assert email["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EmailReportRequest.ProtoJSON"
    }
    assert email["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Empty"
    }


def test_variants_accept_what_proto3_json_sends_and_rest_schemas_do_not() -> None:
    item = {"id": "1099511627776", "name": "pen", "price": "1.50", "created": "2024-05-01T12:00Z"}
    proto = validator({"$ref": "#/components/schemas/ProductPage.ProtoJSON"})
    assert proto.is_valid({"products": [item]})
    assert proto.is_valid({"products": [{**item, "id": 1099511627776}]})
    assert not proto.is_valid({"products": [{**item, "id": "12x"}]})
    rest = validator({"$ref": "#/components/schemas/ProductPage"})
    assert not rest.is_valid({"products": [item]})
    assert rest.is_valid({"products": [{**item, "id": 1099511627776}]})


@pytest.mark.parametrize(
    "tp",
    [
        int,
        Annotated[int, Meta(ge=0)],
        Annotated[int, Meta(ge=0, le=2**31 - 1)],
        Annotated[int, Meta(gt=-(2**31) - 1, lt=2**31)],
        Annotated[int, Meta(ge=-(2**31) - 1, le=0)],
        Annotated[int, Meta(ge=0, le=2**31)],
        Annotated[int, Meta(gt=0, lt=10)],
    ],
)
def test_integer_width_agrees_with_messages_is_int32(tp: Any) -> None:
    (found,), _ = msgspec.json.schema_components([tp])
    assert (schemas.integer_width(found) == 32) is messages.is_int32(tp)


class Card(msgspec.Struct, tag=True):
    number: int


class Cash(msgspec.Struct, tag=True):
    note: str


async def _pay(method: Card | Cash) -> Report:
    return Report(0, "")


def test_discriminator_mappings_point_at_variants() -> None:
    svc = Service("pay.v1")
    svc.procedure(_pay)
    doc = App(svc).openapi
    validate(doc)
    union = doc["components"]["schemas"]["PayRequest.ProtoJSON"]["properties"]["method"]
    assert union["discriminator"]["mapping"] == {
        "Card": "#/components/schemas/Card.ProtoJSON",
        "Cash": "#/components/schemas/Cash",
    }
    assert {"$ref": "#/components/schemas/Card.ProtoJSON"} in union["anyOf"]


# A message type that takes a name the document keeps for its own schemas.
ReservedName = msgspec.defstruct("Problem", [("what", str)])


async def _fail() -> ReservedName:  # type: ignore[valid-type]
    return ReservedName("")


def test_reserved_component_names() -> None:
    svc = Service("oops.v1")
    svc.procedure(_fail)
    with pytest.raises(ValueError, match="reserved"):
        _ = App(svc).openapi


def test_encoding_is_stable_and_diffable() -> None:
    first = openapi.encode(App(service).openapi)
    assert first == openapi.encode(App(service).openapi)
    assert first.endswith(b"}\n") and b'\n  "paths": {' in first
    assert list(DOC["components"]["schemas"]) == sorted(DOC["components"]["schemas"])
    assert json.loads(first) == DOC


Test = Callable[[httpx.AsyncClient], Awaitable[None]]


def run(test: Test, app: App | None = None) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app or App(service, options=Options(max_body_size=200)))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await test(client)

    asyncio.run(main())


def check(response: httpx.Response, path: str, verb: str, doc: dict[str, Any] = DOC) -> None:
    """The response matches what the document says this operation answers."""
    responses = doc["paths"][path][verb]["responses"]
    documented = responses.get(str(response.status_code), responses["default"])
    if "$ref" in documented:
        documented = doc["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    if "content" not in documented:
        assert response.content == b""
        return
    spec = documented["content"][response.headers["content-type"]]
    validator(spec["schema"], doc).validate(response.json())


def test_served_document_matches_and_real_responses_validate() -> None:
    async def test(client: httpx.AsyncClient) -> None:
        served = await client.get("/openapi.json")
        assert served.headers["content-type"] == "application/json"
        assert served.json() == DOC
        new = {"name": "pen", "price": "1.50", "tags": ["office"]}
        created = await client.post("/products", json=new)
        assert created.status_code == 201
        check(created, "/products", "post")
        item = created.json()["id"]
        assert created.headers["location"] == f"/products/{item}"
        check(await client.get(f"/products/{item}"), "/products/{id}", "get")
        check(await client.get("/products", params={"tag": ["a", "b"]}), "/products", "get")
        missing = await client.get("/products/9")
        assert missing.status_code == 404
        check(missing, "/products/{id}", "get")
        bad = await client.post("/products", json={"name": "", "price": "1"})
        assert bad.status_code == 400 and bad.json()["violations"]
        check(bad, "/products", "post")
        typed = await client.post(
            "/products", content=b"name=x", headers={"content-type": "text/plain"}
        )
        assert typed.status_code == 415
        check(typed, "/products", "post")
        large = await client.post("/products", json={"name": "x" * 300, "price": "1"})
        assert large.status_code == 413
        check(large, "/products", "post")
        cancel = await client.post("/users/1/orders/2:cancel", json={"reason": "late"})
        check(cancel, "/users/{user_id}/orders/{order_id}:cancel", "post")
        gone = await client.delete(f"/products/{item}")
        assert gone.status_code == 204
        check(gone, "/products/{id}", "delete")

    PRODUCTS.clear()
    run(test)


async def _report_again(since: datetime) -> Report:
    return Report(0, "")


def test_two_services_with_one_rpc_name_get_distinct_schemas() -> None:
    # Both services have a GenerateReport procedure defined in this module: the
    # service in the request type's qualified name keeps their schemas apart.
    other = Service("other.v1")
    other.procedure(name="GenerateReport")(_report_again)
    doc = App([service, other]).openapi
    validate(doc)
    refs = set()
    for path in (
        "/catalog.v1.CatalogService/GenerateReport",
        "/other.v1.OtherService/GenerateReport",
    ):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        refs.add(body["schema"]["$ref"])
    assert len(refs) == 2


def test_real_connect_responses_validate() -> None:
    rpc = "/catalog.v1.CatalogService"

    async def test(client: httpx.AsyncClient) -> None:
        created = await client.post("/products", json={"name": "pen", "price": "1.50"})
        assert created.status_code == 201
        search = await client.post(f"{rpc}/SearchProducts", json={"query": "pen"})
        if search.status_code == 501:
            pytest.skip("the Connect protocol is not served yet")
        assert search.status_code == 200
        check(search, f"{rpc}/SearchProducts", "post")
        assert isinstance(search.json()["products"][0]["id"], str)  # proto3 JSON int64
        got = await client.get(
            f"{rpc}/SearchProducts", params={"message": '{"query": "pen"}', "encoding": "json"}
        )
        assert got.status_code == 200
        check(got, f"{rpc}/SearchProducts", "get")
        assert isinstance(got.json()["products"][0]["id"], str)
        emailed = await client.post(f"{rpc}/EmailReport", json={"to": "a@b.c", "order_id": "7"})
        check(emailed, f"{rpc}/EmailReport", "post")
        report = {"since": "2024-05-01T00:00:00Z", "limit": 3}
        check(
            await client.post(f"{rpc}/GenerateReport", json=report), f"{rpc}/GenerateReport", "post"
        )
        invalid = await client.post(f"{rpc}/GenerateReport", json={"limit": -1})
        assert invalid.status_code == 400
        check(invalid, f"{rpc}/GenerateReport", "post")

    PRODUCTS.clear()
    run(test)


# --- docs/openapi.md ----------------------------------------------------------

ROOT = Path(__file__).resolve().parents[3]
PAGE = (ROOT / "docs" / "openapi.md").read_text()


def test_docs_python_example_is_the_module() -> None:
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", PAGE, flags=re.S)
    assert [path for path, _ in blocks] == [
        "docs_src/openapi/service.py",
        "docs_src/openapi/departures.py",
    ]
    for path, text in blocks:
        assert text == (ROOT / path).read_text(), f"{path} and docs/openapi.md differ"


def test_docs_json_fragments_are_the_document() -> None:
    doc = docs_example.app.openapi
    # The pointer is in a comment above each block: a fence takes no free text.
    blocks = re.findall(r"<!-- (#/\S+) -->\n```json\n(.*?)```", PAGE, flags=re.S)
    assert len(blocks) == 3
    for pointer, text in blocks:
        node: Any = doc
        for part in pointer.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert node == json.loads(text), pointer


def test_docs_3_2_fragments_are_the_document() -> None:
    from docs_src.openapi import departures

    doc = departures.app.openapi
    assert doc["openapi"] == "3.2.0"
    pattern = r"<!-- docs_src/openapi/departures\.py(#/\S+) -->\n```json\n(.*?)```"
    blocks = re.findall(pattern, PAGE, re.S)
    assert len(blocks) == 2
    for pointer, text in blocks:
        node: Any = doc
        for part in pointer.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert node == json.loads(text), pointer


def test_docs_example_serves_what_it_documents() -> None:
    doc = docs_example.app.openapi
    validate(doc)
    assert [o["operationId"] for item in doc["paths"].values() for o in item.values()] == [
        "GetBook",
        "CreateBook",
        "ListOverdue",
        "ListOverdueGet",
    ]
    overdue = "/library.v1.LibraryService/ListOverdue"

    async def test(client: httpx.AsyncClient) -> None:
        new = {"isbn": "9780441013593", "title": "Dune"}
        created = await client.post("/books", json=new)
        assert created.status_code == 201
        assert created.headers["location"] == f"/books/{created.json()['id']}"
        check(created, "/books", "post", doc)
        check(await client.get(created.headers["location"]), "/books/{id}", "get", doc)
        bad = await client.post("/books", json={**new, "isbn": "978-0441"})
        check(bad, "/books", "post", doc)
        assert bad.json()["violations"][0]["field"] == "book.isbn"
        late = await client.get(overdue, params={"message": '{"days": 7}', "encoding": "json"})
        if late.status_code == 501:
            pytest.skip("the Connect protocol is not served yet")
        check(late, overdue, "get", doc)
        assert all(isinstance(i, str) for i in late.json()["book_ids"])

    docs_example.BOOKS.clear()
    run(test, docs_example.app)
