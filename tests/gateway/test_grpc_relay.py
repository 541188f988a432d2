"""Native gRPC through the gateway: grpcio clients, the gateway on hypercorn and pyvoy.

The gateway runs as ``twofold gateway --server hypercorn`` and ``--server
pyvoy`` (a process of its own); the upstream is the grpcio library of
tests/gateway/upstream.py. Every stream kind is relayed, with the edge's
rules: the metadata allow-list, the deadline, the upstream's headers,
trailers and status details as they were, and a client that leaves
cancels the upstream call.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from tests.e2e.server import Server, spawn
from tests.gateway.upstream import PROTO, SERVICE, Upstream, message

GetBookRequest = message("GetBookRequest")
Book = message("Book")
WatchRequest = message("WatchRequest")
CreateBookRequest = message("CreateBookRequest")
ListBooksResponse = message("ListBooksResponse")
EchoRequest = message("EchoRequest")
FailRequest = message("FailRequest")


def gateway_argv(upstream: str, server: str, *extra: str) -> Any:
    def argv(port: int, _grpc: int | None) -> list[str]:
        return [sys.executable, "-m", "twofold", "gateway", "--upstream", upstream,
                "--proto", str(PROTO), "--port", str(port), "--server", server,
                "--log-level", "warning", *extra]  # fmt: skip

    return argv


@pytest.fixture(scope="module", params=["hypercorn", "pyvoy"])
def gateway(
    request: pytest.FixtureRequest, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    if importlib.util.find_spec(request.param) is None:
        pytest.skip(f"{request.param} is not installed (the dev extra has it)")
    tmp = tmp_path_factory.mktemp("grpc-relay")
    server = spawn(gateway_argv(upstream.target, request.param, "--timeout", "5"), tmp)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def channel(gateway: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as found:
        yield found


def rpc(channel: grpc.Channel, kind: str, name: str, response: Any) -> Any:
    make = getattr(channel, kind)
    return make(
        f"/{SERVICE}/{name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )


def test_unary_with_metadata_allow_list(channel: grpc.Channel) -> None:
    echo = rpc(channel, "unary_unary", "Echo", EchoRequest)
    answer, call = echo.with_call(
        EchoRequest(text="hi"),
        metadata=(("authorization", "Bearer t"), ("x-secret", "no")),
        timeout=5,
    )
    assert answer.text == "hi"
    assert "authorization=Bearer t" in answer.metadata
    assert not any(m.startswith("x-secret") for m in answer.metadata)
    assert call.code() is grpc.StatusCode.OK


def test_server_stream(channel: grpc.Channel) -> None:
    watch = rpc(channel, "unary_stream", "WatchBooks", Book)
    books = list(watch(WatchRequest(parent="shelves/9", count=3), timeout=5))
    assert [b.title for b in books] == ["Book 0", "Book 1", "Book 2"]


def test_client_stream(channel: grpc.Channel, upstream: Upstream) -> None:
    imports = rpc(channel, "stream_unary", "ImportBooks", ListBooksResponse)
    requests = (
        CreateBookRequest(parent="shelves/7", book_id=f"g{i}", book=Book(title=f"T{i}"))
        for i in range(3)
    )
    answer = imports(requests, timeout=5)
    assert [b.name for b in answer.books] == [f"shelves/7/books/g{i}" for i in range(3)]
    assert "shelves/7/books/g2" in upstream.library.books


def test_bidi_headers_and_trailers_as_the_upstream_sent(channel: grpc.Channel) -> None:
    chat = rpc(channel, "stream_stream", "Chat", EchoRequest)
    call = chat(iter([EchoRequest(text="a"), EchoRequest(text="b")]), timeout=5)
    assert [m.text for m in call] == ["a", "b"]
    assert ("x-upstream", "library") in call.initial_metadata()
    assert ("x-chat-end", "bye") in call.trailing_metadata()
    assert call.code() is grpc.StatusCode.OK


def test_bidi_interleaves(channel: grpc.Channel) -> None:
    """Each answer comes back before the next request is sent: nothing is buffered."""
    chat = rpc(channel, "stream_stream", "Chat", EchoRequest)
    answers: list[str] = []

    def requests() -> Iterator[Any]:
        for text in ("one", "two", "three"):
            yield EchoRequest(text=text)
            deadline = time.monotonic() + 5
            while len(answers) < ["one", "two", "three"].index(text) + 1:
                assert time.monotonic() < deadline, "the answer never came"
                time.sleep(0.005)

    for item in chat(requests(), timeout=10):
        answers.append(item.text)
    assert answers == ["one", "two", "three"]


def test_status_details_byte_for_byte(channel: grpc.Channel) -> None:
    fail = rpc(channel, "unary_unary", "Fail", EchoRequest)
    with pytest.raises(grpc.RpcError) as caught:
        fail(FailRequest(code="INVALID_ARGUMENT"), timeout=5)
    error: Any = caught.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "failed as asked: INVALID_ARGUMENT"
    raw = dict(error.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert bad.field_violations[0].field == "code"


def test_error_mid_bidi(channel: grpc.Channel) -> None:
    chat = rpc(channel, "stream_stream", "Chat", EchoRequest)
    call = chat(iter([EchoRequest(text="ok"), EchoRequest(text="fail")]), timeout=5)
    got = []
    with pytest.raises(grpc.RpcError) as caught:
        for item in call:
            got.append(item.text)
    assert got == ["ok"]
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


def test_deadline_goes_upstream(channel: grpc.Channel) -> None:
    echo = rpc(channel, "unary_unary", "Echo", EchoRequest)
    with pytest.raises(grpc.RpcError) as caught:
        echo(EchoRequest(text="slow", delay_ms=3000), timeout=0.3)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]


def test_gateway_deadline_caps_the_clients(channel: grpc.Channel) -> None:
    """--timeout 5: a client asking for a minute still gets DEADLINE_EXCEEDED at 5 s."""
    echo = rpc(channel, "unary_unary", "Echo", EchoRequest)
    with pytest.raises(grpc.RpcError) as caught:
        echo(EchoRequest(text="slow", delay_ms=8000), timeout=60)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]


def test_client_cancel_cancels_upstream(channel: grpc.Channel, upstream: Upstream) -> None:
    """The client resets its stream: the gateway cancels the upstream call at once."""
    watch = rpc(channel, "unary_stream", "WatchBooks", Book)
    call = watch(WatchRequest(parent="shelves/gone", count=1000, delay_ms=50), timeout=30)
    assert next(call).title == "Book 0"
    call.cancel()
    deadline = time.monotonic() + 10
    while "shelves/gone" not in upstream.library.cancelled:
        assert time.monotonic() < deadline, upstream.library.cancelled
        time.sleep(0.02)


def test_unknown_method_is_unimplemented(channel: grpc.Channel) -> None:
    nothing = channel.unary_unary(f"/{SERVICE}/Nothing")
    with pytest.raises(grpc.RpcError) as caught:
        nothing(b"", timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def test_upstream_down_is_unavailable(tmp_path: Path) -> None:
    """An upstream that is not there: UNAVAILABLE at once, no address in the message."""
    from tests.e2e.server import free_port

    server = spawn(gateway_argv(f"127.0.0.1:{free_port()}", "hypercorn"), tmp_path)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            echo = rpc(channel, "unary_unary", "Echo", EchoRequest)
            with pytest.raises(grpc.RpcError) as caught:
                echo(EchoRequest(text="x"), timeout=10)
        error: Any = caught.value
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert error.details() == "the upstream service is unavailable"
    finally:
        server.stop()


def test_uvicorn_answers_grpc_clearly(upstream: Upstream, tmp_path: Path) -> None:
    """The default server speaks HTTP/1.1: a grpcio client is told at once, no hang;
    an HTTP/1.1 gRPC request is UNIMPLEMENTED, trailers-only, saying what to do."""
    server = spawn(gateway_argv(upstream.target, "uvicorn"), tmp_path)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            echo = rpc(channel, "unary_unary", "Echo", EchoRequest)
            with pytest.raises(grpc.RpcError) as caught:
                echo(EchoRequest(text="x"), timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        body = b"\0" + len(b"").to_bytes(4, "big")
        answer = httpx.post(
            f"{server.url}/{SERVICE}/Echo",
            content=body,
            headers={"content-type": "application/grpc", "te": "trailers"},
        )
        assert answer.status_code == 200
        assert answer.headers["grpc-status"] == "12"
        assert "--server hypercorn or pyvoy" in answer.headers["grpc-message"]
    finally:
        server.stop()


def test_a_channel_outlives_a_thousand_calls(channel: grpc.Channel) -> None:
    """hypercorn would close the connection after 1000 requests, killing the call in
    flight; the gateway's hypercorn keeps it for as long as the client does."""
    echo = rpc(channel, "unary_unary", "Echo", EchoRequest)
    for i in range(1100):
        assert echo(EchoRequest(text=str(i)), timeout=5).text == str(i)


def test_reflection_relayed(channel: grpc.Channel) -> None:
    """grpcio-reflection's client, pointed at the gateway, reads the upstream's services."""
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    database = ProtoReflectionDescriptorDatabase(channel)
    assert SERVICE in database.get_services()
    found = database.FindFileContainingSymbol(SERVICE)
    assert found.package == "library.v1"


def test_pyvoy_gateway_lets_a_relayed_stream_finish_on_sigterm(
    upstream: Upstream, tmp_path: Path
) -> None:
    """The gateway on pyvoy stops as ``twofold serve --server pyvoy`` does: the
    listener closes, a call in flight goes on to its end, and the process exits 0."""
    import queue
    import signal

    if importlib.util.find_spec("pyvoy") is None:
        pytest.skip("pyvoy is not installed (the dev extra has it)")
    server = spawn(gateway_argv(upstream.target, "pyvoy"), tmp_path)
    sent: queue.Queue[Any] = queue.Queue()

    def requests() -> Iterator[Any]:
        while (item := sent.get(timeout=30)) is not None:
            yield item

    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            chat = rpc(channel, "stream_stream", "Chat", EchoRequest)
            call = chat(requests(), timeout=30)
            sent.put(EchoRequest(text="before"))
            assert next(call).text == "before"  # the stream is open, through the relay
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while True:  # the listener closes; the open stream does not
                try:
                    httpx.get(f"{server.url}/", timeout=2)
                except httpx.ConnectError:
                    break
                assert time.monotonic() < deadline, "the listener stayed open"
                time.sleep(0.05)
            sent.put(EchoRequest(text="after"))
            sent.put(None)
            assert [m.text for m in call] == ["after"]
            assert call.code() is grpc.StatusCode.OK
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()
