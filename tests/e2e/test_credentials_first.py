"""Credentials are checked before the body, on every wire, whatever the decorator order.

Against ``twofold serve tests.e2e.guarded_app:app``: an anonymous write with a
malformed or an invalid body gets the wire's UNAUTHENTICATED, not a 400 with
field details; a caller without the scope gets PERMISSION_DENIED; nothing is
written; a body the server would have to read first is not waited for; and a
valid call still works. ``CreateThing`` and ``GetThing`` declare
``@requires`` above their method decorator, ``ReplaceThing`` under it.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from tests.e2e.guarded_app import READER_KEY, WRITER_KEY
from tests.e2e.server import Server, start

SERVICE = "/guarded.v1.GuardedService"
CODES = {16: "unauthenticated", 7: "permission_denied", 3: "invalid_argument", 0: None}
# Thing{id: 7, name: "abc"} in protobuf, spelt out: field 1 varint, field 2 bytes.
THING_PROTO = b"\x08\x07\x12\x03abc"
BAD_PROTO = b"\xff\xff\xff"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("guarded")
    server = start("tests.e2e.guarded_app:app", tmp)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="module")
def channel(server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield channel


def envelope(data: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(data)) + data


def writes(http: httpx.Client) -> int:
    count: int = http.get("/things").json()["writes"]
    return count


# A call: (http, channel, headers) -> (canonical code or None, details to show on failure).
Call = Callable[[httpx.Client, grpc.Channel, dict[str, str]], tuple[str | None, Any]]


def rest(verb: str, path: str, body: bytes) -> Call:
    def call(
        http: httpx.Client, _: grpc.Channel, headers: dict[str, str]
    ) -> tuple[str | None, Any]:
        all_headers = {**headers, "content-type": "application/json"}
        r = http.request(verb, path, content=body, headers=all_headers)
        if r.is_success:
            return None, r.status_code
        doc = r.json()
        expected = {"unauthenticated": 401, "permission_denied": 403}.get(doc["code"])
        assert expected is None or r.status_code == expected, r.text
        if expected is not None:
            assert "www-authenticate" in r.headers
        return doc["code"], r.text

    return call


def sse(body: bytes) -> Call:
    def call(
        http: httpx.Client, _: grpc.Channel, headers: dict[str, str]
    ) -> tuple[str | None, Any]:
        all_headers = {**headers, "content-type": "application/json"}
        r = http.post("/things:watch", content=body, headers=all_headers)
        if r.status_code == 200:
            assert r.headers["content-type"].startswith("text/event-stream")
            return None, r.text
        return r.json()["code"], r.text

    return call


def jsonrpc(body: bytes) -> Call:
    def call(
        http: httpx.Client, _: grpc.Channel, headers: dict[str, str]
    ) -> tuple[str | None, Any]:
        r = http.post(
            "/jsonrpc", content=body, headers={**headers, "content-type": "application/json"}
        )
        doc = r.json()
        if "result" in doc:
            return None, doc
        return doc["error"]["data"]["code"], doc

    return call


def connect(rpc: str, body: bytes, content_type: str = "application/json") -> Call:
    def call(
        http: httpx.Client, _: grpc.Channel, headers: dict[str, str]
    ) -> tuple[str | None, Any]:
        r = http.post(
            f"{SERVICE}/{rpc}", content=body, headers={**headers, "content-type": content_type}
        )
        if r.status_code == 200:
            return None, r.content
        return r.json()["code"], r.text

    return call


def connect_get(message: str) -> Call:
    def call(
        http: httpx.Client, _: grpc.Channel, headers: dict[str, str]
    ) -> tuple[str | None, Any]:
        params = {"encoding": "json", "message": message}
        r = http.get(f"{SERVICE}/GetThing", params=params, headers=headers)
        if r.status_code == 200:
            return None, r.json()
        return r.json()["code"], r.text

    return call


def connect_stream(rpc: str, body: bytes) -> Call:
    def call(
        http: httpx.Client, _: grpc.Channel, headers: dict[str, str]
    ) -> tuple[str | None, Any]:
        all_headers = {**headers, "content-type": "application/connect+json"}
        r = http.post(f"{SERVICE}/{rpc}", content=body, headers=all_headers)
        assert r.status_code == 200
        rest = r.content
        while rest:
            flags, size = struct.unpack(">BI", rest[:5])
            data, rest = rest[5 : 5 + size], rest[5 + size :]
            if flags & 0x02:
                end = json.loads(data)
                return (end["error"]["code"] if "error" in end else None), end
        raise AssertionError(f"no end-of-stream message in {r.content!r}")

    return call


def grpc_web(rpc: str, body: bytes) -> Call:
    def call(
        http: httpx.Client, _: grpc.Channel, headers: dict[str, str]
    ) -> tuple[str | None, Any]:
        all_headers = {**headers, "content-type": "application/grpc-web+proto"}
        r = http.post(f"{SERVICE}/{rpc}", content=body, headers=all_headers)
        status = r.headers.get("grpc-status")
        if status is None:  # not trailers-only: the status is in the last envelope
            trailers = r.content[r.content.rindex(b"grpc-status") :].decode()
            status = trailers.split(":")[1].split("\r\n")[0].strip()
        return CODES[int(status)], r.headers

    return call


def grpc_unary(rpc: str, body: bytes) -> Call:
    def call(
        _: httpx.Client, channel: grpc.Channel, headers: dict[str, str]
    ) -> tuple[str | None, Any]:
        metadata = tuple((k.lower(), v) for k, v in headers.items())
        try:
            channel.unary_unary(f"{SERVICE}/{rpc}")(body, metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            return CODES[exc.code().value[0]], exc.details()
        return None, None

    return call


def grpc_client_stream(rpc: str, messages: list[bytes]) -> Call:
    def call(
        _: httpx.Client, channel: grpc.Channel, headers: dict[str, str]
    ) -> tuple[str | None, Any]:
        metadata = tuple((k.lower(), v) for k, v in headers.items())
        try:
            channel.stream_unary(f"{SERVICE}/{rpc}")(iter(messages), metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            return CODES[exc.code().value[0]], exc.details()
        return None, None

    return call


# Bodies that would be refused as malformed or invalid if they were looked at.
BAD: dict[str, Call] = {
    "rest create, malformed": rest("POST", "/things", b"{"),
    "rest create, invalid": rest("POST", "/things", b'{"id": "x", "name": ""}'),
    "rest replace, malformed": rest("PUT", "/things/1", b"{"),
    "rest replace, invalid": rest("PUT", "/things/1", b'{"id": 1, "name": "", "extra": 1}'),
    "sse, malformed": sse(b"{"),
    "sse, invalid": sse(b'{"name": ""}'),
    # Bad UTF-8 inside params: the envelope skips over it, the decoder would not.
    "jsonrpc, malformed": jsonrpc(
        b'{"jsonrpc": "2.0", "id": 1, "method": "CreateThing", "params": {"thing": "\xff"}}'
    ),
    "jsonrpc, invalid": jsonrpc(
        b'{"jsonrpc": "2.0", "id": 1, "method": "CreateThing", "params": {"thing": {"id": "x"}}}'
    ),
    "connect, malformed": connect("CreateThing", b"{"),
    "connect, invalid": connect("CreateThing", b'{"thing": {"id": "x"}}'),
    "connect proto, malformed": connect("CreateThing", BAD_PROTO, "application/proto"),
    "connect get, malformed": connect_get("{"),
    "connect get, invalid": connect_get('{"id": "x"}'),
    "connect stream, malformed": connect_stream("ImportThings", envelope(b"{")),
    "connect stream, invalid": connect_stream("ImportThings", envelope(b'{"id": "x"}')),
    "grpc-web, malformed": grpc_web("CreateThing", envelope(BAD_PROTO)),
    "grpc-web stream, malformed": grpc_web("ImportThings", envelope(BAD_PROTO)),
    "grpc, malformed": grpc_unary("CreateThing", BAD_PROTO),
    "grpc stream, malformed": grpc_client_stream("ImportThings", [BAD_PROTO]),
}

VALID: dict[str, Call] = {
    "rest create": rest("POST", "/things", b'{"id": 7, "name": "abc"}'),
    "rest replace": rest("PUT", "/things/7", b'{"id": 7, "name": "abc"}'),
    "sse": sse(b'{"name": "abc"}'),
    "jsonrpc": jsonrpc(
        b'{"jsonrpc": "2.0", "id": 1, "method": "CreateThing",'
        b' "params": {"thing": {"id": 7, "name": "abc"}}}'
    ),
    "connect": connect("CreateThing", b'{"thing": {"id": 7, "name": "abc"}}'),
    "connect get": connect_get('{"id": 7}'),
    "connect stream": connect_stream("ImportThings", envelope(b'{"id": 7, "name": "abc"}')),
    "grpc-web": grpc_web("CreateThing", envelope(b"\x0a\x07" + THING_PROTO)),
    "grpc": grpc_unary("CreateThing", b"\x0a\x07" + THING_PROTO),
    "grpc stream": grpc_client_stream("ImportThings", [THING_PROTO]),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_an_anonymous_bad_write_is_unauthenticated(
    http: httpx.Client, channel: grpc.Channel, name: str
) -> None:
    before = writes(http)
    code, shown = BAD[name](http, channel, {})
    assert code == "unauthenticated", shown
    assert writes(http) == before


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_write_without_the_scope_is_permission_denied(
    http: httpx.Client, channel: grpc.Channel, name: str
) -> None:
    before = writes(http)
    code, shown = BAD[name](http, channel, {"X-API-Key": READER_KEY})
    assert code == "permission_denied", shown
    assert writes(http) == before


@pytest.mark.parametrize("name", sorted(BAD))
def test_with_credentials_the_body_is_checked_as_before(
    http: httpx.Client, channel: grpc.Channel, name: str
) -> None:
    code, shown = BAD[name](http, channel, {"X-API-Key": WRITER_KEY})
    assert code == "invalid_argument", shown


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_valid_authorized_call_works(
    http: httpx.Client, channel: grpc.Channel, name: str
) -> None:
    code, shown = VALID[name](http, channel, {"X-API-Key": WRITER_KEY})
    assert code is None, shown


def raw_request(server: Server, head: bytes, expected: bytes) -> bytes:
    """Send ``head`` (a request line and headers promising a large body) and
    one byte of the body; read the answer until ``expected`` shows in it.
    Had the server waited for the body, the read would time out."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b"{")
        answer = b""
        while expected not in answer.lower():
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer.lower()


@pytest.mark.parametrize(
    ("path", "content_type", "refused"),
    [
        ("/things", "application/json", b" 401 "),
        (f"{SERVICE}/CreateThing", "application/json", b" 401 "),
        (f"{SERVICE}/ImportThings", "application/connect+json", b'"unauthenticated"'),
        (f"{SERVICE}/CreateThing", "application/grpc-web+proto", b"grpc-status: 16"),
    ],
    ids=["rest", "connect", "connect stream", "grpc-web"],
)
def test_a_large_anonymous_body_is_refused_unread(
    server: Server, path: str, content_type: str, refused: bytes
) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        "Content-Length: 900000\r\n\r\n"
    ).encode()
    answer = raw_request(server, head, refused)
    assert refused in answer, answer


def test_openapi_shows_the_security_of_either_order(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    write = [{"apiKey": ["things:write"]}]
    assert paths["/things"]["post"]["security"] == write  # @requires above @things.create
    assert paths["/things/{id}"]["put"]["security"] == write  # @requires under @things.replace
    assert paths["/things/{id}"]["get"]["security"] == [{"apiKey": ["things:read"]}]
    assert paths["/things"]["get"]["security"] == []


def test_a_timeout_above_the_method_decorator_applies(http: httpx.Client) -> None:
    r = http.post(f"{SERVICE}/Dawdle", json={})
    assert (r.status_code, r.json()["code"]) == (504, "deadline_exceeded")
