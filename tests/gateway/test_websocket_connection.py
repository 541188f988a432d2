"""The gateway's WebSocket JSON-RPC is an App's connection (twofold.wires.websocket_connection):
batches, limits, idle and oversized closes, and the edge's credentials on the upgrade
and in ``rpc.authenticate``, driven by the ``websockets`` library against real servers."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.e2e.websocket_wire import client_frame, closed_with, raw_upgrade, server_frames
from tests.gateway.conftest import gateway_for, serve
from tests.gateway.jsonrpc_socket import call, read, ws_url
from tests.gateway.upstream import PROTO, Upstream
from twofold import ApiKeys, Authentication, Cors, Metrics, StoredApiKey, WebSocketOptions
from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.gateway import from_proto_files
from twofold.gateway.transcode import parse_json
from twofold.gateway.upstream import FORWARD

ORIGIN = "https://app.example.com"


def request(request_id: int | None, method: str, params: Any = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        doc["id"] = request_id
    if params is not None:
        doc["params"] = params
    return doc


# -- batches -------------------------------------------------------------------------


def test_a_batch_is_answered_with_one_array_then_its_streams_follow(gateway_url: str) -> None:
    batch = [
        request(1, "Echo", {"text": "a"}),
        request(2, "WatchBooks", {"parent": "shelves/batch", "count": 2}),
        request(None, "Echo", {"text": "a notification: no answer"}),
        request(3, "Nothing"),
        request(4, "rpc.close", {"subscription": "s1"}),
        request(5, "library.v1.Library/Echo", [1]),
    ]
    with connect(ws_url(gateway_url)) as ws:
        ws.send(json.dumps(batch))
        answers = json.loads(ws.recv(timeout=10))
        assert isinstance(answers, list)
        by_id = {a["id"]: a for a in answers}
        assert sorted(by_id) == [1, 2, 3, 4, 5]
        assert by_id[1]["result"]["text"] == "a"
        sid = by_id[2]["result"]
        assert by_id[3]["error"]["code"] == -32601
        assert by_id[3]["error"]["data"]["code"] == "unimplemented"
        assert "cannot be part of a batch" in by_id[4]["error"]["message"]
        assert by_id[5]["error"]["data"]["code"] == "invalid_argument"
        # The stream's messages come after the array that names it.
        events = [read(ws)["params"] for _ in range(3)]
        assert [e["subscription"] for e in events] == [sid] * 3
        assert [e["result"]["title"] for e in events[:2]] == ["Book 0", "Book 1"]
        assert events[2]["end"] is True


def test_a_batch_of_notifications_gets_no_answer(gateway_url: str) -> None:
    with connect(ws_url(gateway_url)) as ws:
        ws.send(json.dumps([request(None, "Echo", {"text": "x"})] * 2))
        call(ws, 9, "Echo", {"text": "next"})
        answer = read(ws)  # the next message is this call's answer: nothing came before it
        assert answer["id"] == 9 and answer["result"]["text"] == "next"


def test_bad_batches_are_refused_whole(gateway_url: str, upstream: Upstream) -> None:
    upstream.library.seen.clear()
    with connect(ws_url(gateway_url)) as ws:
        ws.send("[]")
        assert read(ws)["error"]["code"] == -32600
        ws.send(json.dumps([request(i, "Echo", {"text": "many"}) for i in range(101)]))
        refused = read(ws)
        assert refused["error"]["code"] == -32600
        assert refused["error"]["message"] == "batch of 101 calls is over the limit of 100"
        ws.send('[{"jsonrpc": "2.0", "id": 1, "method": "Echo"')
        assert read(ws)["error"]["code"] == -32700
    assert "Echo" not in upstream.library.seen


def test_the_batch_limit_holds_over_post_too(http: httpx.Client) -> None:
    batch = [request(i, "Echo", {"text": "many"}) for i in range(101)]
    refused = http.post("/jsonrpc", json=batch).json()
    assert refused["error"]["code"] == -32600
    answers = http.post("/jsonrpc", json=batch[:100]).json()
    assert len(answers) == 100


def test_deep_nesting_is_the_clients_error(gateway_url: str, http: httpx.Client) -> None:
    """JSON nested past Python's recursion limit: a parse error, never a call left unanswered."""
    nested = "[" * 5000 + "]" * 5000
    raw = '{"jsonrpc": "2.0", "id": 1, "method": "Echo", "params": {"text": ' + nested + "}}"
    with connect(ws_url(gateway_url)) as ws:
        ws.send(raw)
        assert read(ws)["error"]["code"] == -32700
        call(ws, 2, "Echo", {"text": "goes on"})
        assert read(ws)["result"]["text"] == "goes on"
    doc = http.post("/jsonrpc", content=raw, headers={"content-type": "application/json"}).json()
    assert doc["error"]["code"] == -32700
    r = http.post("/v1/shelves/1/books", content='{"title": ' + nested + "}")
    assert r.status_code == 400 and r.json()["detail"].endswith("nested too deeply")
    # What gets past the envelope's parser (msgspec) to json.loads, deeper in the stack.
    method = from_proto_files([str(PROTO)]).service("library.v1.Library").methods_by_name["Echo"]
    with pytest.raises(Error) as caught:
        parse_json(from_proto_files([str(PROTO)]), method.input_type, '{"text": ' + nested + "}")
    assert caught.value.code is Code.INVALID_ARGUMENT


# -- limits --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited_url(upstream: Upstream) -> Iterator[str]:
    """A gateway whose connections idle out after 1 s, take messages up to 1 KiB and
    two streams at once, with metrics of its upstream calls and one allowed origin."""
    limits = WebSocketOptions(idle_timeout=1.0, max_message_size=1024, max_streams=2)
    gateway = gateway_for(
        upstream.target, websocket=limits, metrics=Metrics(), cors=Cors(origins=[ORIGIN])
    )
    with serve(gateway) as url:
        yield url


@pytest.fixture
def limited(limited_url: str) -> str:
    return ws_url(limited_url)


def test_an_idle_connection_is_closed_with_1000(limited: str) -> None:
    with connect(limited) as ws:
        call(ws, 1, "Echo", {"text": "then nothing"})
        assert read(ws)["result"]["text"] == "then nothing"
        assert closed_with(ws) == (1000, "idle")


def test_a_connection_with_a_stream_running_is_not_idle(limited: str) -> None:
    with connect(limited) as ws:
        # Three books 0.7 s apart: the stream outlives the idle timeout.
        call(ws, 1, "WatchBooks", {"parent": "shelves/busy", "count": 3, "delayMs": 700})
        sid = read(ws)["result"]
        events = [read(ws)["params"] for _ in range(4)]
        assert [e["subscription"] for e in events] == [sid] * 4
        assert events[3]["end"] is True
        assert closed_with(ws) == (1000, "idle")


def test_an_oversized_message_closes_with_1009(limited: str, upstream: Upstream) -> None:
    upstream.library.seen.clear()
    with connect(limited) as bystander:
        with connect(limited) as ws:
            call(ws, 1, "Echo", {"text": "fits"})
            assert read(ws)["result"]["text"] == "fits"
            call(ws, 2, "Echo", {"text": "x" * 2048})
            assert closed_with(ws) == (1009, "message over 1024 bytes")
        with connect(limited) as ws:
            ws.send(json.dumps(request(3, "Echo", {"text": "é" * 600})).encode())  # binary
            assert closed_with(ws) == (1009, "message over 1024 bytes")
        # One client's fault is its own.
        call(bystander, 4, "Echo", {"text": "still here"})
        assert read(bystander)["result"]["text"] == "still here"
    assert upstream.library.seen["Echo"]["text"] == "still here"


def test_streams_past_the_limit_are_refused_and_the_connection_goes_on(limited: str) -> None:
    with connect(limited) as ws:
        for i in (1, 2):
            call(ws, i, "WatchBooks", {"parent": f"shelves/many{i}", "count": 100, "delayMs": 500})
        opened: set[int] = set()
        while len(opened) < 2:  # both ids (a first book may come between them)
            doc = read(ws)
            if doc.get("id") in (1, 2):
                assert isinstance(doc["result"], str)
                opened.add(doc["id"])
        call(ws, 3, "WatchBooks", {"parent": "shelves/many3", "count": 1})
        refused = next(d for d in (read(ws) for _ in range(10)) if d.get("id") == 3)
        assert refused["error"]["data"]["code"] == "resource_exhausted"
        assert refused["error"]["message"] == "over the limit of 2 streams open at once"
        call(ws, 4, "Echo", {"text": "still served"})
        answer = next(d for d in (read(ws) for _ in range(10)) if d.get("id") == 4)
        assert answer["result"]["text"] == "still served"


def test_an_origin_the_cors_policy_lists_may_connect(limited: str) -> None:
    with connect(limited, origin=ORIGIN) as ws:  # type: ignore[arg-type]
        call(ws, 1, "Echo", {"text": "from the page"})
        assert read(ws)["result"]["text"] == "from the page"
    with pytest.raises(InvalidStatus) as caught:
        connect(limited, origin="https://evil.example")  # type: ignore[arg-type]
    response = caught.value.response
    assert response.status_code == 403
    assert json.loads(response.body or b"")["error"]["data"]["code"] == "permission_denied"


def test_a_slow_consumer_gets_backpressure_then_1008(
    upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    limits = WebSocketOptions(max_queued_messages=4, send_timeout=1.0)
    # A long deadline: the upstream call must end because the client stopped reading.
    gateway = gateway_for(upstream.target, websocket=limits, timeout=300.0, metrics=Metrics())
    with serve(gateway) as url:
        port = int(url.rsplit(":", 1)[1])
        with raw_upgrade(port, receive_buffer=4096) as sock:
            # Subscribe, then read nothing: the socket's buffers fill, then the queue.
            # Each book is named after its shelf: a long name makes large messages,
            # which fill the buffers in hundreds of messages, not tens of thousands.
            shelf = "shelves/slow-" + "x" * 16384
            watch = request(1, "WatchBooks", {"parent": shelf, "count": 10_000_000})
            sock.sendall(client_frame(0x1, json.dumps(watch).encode()))
            deadline = time.monotonic() + 120
            while not any("does not read" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, "the slow consumer was never cut off"
                time.sleep(0.05)
            # Another connection is served meanwhile.
            with connect(ws_url(url)) as other:
                call(other, 2, "Echo", {"text": "meanwhile"})
                assert read(other)["result"]["text"] == "meanwhile"
            frames = server_frames(sock)
        text = httpx.get(f"{url}/metrics").text
    opcode, payload = frames[-1]
    assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1008
    assert payload[2:] == b"slow consumer: messages are not being read"
    # Closing the connection cancelled the upstream stream.
    labels = 'code="canceled",method="library.v1.Library/WatchBooks",protocol="websocket"'
    assert f"twofold_calls_total{{{labels}}} 1.0" in text


def test_a_bad_stream_message_ends_the_stream_and_cancels_the_upstream_call(
    limited_url: str,
) -> None:
    with connect(ws_url(limited_url)) as ws:
        call(ws, 1, "Chat")
        sid = read(ws)["result"]
        call(ws, 2, "rpc.send", {"subscription": sid, "message": {"text": "first"}})
        got = [read(ws), read(ws)]  # the ack and the echo, in either order
        assert any(d.get("params", {}).get("result", {}).get("text") == "first" for d in got)
        call(ws, 3, "rpc.send", {"subscription": sid, "message": {"text": 5}})
        got = [read(ws), read(ws)]  # the refusal and the stream's end, in either order
        refusal = next(d for d in got if d.get("id") == 3)
        assert refusal["error"]["data"]["code"] == "invalid_argument"
        end = next(d for d in got if d.get("method") == "rpc.subscription")["params"]
        assert end["subscription"] == sid
        assert end["error"]["data"]["code"] == "invalid_argument"
        # The connection goes on.
        call(ws, 4, "Echo", {"text": "after"})
        assert read(ws)["result"]["text"] == "after"
    # The upstream call was cancelled, never half-closed as if the stream were over.
    text = httpx.get(f"{limited_url}/metrics").text
    labels = 'code="canceled",method="library.v1.Library/Chat",protocol="websocket"'
    assert f"twofold_calls_total{{{labels}}} 1.0" in text
    assert 'code="ok",method="library.v1.Library/Chat"' not in text


# -- credentials ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(upstream: Upstream) -> Iterator[str]:
    keys = ApiKeys(
        [
            StoredApiKey.of("reader-key", "ann"),
            StoredApiKey.of("writer-key", "bo", ["books:write"]),
        ]
    )
    gateway = gateway_for(
        upstream.target,
        authentication=Authentication(keys),
        public=("library.v1.Library.GetShelf",),
        scopes={"library.v1.Library.CreateBook": ("books:write",)},
        forward_headers=(*FORWARD, "x-api-key"),
    )
    with serve(gateway) as url:
        yield ws_url(url)


def test_invalid_credentials_refuse_the_upgrade(guarded: str, upstream: Upstream) -> None:
    upstream.library.seen.clear()
    with pytest.raises(InvalidStatus) as caught:
        connect(guarded, additional_headers={"x-api-key": "wrong"})
    response = caught.value.response
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("ApiKey")
    assert json.loads(response.body or b"")["error"]["data"]["code"] == "unauthenticated"
    assert upstream.library.seen == {}


def test_an_anonymous_connection_calls_only_public_methods(
    guarded: str, upstream: Upstream
) -> None:
    upstream.library.seen.clear()
    with connect(guarded) as ws:
        call(ws, 1, "Echo", {"text": "x"})
        refused = read(ws)
        assert refused["error"]["data"]["code"] == "unauthenticated"
        call(ws, 2, "WatchBooks", {"parent": "shelves/1", "count": 1})
        assert read(ws)["error"]["data"]["code"] == "unauthenticated"
        call(ws, 3, "Chat")
        assert read(ws)["error"]["data"]["code"] == "unauthenticated"
        ws.send(json.dumps([request(4, "Echo", {"text": "x"}), request(5, "GetShelf", {"id": 1})]))
        by_id = {a["id"]: a for a in json.loads(ws.recv(timeout=10))}
        assert by_id[4]["error"]["data"]["code"] == "unauthenticated"
        assert by_id[5]["result"]["theme"] == "theme 1"
    assert set(upstream.library.seen) == {"GetShelf"}


def test_credentials_in_a_first_authenticate_message(guarded: str, upstream: Upstream) -> None:
    with connect(guarded) as ws:
        call(ws, 1, "rpc.authenticate", {"x-api-key": "reader-key"})
        assert read(ws)["result"] is True
        call(ws, 2, "Echo", {"text": "in"})
        answer = read(ws)["result"]
        # The connection's credentials are its calls' headers: they go upstream.
        assert "x-api-key=reader-key" in answer["metadata"]
        book = {"parent": "shelves/1", "bookId": "b", "book": {"title": "T"}}
        upstream.library.seen.clear()
        call(ws, 3, "CreateBook", book)
        assert read(ws)["error"]["data"]["code"] == "permission_denied"
        call(ws, 4, "rpc.authenticate", {"x-api-key": "writer-key"})
        assert read(ws)["error"]["data"]["code"] == "failed_precondition"
    assert upstream.library.seen == {}


def test_credentials_refused_in_rpc_authenticate_close_1008(
    guarded: str, upstream: Upstream
) -> None:
    upstream.library.seen.clear()
    with connect(guarded) as ws:
        call(ws, 1, "rpc.authenticate", {"x-api-key": "wrong"})
        assert read(ws)["error"]["data"]["code"] == "unauthenticated"
        assert closed_with(ws) == (1008, "credentials refused")
    assert upstream.library.seen == {}


def test_credentials_on_the_upgrade_cover_every_call(guarded: str) -> None:
    with connect(guarded, additional_headers={"x-api-key": "writer-key"}) as ws:
        book = {"parent": "shelves/ws", "bookId": "u", "book": {"title": "Up"}}
        call(ws, 1, "CreateBook", book)
        assert read(ws)["result"]["title"] == "Up"
        call(ws, 2, "Chat")
        sid = read(ws)["result"]
        call(ws, 3, "rpc.send", {"subscription": sid, "message": {"text": "hi"}})
        got = [read(ws), read(ws)]
        echo = next(d for d in got if d.get("method") == "rpc.subscription")
        assert echo["params"]["result"]["text"] == "hi"
