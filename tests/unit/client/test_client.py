"""twofold.Client and AsyncClient in process: methods, messages, errors, auth, retries.

The app runs in process (the ASGI transport, no socket); what needs a
misbehaving server uses httpx.MockTransport. tests/e2e/test_client_*.py do
the same against real servers.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import random
import time
import types
from collections.abc import Callable
from typing import Any, get_type_hints

import httpx
import msgspec
import pytest

from twofold import (
    App,
    AsyncClient,
    BadRequest,
    Client,
    Code,
    Context,
    Error,
    ErrorInfo,
    FieldViolation,
    Idempotency,
    Service,
)
from twofold.client import (
    ApiKey,
    AsyncClientOptions,
    AsyncStub,
    BearerToken,
    ClientOptions,
    Empty,
    RawDetail,
    Retry,
    Stub,
)
from twofold.client.retry import retry_after

PROTOCOLS = ["rest", "jsonrpc", "connect"]

shop = Service("shop.v1")
items = shop.resource("items")
ITEMS: dict[int, Item] = {}


class Item(msgspec.Struct, kw_only=True):
    id: int = 0
    name: str
    tags: list[str] = []


class Who(msgspec.Struct):
    authorization: str
    api_key: str
    request_id: str


@items.get
async def get_item(id: int) -> Item:
    if id not in ITEMS:
        raise Error(Code.NOT_FOUND, f"no item {id}")
    return ITEMS[id]


@items.create
async def create_item(item: Item) -> Item:
    created = msgspec.structs.replace(item, id=len(ITEMS) + 1)
    ITEMS[created.id] = created
    return created


@items.delete
async def delete_item(id: int) -> None:
    ITEMS.pop(id, None)


DETAILS = [
    ErrorInfo("OUT_OF_STOCK", "shop.example.com", {"sku": "42"}),
    BadRequest((FieldViolation("item.name", "taken"), FieldViolation("item.tags", "too many"))),
]


@shop.procedure(http=("POST", "/fail"))
async def fail() -> Empty:
    raise Error(Code.FAILED_PRECONDITION, "cannot do that", DETAILS)


@shop.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
async def whoami(ctx: Context) -> Who:
    h = ctx.headers
    return Who(h.get("authorization", ""), h.get("x-api-key", ""), h.get("x-request-id", ""))


app = App(shop)


def run(protocol: str, test: Callable[[AsyncClient], Any], **options: Any) -> Any:
    async def main() -> Any:
        async with AsyncClient(shop, app, protocol=protocol, **options) as client:
            return await test(client)

    return asyncio.run(main())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_methods_by_python_name(protocol: str) -> None:
    async def test(c: AsyncClient) -> None:
        created = await c.create_item(item={"name": "pen", "tags": ["blue"]})
        assert isinstance(created, Item) and created.name == "pen" and created.id > 0
        assert await c.get_item(id=created.id) == created
        assert await c.get_item({"id": created.id}) == created
        assert await c.delete_item(id=created.id) == Empty()
        with pytest.raises(Error) as info:
            await c.get_item(id=created.id)
        assert info.value.code is Code.NOT_FOUND
        assert info.value.message == f"no item {created.id}"

    run(protocol, test)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_call_by_rpc_name(protocol: str) -> None:
    async def test(c: AsyncClient) -> None:
        created = await c.call("CreateItem", {"item": Item(name="cup")})
        by_name = await c.call("GetItem", id=created.id)
        by_full_name = await c.call("shop.v1.ShopService/GetItem", {"id": created.id})
        assert by_name == by_full_name == created

    run(protocol, test)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors_come_back_whole(protocol: str) -> None:
    async def test(c: AsyncClient) -> Error:
        with pytest.raises(Error) as info:
            await c.fail()
        return info.value

    error = run(protocol, test)
    assert error.code is Code.FAILED_PRECONDITION
    assert error.message == "cannot do that"
    assert error.violations == DETAILS[1].field_violations
    assert DETAILS[0] in error.details


def test_a_dict_is_validated_before_anything_is_sent() -> None:
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(500))
    with Client(shop, "http://shop", transport=transport) as c:
        with pytest.raises(Error) as info:
            c.create_item(item={"name": 5})
        with pytest.raises(TypeError):
            c.get_item({"id": 1}, id=1)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert [v.field for v in info.value.violations] == ["item.name"]
    assert sent == []


def test_unknown_and_ambiguous_names() -> None:
    other = Service("other.v1", "ShopService")

    @other.procedure(name="GetItem")
    async def get_other_item(id: int) -> Item:
        return Item(id=id, name="other")

    with Client([shop, other], "http://shop") as c:
        with pytest.raises(AttributeError, match=r"no method 'nope'$"):
            _ = c.nope
        # The closest first.
        with pytest.raises(AttributeError, match=r"'get_items': did you mean get_item, "):
            _ = c.get_items
        with pytest.raises(AttributeError, match=r"'creat_item': did you mean create_item"):
            _ = c.creat_item
        with pytest.raises(AttributeError):
            _ = c._private
        with pytest.raises(Error) as info:
            c.call("Nope")
        assert info.value.code is Code.UNIMPLEMENTED
        with pytest.raises(Error, match="several services"):
            c.call("GetItem", id=1)
        assert "get_item" in dir(c) and "whoami" in dir(c)
        assert {r.full_name for r in c.rpcs} >= {"other.v1.ShopService/GetItem"}


def test_a_method_without_a_route_is_not_on_rest() -> None:
    async def test(c: AsyncClient) -> Error:
        with pytest.raises(Error) as info:
            await c.whoami()
        return info.value

    error = run("rest", test)
    assert error.code is Code.UNIMPLEMENTED and "no REST route" in error.message


@pytest.mark.parametrize("protocol", ["jsonrpc", "connect"])
def test_auth_and_headers_go_with_every_call(protocol: str) -> None:
    async def test(c: AsyncClient) -> list[Who]:
        return [await c.whoami(), await c.call("Whoami", headers={"X-Request-Id": "r2"})]

    first, second = run(protocol, test, auth=BearerToken("s3cret"), headers={"X-Request-Id": "r1"})
    assert first == Who("Bearer s3cret", "", "r1")
    assert second.request_id == "r2"
    (keyed,) = run(protocol, lambda c: asyncio.gather(c.whoami()), auth=ApiKey("k3y"))
    assert keyed == Who("", "k3y", "")


def test_credentials_stay_out_of_reprs() -> None:
    assert "s3cret" not in repr(BearerToken("s3cret"))
    assert "k3y" not in repr(ApiKey("k3y", header="X-Key"))
    with pytest.raises(ValueError):
        BearerToken("a\r\nx-admin: 1")


def test_the_sync_client_runs_an_app_in_process() -> None:
    with Client(shop, app, protocol="connect") as c:
        created = c.create_item(item={"name": "sync"})
        assert c.get_item(id=created.id) == created


def test_clear_errors_for_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="no in-process transport"):
        Client(shop, app, protocol="grpc")
    with pytest.raises(ValueError, match="gRPC target"):
        Client(shop, "ftp://shop:50051", protocol="grpc")
    with pytest.raises(ValueError, match="grpcio"):
        Client(shop, "shop:50051", protocol="grpc", transport=httpx.HTTPTransport())
    with pytest.raises(ValueError, match="unknown protocol 'soap'"):
        Client(shop, "http://shop", protocol="soap")
    with pytest.raises(ValueError, match="http"):
        Client(shop, "localhost:8000")
    with pytest.raises(ValueError):
        Client(shop, "http://shop", timeout=0)
    with pytest.raises(ValueError):
        Retry(attempts=0)
    with pytest.raises(ValueError):
        Client([], "http://shop")


def test_options_typed_dicts_match_the_constructors() -> None:
    # Generated clients pass **options through: the two lists must agree.
    for cls, options in ((Stub, ClientOptions), (AsyncStub, AsyncClientOptions)):
        hints = get_type_hints(cls.__init__)
        keywords = set(hints) - {"services", "target", "return"}
        assert keywords == set(get_type_hints(options)), cls


# -- retries, with a scripted server --------------------------------------------


def scripted(*answers: httpx.Response) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering with copies of ``answers`` in turn (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.MockTransport(handler), seen


OK = httpx.Response(200, json={"id": 1, "name": "ok", "tags": []})
BUSY = httpx.Response(503, text="busy")
QUICK = Retry(attempts=4, backoff=0.001, max_backoff=0.001)


def test_retries_only_what_is_safe_to_repeat() -> None:
    transport, seen = scripted(BUSY, BUSY, OK)
    with Client(shop, "http://shop", retry=QUICK, transport=transport) as c:
        assert c.get_item(id=1).name == "ok"
    assert len(seen) == 3

    transport, seen = scripted(BUSY, OK)
    client = Client(shop, "http://shop", retry=QUICK, transport=transport)
    with client, pytest.raises(Error) as info:
        client.create_item(item={"name": "x"})
    assert info.value.code is Code.UNAVAILABLE and len(seen) == 1


@pytest.mark.parametrize(
    ("answer", "tries"),
    [
        (httpx.Response(429, text="slow down"), 4),  # an intermediary's limit: UNAVAILABLE
        (httpx.Response(429, json={"code": "resource_exhausted", "message": "quota"}), 4),
        (httpx.Response(413, json={"code": "resource_exhausted"}), 1),  # would not shrink
        (httpx.Response(504, json={"code": "deadline_exceeded"}), 1),
        (httpx.Response(404, json={"code": "not_found"}), 1),
        (httpx.Response(500, text="oops"), 1),
    ],
)
def test_which_failures_are_retried(answer: httpx.Response, tries: int) -> None:
    transport, seen = scripted(answer)
    client = Client(shop, "http://shop", retry=QUICK, transport=transport)
    with client, pytest.raises(Error):
        client.get_item(id=1)
    assert len(seen) == tries


def test_retry_none_means_one_attempt() -> None:
    transport, seen = scripted(BUSY, OK)
    client = Client(shop, "http://shop", retry=None, transport=transport)
    with client, pytest.raises(Error):
        client.get_item(id=1)
    assert len(seen) == 1


def test_async_retries_wait_for_retry_after() -> None:
    transport, seen = scripted(httpx.Response(503, headers={"retry-after": "0"}), OK)

    async def main() -> Item:
        async with AsyncClient(shop, "http://shop", retry=QUICK, transport=transport) as c:
            item: Item = await c.get_item(id=1)
            return item

    assert asyncio.run(main()).name == "ok"
    assert len(seen) == 2


def test_backoff_is_exponential_with_full_jitter() -> None:
    policy = Retry(backoff=0.1, multiplier=2, max_backoff=0.5)
    random.seed(7)
    for retry, ceiling in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.5), (10, 0.5)]:
        delays = [policy.backoff_delay(retry) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2


def test_retry_after_values() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) is None and retry_after("soon") is None
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < (retry_after(later) or 0) <= 30
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# -- what goes on the wire -----------------------------------------------------------


def test_connect_sends_the_deadline_and_jsonrpc_the_qualified_name() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/jsonrpc":
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": {"name": "x"}})
        return httpx.Response(200, json={"id": "1", "name": "x"})

    transport = httpx.MockTransport(handler)
    with Client(shop, "http://shop", transport=transport, timeout=2.5) as c:
        c.get_item(id=1)
        c.get_item(id=1, timeout=0.25)
    with Client(shop, "http://shop", protocol="jsonrpc", transport=transport) as c:
        c.get_item(id=1)
    connect_timeouts = [int(r.headers["connect-timeout-ms"]) for r in seen[:2]]
    assert 2400 < connect_timeouts[0] <= 2500 and 200 < connect_timeouts[1] <= 250
    assert seen[0].headers["connect-protocol-version"] == "1"
    assert msgspec.json.decode(seen[2].content)["method"] == "shop.v1.ShopService/GetItem"
    assert "connect-timeout-ms" not in seen[2].headers


def test_rest_puts_fields_in_the_path_query_and_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": 9, "name": "n", "tags": []})

    with Client(
        shop, "http://shop/api", protocol="rest", transport=httpx.MockTransport(handler)
    ) as c:
        c.create_item(item={"name": "n", "tags": ["a", "b"]})
        c.get_item(id=9)
    create, get = seen
    assert (create.method, str(create.url)) == ("POST", "http://shop/api/items")
    assert msgspec.json.decode(create.content) == {"id": 0, "name": "n", "tags": ["a", "b"]}
    assert (get.method, str(get.url), get.content) == ("GET", "http://shop/api/items/9", b"")


def connect_error(details: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(400, json={"code": "invalid_argument", "details": details})


def b64(data: bytes) -> str:
    return base64.b64encode(data).rstrip(b"=").decode()


def test_connect_details_are_read_from_their_protobuf_bytes() -> None:
    info, bad = DETAILS
    unknown = {"type": "acme.v1.Hint", "value": b64(b"\x0a\x02hi"), "debug": {"text": "hi"}}
    broken = {"type": ErrorInfo.TYPE_NAME, "value": "%%%", "debug": {"reason": "FROM_DEBUG"}}
    response = connect_error(
        [
            {"type": info.TYPE_NAME, "value": b64(info.to_proto())},
            {"type": bad.TYPE_NAME, "value": b64(bad.to_proto())},
            unknown,
            broken,
        ]
    )
    client = Client(shop, "http://shop", transport=httpx.MockTransport(lambda _: response))
    with client, pytest.raises(Error) as caught:
        client.get_item(id=1)
    decoded = caught.value.details
    assert decoded[:2] == (info, bad)
    assert decoded[2] == RawDetail("acme.v1.Hint", {"text": "hi"}, b"\x0a\x02hi")
    assert decoded[3] == ErrorInfo("FROM_DEBUG")
    assert caught.value.code is Code.INVALID_ARGUMENT and caught.value.message == ""


@pytest.mark.parametrize("protocol", [*PROTOCOLS, "connect-proto", "grpc-web"])
def test_a_failed_call_leaves_no_frame_to_the_garbage_collector(protocol: str) -> None:
    """The error a call raises must not be kept, with the frames its traceback
    holds, by the client's own frames or its failure: a cycle per failed call,
    which only the collector frees. (httpx's own objects do cycle; what it
    leaves is no frame of ours.)"""

    async def test(c: AsyncClient) -> list[str]:
        async def fail() -> None:
            with pytest.raises(Error):
                await c.get_item(id=424242)

        await fail()
        gc.collect()
        gc.disable()
        try:
            for _ in range(10):
                await fail()
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
        finally:
            gc.set_debug(0)
            gc.enable()
        left = [
            type(o).__name__ for o in gc.garbage if isinstance(o, (types.FrameType, BaseException))
        ]
        gc.garbage.clear()
        return left

    assert run(protocol, test) == []
