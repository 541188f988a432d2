"""gRPC's interop test cases against ``twofold serve --server pyvoy``, one port, two clients.

The cases of grpc/grpc doc/interop-test-descriptions.md, each asserting what
the description says the client asserts, against tests/e2e/interop_service.py:
by grpcio with stubs protoc generates at test time from the grpc.testing
``.proto`` (tests/e2e/proto), and by @grpc/grpc-js with @grpc/proto-loader
(tests/e2e/node/interop_client.mjs) from the same files. The server is
``twofold serve --server pyvoy`` (the App's own gRPC wire on the one HTTP
port), and, for parity, the default server's grpcio port: one of each for
the module.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import queue
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2

from tests.e2e import grpc_stubs, interop_service
from tests.e2e.programs import node_json
from tests.e2e.server import ROOT, Server, start
from twofold.protobuf import Schema

TARGET = "tests.e2e.interop_service:app"
PROTO = Path(__file__).parent / "proto"
FILES = [f"src/proto/grpc/testing/{name}.proto" for name in ("empty", "messages", "test")]
MODULES = ("empty_pb2", "messages_pb2", "test_pb2", "test_pb2_grpc")
NODE_CLIENT = Path(__file__).parent / "node" / "interop_client.mjs"
CASES = [
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
]
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")

PYVOY = pytest.param(
    "pyvoy",
    marks=pytest.mark.skipif(
        importlib.util.find_spec("pyvoy") is None,
        reason="needs the pyvoy extra (pip install 'twofold[pyvoy]'): the one port is pyvoy's",
    ),
)


@pytest.fixture(scope="module", params=[PYVOY, "grpcio"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The App's own gRPC wire on pyvoy's one port; grpcio's server (``--grpc-port``) beside it."""
    args = ("--server", "pyvoy") if request.param == "pyvoy" else ()
    served = start(TARGET, tmp_path_factory.mktemp("interop"), None, *args)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def pb(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModuleType]:
    """The grpc.testing modules, as protoc generates them from the .proto files.

    The generated modules import each other as ``src.proto.grpc.testing``
    (the .proto files' paths in grpc/grpc); ``grpc`` alone would be grpcio.
    """
    out = tmp_path_factory.mktemp("interop-stubs")
    grpc_stubs.protoc(f"-I{PROTO}", f"--python_out={out}", f"--grpc_python_out={out}", *FILES)
    names = [f"src.proto.grpc.testing.{name}" for name in MODULES]
    return dict(zip(MODULES, grpc_stubs.imported(out, names), strict=True))


@pytest.fixture(scope="module")
def stub(server: Server, pb: dict[str, ModuleType]) -> Iterator[Any]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield pb["test_pb2_grpc"].TestServiceStub(channel)


def test_derived_messages_are_grpc_testings(pb: dict[str, ModuleType]) -> None:
    """Every message the service derives has grpc.testing's fields: names, numbers, types."""

    def fields(message: descriptor_pb2.DescriptorProto) -> list[tuple[str, int, int, int, str]]:
        return [(f.name, f.number, f.type, f.label, f.type_name) for f in message.field]

    theirs = {}
    for module in ("empty_pb2", "messages_pb2"):
        file = descriptor_pb2.FileDescriptorProto()
        pb[module].DESCRIPTOR.CopyToProto(file)
        theirs.update({m.name: fields(m) for m in file.message_type})
    ours = {
        m.name: fields(m)
        for file in Schema(interop_service.app.table).descriptors
        if file.package == "grpc.testing"
        for m in file.message_type
    }
    assert ours == {name: theirs[name] for name in ours}
    assert set(ours) >= {"Empty", "SimpleRequest", "StreamingOutputCallResponse"}


def zeros(pb: dict[str, ModuleType], size: int) -> Any:
    return pb["messages_pb2"].Payload(body=bytes(size))


class Requests:
    """A request stream the test feeds one message at a time, then closes."""

    def __init__(self) -> None:
        self.items: queue.Queue[Any] = queue.Queue()

    def send(self, message: Any) -> None:
        self.items.put(message)

    def close(self) -> None:
        self.items.put(None)

    def __iter__(self) -> Iterator[Any]:
        while (item := self.items.get()) is not None:
            yield item


def test_empty_unary(stub: Any, pb: dict[str, ModuleType]) -> None:
    answer = stub.EmptyCall(pb["empty_pb2"].Empty())
    assert answer is not None and answer.ByteSize() == 0


def test_large_unary(stub: Any, pb: dict[str, ModuleType]) -> None:
    request = pb["messages_pb2"].SimpleRequest(response_size=314159, payload=zeros(pb, 271828))
    answer = stub.UnaryCall(request)
    assert answer.payload.body == bytes(314159)


def test_client_streaming(stub: Any, pb: dict[str, ModuleType]) -> None:
    sizes = [27182, 8, 1828, 45904]
    requests = (pb["messages_pb2"].StreamingInputCallRequest(payload=zeros(pb, n)) for n in sizes)
    assert stub.StreamingInputCall(requests).aggregated_payload_size == 74922


def output_request(pb: dict[str, ModuleType], sizes: list[int], body: int = 0) -> Any:
    messages = pb["messages_pb2"]
    return messages.StreamingOutputCallRequest(
        response_parameters=[messages.ResponseParameters(size=n) for n in sizes],
        payload=zeros(pb, body) if body else None,
    )


def test_server_streaming(stub: Any, pb: dict[str, ModuleType]) -> None:
    sizes = [31415, 9, 2653, 58979]
    answers = list(stub.StreamingOutputCall(output_request(pb, sizes)))
    assert [a.payload.body for a in answers] == [bytes(n) for n in sizes]


def test_ping_pong(stub: Any, pb: dict[str, ModuleType]) -> None:
    requests = Requests()
    call = stub.FullDuplexCall(iter(requests))
    try:
        for size, body in [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]:
            requests.send(output_request(pb, [size], body))
            assert next(call).payload.body == bytes(size)
    finally:
        requests.close()
    assert list(call) == []
    assert call.code() is grpc.StatusCode.OK


def test_empty_stream(stub: Any) -> None:
    call = stub.FullDuplexCall(iter([]))
    assert list(call) == []
    assert call.code() is grpc.StatusCode.OK


def test_custom_metadata(stub: Any, pb: dict[str, ModuleType]) -> None:
    metadata = (INITIAL, TRAILING)
    request = pb["messages_pb2"].SimpleRequest(response_size=314159, payload=zeros(pb, 271828))
    answer, call = stub.UnaryCall.with_call(request, metadata=metadata)
    assert answer.payload.body == bytes(314159)
    assert INITIAL in call.initial_metadata()
    assert TRAILING in call.trailing_metadata()
    stream = stub.FullDuplexCall(iter([output_request(pb, [314159], 271828)]), metadata=metadata)
    assert [a.payload.body for a in stream] == [bytes(314159)]
    assert INITIAL in stream.initial_metadata()
    assert TRAILING in stream.trailing_metadata()


@pytest.mark.parametrize("message", ["test status message", SPECIAL_MESSAGE])
def test_status_code_and_message(stub: Any, pb: dict[str, ModuleType], message: str) -> None:
    """status_code_and_message, and with special_status_message's whitespace and Unicode."""
    messages = pb["messages_pb2"]
    status = messages.EchoStatus(code=2, message=message)
    with pytest.raises(grpc.RpcError) as info:
        stub.UnaryCall(messages.SimpleRequest(response_status=status))
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.UNKNOWN, message)
    call = stub.FullDuplexCall(iter([messages.StreamingOutputCallRequest(response_status=status)]))
    with pytest.raises(grpc.RpcError):
        list(call)
    assert (call.code(), call.details()) == (grpc.StatusCode.UNKNOWN, message)


def test_unimplemented_method(stub: Any, pb: dict[str, ModuleType]) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.UnimplementedCall(pb["empty_pb2"].Empty())
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_unimplemented_service(server: Server, pb: dict[str, ModuleType]) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        other = pb["test_pb2_grpc"].UnimplementedServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            other.UnimplementedCall(pb["empty_pb2"].Empty())
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_cancel_after_begin(stub: Any) -> None:
    requests = Requests()
    future = stub.StreamingInputCall.future(iter(requests))
    try:
        assert future.cancel()
        assert future.code() is grpc.StatusCode.CANCELLED
    finally:
        requests.close()


def test_cancel_after_first_response(stub: Any, pb: dict[str, ModuleType]) -> None:
    requests = Requests()
    call = stub.FullDuplexCall(iter(requests))
    try:
        requests.send(output_request(pb, [31415], 27182))
        assert next(call).payload.body == bytes(31415)
        call.cancel()
        assert call.code() is grpc.StatusCode.CANCELLED
    finally:
        requests.close()


def test_timeout_on_sleeping_server(stub: Any, pb: dict[str, ModuleType]) -> None:
    requests = Requests()
    call = stub.FullDuplexCall(iter(requests), timeout=0.001)
    try:
        requests.send(output_request(pb, [], 27182))
        with pytest.raises(grpc.RpcError):
            list(call)
        assert call.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        requests.close()


def test_custom_metadata_over_connect(server: Server) -> None:
    """custom_metadata's echo on Connect: a unary call's trailers are ``trailer-``
    headers, a stream's are in its end-of-stream message; -bin values in base64."""
    echo = {INITIAL[0]: INITIAL[1], TRAILING[0]: "q6ur"}  # 0xababab, unpadded
    json_headers = {"content-type": "application/json", **echo}
    r = httpx.post(
        server.url + "/grpc.testing.TestService/UnaryCall",
        content=b'{"responseSize": 3}',
        headers=json_headers,
    )
    assert r.status_code == 200 and r.json()["payload"]["body"] == "AAAA"  # 3 zero bytes
    assert r.headers[INITIAL[0]] == INITIAL[1]
    assert r.headers["trailer-" + TRAILING[0]] == "q6ur"
    failed = httpx.post(
        server.url + "/grpc.testing.TestService/UnaryCall",
        content=b'{"responseStatus": {"code": 9, "message": "no"}}',
        headers=json_headers,
    )
    assert failed.json()["code"] == "failed_precondition"
    assert failed.headers["trailer-" + TRAILING[0]] == "q6ur"
    request = json.dumps({"responseParameters": [{"size": 1}]}).encode()
    r = httpx.post(
        server.url + "/grpc.testing.TestService/StreamingOutputCall",
        content=b"\x00" + len(request).to_bytes(4, "big") + request,
        headers={"content-type": "application/connect+json", **echo},
    )
    assert r.status_code == 200 and r.headers[INITIAL[0]] == INITIAL[1]
    frames, at = [], 0
    while at < len(r.content):
        size = int.from_bytes(r.content[at + 1 : at + 5], "big")
        frames.append((r.content[at], json.loads(r.content[at + 5 : at + 5 + size])))
        at += 5 + size
    assert [(flags, message.get("payload", {}).get("body")) for flags, message in frames] == [
        (0, "AA=="),
        (2, None),
    ]
    assert frames[1][1] == {"metadata": {TRAILING[0]: ["q6ur"]}}


def test_binary_metadata_that_is_not_base64_is_invalid_argument(server: Server) -> None:
    """grpcio and grpc-js always send base64; a hand-made gRPC-Web or Connect request need not."""
    r = httpx.post(
        server.url + "/grpc.testing.TestService/EmptyCall",
        content=b"\x00\x00\x00\x00\x00",
        headers={"content-type": "application/grpc-web", TRAILING[0]: "not base64!"},
    )
    assert (r.status_code, r.headers["grpc-status"]) == (200, "3")
    assert TRAILING[0] in r.headers["grpc-message"]
    r = httpx.post(
        server.url + "/grpc.testing.TestService/EmptyCall",
        content=b"{}",
        headers={"content-type": "application/json", TRAILING[0]: "not base64!"},
    )
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")


def test_grpc_js(server: Server) -> None:
    """Every case again from Node's gRPC, @grpc/grpc-js with @grpc/proto-loader."""
    if shutil.which("node") is None or not (ROOT / "node_modules" / "@grpc" / "grpc-js").exists():
        pytest.fail("needs node and `npm ci` (make test does both)")
    results = node_json(NODE_CLIENT, PROTO, server.grpc_target)
    assert results == dict.fromkeys(CASES, "passed")
