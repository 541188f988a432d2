"""JSON-RPC over WebSocket at the gateway's /jsonrpc: every stream kind, with the
``websockets`` library as the client."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.gateway.jsonrpc_socket import call, read, ws_url
from tests.gateway.upstream import Upstream


def test_unary_and_server_stream(gateway_url: str) -> None:
    with connect(ws_url(gateway_url), subprotocols=["jsonrpc"]) as ws:  # type: ignore[list-item]
        call(ws, 1, "Echo", {"text": "hi"})
        assert read(ws)["result"]["text"] == "hi"
        call(ws, 2, "WatchBooks", {"parent": "shelves/ws", "count": 2})
        sid = read(ws)["result"]
        events = [read(ws)["params"] for _ in range(3)]
        assert [e["subscription"] for e in events] == [sid] * 3
        assert [e["result"]["title"] for e in events[:2]] == ["Book 0", "Book 1"]
        assert events[2]["end"] is True


def test_bidi_each_answer_as_its_message_goes(gateway_url: str) -> None:
    with connect(ws_url(gateway_url)) as ws:
        call(ws, 1, "Chat")
        sid = read(ws)["result"]
        for i, text in enumerate(("one", "two")):
            call(ws, 10 + i, "rpc.send", {"subscription": sid, "message": {"text": text}})
            got = [read(ws), read(ws)]  # the ack and the echo, in either order
            echo = next(d for d in got if d.get("method") == "rpc.subscription")
            assert echo["params"]["result"]["text"] == text
        call(ws, 20, "rpc.close", {"subscription": sid})
        got = [read(ws), read(ws)]
        assert any(d.get("params", {}).get("end") for d in got)


def test_client_stream_and_error(gateway_url: str) -> None:
    with connect(ws_url(gateway_url)) as ws:
        call(ws, 1, "ImportBooks")
        sid = read(ws)["result"]
        book = {"parent": "shelves/wsc", "bookId": "a", "book": {"title": "A"}}
        call(ws, 2, "rpc.send", {"subscription": sid, "message": book})
        assert read(ws)["result"] is True
        call(ws, 3, "rpc.send", {"subscription": sid, "message": {"book": {"title": "fail"}}})
        assert read(ws)["result"] is True
        end = read(ws)["params"]
        assert end["error"]["data"]["code"] == "invalid_argument"


def test_a_bad_message_is_the_senders_error(gateway_url: str) -> None:
    with connect(ws_url(gateway_url)) as ws:
        call(ws, 1, "Chat")
        sid = read(ws)["result"]
        call(ws, 2, "rpc.send", {"subscription": sid, "message": {"text": 5}})
        answer = read(ws)
        assert answer["id"] == 2 and answer["error"]["data"]["code"] == "invalid_argument"


def test_closing_the_socket_cancels_the_upstream_call(gateway_url: str, upstream: Upstream) -> None:
    upstream.library.cancelled.clear()
    with connect(ws_url(gateway_url)) as ws:
        call(ws, 1, "WatchBooks", {"parent": "shelves/wsgone", "count": 1000, "delayMs": 50})
        read(ws)
        read(ws)  # the first book: the call is under way
    deadline = time.monotonic() + 10
    while "shelves/wsgone" not in upstream.library.cancelled:
        assert time.monotonic() < deadline, upstream.library.cancelled
        time.sleep(0.02)


def test_a_foreign_origin_is_refused(gateway_url: str) -> None:
    with pytest.raises(InvalidStatus) as caught:
        connect(ws_url(gateway_url), origin="https://evil.example")  # type: ignore[arg-type]
    assert caught.value.response.status_code == 403


def test_bad_input_gets_its_own_answer(gateway_url: str) -> None:
    with connect(ws_url(gateway_url)) as ws:
        ws.send("{not json")
        assert read(ws)["error"]["code"] == -32700
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "Nothing"}))
        assert read(ws)["error"]["data"]["code"] == "unimplemented"
        call(ws, 2, "rpc.send", {"subscription": "s999", "message": {}})
        assert read(ws)["error"]["data"]["code"] == "not_found"
        call(ws, 3, "Chat", {"text": "params are not how a stream is fed"})
        assert read(ws)["error"]["data"]["code"] == "invalid_argument"


def test_a_message_over_the_limit_closes_1009(gateway_url: str) -> None:
    with connect(ws_url(gateway_url), max_size=None) as ws:
        call(ws, 1, "Echo", {"text": "x" * (128 * 1024)})
        with pytest.raises(ConnectionClosed) as caught:
            ws.recv(timeout=10)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009
