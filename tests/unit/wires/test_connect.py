"""Connect unary with the JSON codec: POST and GET, headers, and every error path.

Every test drives a real ``twofold.App`` in process through httpx's
ASGITransport and reads what a Connect client would get.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import httpx
import msgspec
import pytest

from docs_src.connect import client as docs_client
from docs_src.connect import service as docs_service
from twofold import (
    App,
    CallNext,
    Code,
    Context,
    Error,
    ErrorInfo,
    Idempotency,
    Options,
    Service,
)
from twofold.http.body import ClientDisconnected

ROOT = Path(__file__).resolve().parents[3]
SECRET = "password=hunter2 in /srv/shop/db.py"
JSON = {"content-type": "application/json"}

# --- the service under test -------------------------------------------------

shop = Service("shop.v1")
products = shop.resource("products")


class Color(enum.Enum):
    RED = "red"
    DARK_BLUE = "dark-blue"


class Dimensions(msgspec.Struct):
    width_mm: int
    height_mm: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0


class Product(msgspec.Struct, kw_only=True):
    id: int = 0
    name: Annotated[str, msgspec.Meta(min_length=1)]
    unit_price: Decimal
    tags: list[str] = []
    attributes: dict[str, str] = {}
    dimensions: Dimensions | None = None
    variants: list[Dimensions] = []
    color: Color = Color.RED
    thumbnail: bytes = b""
    created_at: datetime | None = None
    stock: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0


class ProductPatch(msgspec.Struct, kw_only=True):
    name: str | None = None
    unit_price: Decimal | None = None


class Inventory(msgspec.Struct):
    product_count: int
    total_stock: int
    deadline_set: bool


class Caller(msgspec.Struct):
    protocol: str
    method: str
    peer: str | None
    agent: str
    remaining: float | None


DB: dict[int, Product] = {}
SEEN: list[tuple[str, str, Any]] = []


@products.get
async def get_product(id: int) -> Product:
    product = DB.get(id)
    if product is None:
        raise Error(Code.NOT_FOUND, f"no product {id}")
    return product


@products.create
async def create_product(product: Product) -> Product:
    product = msgspec.structs.replace(product, id=max(DB, default=0) + 1)
    DB[product.id] = product
    return product


@products.update
async def update_product(id: int, product: ProductPatch) -> Product:
    current = await get_product(id)
    changes = {k: v for k, v in msgspec.structs.asdict(product).items() if v is not None}
    DB[id] = msgspec.structs.replace(current, **changes)
    return DB[id]


@products.delete
async def delete_product(id: int) -> None:
    if DB.pop(id, None) is None:
        raise Error(Code.NOT_FOUND, f"no product {id}")


@shop.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
async def count_inventory(ctx: Context, min_stock: int = 0) -> Inventory:
    ctx.response_headers["cache-control"] = "max-age=60"
    stocked = [p for p in DB.values() if p.stock >= min_stock]
    return Inventory(len(stocked), sum(p.stock for p in stocked), ctx.deadline is not None)


@shop.procedure
async def restock(
    product_id: int, quantity: Annotated[int, msgspec.Meta(ge=1, le=1000)]
) -> Product:
    product = await get_product(product_id)
    DB[product_id] = msgspec.structs.replace(product, stock=product.stock + quantity)
    return DB[product_id]


@shop.procedure
async def wait(seconds: float) -> None:
    await asyncio.sleep(seconds)


@shop.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
async def who_am_i(ctx: Context) -> Caller:
    return Caller(
        ctx.protocol,
        ctx.method.full_name,
        ctx.peer,
        ctx.headers.get("user-agent", ""),
        ctx.time_remaining(),
    )


@shop.procedure
async def fail(kind: str, ctx: Context) -> None:
    ctx.response_headers["x-attempt"] = "1"
    if kind == "quota":
        raise Error(Code.RESOURCE_EXHAUSTED, "", [ErrorInfo("QUOTA", "shop.v1", {"limit": "5"})])
    if kind == "bare":
        raise Error(Code.FAILED_PRECONDITION)
    if kind == "gone":
        # What reading a body raises when its client left, from the handler
        # itself (not from the wire's read): the handler's failure.
        raise ClientDisconnected
    raise RuntimeError(SECRET)


async def remember(ctx: Context, request: Any, call_next: CallNext) -> Any:
    SEEN.append((ctx.protocol, ctx.method.name, request))
    return await call_next(request, ctx)


def make_app(**options: Any) -> App:
    return App(shop, interceptors=[remember], options=Options(**options))


APP = make_app()


@pytest.fixture(autouse=True)
def fresh_db() -> Iterator[None]:
    DB.clear()
    DB[1] = Product(
        id=1,
        name="Lamp",
        unit_price=Decimal("19.90"),
        tags=["home"],
        dimensions=Dimensions(120, 300),
        thumbnail=b"\xfb\xff",
        created_at=datetime(2024, 5, 1, 10, tzinfo=UTC),
        stock=3,
    )
    SEEN.clear()
    yield


def request(
    method: str,
    path: str,
    app: App = APP,
    **kwargs: Any,
) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 5123))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(run())


def rpc(
    name: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
    return request(
        "POST",
        f"/shop.v1.ShopService/{name}",
        content=content,
        headers=JSON if headers is None else headers,
        **kw,
    )


def get(name: str, app: App = APP, **params: str) -> httpx.Response:
    return request("GET", f"/shop.v1.ShopService/{name}", app=app, params=params)


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def violations(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (v["field"], v["description"])
        for d in body["details"]
        if d["type"] == "google.rpc.BadRequest"
        for v in d["debug"]["fieldViolations"]
    ]


# --- protobuf wire reading, to check details independently of details.py -----


def read_fields(data: bytes) -> list[tuple[int, bytes]]:
    """The (field number, payload) pairs of a message made of length-delimited fields."""
    out, i = [], 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = varint()
        assert key & 7 == 2, "only length-delimited fields are expected"
        size = varint()
        out.append((key >> 3, data[i : i + size]))
        i += size
    return out


def detail_bytes(detail: dict[str, Any]) -> bytes:
    value: str = detail["value"]
    assert "=" not in value, "Connect detail values are unpadded"
    return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)


# --- success ----------------------------------------------------------------


def test_create_answers_proto3_json_with_original_names() -> None:
    r = rpc(
        "CreateProduct",
        {
            "product": {
                "name": "Desk",
                "unitPrice": "120.00",
                "dimensions": {"widthMm": "1400", "heightMm": 750},
                "variants": [{"width_mm": 1200}],
                "attributes": {"wood": "oak"},
                "color": "DARK_BLUE",
                "thumbnail": "AAE",
                "createdAt": "2024-05-01T12:00:00+02:00",
                "stock": "4",
            }
        },
        headers={**JSON, "connect-protocol-version": "1"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "id": "2",
        "name": "Desk",
        "unit_price": "120.00",
        "tags": [],
        "attributes": {"wood": "oak"},
        "dimensions": {"width_mm": "1400", "height_mm": 750},
        "variants": [{"width_mm": "1200", "height_mm": 0}],
        "color": "COLOR_DARK_BLUE",  # proto3 JSON names enum values
        "thumbnail": "AAE=",
        "created_at": "2024-05-01T10:00:00Z",
        "stock": 4,
    }
    assert DB[2].dimensions == Dimensions(1400, 750)
    assert DB[2].thumbnail == b"\x00\x01"


@pytest.mark.parametrize("body", [{"id": 1}, {"id": "1"}, {"id": 1.0}, {"id": "1", "future": [1]}])
def test_int64_as_number_or_string_and_unknown_fields_ignored(body: dict[str, Any]) -> None:
    r = rpc("GetProduct", body)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "1" and r.json()["stock"] == 3


def test_nested_unknown_fields_and_nulls() -> None:
    patch = {"name": "Desk lamp", "unitPrice": None, "addedInV2": {"x": 1}}
    r = rpc("UpdateProduct", {"id": "1", "product": patch, "updateMask": None})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Desk lamp" and r.json()["unit_price"] == "19.90"


def test_int32_bound_input_and_charset_parameter() -> None:
    headers = {"content-type": "application/json; charset=utf-8"}
    r = rpc("Restock", {"productId": "1", "quantity": "5"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["stock"] == 8
    body = error(rpc("Restock", {"productId": 1, "quantity": 1001}), 400, "invalid_argument")
    assert violations(body) == [("quantity", "Expected `int` <= 1000")]


def test_empty_output_and_empty_body() -> None:
    r = rpc("DeleteProduct", {"id": 1})
    assert (r.status_code, r.content) == (200, b"{}")
    r = rpc("CountInventory", b"")  # no body at all: the empty message
    assert r.status_code == 200, r.text
    assert r.json() == {"product_count": "0", "total_stock": "0", "deadline_set": False}


def test_context_and_interceptors_see_a_connect_call() -> None:
    r = rpc("WhoAmI", {}, headers={**JSON, "user-agent": "connect-es/2.0"})
    assert r.json() == {
        "protocol": "connect",
        "method": "shop.v1.ShopService/WhoAmI",
        "peer": "10.0.0.7:5123",
        "agent": "connect-es/2.0",
        "remaining": None,
    }
    rpc("GetProduct", {"id": "1"})
    assert SEEN[-1][:2] == ("connect", "GetProduct") and SEEN[-1][2].id == 1


def test_handler_headers_are_sent() -> None:
    r = rpc("CountInventory", {"minStock": "1"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "max-age=60"
    assert r.json()["product_count"] == "1"


# --- GET --------------------------------------------------------------------


def test_get_with_a_percent_encoded_message() -> None:
    r = get("CountInventory", message='{"minStock":"1"}', encoding="json", connect="v1")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "max-age=60"
    assert r.json()["total_stock"] == "3"
    # Unknown parameters (a cache buster) are allowed, and no message is the empty one.
    assert get("CountInventory", encoding="json", _="123").json()["product_count"] == "1"


@pytest.mark.parametrize("pad", [True, False])
def test_get_with_base64_message(pad: bool) -> None:
    text = base64.urlsafe_b64encode(b'{"id": "1", "name": "\xc3\xa9?>"}').decode()
    r = get("GetProduct", message=text if pad else text.rstrip("="), encoding="json", base64="1")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Lamp"


def test_get_of_a_method_with_side_effects_is_405() -> None:
    r = get("CreateProduct", message="{}", encoding="json")
    body = error(r, 405, "unimplemented")
    assert r.headers["allow"] == "POST"
    assert "POST" in body["message"]
    assert "product" not in json.dumps(SEEN)


def test_get_errors() -> None:
    error(get("CountInventory", message="{}"), 400, "invalid_argument")  # no encoding
    r = get("CountInventory", message="CAE", encoding="yaml", base64="1")
    assert error(r, 415, "unimplemented")["message"].startswith("encoding 'yaml'")
    error(get("CountInventory", encoding="json", connect="v2"), 400, "invalid_argument")
    error(get("CountInventory", encoding="json", compression="br"), 501, "unimplemented")
    error(get("GetProduct", encoding="json", message="%%%", base64="1"), 400, "invalid_argument")
    error(get("GetProduct", encoding="json", message="{"), 400, "invalid_argument")
    body = error(get("GetProduct", encoding="json"), 400, "invalid_argument")
    assert violations(body) == [("id", "required field is missing")]
    too_many = "&".join(f"p{i}=1" for i in range(200))
    r = request("GET", f"/shop.v1.ShopService/CountInventory?encoding=json&{too_many}")
    error(r, 400, "invalid_argument")


# --- headers ----------------------------------------------------------------


def test_protocol_version_header() -> None:
    assert rpc(
        "GetProduct", {"id": 1}, headers={**JSON, "connect-protocol-version": "1"}
    ).is_success
    assert rpc("GetProduct", {"id": 1}).is_success  # absent: plain curl is welcome
    r = rpc("GetProduct", {"id": 1}, headers={**JSON, "connect-protocol-version": "2"})
    assert "connect-protocol-version" in error(r, 400, "invalid_argument")["message"]


@pytest.mark.parametrize("value", ["soon", "", "-5", "1.5", "12345678901", " 10", "1e3", "+5"])
def test_invalid_timeout_is_invalid_argument(value: str) -> None:
    r = rpc("GetProduct", {"id": 1}, headers={**JSON, "connect-timeout-ms": value})
    assert "connect-timeout-ms" in error(r, 400, "invalid_argument")["message"]


def test_timeout_becomes_the_deadline() -> None:
    r = rpc("WhoAmI", {}, headers={**JSON, "connect-timeout-ms": "9999999999"})
    remaining = r.json()["remaining"]
    assert 9_999_990 < remaining <= 9_999_999.999
    path = "/shop.v1.ShopService/CountInventory?encoding=json"
    r = request("GET", path, headers={"connect-timeout-ms": "60000"})
    assert r.json()["deadline_set"] is True


def test_expired_deadline_is_deadline_exceeded() -> None:
    r = rpc("Wait", {"seconds": 5}, headers={**JSON, "connect-timeout-ms": "20"})
    assert error(r, 504, "deadline_exceeded")["message"] == "deadline exceeded"
    assert rpc("Wait", {"seconds": 0}, headers={**JSON, "connect-timeout-ms": "5000"}).is_success


def test_content_encoding_other_than_gzip_or_identity_is_unimplemented() -> None:
    r = rpc("GetProduct", {"id": 1}, headers={**JSON, "content-encoding": "br"})
    assert "identity" in error(r, 501, "unimplemented")["message"]
    assert rpc("GetProduct", {"id": 1}, headers={**JSON, "content-encoding": "identity"}).is_success


@pytest.mark.parametrize(
    "content_type",
    ["application/protobuf", "text/plain", "application/jsonx", None],
)
def test_other_content_types_are_415(content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = rpc("GetProduct", b'{"id": 1}', headers=headers)
    assert r.headers["accept-post"] == "application/json"
    # A Connect error, so that a client sees why rather than a bare status.
    message = error(r, 415, "invalid_argument")["message"]
    assert (content_type or "no Content-Type") in message and "application/proto" in message


def test_other_verbs_are_405() -> None:
    r = request("PUT", "/shop.v1.ShopService/GetProduct", content=b"{}", headers=JSON)
    assert r.headers["allow"] == "GET, POST"  # side-effect free: Connect's GET too
    assert "PUT is not allowed" in error(r, 405, "unimplemented")["message"]
    r = request("DELETE", "/shop.v1.ShopService/CreateProduct")
    assert (r.status_code, r.headers["allow"]) == (405, "POST")


# --- errors -----------------------------------------------------------------


def test_malformed_json_is_invalid_argument() -> None:
    for raw in [b'{"id": ', b"\xff\xfe{}", b"{'id': 1}", b'{"id": 1} x']:
        body = error(rpc("GetProduct", raw), 400, "invalid_argument")
        assert body["message"].startswith("malformed JSON") and "details" not in body


def test_wrong_types_carry_violations_in_details() -> None:
    r = rpc(
        "CreateProduct", {"product": {"name": "", "unitPrice": "1", "dimensions": {"widthMm": "w"}}}
    )
    body = error(r, 400, "invalid_argument")
    # Every violation, in document order, not only the first msgspec met.
    found = violations(body)
    assert [field for field, _ in found] == ["product.name", "product.dimensions.width_mm"]
    field, description = found[0]
    assert body["message"] == f"invalid {field}: {description} (and 1 more)"
    body = error(rpc("CreateProduct", {"product": {"name": "x"}}), 400, "invalid_argument")
    assert violations(body) == [("product.unit_price", "required field is missing")]
    body = error(rpc("GetProduct", [1]), 400, "invalid_argument")
    assert violations(body) == [("", "Expected `object`, got `array`")]


def test_detail_value_is_the_base64_protobuf_of_the_detail() -> None:
    body = error(rpc("Restock", {"productId": "x", "quantity": 1}), 400, "invalid_argument")
    (detail,) = body["details"]
    assert detail["type"] == "google.rpc.BadRequest"
    ((number, violation),) = read_fields(detail_bytes(detail))
    assert number == 1  # BadRequest.field_violations
    assert read_fields(violation) == [(1, b"product_id"), (2, b"Expected `int`, got `str`")]
    assert detail["debug"] == {
        "fieldViolations": [{"field": "product_id", "description": "Expected `int`, got `str`"}]
    }


def test_detail_decodes_with_the_protobuf_runtime() -> None:
    from google.protobuf import (  # type: ignore[import-untyped]
        descriptor_pb2,
        descriptor_pool,
        message_factory,
    )

    FD = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="t/details.proto", package="google.rpc")
    bad_request = file.message_type.add(name="BadRequest")
    nested = bad_request.nested_type.add(name="FieldViolation")
    nested.field.add(name="field", number=1, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL)
    nested.field.add(name="description", number=2, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL)
    bad_request.field.add(
        name="field_violations",
        number=1,
        type=FD.TYPE_MESSAGE,
        label=FD.LABEL_REPEATED,
        type_name=".google.rpc.BadRequest.FieldViolation",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    message_class = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("google.rpc.BadRequest")
    )

    body = error(rpc("Restock", {"productId": 1, "quantity": 0}), 400, "invalid_argument")
    decoded = message_class.FromString(detail_bytes(body["details"][0]))
    assert [(v.field, v.description) for v in decoded.field_violations] == [
        ("quantity", "Expected `int` >= 1")
    ]


def test_handler_errors_keep_code_details_and_headers() -> None:
    body = error(rpc("GetProduct", {"id": 9}), 404, "not_found")
    assert body == {"code": "not_found", "message": "no product 9"}
    r = rpc("Fail", {"kind": "quota"})
    body = error(r, 429, "resource_exhausted")
    assert "message" not in body  # empty members are left out
    (detail,) = body["details"]
    assert detail["type"] == "google.rpc.ErrorInfo"
    assert detail["debug"] == {"reason": "QUOTA", "domain": "shop.v1", "metadata": {"limit": "5"}}
    fields = read_fields(detail_bytes(detail))
    assert fields[:2] == [(1, b"QUOTA"), (2, b"shop.v1")]
    assert read_fields(fields[2][1]) == [(1, b"limit"), (2, b"5")]
    assert r.headers["x-attempt"] == "1"
    assert error(rpc("Fail", {"kind": "bare"}), 400, "failed_precondition") == {
        "code": "failed_precondition"
    }


def test_unexpected_exceptions_are_internal_without_a_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.CRITICAL, logger="twofold"):
        r = rpc("Fail", {"kind": "crash"})
    body = error(r, 500, "internal")
    assert body == {"code": "internal", "message": "internal error"}
    assert "hunter2" not in r.text and "Traceback" not in r.text
    with caplog.at_level(logging.CRITICAL, logger="twofold"):
        r = rpc("Fail", {"kind": "gone"})
    assert error(r, 500, "internal") == body


def test_body_too_large_is_resource_exhausted() -> None:
    small = make_app(max_body_size=64)
    big = {"product": {"name": "x" * 100, "unitPrice": "1"}}
    r = request("POST", "/shop.v1.ShopService/CreateProduct", small, json=big)
    error(r, 429, "resource_exhausted")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(10):
            yield b" " * 20

    r = request("POST", "/shop.v1.ShopService/GetProduct", small, content=chunks(), headers=JSON)
    error(r, 429, "resource_exhausted")
    assert len(DB) == 1


def test_hostile_input_always_gets_a_connect_error() -> None:
    cases = [
        b"[" * 50_000 + b"]" * 50_000,
        b'{"id": ' * 3000,
        b'{"id": 1e999999}',
        b'{"id": 99999999999999999999999999}',
        b'{"product": {"name": "a", "unitPrice": "NaN-ish", "createdAt": "yesterday"}}',
        b'{"product": {"name": "a", "unitPrice": "1", "thumbnail": 5, "color": {}}}',
        b"\x00" * 100,
        b'"' + b"\\u" * 1000 + b'"',
    ]
    for raw in cases:
        r = rpc("CreateProduct", raw)
        assert r.status_code == 400, (raw[:40], r.text)
        assert r.json()["code"] == "invalid_argument"
    r = request(
        "POST",
        "/shop.v1.ShopService/GetProduct",
        content=b"{}",
        headers={**JSON, "content-length": "lots"},
    )
    assert r.status_code in (400, 500)


def test_handler_setting_a_header_with_a_line_break_is_internal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = Service("bad.v1")

    @svc.procedure
    async def split(ctx: Context) -> None:
        ctx.response_headers["x-evil"] = "a\r\nset-cookie: x=1"

    with caplog.at_level(logging.CRITICAL, logger="twofold"):
        r = request("POST", "/bad.v1.BadService/Split", App(svc), content=b"{}", headers=JSON)
    error(r, 500, "internal")
    assert "set-cookie" not in r.headers


# --- the docs ---------------------------------------------------------------


DOC = ROOT / "docs" / "connect.md"


def test_docs_python_examples_are_the_modules() -> None:
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", DOC.read_text(), flags=re.S)
    assert {path for path, _ in blocks} == {
        "docs_src/connect/service.py",
        "docs_src/connect/client.py",
        "docs_src/streaming/ticker.py",  # an excerpt: tests/docs runs the whole module
    }
    for path, text in blocks:
        module = (ROOT / path).read_text()
        whole = path.startswith("docs_src/connect/")
        assert text == module if whole else text in module, f"{path} and docs/connect.md differ"


def test_docs_client_example_runs() -> None:
    async def run() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=docs_service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
            return await docs_client.main(client)

    results = asyncio.run(run())
    created = results["created"]
    assert created["id"] == str(max(docs_service.BOOKS))  # an int64: a string
    assert created["page_count"] == 482  # an int32: a number
    assert created["published_at"] == "2024-05-01T08:00:00Z"
    assert results["by_get"] == results["by_post"] == created
    assert results["missing"] == (404, "not_found", "no book 99")
    assert results["invalid"][:2] == (400, "invalid_argument")
    assert results["invalid"][2] == [
        {"field": "book.page_count", "description": "Expected `int` >= 1"}
    ]


def parse_http(block: str) -> tuple[str, dict[str, str], str]:
    head, _, body = block.partition("\n\n")
    first, *lines = head.splitlines()
    headers = dict(line.split(": ", 1) for line in lines)
    return first, headers, body


def test_docs_wire_examples_are_what_the_server_answers() -> None:
    blocks = re.findall(r"```http\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 8 and len(blocks) % 2 == 0
    for sent, answer in zip(blocks[::2], blocks[1::2], strict=True):
        line, headers, body = parse_http(sent)
        verb, target, _ = line.split(" ")
        r = request(verb, target, docs_service.app, headers=headers, content=body.encode())
        status_line, expected_headers, expected_body = parse_http(answer)
        assert status_line == f"HTTP/1.1 {r.status_code} {r.reason_phrase}", sent
        for name, value in expected_headers.items():
            assert r.headers[name] == value, (sent, name)
        assert r.json() == json.loads(expected_body), sent
