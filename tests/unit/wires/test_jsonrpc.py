"""JSON-RPC 2.0: names, params, batches, notifications, errors, HTTP edges, docs.

Every test drives a real ``twofold.App`` in process through httpx's
ASGITransport and reads the bytes a client would get.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import msgspec
import pytest

from docs_src.jsonrpc import client as docs_client
from docs_src.jsonrpc import service as docs_service
from twofold import App, CallNext, Code, Context, Error, ErrorInfo, Options, Service
from twofold.core.code import JSONRPC_CODE
from twofold.core.method import Empty, Method, StreamKind

ROOT = Path(__file__).resolve().parents[3]
SECRET = "password=hunter2 at /srv/app/db.py"
_UNSET: Any = object()
# A valid request, to spoil one member at a time.
R = {"jsonrpc": "2.0", "method": "GenerateReport"}


# --- the service under test -------------------------------------------------


class Product(msgspec.Struct):
    id: int
    name: str
    price: float


class NewProduct(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    price: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class Report(msgspec.Struct):
    kind: str
    limit: int


class Caller(msgspec.Struct):
    protocol: str
    agent: str
    peer: str | None
    method: str


class Stock(msgspec.Struct):
    id: int
    count: int


class BrokenDetail:
    """A custom detail with a bug in its JSON form."""

    TYPE_NAME = "test.Broken"

    def to_json(self) -> dict[str, Any]:
        raise ValueError("bug in a detail")

    def to_proto(self) -> bytes:
        return b""


@dataclass
class State:
    products: dict[int, Product] = field(
        default_factory=lambda: {1: Product(1, "Widget", 9.5), 2: Product(2, "Gadget", 20.0)}
    )
    notes: list[str] = field(default_factory=list)
    events: dict[str, asyncio.Event] = field(default_factory=dict)

    def event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())


def catalog_service(state: State) -> Service:
    catalog = Service("catalog.v1")
    products = catalog.resource("products")

    @products.get
    async def get_product(id: int) -> Product:
        try:
            return state.products[id]
        except KeyError:
            raise Error(Code.NOT_FOUND, f"product {id} not found") from None

    @products.create
    async def create_product(product: NewProduct) -> Product:
        new = Product(max(state.products) + 1, product.name, product.price)
        state.products[new.id] = new
        return new

    @products.delete
    async def delete_product(id: int) -> None:
        if state.products.pop(id, None) is None:
            raise Error(Code.NOT_FOUND, f"product {id} not found")

    @catalog.procedure
    async def generate_report(kind: str = "daily", limit: int = 10) -> Report:
        return Report(kind, limit)

    @catalog.procedure
    async def explode() -> Report:
        raise RuntimeError(SECRET)

    @catalog.procedure
    async def fail(code: str, message: str = "", reason: str = "") -> None:
        raise Error(Code[code], message, [ErrorInfo(reason, domain="test")] if reason else [])

    @catalog.procedure
    async def whoami(ctx: Context) -> Caller:
        ctx.response_headers["x-served-by"] = "catalog"
        agent = ctx.headers.get("user-agent", "")
        return Caller(ctx.protocol, agent, ctx.peer, ctx.method.full_name)

    @catalog.procedure
    async def record(note: str) -> None:
        state.notes.append(note)

    @catalog.procedure
    async def wait_for(name: str) -> None:
        await asyncio.wait_for(state.event(name).wait(), 2)

    @catalog.procedure
    async def signal(name: str) -> None:
        state.event(name).set()

    @catalog.procedure
    async def bad_header(ctx: Context) -> None:
        ctx.response_headers["x-evil"] = "a\r\nset-cookie: x=1"

    @catalog.procedure
    async def bad_output() -> Report:
        return Report(kind=object(), limit=1)  # type: ignore[arg-type]

    @catalog.procedure
    async def bad_detail() -> None:
        raise Error(Code.ABORTED, "conflict", [BrokenDetail()])

    return catalog


def inventory_service() -> Service:
    """A second service that also has a GetProduct: the short name is ambiguous."""
    inventory = Service("inventory.v1")
    # Another REST path, the same RPC name.
    stock = inventory.resource("stock_items", singular="product")

    @stock.get
    async def get_product(id: int) -> Stock:
        return Stock(id, 7)

    @inventory.procedure
    async def count_stock() -> Stock:
        return Stock(0, 42)

    return inventory


def make_app(state: State | None = None, **options: Any) -> App:
    return App(catalog_service(state or State()), options=Options(**options))


# --- helpers ----------------------------------------------------------------


async def _send(
    app: App, verb: str, path: str, content: Any, headers: dict[str, str]
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(verb, path, content=content, headers=headers)


def post(
    app: App,
    payload: Any = None,
    *,
    content: Any = None,
    content_type: str | None = "application/json",
    verb: str = "POST",
    path: str = "/jsonrpc",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    if content is None and payload is not None:
        content = json.dumps(payload).encode()
    all_headers = {"content-type": content_type} if content_type else {}
    all_headers.update(headers or {})
    return asyncio.run(_send(app, verb, path, content, all_headers))


def request(method: Any, params: Any = _UNSET, id: Any = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not _UNSET:
        out["params"] = params
    if id is not _UNSET:
        out["id"] = id
    return out


def call(app: App, method: str, params: Any = _UNSET, id: Any = 1) -> dict[str, Any]:
    response = post(app, request(method, params, id))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["jsonrpc"] == "2.0"
    return body


def error_of(body: dict[str, Any], rpc_code: int, data_code: str, id: Any = 1) -> dict[str, Any]:
    """Check the shape of an error response and hand back its error object."""
    assert set(body) == {"jsonrpc", "error", "id"}
    assert body["id"] == id
    error: dict[str, Any] = body["error"]
    assert error["code"] == rpc_code
    assert error["data"]["code"] == data_code
    assert isinstance(error["message"], str) and error["message"]
    return error


# --- calling methods --------------------------------------------------------


def test_call_by_short_name_with_named_params() -> None:
    body = call(make_app(), "GetProduct", {"id": 1})
    assert body == {"jsonrpc": "2.0", "result": {"id": 1, "name": "Widget", "price": 9.5}, "id": 1}


def test_call_by_qualified_name() -> None:
    body = call(make_app(), "catalog.v1.CatalogService/GetProduct", {"id": 2})
    assert body["result"]["name"] == "Gadget"


def test_positional_params_follow_declaration_order() -> None:
    app = make_app()
    assert call(app, "GenerateReport", ["weekly", 3])["result"] == {"kind": "weekly", "limit": 3}
    # Fewer positions than fields: the rest keep their defaults.
    assert call(app, "GenerateReport", ["monthly"])["result"] == {"kind": "monthly", "limit": 10}
    assert call(app, "GenerateReport", [])["result"] == {"kind": "daily", "limit": 10}


def test_absent_params_are_an_empty_object() -> None:
    assert call(make_app(), "GenerateReport")["result"] == {"kind": "daily", "limit": 10}


def test_method_returning_nothing_gives_empty_object() -> None:
    state = State()
    body = call(make_app(state), "DeleteProduct", {"id": 1})
    assert body == {"jsonrpc": "2.0", "result": {}, "id": 1}
    assert 1 not in state.products


def test_create_with_a_message_field() -> None:
    state = State()
    body = call(make_app(state), "CreateProduct", {"product": {"name": "Gizmo", "price": 1.25}})
    assert body["result"] == {"id": 3, "name": "Gizmo", "price": 1.25}
    assert state.products[3].name == "Gizmo"


@pytest.mark.parametrize(
    "id", ["abc", "", 0, -7, 1.5, None, 123456789012345678901234567890], ids=repr
)
def test_id_is_echoed(id: Any) -> None:
    body = call(make_app(), "GenerateReport", id=id)
    assert body["id"] == id
    assert "result" in body


def test_huge_id_is_echoed_digit_for_digit() -> None:
    raw = b'{"jsonrpc":"2.0","method":"GenerateReport","id":123456789012345678901234567890}'
    response = post(make_app(), content=raw)
    assert response.content.endswith(b',"id":123456789012345678901234567890}')


def test_duplicate_keys_take_the_last_value() -> None:
    raw = b'{"jsonrpc":"2.0","method":"GetProduct","params":{"id":5,"id":2},"id":1,"id":9}'
    body = post(make_app(), content=raw).json()
    assert body["result"]["id"] == 2
    assert body["id"] == 9


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/jsonrequest",
    ],
)
def test_json_media_types_are_accepted(content_type: str) -> None:
    response = post(make_app(), request("GenerateReport"), content_type=content_type)
    assert response.status_code == 200
    assert response.json()["result"]["kind"] == "daily"


def test_custom_path() -> None:
    app = make_app(jsonrpc_path="/rpc")
    assert post(app, request("GenerateReport"), path="/rpc").json()["result"]["limit"] == 10


# --- the call context -------------------------------------------------------


def test_context_and_response_headers_of_a_single_call() -> None:
    response = post(make_app(), request("Whoami"), headers={"user-agent": "tests/1.0"})
    assert response.json()["result"] == {
        "protocol": "jsonrpc",
        "agent": "tests/1.0",
        "peer": "127.0.0.1:123",
        "method": "catalog.v1.CatalogService/Whoami",
    }
    assert response.headers["x-served-by"] == "catalog"


def test_response_headers_are_not_set_by_batch_calls() -> None:
    response = post(make_app(), [request("Whoami")])
    assert response.json()[0]["result"]["protocol"] == "jsonrpc"
    assert "x-served-by" not in response.headers


def test_response_header_with_line_break_is_an_internal_error() -> None:
    response = post(make_app(), request("BadHeader"))
    error_of(response.json(), -32603, "internal")
    assert "x-evil" not in response.headers
    assert "set-cookie" not in response.headers


def test_interceptors_run_around_jsonrpc_calls() -> None:
    seen: list[str] = []

    async def auth(ctx: Context, request: Any, call_next: CallNext) -> Any:
        seen.append(f"{ctx.protocol} {ctx.method.name}")
        if "authorization" not in ctx.headers:
            raise Error(Code.UNAUTHENTICATED, "log in first")
        return await call_next(request, ctx)

    app = App(catalog_service(State()), interceptors=[auth])
    error_of(post(app, request("GenerateReport")).json(), -32016, "unauthenticated")
    ok = post(app, request("GenerateReport"), headers={"authorization": "Bearer x"})
    assert ok.json()["result"]["kind"] == "daily"
    assert seen == ["jsonrpc GenerateReport", "jsonrpc GenerateReport"]


# --- method names -----------------------------------------------------------


def two_services() -> App:
    return App([catalog_service(State()), inventory_service()])


def test_ambiguous_short_name_is_not_found_and_names_the_choices() -> None:
    error = error_of(call(two_services(), "GetProduct", {"id": 1}), -32601, "unimplemented")
    assert "catalog.v1.CatalogService/GetProduct" in error["message"]
    assert "inventory.v1.InventoryService/GetProduct" in error["message"]


def test_qualified_names_tell_apart_same_short_names() -> None:
    app = two_services()
    catalog = call(app, "catalog.v1.CatalogService/GetProduct", {"id": 1})
    inventory = call(app, "inventory.v1.InventoryService/GetProduct", {"id": 1})
    assert catalog["result"]["name"] == "Widget"
    assert inventory["result"] == {"id": 1, "count": 7}
    # Names that are unique across services keep their short form.
    assert call(app, "CountStock")["result"] == {"id": 0, "count": 42}
    assert call(app, "GenerateReport")["result"]["kind"] == "daily"


@pytest.mark.parametrize(
    "name",
    ["NoSuchMethod", "getProduct", "catalog.v1.CatalogService/Nope", "rpc.discover", ""],
)
def test_unknown_method(name: str) -> None:
    error_of(call(make_app(), name), -32601, "unimplemented")


def test_streaming_method_is_not_served() -> None:
    catalog = catalog_service(State())

    async def watch(req: Any, ctx: Context) -> Any:
        raise AssertionError("never called")

    catalog.methods["WatchPrices"] = Method(
        service=catalog.full_name,
        name="WatchPrices",
        input_type=Empty,
        output_type=Product,
        handler=watch,
        kind=StreamKind.SERVER,
    )
    error = error_of(call(App(catalog), "WatchPrices"), -32601, "unimplemented")
    assert "streaming" in error["message"]


# --- invalid params ---------------------------------------------------------


def test_wrong_type_is_invalid_params_with_violations() -> None:
    error = error_of(call(make_app(), "GetProduct", {"id": "one"}), -32602, "invalid_argument")
    assert error["data"]["violations"] == [
        {"field": "id", "description": "Expected `int`, got `str`"}
    ]


def test_missing_required_param() -> None:
    error = error_of(call(make_app(), "GetProduct", {}), -32602, "invalid_argument")
    assert error["data"]["violations"] == [
        {"field": "id", "description": "required field is missing"}
    ]
    error = error_of(call(make_app(), "GetProduct"), -32602, "invalid_argument")
    assert error["data"]["violations"][0]["field"] == "id"


def test_unknown_param() -> None:
    error = error_of(call(make_app(), "GetProduct", {"id": 1, "x": 2}), -32602, "invalid_argument")
    assert error["data"]["violations"] == [{"field": "x", "description": "unknown field"}]


def test_nested_constraint_violation_has_a_dotted_path() -> None:
    params = {"product": {"name": "Gizmo", "price": -1}}
    error = error_of(call(make_app(), "CreateProduct", params), -32602, "invalid_argument")
    assert error["data"]["violations"][0]["field"] == "product.price"


def test_positional_params_are_validated_by_field_name() -> None:
    error = error_of(call(make_app(), "GenerateReport", ["x", "ten"]), -32602, "invalid_argument")
    assert error["data"]["violations"][0]["field"] == "limit"


def test_too_many_positional_params() -> None:
    error = error_of(call(make_app(), "GetProduct", [1, 2]), -32602, "invalid_argument")
    assert "at most 1" in error["message"]


def test_number_out_of_range_is_invalid_params() -> None:
    raw = b'{"jsonrpc":"2.0","method":"CreateProduct","params":{"product":{"price":1e99999}}}'
    error_of(post(make_app(), content=raw[:-1] + b',"id":1}').json(), -32602, "invalid_argument")


# --- application errors -----------------------------------------------------


def test_not_found_from_handler() -> None:
    error = error_of(call(make_app(), "GetProduct", {"id": 99}), -32005, "not_found")
    assert error["message"] == "product 99 not found"
    assert set(error["data"]) == {"code"}


def test_unexpected_exception_is_internal_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="twofold"):
        response = post(make_app(), request("Explode"))
    error = error_of(response.json(), -32603, "internal")
    assert error["message"] == "internal error"
    for leak in ("Traceback", "RuntimeError", "hunter2", "/srv/app", 'File "'):
        assert leak not in response.text
    # The traceback went to the server log instead.
    assert any(r.exc_info and SECRET in str(r.exc_info[1]) for r in caplog.records)


def test_output_that_cannot_be_encoded_is_internal() -> None:
    error = error_of(call(make_app(), "BadOutput", id="x"), -32603, "internal", id="x")
    assert error["message"] == "internal error"


def test_detail_that_cannot_be_encoded_still_gets_an_answer() -> None:
    error = error_of(call(make_app(), "BadDetail", id=4), -32603, "internal", id=4)
    assert error["message"] == "internal error"


def test_error_details_are_in_data() -> None:
    params = {"code": "FAILED_PRECONDITION", "message": "stale", "reason": "STALE_VERSION"}
    error = error_of(call(make_app(), "Fail", params), -32009, "failed_precondition")
    assert error["message"] == "stale"
    assert error["data"]["details"] == [
        {"type": "google.rpc.ErrorInfo", "reason": "STALE_VERSION", "domain": "test"}
    ]


def test_error_without_message_uses_the_code_name() -> None:
    error = error_of(call(make_app(), "Fail", {"code": "ABORTED"}), -32010, "aborted")
    assert error["message"] == "aborted"


@pytest.mark.parametrize("code", list(Code), ids=lambda c: c.name)
def test_every_code_renders_from_the_table(code: Code) -> None:
    params = {"code": code.name, "message": f"boom {code.name}"}
    error = error_of(call(make_app(), "Fail", params), JSONRPC_CODE[code], code.wire_name)
    assert error["message"] == f"boom {code.name}"


def test_error_table_is_complete_and_in_the_reserved_ranges() -> None:
    assert set(JSONRPC_CODE) == set(Code)
    assert len(set(JSONRPC_CODE.values())) == len(Code)
    standard = {Code.INVALID_ARGUMENT: -32602, Code.UNIMPLEMENTED: -32601, Code.INTERNAL: -32603}
    for code, rpc_code in JSONRPC_CODE.items():
        if code in standard:
            assert rpc_code == standard[code]
        else:
            assert -32099 <= rpc_code <= -32000
            assert rpc_code == -32000 - code.value
    assert JSONRPC_CODE[Code.NOT_FOUND] == -32005


# --- protocol errors --------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"jsonrpc": "2.0", "method": "GetProduct", "id": 1', id="truncated"),
        pytest.param(b"{not json}", id="garbage"),
        pytest.param(b"", id="empty"),
        pytest.param(b"   ", id="blank"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b'{"jsonrpc":"2.0","method":"\xff\xfe","id":1}', id="not-utf8-in-method"),
        # The envelope decoder fails on "jsonrpc" before it reaches the bad
        # bytes: still a parse error, not an invalid request.
        pytest.param(b'{"jsonrpc": 1, "method": "x", "id": 1, oops', id="garbage-after-bad-field"),
        pytest.param(b"[" * 50_000 + b"]" * 50_000, id="deep-batch"),
        pytest.param(
            b'{"jsonrpc":"2.0","method":"Record","params":{"note":'
            + b"[" * 50_000
            + b"]" * 50_000
            + b'},"id":1}',
            id="deep-params",
        ),
        pytest.param(b'[{"jsonrpc":"2.0","method":"GenerateReport","id":1},', id="truncated-batch"),
    ],
)
def test_parse_error(raw: bytes) -> None:
    response = post(make_app(), content=raw)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, dict)
    error_of(body, -32700, "invalid_argument", id=None)


def test_bad_utf8_inside_params_is_a_parse_error_with_the_id() -> None:
    raw = b'{"jsonrpc":"2.0","method":"Record","params":{"note":"\xff"},"id":7}'
    error_of(post(make_app(), content=raw).json(), -32700, "invalid_argument", id=7)


@pytest.mark.parametrize(
    ("payload", "id"),
    [
        pytest.param({**R, "jsonrpc": "1.0", "id": 1}, 1, id="old-version"),
        pytest.param({"method": "GenerateReport", "id": 1}, 1, id="no-version"),
        pytest.param({**R, "jsonrpc": 2.0, "id": 1}, 1, id="version-number"),
        pytest.param({"jsonrpc": "2.0", "id": 1}, 1, id="no-method"),
        # The spec's own example: invalid, so answered though it has no id.
        pytest.param({"jsonrpc": "2.0", "method": 1, "params": "bar"}, None, id="spec-example"),
        pytest.param({**R, "method": ["GetProduct"], "id": "x"}, "x", id="method-array"),
        pytest.param({**R, "method": None, "id": 1}, 1, id="method-null"),
        pytest.param({**R, "id": {"a": 1}}, None, id="id-object"),
        pytest.param({**R, "id": [1]}, None, id="id-array"),
        pytest.param({**R, "id": True}, None, id="id-bool"),
        pytest.param({**R, "params": "x", "id": 1}, 1, id="params-string"),
        pytest.param({**R, "params": 3, "id": 1}, 1, id="params-number"),
        pytest.param({**R, "params": None, "id": 1}, 1, id="params-null"),
        pytest.param({**R, "params": False, "id": 1}, 1, id="params-bool"),
        pytest.param({**R, "param": {}, "id": 1}, 1, id="unknown-member"),
        pytest.param(1, None, id="number"),
        pytest.param("GenerateReport", None, id="string"),
        pytest.param(None, None, id="null"),
    ],
)
def test_invalid_request(payload: Any, id: Any) -> None:
    response = post(make_app(), content=json.dumps(payload).encode())
    assert response.status_code == 200
    error_of(response.json(), -32600, "invalid_argument", id=id)


def test_id_number_out_of_range_is_invalid_request() -> None:
    raw = b'{"jsonrpc":"2.0","method":"GenerateReport","id":1e99999}'
    error_of(post(make_app(), content=raw).json(), -32600, "invalid_argument", id=None)


# --- notifications ----------------------------------------------------------


def test_notification_runs_and_gets_204() -> None:
    state = State()
    response = post(make_app(state), request("Record", {"note": "hello"}, id=_UNSET))
    assert response.status_code == 204
    assert response.content == b""
    assert state.notes == ["hello"]


@pytest.mark.parametrize(
    ("method", "params"),
    [("NoSuchMethod", {}), ("GetProduct", {"id": "x"}), ("GetProduct", {"id": 9}), ("Explode", {})],
)
def test_notifications_never_get_errors(method: str, params: Any) -> None:
    response = post(make_app(), request(method, params, id=_UNSET))
    assert response.status_code == 204
    assert response.content == b""


# --- batches ----------------------------------------------------------------


def test_batch_mixes_results_errors_and_notifications_in_order() -> None:
    state = State()
    batch = [
        request("GetProduct", {"id": 1}, id="ok"),
        request("Record", {"note": "n1"}, id=_UNSET),
        request("GetProduct", {"id": 99}, id="missing"),
        1,
        request(42, id="bad"),
        request("Explode", id="boom"),
        request("GenerateReport", ["yearly"], id=7),
        request("NoSuchMethod", id=_UNSET),
        [request("GenerateReport")],
    ]
    response = post(make_app(state), batch)
    assert response.status_code == 200
    answers = response.json()
    assert [a["id"] for a in answers] == ["ok", "missing", None, "bad", "boom", 7, None]
    assert answers[0]["result"]["name"] == "Widget"
    error_of(answers[1], -32005, "not_found", id="missing")
    error_of(answers[2], -32600, "invalid_argument", id=None)
    error_of(answers[3], -32600, "invalid_argument", id="bad")
    assert error_of(answers[4], -32603, "internal", id="boom")["message"] == "internal error"
    assert answers[5]["result"] == {"kind": "yearly", "limit": 10}
    error_of(answers[6], -32600, "invalid_argument", id=None)
    assert state.notes == ["n1"]


def test_batch_of_one_is_still_an_array() -> None:
    answers = post(make_app(), [request("GenerateReport")]).json()
    assert isinstance(answers, list) and len(answers) == 1


def test_empty_batch_is_one_invalid_request() -> None:
    body = post(make_app(), content=b" [ ] ").json()
    assert isinstance(body, dict)
    error_of(body, -32600, "invalid_argument", id=None)


def test_batch_over_the_limit_is_refused_whole() -> None:
    state = State()
    app = make_app(state, max_batch_size=2)
    notes = [request("Record", {"note": str(i)}, id=i) for i in range(3)]
    body = post(app, notes).json()
    assert isinstance(body, dict)
    assert "limit of 2" in error_of(body, -32600, "invalid_argument", id=None)["message"]
    assert state.notes == []
    assert len(post(app, notes[:2]).json()) == 2


def test_batch_of_notifications_gets_204() -> None:
    state = State()
    batch = [request("Record", {"note": n}, id=_UNSET) for n in ("a", "b")]
    response = post(make_app(state), batch)
    assert response.status_code == 204
    assert response.content == b""
    assert sorted(state.notes) == ["a", "b"]


def test_batch_calls_run_concurrently() -> None:
    # WaitFor only returns once Signal has run: one after the other would time out.
    batch = [request("WaitFor", {"name": "go"}, id=1), request("Signal", {"name": "go"}, id=2)]
    answers = post(make_app(), batch).json()
    assert answers == [
        {"jsonrpc": "2.0", "result": {}, "id": 1},
        {"jsonrpc": "2.0", "result": {}, "id": 2},
    ]


# --- HTTP edges -------------------------------------------------------------


@pytest.mark.parametrize("verb", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_verbs_are_405(verb: str) -> None:
    response = post(make_app(), content=b"", verb=verb)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    error_of(response.json(), -32600, "unimplemented", id=None)


def test_head_is_405_without_body() -> None:
    response = post(make_app(), verb="HEAD")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.content == b""


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(content_type: str | None) -> None:
    response = post(make_app(), request("GenerateReport"), content_type=content_type)
    assert response.status_code == 415
    assert response.headers["accept-post"] == "application/json"
    error_of(response.json(), -32600, "invalid_argument", id=None)


def test_body_over_the_limit_is_413() -> None:
    state = State()
    app = make_app(state, max_body_size=64)
    response = post(app, request("Record", {"note": "x" * 100}))
    assert response.status_code == 413
    error = error_of(response.json(), -32008, "resource_exhausted", id=None)
    assert "64" in error["message"]
    assert state.notes == []


def test_streamed_body_over_the_limit_is_413() -> None:
    # No Content-Length: the limit is enforced as the chunks arrive.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 20

    response = post(make_app(max_body_size=64), content=chunks())
    assert response.status_code == 413
    error_of(response.json(), -32008, "resource_exhausted", id=None)


async def _asgi(app: App, headers: list[tuple[bytes, bytes]], messages: list[Any]) -> list[Any]:
    """Drive the app with raw ASGI messages, for what httpx will not send."""
    sent: list[Any] = []

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/jsonrpc",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
    }
    await app(scope, receive, send)
    return sent


def test_malformed_content_length_is_400() -> None:
    body = json.dumps(request("GenerateReport")).encode()
    message = {"type": "http.request", "body": body, "more_body": False}
    start, end = asyncio.run(_asgi(make_app(), [(b"content-length", b"ten")], [message]))
    assert start["status"] == 400
    error_of(json.loads(end["body"]), -32600, "invalid_argument", id=None)


def test_client_gone_before_the_body_gets_no_answer() -> None:
    state = State()
    disconnect = {"type": "http.disconnect"}
    assert asyncio.run(_asgi(make_app(state), [], [disconnect])) == []
    assert state.notes == []


def test_body_in_chunks_is_read_whole() -> None:
    body = json.dumps(request("GenerateReport", {"kind": "chunked"})).encode()
    messages = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:], "more_body": False},
    ]
    start, end = asyncio.run(_asgi(make_app(), [], messages))
    assert start["status"] == 200
    assert json.loads(end["body"])["result"]["kind"] == "chunked"


# --- the docs ---------------------------------------------------------------


DOC = ROOT / "docs" / "jsonrpc.md"


def test_docs_python_examples_are_the_modules() -> None:
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", DOC.read_text(), flags=re.S)
    assert {path for path, _ in blocks} == {
        "docs_src/jsonrpc/service.py",
        "docs_src/jsonrpc/client.py",
    }
    for path, text in blocks:
        assert text == (ROOT / path).read_text(), f"{path} and docs/jsonrpc.md differ"


def test_docs_wire_examples_are_what_the_server_answers() -> None:
    blocks = re.findall(
        r"```json title=\"(request|response)\"\n(.*?)```", DOC.read_text(), flags=re.S
    )
    assert len(blocks) >= 8 and len(blocks) % 2 == 0
    for (kind_in, sent), (kind_out, answer) in zip(blocks[::2], blocks[1::2], strict=True):
        assert (kind_in, kind_out) == ("request", "response")
        response = post(docs_service.app, json.loads(sent))
        assert response.json() == json.loads(answer), sent


def test_docs_error_table_is_the_module_table() -> None:
    rows = re.findall(r"^\| ([A-Z_]+) \| ([a-z_]+) \| (-\d+) \|$", DOC.read_text(), flags=re.M)
    assert {Code[name]: int(number) for name, _, number in rows} == JSONRPC_CODE
    assert all(Code[name].wire_name == wire for name, wire, _ in rows)


def test_docs_client_example_runs() -> None:
    async def run() -> list[Any]:
        transport = httpx.ASGITransport(app=docs_service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await docs_client.main(client)

    visits = len(docs_service.VISITS)
    dune, found, missing, answers = asyncio.run(run())
    assert dune == {"id": 1, "title": "Dune", "author": "Frank Herbert"}
    assert found == {"books": [{"id": 2, "title": "Solaris", "author": "Stanisław Lem"}]}
    assert missing == (-32005, "not_found", "no book 99")
    assert [a["id"] for a in answers] == ["a", "b"]
    assert answers[0]["result"]["title"] == "Solaris"
    assert answers[1]["error"]["code"] == -32602
    assert docs_service.VISITS[visits:] == ["/books/2"]
