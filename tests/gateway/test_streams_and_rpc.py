"""Server streams as SSE (NDJSON on request), and the RPC fronts: Connect, gRPC-Web, JSON-RPC.

The same upstream methods over every wire; a method with no HTTP rule
(Echo) is still reachable over each RPC wire.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx

from tests.gateway.upstream import Upstream, message
from twofold.http import envelope

WATCH = "/v1/shelves/4/books:watch"


def _events(text: str) -> list[tuple[str, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        kind, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        out.append((kind, json.loads(data)))
    return out


def test_a_server_stream_is_server_sent_events(http: httpx.Client) -> None:
    r = http.get(f"{WATCH}?count=3")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream"
    assert _events(r.text) == [
        ("message", {"name": f"shelves/4/books/{i}", "title": f"Book {i}"}) for i in range(3)
    ]


def test_a_client_that_leaves_cancels_the_upstream_stream(
    http: httpx.Client, upstream: Upstream
) -> None:
    parent = "shelves/leaving"
    with http.stream("GET", f"/v1/{parent}/books:watch?count=1000&delayMs=50") as r:
        first = next(r.iter_lines())
        assert first.startswith("data: ")
    # The gateway saw the disconnect and cancelled the call: the upstream's
    # handler was cancelled long before its 50 s of books were over.
    deadline = time.monotonic() + 20
    while parent not in upstream.library.cancelled:
        assert time.monotonic() < deadline, "the upstream stream was never cancelled"
        time.sleep(0.05)


def test_an_error_mid_stream_is_a_last_error_event(http: httpx.Client) -> None:
    r = http.get(f"{WATCH}?count=5&failAfter=2")
    events = _events(r.text)
    assert [k for k, _ in events] == ["message", "message", "error"]
    problem = events[-1][1]
    assert problem["status"] == 503 and problem["code"] == "unavailable"
    assert problem["details"] == [{"type": "google.rpc.RetryInfo", "retryDelay": "3s"}]


def test_an_error_before_the_first_message_is_a_problem(http: httpx.Client) -> None:
    r = http.get(f"{WATCH}?count=5&failAfter=0&count=x")
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"


def test_ndjson_on_request(http: httpx.Client) -> None:
    r = http.get(f"{WATCH}?count=3&failAfter=1", headers={"accept": "application/x-ndjson"})
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert lines[0] == {"name": "shelves/4/books/0", "title": "Book 0"}
    assert lines[1]["error"]["code"] == "unavailable"


def test_an_empty_stream(http: httpx.Client) -> None:
    r = http.get(f"{WATCH}?count=0")
    assert r.status_code == 200 and r.text == ""


def test_connect_json_and_proto(http: httpx.Client) -> None:
    r = http.post("/library.v1.Library/Echo", json={"text": "hé"})
    assert r.status_code == 200
    assert r.json()["text"] == "hé"
    request = message("EchoRequest")(text="bin")
    r = http.post(
        "/library.v1.Library/Echo",
        content=request.SerializeToString(),
        headers={"content-type": "application/proto"},
    )
    assert r.headers["content-type"] == "application/proto"
    assert message("EchoRequest").FromString(r.content).text == "bin"


def test_connect_errors_take_connects_form(http: httpx.Client) -> None:
    r = http.post("/library.v1.Library/Fail", json={"code": "INVALID_ARGUMENT"})
    assert r.status_code == 400
    error = r.json()
    assert error["code"] == "invalid_argument"
    assert error["details"][0]["type"] == "google.rpc.BadRequest"
    assert error["details"][0]["debug"] == {
        "fieldViolations": [{"field": "code", "description": "bad"}]
    }
    r = http.post("/library.v1.Library/Echo", json={"nope": 1})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"


def test_connect_get_only_for_side_effect_free_methods(http: httpx.Client) -> None:
    query = {"encoding": "json", "message": json.dumps({"name": "shelves/1/books/1"})}
    r = http.get("/library.v1.Library/GetBook", params=query)
    assert r.status_code == 200 and r.json()["title"]
    raw = message("GetBookRequest")(name="shelves/1/books/1").SerializeToString()
    b64 = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    r = http.get(
        "/library.v1.Library/GetBook", params={"encoding": "proto", "base64": "1", "message": b64}
    )
    assert message("Book").FromString(r.content).name == "shelves/1/books/1"
    r = http.get("/library.v1.Library/Echo", params={"encoding": "json", "message": "{}"})
    assert r.status_code == 405


def test_connect_server_stream(http: httpx.Client) -> None:
    body = envelope.frame(json.dumps({"parent": "shelves/2", "count": 2, "failAfter": 1}).encode())
    r = http.post(
        "/library.v1.Library/WatchBooks",
        content=body,
        headers={"content-type": "application/connect+json"},
    )
    frames = _frames(r.content)
    assert frames[0] == (0, {"name": "shelves/2/books/0", "title": "Book 0"})
    assert frames[-1][0] == envelope.END_STREAM
    assert frames[-1][1]["error"]["code"] == "unavailable"


def _frames(data: bytes) -> list[tuple[int, Any]]:
    out = []
    while data:
        flags, size = data[0], int.from_bytes(data[1:5], "big")
        out.append((flags, json.loads(data[5 : 5 + size])))
        data = data[5 + size :]
    return out


def test_grpc_web(http: httpx.Client) -> None:
    request = message("GetShelfRequest")(id=5).SerializeToString()
    r = http.post(
        "/library.v1.Library/GetShelf",
        content=envelope.frame(request),
        headers={"content-type": "application/grpc-web+proto"},
    )
    size = int.from_bytes(r.content[1:5], "big")
    assert message("Shelf").FromString(r.content[5 : 5 + size]).theme == "theme 5"
    trailer = r.content[5 + size :]
    assert trailer[0] == envelope.TRAILERS and b"grpc-status: 0" in trailer
    r = http.post(
        "/library.v1.Library/Fail",
        content=envelope.frame(message("FailRequest")(code="NOT_FOUND").SerializeToString()),
        headers={"content-type": "application/grpc-web+proto"},
    )
    assert r.content[0] == envelope.TRAILERS and b"grpc-status: 5\r\n" in r.content
    assert b"grpc-status-details-bin: " in r.content


def test_jsonrpc(http: httpx.Client) -> None:
    r = http.post(
        "/jsonrpc", json={"jsonrpc": "2.0", "method": "Echo", "params": {"text": "x"}, "id": 1}
    )
    assert r.json()["result"]["text"] == "x"
    r = http.post(
        "/jsonrpc",
        json=[
            {
                "jsonrpc": "2.0",
                "method": "library.v1.Library/GetShelf",
                "params": {"id": "3"},
                "id": 1,
            },
            {"jsonrpc": "2.0", "method": "Fail", "params": {"code": "NOT_FOUND"}, "id": 2},
            {"jsonrpc": "2.0", "method": "Nope", "id": 3},
            {"jsonrpc": "2.0", "method": "Echo", "params": {"text": "note"}},
        ],
    )
    answers = r.json()
    assert answers[0]["result"] == {"id": "3", "theme": "theme 3"}
    assert answers[1]["error"]["code"] == -32005
    assert answers[1]["error"]["data"]["code"] == "not_found"
    assert answers[2]["error"]["code"] == -32601
    assert len(answers) == 3  # the notification gets no answer
    r = http.post("/jsonrpc", content=b"{", headers={"content-type": "application/json"})
    assert r.json()["error"]["code"] == -32700


def test_an_idle_stream_gets_keepalive_comments(upstream: Upstream) -> None:
    from tests.gateway.conftest import gateway_for, serve

    gateway = gateway_for(upstream.target)
    gateway.keepalive = 0.05  # seconds: the test's own, so that a slow upstream is "idle"
    with serve(gateway) as url:
        r = httpx.get(f"{url}/v1/shelves/5/books:watch?count=2&delayMs=500")
        assert ": keep-alive\n\n" in r.text
        assert [e for e in _events(r.text.replace(": keep-alive\n\n", ""))] == [
            ("message", {"name": f"shelves/5/books/{i}", "title": f"Book {i}"}) for i in range(2)
        ]
        r = httpx.get(
            f"{url}/v1/shelves/5/books:watch?count=2&delayMs=500",
            headers={"accept": "application/x-ndjson"},
        )
        lines = [line for line in r.text.split("\n") if line]
        assert len(lines) == 2 and "\n\n" in r.text  # blank lines kept it alive


def test_large_answers_are_gzipped_when_asked(http: httpx.Client) -> None:
    name = "x" * 2000
    r = http.get(f"/v1/files/{name}", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.json() == {"name": name}
    plain = http.get(f"/v1/files/{name}", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["etag"] != r.headers["etag"]
    assert plain.headers["vary"] == "accept-encoding"


def test_metrics_count_upstream_calls_by_wire_method_and_code(upstream: Upstream) -> None:
    from tests.gateway.conftest import gateway_for, serve
    from twofold.interceptors.metrics import Metrics

    with serve(gateway_for(upstream.target, metrics=Metrics())) as url:
        httpx.get(f"{url}/v1/shelves/1")
        httpx.get(f"{url}/v1/shelves/1/books/nope")
        httpx.get(f"{url}/v1/shelves/1/books:watch?count=2")
        httpx.post(f"{url}/library.v1.Library/Echo", json={})
        httpx.post(f"{url}/jsonrpc", json={"jsonrpc": "2.0", "method": "Echo", "id": 1})
        text = httpx.get(f"{url}/metrics").text
    for code, method, protocol in (
        ("ok", "GetShelf", "rest"),
        ("not_found", "GetBook", "rest"),
        ("ok", "WatchBooks", "sse"),
        ("ok", "Echo", "connect"),
        ("ok", "Echo", "jsonrpc"),
    ):
        labels = f'code="{code}",method="library.v1.Library/{method}",protocol="{protocol}"'
        assert f"twofold_calls_total{{{labels}}} 1.0" in text
