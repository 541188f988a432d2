"""QuotePrices, the catalog's bidi stream, on every wire that carries bidi, with
clients nobody here wrote: grpcio stubs from the exported .proto and
@grpc/grpc-js with proto-loader (tests/e2e/node/quote_grpc_js.mjs), each on
grpcio's port and on ``--server pyvoy``'s one port; connect-es over HTTP/2
(Connect, gRPC, gRPC-Web; tests/e2e/node/quote_client.mjs); Python's
``websockets`` over JSON-RPC over WebSocket (both servers); and ``twofold.Client`` over
gRPC, on grpcio and on its own HTTP/2 transport (over Connect it says
UNIMPLEMENTED).

Each test sends an id only after the answer to the one before has arrived:
the call completes only if the server answers each id as it comes, not once
the client has sent them all. A deadline on every call turns a server that
waited into a failure rather than a hang.
"""

from __future__ import annotations

import asyncio
import json
import queue
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest
from jsonrpcclient import request_json
from websockets.sync.client import ClientConnection, connect

from examples.catalog import service
from examples.catalog.quotes import MAX_QUOTES, PriceQuote, QuotePricesRequest
from tests.e2e.grpc_stubs import GOOGLEAPIS_INCLUDE
from tests.e2e.programs import node_json
from tests.e2e.server import ROOT, Server
from tests.tokens import AUTHORIZATION
from twofold import Client, Code, Error
from twofold.http.envelope import frame
from twofold.testing.parity.answers import envelopes

pytestmark = pytest.mark.postgresql

NODE_CLIENT = ROOT / "tests" / "e2e" / "node" / "quote_client.mjs"
GRPC_JS_CLIENT = NODE_CLIENT.with_name("quote_grpc_js.mjs")
MISSING = 10**12  # an id no product has
PER_ADDRESS = 64  # anonymous streams one address may hold (examples/catalog/__init__.py)


def products(url: str, *prices: str) -> list[int]:
    """New products with these prices, on the catalog at ``url``: their ids."""
    category = f"quote-{uuid.uuid4().hex[:8]}"
    ids = []
    with httpx.Client(base_url=url, headers=AUTHORIZATION, timeout=10) as http:
        for price in prices:
            body = {"name": "Lamp", "price": price, "category": category}
            r = http.post("/products", json=body)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
    return ids


def expected(known: list[int], prices: list[str]) -> list[tuple[int, bool, str | None]]:
    """The answers to ``known[0], MISSING, known[1]``, in that order."""
    return [(known[0], True, prices[0]), (MISSING, False, None), (known[1], True, prices[1])]


def ping_pong(call: Any, request: Any, ids: list[int]) -> tuple[list[str], list[Any]]:
    """A bidi ``call`` (grpcio's, or twofold.Client's) fed one id at a time, each
    only once the answer to the one before arrived: the events in the order
    they happened, and the answers."""
    pending: queue.Queue[int | None] = queue.Queue()
    events: list[str] = []

    def requests() -> Iterator[Any]:
        # Bounded, so that a failed test leaves no thread of the client waiting.
        while (product_id := pending.get(timeout=60)) is not None:
            events.append(f"sent {product_id}")
            yield request(product_id=product_id)

    answers = call(requests())
    received = []
    for product_id in ids:
        pending.put(product_id)
        answer = next(answers)  # before the next id is even queued
        events.append(f"got {answer.product_id}")
        received.append(answer)
    pending.put(None)  # half-close: the stream ends, OK, with nothing more
    assert list(answers) == []
    return events, received


def in_turn(ids: list[int]) -> list[str]:
    return [event for i in ids for event in (f"sent {i}", f"got {i}")]


def as_tuples(answers: list[Any]) -> list[tuple[int, bool, str | None]]:
    """(product_id, found, price) of grpcio's messages: an absent optional price is None."""
    return [
        (a.product_id, a.found, a.price if a.HasField("price") else None)
        if hasattr(a, "HasField")
        else (a.product_id, a.found, None if a.price is None else str(a.price))
        for a in answers
    ]


@pytest.mark.parametrize("server", ["grpcio", "pyvoy"])
def test_grpcio_stubs_answer_each_id_as_it_arrives(
    catalog: Server,
    one_port: Server,
    stubs: tuple[ModuleType, ModuleType],
    server: str,
) -> None:
    pb2, pb2_grpc = stubs
    served = catalog if server == "grpcio" else one_port
    known = products(served.url, "12.00", "7.50")
    ids = [known[0], MISSING, known[1]]
    # No credentials: QuotePrices is public, like the reads.
    with grpc.insecure_channel(served.grpc_target) as channel:
        stub = pb2_grpc.CatalogServiceStub(channel)
        events, answers = ping_pong(
            lambda r: stub.QuotePrices(r, timeout=30), pb2.QuotePricesRequest, ids
        )
    assert events == in_turn(ids)
    assert as_tuples(answers) == expected(known, ["12.00", "7.50"])


def test_a_message_its_schema_refuses_ends_the_stream(
    catalog: Server, stubs: tuple[ModuleType, ModuleType]
) -> None:
    pb2, pb2_grpc = stubs
    [known] = products(catalog.url, "3.00")
    with grpc.insecure_channel(catalog.grpc_target) as channel:
        stub = pb2_grpc.CatalogServiceStub(channel)
        requests = [pb2.QuotePricesRequest(product_id=i) for i in (known, 0, known)]
        answers: list[Any] = []
        with pytest.raises(grpc.RpcError) as info:
            answers.extend(stub.QuotePrices(iter(requests), timeout=30))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "product_id" in (info.value.details() or "")
    assert as_tuples(answers) == [(known, True, "3.00")]  # the one before it was answered


def test_a_stream_quotes_a_bounded_number_of_ids(
    catalog: Server, stubs: tuple[ModuleType, ModuleType]
) -> None:
    pb2, pb2_grpc = stubs
    [known] = products(catalog.url, "1.00")
    with grpc.insecure_channel(catalog.grpc_target) as channel:
        stub = pb2_grpc.CatalogServiceStub(channel)
        requests = (pb2.QuotePricesRequest(product_id=known) for _ in range(MAX_QUOTES + 1))
        answers: list[Any] = []
        with pytest.raises(grpc.RpcError) as info:
            answers.extend(stub.QuotePrices(requests, timeout=60))
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"at most {MAX_QUOTES}" in (info.value.details() or "")
    assert len(answers) == MAX_QUOTES


def test_each_stream_holds_a_place_of_the_stream_budget(
    catalog: Server, stubs: tuple[ModuleType, ModuleType]
) -> None:
    pb2, pb2_grpc = stubs
    [known] = products(catalog.url, "2.00")

    async def scenario() -> None:
        async with grpc.aio.insecure_channel(catalog.grpc_target) as channel:
            stub = pb2_grpc.CatalogServiceStub(channel)
            held = []
            for _ in range(PER_ADDRESS):  # each one admitted: it answered an id
                call = stub.QuotePrices(timeout=60)
                await call.write(pb2.QuotePricesRequest(product_id=known))
                assert (await call.read()).found
                held.append(call)
            # One address's share of anonymous streams is held: one more is refused.
            refused = stub.QuotePrices(timeout=60)
            assert await refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "retry-after" in dict(await refused.trailing_metadata())
            # A stream that ends gives its place back.
            await held[0].done_writing()
            assert await held[0].code() is grpc.StatusCode.OK
            again = stub.QuotePrices(timeout=60)
            await again.write(pb2.QuotePricesRequest(product_id=known))
            assert (await again.read()).price == "2.00"
            for call in [*held[1:], again]:
                await call.done_writing()
                assert await call.code() is grpc.StatusCode.OK

    asyncio.run(scenario())


def test_connect_es_over_http2_on_every_wire(
    one_port: Server, catalog_es: Path, tmp_path: Path
) -> None:
    known = products(one_port.url, "4.20", "99.99")
    ids = [known[0], MISSING, known[1]]
    results = node_json(NODE_CLIENT, catalog_es, one_port.url, *map(str, ids))
    quotes = [
        {"productId": str(i), "found": found, "price": price}
        for i, found, price in expected(known, ["4.20", "99.99"])
    ]
    for wire in ("connect-json", "connect-binary", "grpc", "grpc-web"):
        assert results[wire] == {"events": in_turn(ids), "answers": quotes}, wire


@pytest.mark.skipif(
    not (ROOT / "node_modules" / "@grpc" / "grpc-js").is_dir(),
    reason="needs @grpc/grpc-js (npm ci --no-audit --no-fund)",
)
@pytest.mark.parametrize("server", ["grpcio", "pyvoy"])
def test_grpc_js(catalog: Server, one_port: Server, catalog_es: Path, server: str) -> None:
    served = catalog if server == "grpcio" else one_port
    known = products(served.url, "3.30", "4.40")
    ids = [known[0], MISSING, known[1]]
    proto = catalog_es.parent / "proto"  # what `twofold proto` wrote, beside the ES modules
    answers = node_json(
        GRPC_JS_CLIENT, proto, GOOGLEAPIS_INCLUDE, served.grpc_target, *map(str, ids)
    )
    quotes = [
        {"productId": str(i), "found": found, "price": price}
        for i, found, price in expected(known, ["3.30", "4.40"])
    ]
    assert answers == {"events": in_turn(ids), "answers": quotes}


class Socket:
    """A JSON-RPC WebSocket whose stream notifications may arrive before the
    response to the ``rpc.send`` that caused them: kept until asked for."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.notifications: list[Any] = []

    def call(self, method: str, params: Any = None) -> Any:
        self.ws.send(request_json(method, params=params))
        while True:
            message = json.loads(self.ws.recv(timeout=20))
            if "id" in message:
                return message
            self.notifications.append(message)

    def notification(self) -> dict[str, Any]:
        if self.notifications:
            message = self.notifications.pop(0)
        else:
            message = json.loads(self.ws.recv(timeout=20))
        assert message["method"] == "rpc.subscription", message
        return dict(message["params"])


@pytest.mark.parametrize("server", ["uvicorn", "pyvoy"])
def test_json_rpc_over_websocket(catalog: Server, one_port: Server, server: str) -> None:
    served = catalog if server == "uvicorn" else one_port
    known = products(served.url, "5.55", "6.00")
    ids = [known[0], MISSING, known[1]]
    events, quotes = [], []
    with connect(f"ws://127.0.0.1:{served.port}/jsonrpc") as ws:  # anonymous
        socket = Socket(ws)
        stream = socket.call("QuotePrices")["result"]
        for product_id in ids:
            message = {"subscription": stream, "message": {"product_id": product_id}}
            assert socket.call("rpc.send", message)["result"] is True
            events.append(f"sent {product_id}")
            answer = socket.notification()
            assert answer["subscription"] == stream
            events.append(f"got {answer['result']['product_id']}")
            quotes.append(answer["result"])
        assert socket.call("rpc.close", {"subscription": stream})["result"] is True
        assert socket.notification() == {"subscription": stream, "end": True}
    assert events == in_turn(ids)
    assert [(q["product_id"], q["found"], q.get("price")) for q in quotes] == expected(
        known, ["5.55", "6.00"]
    )


@pytest.mark.parametrize("transport", ["grpcio", "h2"])
@pytest.mark.parametrize("server", ["grpcio", "pyvoy"])
def test_twofold_client_over_grpc(
    catalog: Server, one_port: Server, server: str, transport: str
) -> None:
    served = catalog if server == "grpcio" else one_port
    known = products(served.url, "8.00", "9.00")
    ids = [known[0], MISSING, known[1]]
    # Its default transport is grpcio's channel; "h2" is Twofold's own HTTP/2 client.
    options: dict[str, Any] = {} if transport == "grpcio" else {"transport": "h2"}
    with Client(service, served.grpc_target, protocol="grpc", timeout=30, **options) as client:
        events, answers = ping_pong(client.quote_prices, QuotePricesRequest, ids)
    assert all(isinstance(a, PriceQuote) for a in answers)
    assert events == in_turn(ids)
    assert as_tuples(answers) == expected(known, ["8.00", "9.00"])


@pytest.mark.parametrize("protocol", ["connect", "connect-proto", "grpc-web"])
def test_twofold_client_says_it_cannot_over_http(catalog: Server, protocol: str) -> None:
    # httpx sends a whole request before it reads the answer: no bidi (docs/client.md).
    with Client(service, catalog.url, protocol=protocol) as client, pytest.raises(Error) as info:
        list(client.quote_prices([QuotePricesRequest(product_id=1)]))
    assert info.value.code is Code.UNIMPLEMENTED
    assert "call it over grpc" in info.value.message


def test_half_duplex_over_http1(catalog: Server) -> None:
    # uvicorn speaks HTTP/1.1: a client that sends every id first, then reads, is answered.
    known = products(catalog.url, "1.25", "2.50")
    body = b"".join(frame(json.dumps({"product_id": i}).encode()) for i in [*known, MISSING])
    headers = {"content-type": "application/connect+json"}
    with httpx.Client(base_url=catalog.url, timeout=20) as http:
        r = http.post("/catalog.v1.CatalogService/QuotePrices", content=body, headers=headers)
    assert (r.status_code, r.http_version) == (200, "HTTP/1.1")
    *answers, end = [json.loads(m) for _, m in envelopes(r.content)]
    assert end == {}
    assert answers == [  # proto3 JSON: int64 as a string
        {"product_id": str(known[0]), "found": True, "price": "1.25"},
        {"product_id": str(known[1]), "found": True, "price": "2.50"},
        {"product_id": str(MISSING), "found": False, "price": None},
    ]
