"""JSON-RPC over WebSocket against hostile and careless clients (tests/e2e/ws_app.py, served).

Every case ends with a check that another connection, opened before the
bad one, still gets its answers: one client's fault is its own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest
from jsonrpcclient import Error, Ok, parse_json, request_json
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.e2e.server import ONE_PORT, Server, start
from tests.e2e.websocket_wire import (
    client_frame,
    close_code,
    closed_with,
    raw_upgrade,
    server_frames,
)
from tests.e2e.ws_app import ALLOWED_ORIGIN, IDLE_ENV, MAX_MESSAGE, READER_KEY


@pytest.fixture(scope="module", params=list(ONE_PORT))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"ws-{request.param}")
    server = start("tests.e2e.ws_app:app", tmp, None, *ONE_PORT[request.param])
    yield server
    server.stop()


@pytest.fixture(scope="module", params=list(ONE_PORT))
def brief(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The same app, with connections that idle out after 2 s."""
    tmp = tmp_path_factory.mktemp(f"ws-idle-{request.param}")
    server = start("tests.e2e.ws_app:app", tmp, {IDLE_ENV: "2"}, *ONE_PORT[request.param])
    yield server
    server.stop()


def url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.port}/jsonrpc"


def call(ws: ClientConnection, method: str, params: Any = None) -> Ok | Error:
    ws.send(request_json(method, params=params))
    return parse_json(ws.recv(timeout=10))


@pytest.fixture
def bystander(server: Server) -> Iterator[ClientConnection]:
    """A connection opened before the bad one; each test checks it still works."""
    with connect(url(server)) as ws:
        assert call(ws, "Echo", {"text": "before"}).result == {"text": "before"}  # type: ignore[union-attr]
        yield ws
        assert call(ws, "Echo", {"text": "after"}).result == {"text": "after"}  # type: ignore[union-attr]


def test_text_that_is_not_json_is_a_parse_error_and_the_connection_goes_on(
    server: Server, bystander: ClientConnection
) -> None:
    with connect(url(server)) as ws:
        for junk in ("not json", "{", "[1,", '{"jsonrpc":"2.0","method":', "\x00"):
            ws.send(junk)
            answer = json.loads(ws.recv(timeout=10))
            assert answer["error"]["code"] == -32700, junk
            assert answer["id"] is None
        ws.send(b'{"jsonrpc":"2.0","method":"Echo","params":{"text":"\xff"},"id":1}')
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == -32700
        ws.send('{"jsonrpc":"2.0","method":"Echo","params":"text","id":7}')
        assert json.loads(ws.recv(timeout=10))["error"] == {
            "code": -32600,
            "message": "params must be an object or an array",
            "data": {"code": "invalid_argument"},
        }
        assert isinstance(call(ws, "Echo", {"text": "still here"}), Ok)


def test_an_oversized_message_closes_with_1009(server: Server, bystander: ClientConnection) -> None:
    with connect(url(server), max_size=None) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "Echo", "params": {"text": "x"}, "id": 1}))
        assert json.loads(ws.recv(timeout=10))["result"] == {"text": "x"}
        ws.send("[" + " " * MAX_MESSAGE + "]")
        assert closed_with(ws)[0] == 1009


def test_a_large_message_under_the_limit_is_served(server: Server) -> None:
    with connect(url(server), max_size=None) as ws:
        text = "é" * (MAX_MESSAGE // 4)  # two bytes each in UTF-8: half the limit
        message = {"jsonrpc": "2.0", "method": "Echo", "params": {"text": text}, "id": 1}
        ws.send(json.dumps(message, ensure_ascii=False))
        assert json.loads(ws.recv(timeout=10))["result"] == {"text": text}


def test_ten_thousand_subscriptions_are_refused_past_the_limit(
    server: Server, bystander: ClientConnection
) -> None:
    with connect(url(server)) as ws:
        answers = []
        # A hundred at a time, each answer read: a client that sent all 10k
        # before reading would be a slow consumer (send_timeout=0.5 s here).
        for start in range(0, 10_000, 100):
            for i in range(start, start + 100):
                ws.send(json.dumps({"jsonrpc": "2.0", "method": "Idle", "id": i}))
            answers += [parse_json(ws.recv(timeout=30)) for _ in range(100)]
        opened = [a for a in answers if isinstance(a, Ok)]
        refused = [a for a in answers if isinstance(a, Error)]
        assert len(opened) == 100  # WebSocketOptions(max_streams=100)
        assert len(refused) == 9_900
        assert {r.code for r in refused} == {-32008}  # RESOURCE_EXHAUSTED
        assert {r.data["code"] for r in refused} == {"resource_exhausted"}
        # An unsubscribe frees a place for one more.
        unsubscribed = call(ws, "rpc.unsubscribe", {"subscription": opened[0].result})
        assert unsubscribed.result is True  # type: ignore[union-attr]
        assert isinstance(call(ws, "Idle"), Ok)
        assert isinstance(call(ws, "Idle"), Error)
        assert isinstance(call(ws, "Echo", {"text": "unary calls go on"}), Ok)


def test_a_slow_consumer_gets_backpressure_then_1008(
    server: Server, bystander: ClientConnection
) -> None:
    with raw_upgrade(server.port, receive_buffer=4096) as sock:
        # Subscribe, then read nothing: the server's buffers fill, then its queue.
        sock.sendall(
            client_frame(0x1, request_json("Flood", params={"size": 16384, "tag": "slow"}).encode())
        )
        before = server.output().count("does not read")
        deadline = time.monotonic() + 60
        while server.output().count("does not read") == before:
            assert time.monotonic() < deadline, "the slow consumer was never cut off"
            time.sleep(0.05)
        # The bystander was served all along, and still is.
        assert isinstance(call(bystander, "Echo", {"text": "meanwhile"}), Ok)
        frames = server_frames(sock)
    opcode, payload = frames[-1]
    assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1008
    assert b"slow consumer" in payload
    received = sum(1 for op, data in frames if op == 0x1 and b'"rpc.subscription"' in data)
    # Backpressure: the handler produced only what was sent, plus what the
    # queue holds (max_queued_messages=8) and the two messages on their way.
    produced = call(bystander, "Flooded", {"tag": "slow"}).result["value"]  # type: ignore[union-attr]
    assert received <= produced <= received + 8 + 2


def test_an_idle_connection_is_closed_with_1000(brief: Server) -> None:
    with connect(url(brief)) as ws:
        assert isinstance(call(ws, "Echo", {"text": "then nothing"}), Ok)
        assert closed_with(ws) == (1000, "idle")


def test_a_connection_with_a_stream_is_not_idle(brief: Server) -> None:
    with connect(url(brief)) as ws:
        subscription = call(ws, "Idle").result  # type: ignore[union-attr]
        with pytest.raises(TimeoutError):
            ws.recv(timeout=5)  # past idle_timeout=2: still open
        assert call(ws, "rpc.unsubscribe", {"subscription": subscription}).result is True  # type: ignore[union-attr]
        # Once the stream is gone, the idle time counts again.
        assert closed_with(ws) == (1000, "idle")


def test_a_deadline_ends_a_call_over_websocket(server: Server) -> None:
    with connect(url(server)) as ws:
        answer = call(ws, "Dawdle")
        assert isinstance(answer, Error)
        assert answer.data["code"] == "deadline_exceeded"


def test_credentials_on_the_upgrade(server: Server) -> None:
    with connect(url(server)) as ws:
        anonymous = call(ws, "Secret")
        assert isinstance(anonymous, Error) and anonymous.data["code"] == "unauthenticated"
    with connect(url(server), additional_headers={"X-API-Key": READER_KEY}) as ws:
        assert call(ws, "Secret").result == {"text": "the secret"}  # type: ignore[union-attr]
    with pytest.raises(InvalidStatus) as refused:
        connect(url(server), additional_headers={"X-API-Key": "wrong"})
    response = refused.value.response
    if server.pyvoy:
        # pyvoy has no ASGI "websocket.http.response" extension: the App refuses
        # by closing before it accepts, which ASGI has servers answer with 403,
        # bodiless. Refused all the same, before anything was accepted.
        assert (response.status_code, response.body) == (403, b"")
        return
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("ApiKey")
    assert json.loads(response.body)["error"]["data"]["code"] == "unauthenticated"


def test_credentials_in_a_first_authenticate_message(
    server: Server, bystander: ClientConnection
) -> None:
    with connect(url(server)) as ws:
        assert call(ws, "rpc.authenticate", {"x-api-key": READER_KEY}).result is True  # type: ignore[union-attr]
        assert call(ws, "Secret").result == {"text": "the secret"}  # type: ignore[union-attr]
        late = call(ws, "rpc.authenticate", {"x-api-key": READER_KEY})
        assert isinstance(late, Error) and late.data["code"] == "failed_precondition"
    with connect(url(server)) as ws:
        refused = call(ws, "rpc.authenticate", {"x-api-key": "wrong"})
        assert isinstance(refused, Error) and refused.data["code"] == "unauthenticated"
        assert closed_with(ws)[0] == 1008
    with connect(url(server)) as ws:
        malformed = call(ws, "rpc.authenticate", ["x-api-key", READER_KEY])
        assert isinstance(malformed, Error) and malformed.data["code"] == "invalid_argument"
        assert closed_with(ws)[0] == 1008


def test_the_origin_is_checked_against_the_cors_policy(server: Server) -> None:
    with connect(url(server), origin=ALLOWED_ORIGIN) as ws:  # type: ignore[arg-type]
        assert isinstance(call(ws, "Echo", {"text": "listed"}), Ok)
    own = f"http://127.0.0.1:{server.port}"
    with connect(url(server), origin=own) as ws:  # type: ignore[arg-type]
        assert isinstance(call(ws, "Echo", {"text": "same origin"}), Ok)
    with pytest.raises(InvalidStatus) as refused:
        connect(url(server), origin="https://evil.example.net")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403


def test_another_path_refuses_the_upgrade(server: Server) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{server.port}/elsewhere")
    assert refused.value.response.status_code == 403


def test_streams_client_and_bidi(server: Server) -> None:
    with connect(url(server)) as ws:
        ticks = call(ws, "Ticks", {"count": 3}).result  # type: ignore[union-attr]
        notes = [json.loads(ws.recv(timeout=10)) for _ in range(4)]
        assert [n["method"] for n in notes] == ["rpc.subscription"] * 4
        assert [n["params"] for n in notes] == [
            *({"subscription": ticks, "result": {"value": i}} for i in range(3)),
            {"subscription": ticks, "end": True},
        ]
        adding = call(ws, "Add").result  # type: ignore[union-attr]
        for value in (1, 2, 3):
            sent = call(ws, "rpc.send", {"subscription": adding, "message": {"value": value}})
            assert sent.result is True  # type: ignore[union-attr]
        assert call(ws, "rpc.close", {"subscription": adding}).result is True  # type: ignore[union-attr]
        assert json.loads(ws.recv(timeout=10))["params"] == {
            "subscription": adding,
            "result": {"total": 6},
        }
        assert json.loads(ws.recv(timeout=10))["params"] == {"subscription": adding, "end": True}
        shouting = call(ws, "Shout").result  # type: ignore[union-attr]
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "rpc.send", "params": {
            "subscription": shouting, "message": {"text": "hi"}}}))  # fmt: skip
        assert json.loads(ws.recv(timeout=10))["params"]["result"] == {"text": "HI"}
        bad = call(ws, "rpc.send", {"subscription": shouting, "message": {"text": 1}})
        assert isinstance(bad, Error) and bad.data["code"] == "invalid_argument"
        end = json.loads(ws.recv(timeout=10))["params"]
        assert end["subscription"] == shouting
        assert end["error"]["data"]["code"] == "invalid_argument"
        gone = call(ws, "rpc.send", {"subscription": shouting, "message": {"text": "late"}})
        assert isinstance(gone, Error) and gone.data["code"] == "not_found"


def test_calls_are_counted_in_the_metrics(server: Server) -> None:
    with connect(url(server)) as ws:
        call(ws, "Echo", {"text": "counted"})
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'protocol="websocket"' in metrics
    assert 'method="sockets.v1.SocketsService/Echo"' in metrics or "Echo" in metrics


MALFORMED = {
    "unmasked client frame": (client_frame(0x1, b"{}", masked=False), 1002),
    "reserved opcode": (client_frame(0x3, b"{}"), 1002),
    "text that is not UTF-8": (client_frame(0x1, b'"\xff\xfe"'), 1007),
    "fragmented control frame": (client_frame(0x9, b"ping", fin=False), 1002),
    "continuation with nothing to continue": (client_frame(0x0, b"{}"), 1002),
    "a length of 2^63-1": (b"\x81\xff" + struct.pack("!Q", 2**63 - 1) + os.urandom(4), 1009),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_frames_close_the_connection_with_their_code(
    server: Server, bystander: ClientConnection, name: str
) -> None:
    frame, code = MALFORMED[name]
    expected: int | None = code
    if server.pyvoy and name == "reserved opcode":
        # pyvoy's framing (tungstenite), not the App, fails the connection
        # (RFC 6455 section 7.1.7): for a reserved opcode it resets it
        # before its close frame is out; the connection ends all the same.
        expected = None
    with raw_upgrade(server.port) as sock:
        sock.sendall(frame)
        assert close_code(sock) == expected


def test_http2_clients_open_a_websocket_by_extended_connect(server: Server) -> None:
    """RFC 8441, with the h2 library as the client, over h2c."""
    if not server.pyvoy:
        pytest.skip("uvicorn speaks no HTTP/2")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())

        def events() -> list[h2.events.Event]:
            received = conn.receive_data(sock.recv(65536))
            sock.sendall(conn.data_to_send())
            return received

        settings: dict[int, int] = {}
        while h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL not in settings:
            for event in events():
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    settings.update({k: v.new_value for k, v in event.changed_settings.items()})
        assert settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [
            (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
            (":path", "/jsonrpc"), (":authority", f"127.0.0.1:{server.port}"),
            ("sec-websocket-version", "13"),
        ])  # fmt: skip
        message = request_json("Echo", params={"text": "over HTTP/2"}).encode()
        conn.send_data(stream, client_frame(0x1, message))
        sock.sendall(conn.data_to_send())
        status, data = None, b""
        while len(data) < 2 or len(data) < 2 + (data[1] & 0x7F):
            for event in events():
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers)[b":status"]
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamReset):
                    pytest.fail(f"stream reset: {event.error_code!r}")
    assert status == b"200"
    assert data[0] == 0x81  # one unmasked text frame
    assert parse_json(data[2:].decode()).result == {"text": "over HTTP/2"}  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_a_client_gone_without_a_word_is_probed(server: Server) -> None:
    """pyvoy sends no WebSocket pings: TCP keepalive on the connection instead,
    after ping_interval (20 s) of silence."""
    if not server.pyvoy:
        pytest.skip("uvicorn pings (ws_ping_interval)")
    with connect(url(server)) as ws:
        assert isinstance(call(ws, "Echo", {"text": "here"}), Ok)
        local = ws.socket.getsockname()[1]
        # ss shows one timer: the retransmission one while an answer is unacknowledged.
        deadline = time.monotonic() + 10
        while "timer:(keepalive," not in (listed := _server_side(local)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert "timer:(keepalive," in listed, listed


def _server_side(port: int) -> str:
    """ss's line for the server's end of the connection from local ``port``."""
    return subprocess.run(
        ["ss", "-tnoH", "state", "established", f"( dport = :{port} )"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout  # fmt: skip


def test_no_traceback_in_the_log(server: Server) -> None:
    log = Path(server.log).read_text(errors="replace")
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log
