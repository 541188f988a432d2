"""The h2 gRPC client against servers nobody here wrote the transport of.

A plain grpcio server (generic handlers, no Twofold on its side): metadata
both ways, binary metadata, rich error details, a message larger than
HTTP/2's flow-control windows both ways, a server stream the client leaves
(the server sees the cancellation), a deadline the server sees too. Then
servers that misbehave on purpose: bytes that are not HTTP/2, and a GOAWAY.
Each failure is compared with what grpcio's own channel makes of it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import pytest
from google.rpc import error_details_pb2, status_pb2

from tests.e2e import grpc_app
from tests.e2e.grpc_app import Number, Text
from twofold import Client, Code, Error
from twofold.core.details import BadRequest, FieldViolation
from twofold.http import envelope
from twofold.protobuf import Schema

SCHEMA = Schema(grpc_app.app.table)
METHODS = {m.name: m for m in grpc_app.app.table}
SERVICE = "streams.v1.Streams"
BIG = 200_000  # past the 64 KiB default windows, several times


def _codec(name: str, side: str) -> Any:
    method = METHODS[name]
    return SCHEMA.codec(method.input_type if side == "in" else method.output_type)


class Peer:
    """What the grpcio server saw."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.time_remaining: list[float | None] = []


def _handlers(peer: Peer) -> grpc.GenericRpcHandler:
    echo_in, text = _codec("EchoMetadata", "in"), _codec("EchoMetadata", "out")
    number = SCHEMA.codec(Number)

    def echo(raw: bytes, context: grpc.ServicerContext) -> bytes:
        name = echo_in.decode(raw).name
        sent = dict(context.invocation_metadata())
        if name == "invalid":
            bad = error_details_pb2.BadRequest(
                field_violations=[{"field": "name", "description": "is invalid"}]
            )
            status = status_pb2.Status(code=3, message="bad name")
            status.details.add().Pack(bad)
            context.set_trailing_metadata(
                (("grpc-status-details-bin", status.SerializeToString()),)
            )
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad name")
        if name.startswith("y"):  # a large request: answered with itself
            return text.encode(Text(name))
        value = sent.get(name, b"")
        context.send_initial_metadata((("x-echo", "yes"),))
        return text.encode(Text(value.decode() if isinstance(value, bytes) else value))

    def count(raw: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        context.add_callback(peer.cancelled.set)
        i = 0
        while context.is_active():
            yield number.encode(Number(i))
            i += 1
            time.sleep(0.01)

    def sleep(raw: bytes, context: grpc.ServicerContext) -> bytes:
        peer.time_remaining.append(context.time_remaining())  # from grpc-timeout
        while context.is_active():
            time.sleep(0.01)
        return number.encode(Number(0))

    def total(raws: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        first = number.decode(next(raws)).n
        if first < 0:  # answered at once, the rest of the requests never read
            return number.encode(Number(first))
        return number.encode(Number(first + sum(number.decode(r).n for r in raws)))

    def double(raws: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for raw in raws:
            yield number.encode(Number(number.decode(raw).n * 2))

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "EchoMetadata": grpc.unary_unary_rpc_method_handler(echo),
            "Count": grpc.unary_stream_rpc_method_handler(count),
            "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
            "Total": grpc.stream_unary_rpc_method_handler(total),
            "Double": grpc.stream_stream_rpc_method_handler(double),
        },
    )


@pytest.fixture(scope="module")
def grpcio() -> Iterator[tuple[str, Peer]]:
    peer = Peer()
    server = grpc.server(futures.ThreadPoolExecutor(8))
    server.add_generic_rpc_handlers((_handlers(peer),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", peer
    server.stop(None)


def own(target: str, **options: Any) -> Client:
    return Client(grpc_app.service, target, protocol="grpc", transport="h2", **options)


def test_every_kind_and_metadata(grpcio: tuple[str, Peer]) -> None:
    target, _ = grpcio
    with own(target) as c:
        assert c.echo_metadata(name="x-who", headers={"x-who": "ada"}) == Text("ada")
        # Binary metadata: base64 on the wire, bytes again in grpcio's hands.
        assert c.echo_metadata(name="x-raw-bin", headers={"x-raw-bin": "é\x00"}) == Text("é\x00")
        with pytest.raises(Error) as info:  # refused before anything is sent
            c.echo_metadata(name="x-who", headers={"x-who": "ada\r\nx-evil: 1"})
        assert info.value.code is Code.INVALID_ARGUMENT
        assert c.total(iter([Number(1), Number(2), Number(3)])) == Number(6)
        assert list(c.double(Number(n) for n in range(5))) == [Number(2 * n) for n in range(5)]


def test_large_messages_cross_the_windows(grpcio: tuple[str, Peer]) -> None:
    target, _ = grpcio
    name = "y" * BIG
    with own(target) as c:
        assert c.echo_metadata(name=name) == Text(name)
    with own(target, max_response_size=BIG // 2) as c:
        # Each refused answer leaves bytes unread: the connection's window
        # must get them back, or the calls after it would wait for ever.
        for _ in range(10):
            with pytest.raises(Error) as info:
                c.echo_metadata(name=name)
            assert info.value.code is Code.RESOURCE_EXHAUSTED
        assert c.echo_metadata(name="y") == Text("y")


def test_error_details_as_grpcio_reads_them(grpcio: tuple[str, Peer]) -> None:
    target, _ = grpcio
    errors = []
    for transport in (None, "h2"):
        with Client(grpc_app.service, target, protocol="grpc", transport=transport) as c:
            with pytest.raises(Error) as info:
                c.echo_metadata(name="invalid")
            errors.append(info.value)
    grpcio_error, h2_error = errors
    assert h2_error.code is Code.INVALID_ARGUMENT
    assert h2_error.message == "bad name"
    assert list(h2_error.details) == [BadRequest((FieldViolation("name", "is invalid"),))]
    assert (h2_error.code, h2_error.message, h2_error.details) == (
        grpcio_error.code,
        grpcio_error.message,
        grpcio_error.details,
    )


def test_leaving_a_server_stream_cancels_it(grpcio: tuple[str, Peer]) -> None:
    target, peer = grpcio
    with own(target) as c:
        with contextlib.closing(c.count(n=0)) as numbers:
            assert [next(numbers), next(numbers)] == [Number(0), Number(1)]
        assert peer.cancelled.wait(20)


def test_deadline_reaches_the_server(grpcio: tuple[str, Peer]) -> None:
    target, peer = grpcio
    with own(target) as c, pytest.raises(Error) as info:
        c.sleep(seconds=0, timeout=0.3)
    assert info.value.code is Code.DEADLINE_EXCEEDED
    (left,) = peer.time_remaining  # grpc-timeout told the server
    assert left is not None and left <= 0.3


@contextlib.contextmanager
def listener(serve: Any) -> Iterator[tuple[str, list[socket.socket]]]:
    """A TCP server on 127.0.0.1 whose every connection ``serve(sock, n)`` answers."""
    sock = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def run() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = sock.accept()
                accepted.append(conn)
                threading.Thread(target=serve, args=(conn, len(accepted)), daemon=True).start()

    threading.Thread(target=run, daemon=True).start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}", accepted
    finally:
        sock.close()
        for conn in accepted:
            conn.close()


def _http1(conn: socket.socket, _: int) -> None:
    with contextlib.suppress(OSError):
        conn.recv(65536)
        # An HTTP/1.1 server's answer, and the connection left open: no hang all the same.
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        time.sleep(30)


def test_not_http2_is_unavailable() -> None:
    with (
        listener(_http1) as (target, _),
        own(target, retry=None, timeout=20) as c,
        pytest.raises(Error) as info,
    ):
        c.whoami()
    assert info.value.code is Code.UNAVAILABLE
    assert "HTTP/2" in info.value.message


def _goaway_first(conn: socket.socket, number: int) -> None:
    """The first connection sends GOAWAY (no stream processed); later ones answer."""
    h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    h2c.initiate_connection()
    answer = envelope.frame(SCHEMA.codec(Number).encode(Number(number)))
    # After its GOAWAY, h2 refuses what the client still sends: that connection is over.
    with contextlib.suppress(OSError, h2.exceptions.ProtocolError):
        conn.sendall(h2c.data_to_send())
        while data := conn.recv(65536):
            for event in h2c.receive_data(data):
                if not isinstance(event, h2.events.StreamEnded):
                    continue
                if number == 1:
                    h2c.close_connection(last_stream_id=0)
                else:
                    sid = event.stream_id
                    h2c.send_headers(
                        sid, [(":status", "200"), ("content-type", "application/grpc")]
                    )
                    h2c.send_data(sid, answer)
                    h2c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
            conn.sendall(h2c.data_to_send())


def test_goaway_fails_the_unprocessed_call_and_a_new_connection_follows() -> None:
    with listener(_goaway_first) as (target, accepted), own(target, retry=None, timeout=20) as c:
        with pytest.raises(Error) as info:
            c.whoami()
        assert info.value.code is Code.UNAVAILABLE
        assert "GOAWAY" in info.value.message
        assert c.whoami() == Number(2)  # the second connection's answer
        assert len(accepted) == 2


def test_transport_spelling() -> None:
    with pytest.raises(ValueError, match='"h2"'):
        Client(grpc_app.service, "127.0.0.1:1", protocol="grpc", transport="h3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="for protocol 'grpc'"):
        Client(grpc_app.service, "http://127.0.0.1:1", transport="h2")


def test_gzip_answers_are_read() -> None:
    """A grpcio server that compresses what it sends (the client accepts gzip)."""
    peer = Peer()
    server = grpc.server(futures.ThreadPoolExecutor(4), compression=grpc.Compression.Gzip)
    server.add_generic_rpc_handlers((_handlers(peer),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        name = "y" * BIG  # compresses to a few hundred bytes
        with own(f"127.0.0.1:{port}", max_response_size=BIG * 2) as c:
            assert c.echo_metadata(name=name) == Text(name)
            assert list(c.double(Number(n) for n in range(3))) == [Number(0), Number(2), Number(4)]
    finally:
        server.stop(None)


def test_the_answer_ends_a_call_whose_requests_still_wait(grpcio: tuple[str, Peer]) -> None:
    """A server that answers a client stream after its first request, while
    the caller's iterable is blocked: the answer ends the call; and leaving
    a bidi call whose iterable is blocked ends it at once."""
    target, _ = grpcio
    release, finished = threading.Event(), threading.Event()

    def requests(first: int) -> Iterator[Number]:
        yield Number(first)
        release.wait(30)  # blocked until the test ends
        finished.set()

    try:
        with own(target, timeout=20) as c:
            assert c.total(requests(-5)) == Number(-5)
            assert not finished.is_set()  # answered while the requests were still blocked
            outputs = c.double(requests(1))
            assert next(outputs) == Number(2)
            outputs.close()
            assert not finished.is_set()
    finally:
        release.set()


GRPC_HEAD = [(":status", "200"), ("content-type", "application/grpc")]
ONE = envelope.frame(SCHEMA.codec(Number).encode(Number(1)))


def _answer(h2c: h2.connection.H2Connection, sid: int, how: str) -> None:
    """One hostile (or odd) answer to a call, by name."""
    if how == "no-status":
        h2c.send_headers(sid, GRPC_HEAD)
        h2c.send_data(sid, ONE, end_stream=True)
    elif how == "truncated":
        h2c.send_headers(sid, GRPC_HEAD)
        h2c.send_data(sid, b"\x00\x00\x00\x00\x10\x08")  # 16 bytes declared, 1 sent
        h2c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
    elif how == "http-404":
        h2c.send_headers(sid, [(":status", "404"), ("content-type", "text/html")])
        h2c.send_data(sid, b"<p>nope</p>", end_stream=True)
    elif how == "reset":
        h2c.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
    elif how == "refused":
        h2c.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
    elif how == "trailers-only":
        status = [("grpc-status", "5"), ("grpc-message", "caf%C3%A9 gone")]
        h2c.send_headers(sid, GRPC_HEAD + status, end_stream=True)
    elif how == "two-messages":
        h2c.send_headers(sid, GRPC_HEAD)
        h2c.send_data(sid, ONE + ONE)
        h2c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
    # "silent": no answer at all


def _odd(how: str) -> Any:
    def serve(conn: socket.socket, _: int) -> None:
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2c.initiate_connection()
        with contextlib.suppress(OSError, h2.exceptions.ProtocolError):
            conn.sendall(h2c.data_to_send())
            while data := conn.recv(65536):
                for event in h2c.receive_data(data):
                    if isinstance(event, h2.events.StreamEnded):
                        _answer(h2c, event.stream_id, how)
                conn.sendall(h2c.data_to_send())

    return serve


@pytest.mark.parametrize(
    ("how", "code", "says"),
    [
        ("no-status", Code.INTERNAL, "no grpc-status"),
        ("truncated", Code.INTERNAL, "truncated"),
        ("http-404", Code.UNIMPLEMENTED, "404"),
        ("reset", Code.INTERNAL, "reset the stream"),
        ("refused", Code.UNAVAILABLE, "reset the stream"),
        ("trailers-only", Code.NOT_FOUND, "café gone"),
        ("two-messages", Code.INTERNAL, "2 messages"),
        ("silent", Code.DEADLINE_EXCEEDED, "deadline"),
    ],
)
def test_odd_answers(how: str, code: Code, says: str) -> None:
    with (
        listener(_odd(how)) as (target, _),
        own(target, retry=None, timeout=1) as c,
        pytest.raises(Error) as info,
    ):
        c.whoami()
    assert info.value.code is code and says in info.value.message, info.value
