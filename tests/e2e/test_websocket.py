"""JSON-RPC over WebSocket on the catalog, with clients no one here wrote: Python's
``websockets`` with ``jsonrpcclient``, and Node's ``ws`` (tests/e2e/node/ws_client.mjs).

On uvicorn and on ``twofold serve --server pyvoy``'s one port. The same
methods, params and error objects as JSON-RPC over HTTP; WatchPrices as a
subscription; ImportProducts fed by ``rpc.send``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonrpcclient import Error, Ok, parse_json, request, request_json
from websockets.sync.client import ClientConnection, connect

from tests.e2e.programs import node_json
from tests.e2e.server import ROOT, Server
from tests.tokens import ADMIN, AUTHORIZATION

NODE_CLIENT = ROOT / "tests" / "e2e" / "node" / "ws_client.mjs"

pytestmark = pytest.mark.postgresql


@pytest.fixture(params=["uvicorn", "pyvoy"])
def served(request: pytest.FixtureRequest, catalog: Server, one_port: Server) -> Server:
    """Every test on both servers: uvicorn, and pyvoy's one port.

    Not named ``catalog``: a function's parameter of that name would become
    the session-scoped catalog's parameter as well, restarting it per test.
    """
    return catalog if request.param == "uvicorn" else one_port


@pytest.fixture
def http(served: Server) -> Iterator[httpx.Client]:
    """The chosen server's HTTP side, with the development admin token."""
    with httpx.Client(base_url=served.url, timeout=10.0, headers=AUTHORIZATION) as client:
        yield client


def ws_url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.port}/jsonrpc"


def call(ws: ClientConnection, method: str, params: Any = None) -> Ok | Error:
    ws.send(request_json(method, params=params))
    return parse_json(ws.recv(timeout=10))


def next_notification(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(ws.recv(timeout=20))
    assert message["method"] == "rpc.subscription", message
    return dict(message["params"])


def test_the_same_answers_as_json_rpc_over_http(served: Server, http: httpx.Client) -> None:
    category = f"ws-{uuid.uuid4().hex[:8]}"
    product = {"name": "Lamp", "price": "10.00", "category": category}
    with connect(ws_url(served), additional_headers=AUTHORIZATION) as ws:
        created = call(ws, "CreateProduct", {"product": product})
        assert isinstance(created, Ok), created
        got = call(ws, "catalog.v1.CatalogService/GetProduct", [created.result["id"]])
        assert isinstance(got, Ok) and got.result == created.result
        for method, params in [
            ("GetProduct", {"id": 10**12}),  # NOT_FOUND
            ("GetProduct", {"id": "x"}),  # invalid params
            ("CreateProduct", {"product": {"name": ""}}),  # violations
            ("NoSuchMethod", {}),
        ]:
            message = request(method, params=params)
            over_ws = call(ws, method, params)
            over_http = http.post("/jsonrpc", json=message).json()
            assert isinstance(over_ws, Error)
            assert over_http["error"] == {
                "code": over_ws.code,
                "message": over_ws.message,
                "data": over_ws.data,
            }


def test_batches_and_notifications(served: Server) -> None:
    with connect(ws_url(served)) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "ListProducts", "params": {}}))
        ws.send(
            json.dumps(
                [
                    {
                        "jsonrpc": "2.0",
                        "method": "ListProducts",
                        "params": {"page_size": 1},
                        "id": 1,
                    },
                    {"jsonrpc": "2.0", "method": "GetProduct", "params": {"id": 10**12}, "id": 2},
                    {"jsonrpc": "2.0", "method": "ListProducts"},
                ]
            )
        )
        # The notifications get no answer: the batch's is the only one.
        answers = {a["id"]: a for a in json.loads(ws.recv(timeout=10))}
        assert set(answers) == {1, 2}
        assert "result" in answers[1] and answers[2]["error"]["data"]["code"] == "not_found"


def test_watch_prices_as_a_subscription(served: Server, http: httpx.Client) -> None:
    category = f"ws-watch-{uuid.uuid4().hex[:8]}"
    r = http.post("/products", json={"name": "Clock", "price": "10.00", "category": category})
    product = r.json()
    with connect(ws_url(served)) as ws:
        subscribed = call(ws, "WatchPrices", {"category": category})
        assert isinstance(subscribed, Ok)
        subscription = subscribed.result
        # The subscription is open once its id is answered: a change made now reaches it.
        changed = http.patch(f"/products/{product['id']}", json={"price": "12.50"})
        assert changed.status_code == 200, changed.text
        note = next_notification(ws)
        assert note["subscription"] == subscription
        assert note["result"]["product_id"] == product["id"]
        assert (note["result"]["old_price"], note["result"]["new_price"]) == ("10.00", "12.50")
        assert call(ws, "rpc.unsubscribe", {"subscription": subscription}).result is True  # type: ignore[union-attr]
        assert call(ws, "rpc.unsubscribe", {"subscription": subscription}).result is False  # type: ignore[union-attr]


def test_import_products_as_a_client_stream(served: Server, http: httpx.Client) -> None:
    category = f"ws-import-{uuid.uuid4().hex[:8]}"
    with connect(ws_url(served), additional_headers=AUTHORIZATION) as ws:
        stream = call(ws, "ImportProducts").result  # type: ignore[union-attr]
        for name in ("Cup", "Saucer", "Cup"):
            product = {"name": name, "price": "3.00", "category": category}
            sent = call(ws, "rpc.send", {"subscription": stream, "message": {"product": product}})
            assert sent.result is True  # type: ignore[union-attr]
        assert call(ws, "rpc.close", {"subscription": stream}).result is True  # type: ignore[union-attr]
        summary = next_notification(ws)
        assert summary["result"]["created"] == 2
        assert [f["index"] for f in summary["result"]["failed"]] == [2]
        assert next_notification(ws) == {"subscription": stream, "end": True}
    listed = http.get("/products", params={"category": category}).json()["products"]
    assert sorted(p["name"] for p in listed) == ["Cup", "Saucer"]


def test_a_write_needs_credentials_on_the_connection(served: Server) -> None:
    product = {"name": "Lamp", "price": "10.00", "category": "ws-anon"}
    with connect(ws_url(served)) as ws:
        refused = call(ws, "CreateProduct", {"product": product})
        assert isinstance(refused, Error) and refused.data["code"] == "unauthenticated"
    with connect(ws_url(served)) as ws:
        # A browser cannot set headers on an upgrade: the first message carries them.
        assert call(ws, "rpc.authenticate", {"authorization": f"Bearer {ADMIN}"}).result is True  # type: ignore[union-attr]
        assert isinstance(call(ws, "CreateProduct", {"product": product}), Ok)


def test_calls_show_in_the_metrics(served: Server) -> None:
    with connect(ws_url(served)) as ws:
        call(ws, "ListProducts", {})
    metrics = httpx.get(f"{served.url}/metrics").text
    assert any(
        'protocol="websocket"' in line and "ListProducts" in line and 'code="ok"' in line
        for line in metrics.splitlines()
        if line.startswith("twofold_calls_total")
    )


@pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules" / "ws").exists(),
    reason="needs node and `npm ci` (make does both)",
)
def test_node_ws_client(served: Server) -> None:
    out = node_json(NODE_CLIENT, ws_url(served), served.url, ADMIN)
    assert out["created"]["name"] == "Kettle"
    assert out["batch"] == [
        {"id": 2, "code": "not_found"},
        {"id": 3, "ok": True},
    ]
    assert out["change"] == {"oldPrice": "20.00", "newPrice": "21.00"}
    assert out["unsubscribed"] is True
