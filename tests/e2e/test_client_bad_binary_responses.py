"""Hostile answers on the binary wires and in streams: twofold.Client raises
twofold.Error, never anything else.

A tiny raw ASGI app (no Twofold in it) answers each method with one kind of
bad gRPC-Web, Connect-proto, Connect-stream or Server-Sent-Events response:
truncated envelopes, bytes that are not protobuf, no grpc-status, the wrong
content type, a message over the client's limit. A raw grpcio server
(generic handlers, no Twofold) does the same over native gRPC.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import msgspec
import pytest

from tests.e2e.threaded import serve
from twofold import BadRequest, Client, Code, Error, FieldViolation
from twofold.client import Empty, HttpBinding, Idempotency, Rpc, StreamKind
from twofold.core.asgi import Receive, Scope, Send
from twofold.http.envelope import COMPRESSED, END_STREAM, TRAILERS, frame
from twofold.http.grpcstatus import status_trailers

LIMIT = 1000
SERVICE = "bad.v1.BadService"
ITEM = b"\x08\x07\x12\x01x"  # Item(id=7, name="x") in protobuf
GARBAGE = b"\xff\xff\xff"  # a field key that never ends


class Item(msgspec.Struct, kw_only=True):
    id: int
    name: str = ""


def trailers(block: bytes = b"grpc-status: 0\r\n") -> bytes:
    return frame(block, TRAILERS)


def grpc_web(body: bytes, *headers: tuple[bytes, bytes], content_type: bytes = b"") -> Any:
    return 200, [(b"content-type", content_type or b"application/grpc-web+proto"), *headers], body


NOT_FOUND = status_trailers(
    Error(Code.NOT_FOUND, "café gone", [BadRequest((FieldViolation("id", "no such item"),))])
)

ANSWERS: dict[str, Any] = {
    "gw_ok": grpc_web(frame(ITEM) + trailers()),
    "gw_truncated": grpc_web(frame(ITEM)[:-2]),
    "gw_cut_header": grpc_web(frame(ITEM) + b"\x00\x00"),
    "gw_bad_proto": grpc_web(frame(GARBAGE) + trailers()),
    "gw_no_trailers": grpc_web(frame(ITEM)),
    "gw_no_status": grpc_web(frame(ITEM) + trailers(b"grpc-message: hm\r\n")),
    "gw_wrong_type": grpc_web(frame(ITEM) + trailers(), content_type=b"text/html"),
    "gw_too_big": grpc_web(frame(b"\x12" + b"\xe8\x07" + b"x" * 1000) + trailers()),
    "gw_odd_status": grpc_web(b"", (b"grpc-status", b"99"), (b"grpc-message", b"what")),
    "gw_error": grpc_web(b"", *NOT_FOUND),
    "gw_error_in_trailers": grpc_web(
        frame(ITEM) + trailers(b"".join(k + b": " + v + b"\r\n" for k, v in NOT_FOUND))
    ),
    "gw_bad_details": grpc_web(
        b"", (b"grpc-status", b"3"), (b"grpc-status-details-bin", b"!!not base64")
    ),
    "gw_compressed": grpc_web(frame(ITEM, COMPRESSED) + trailers()),
    "gw_two": grpc_web(frame(ITEM) + frame(ITEM) + trailers()),
    "gw_none": grpc_web(trailers()),
    "gw_after_end": grpc_web(frame(ITEM) + trailers() + frame(ITEM)),
    "gw_html502": (502, [(b"content-type", b"text/html")], b"<html>Bad Gateway</html>"),
    "cp_bad_proto": (200, [(b"content-type", b"application/proto")], GARBAGE),
    "cp_json": (200, [(b"content-type", b"application/json")], b'{"id": 1}'),
    "cp_too_big": (200, [(b"content-type", b"application/proto")], b"\x12" * 5000),
    "cp_error": (
        404,
        [(b"content-type", b"application/json")],
        b'{"code": "not_found", "message": "gone"}',
    ),
    "cs_ok": (
        200,
        [(b"content-type", b"application/connect+proto")],
        frame(ITEM) + frame(b"{}", END_STREAM),
    ),
    "cs_no_end": (200, [(b"content-type", b"application/connect+proto")], frame(ITEM)),
    "cs_bad_end": (
        200,
        [(b"content-type", b"application/connect+proto")],
        frame(ITEM) + frame(b"{not json", END_STREAM),
    ),
    "cs_error_end": (
        200,
        [(b"content-type", b"application/connect+proto")],
        frame(ITEM) + frame(json.dumps({"error": {"code": "aborted", "message": "x"}}).encode(), 2),
    ),
    "cs_truncated": (200, [(b"content-type", b"application/connect+proto")], frame(ITEM)[:-1]),
    "cs_html": (502, [(b"content-type", b"text/html")], b"<html>Bad Gateway</html>"),
    "sse_ok": (200, [(b"content-type", b"text/event-stream")], b': hi\n\ndata: {"id": 7}\n\n'),
    "sse_bad_json": (200, [(b"content-type", b"text/event-stream")], b"data: {nope\n\n"),
    "sse_wrong_shape": (200, [(b"content-type", b"text/event-stream")], b'data: {"id": "x"}\n\n'),
    "sse_bad_error": (
        200,
        [(b"content-type", b"text/event-stream")],
        b'data: {"id": 7}\n\nevent: error\ndata: <html>\n\n',
    ),
    "sse_error": (
        200,
        [(b"content-type", b"text/event-stream")],
        b'data: {"id": 7}\n\nevent: error\ndata: {"code": "aborted", "detail": "x"}\n\n',
    ),
    "sse_cut": (200, [(b"content-type", b"text/event-stream")], b'data: {"id": 7}\n\ndata: {"i'),
    "sse_too_big": (
        200,
        [(b"content-type", b"text/event-stream")],
        b"data: " + b"x" * 600 + b"\ndata: " + b"x" * 600 + b"\n\n",
    ),
    "sse_html": (200, [(b"content-type", b"text/html")], b"<html></html>"),
    "sse_problem": (
        404,
        [(b"content-type", b"application/problem+json")],
        b'{"code": "not_found", "detail": "no such stream", "status": 404}',
    ),
    "cs_unary_error": (
        429,
        [(b"content-type", b"application/json")],
        b'{"code": "resource_exhausted", "message": "slow down"}',
    ),
}


async def bad_server(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    status, headers, body = ANSWERS[scope["path"].rsplit("/", 1)[-1]]
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def rpc(name: str) -> Rpc[Any, Any]:
    kind = StreamKind.SERVER if name.startswith(("cs_", "sse_")) else StreamKind.UNARY
    http = HttpBinding("GET", f"/{name}")
    safe = Idempotency.NO_SIDE_EFFECTS
    return Rpc(SERVICE, name, Empty, Item, name, idempotency=safe, http=http, kind=kind)


RPCS = [rpc(name) for name in ANSWERS]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(bad_server) as base:
        yield base


def outcome(url: str, name: str, protocol: str) -> Error | list[Any] | Any:
    with Client(RPCS, url, protocol=protocol, retry=None, max_response_size=LIMIT) as client:
        try:
            result = client.call(name)
            return list(result) if name.startswith(("cs_", "sse_")) else result
        except Error as exc:
            assert type(exc) is Error
            return exc


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("gw_truncated", Code.INTERNAL, "truncated"),
        ("gw_cut_header", Code.INTERNAL, "truncated"),
        ("gw_bad_proto", Code.INTERNAL, "malformed"),
        ("gw_no_trailers", Code.INTERNAL, "no grpc-status"),
        ("gw_no_status", Code.INTERNAL, "no grpc-status"),
        ("gw_wrong_type", Code.UNKNOWN, "text/html"),
        ("gw_too_big", Code.RESOURCE_EXHAUSTED, "limit"),
        ("gw_odd_status", Code.UNKNOWN, "what"),
        ("gw_bad_details", Code.INVALID_ARGUMENT, ""),
        ("gw_compressed", Code.INTERNAL, "compressed"),
        ("gw_two", Code.INTERNAL, "2 messages"),
        ("gw_none", Code.INTERNAL, "0 messages"),
        ("gw_after_end", Code.INTERNAL, "after the end"),
        ("gw_html502", Code.UNAVAILABLE, "HTTP 502"),
    ],
)
def test_bad_grpc_web_answers(url: str, name: str, code: Code, says: str) -> None:
    error = outcome(url, name, "grpc-web")
    assert isinstance(error, Error), error
    assert error.code is code, error
    assert says in error.message


def test_grpc_web_errors_keep_message_and_details(url: str) -> None:
    assert outcome(url, "gw_ok", "grpc-web") == Item(id=7, name="x")
    for name in ("gw_error", "gw_error_in_trailers"):
        error = outcome(url, name, "grpc-web")
        assert isinstance(error, Error)
        assert (error.code, error.message) == (Code.NOT_FOUND, "café gone")
        assert [v.field for v in error.violations] == ["id"]


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("cp_bad_proto", Code.INTERNAL, "malformed"),
        ("cp_json", Code.UNKNOWN, "application/json"),
        ("cp_too_big", Code.RESOURCE_EXHAUSTED, "limit"),
        ("cp_error", Code.NOT_FOUND, "gone"),
    ],
)
def test_bad_connect_proto_answers(url: str, name: str, code: Code, says: str) -> None:
    error = outcome(url, name, "connect-proto")
    assert isinstance(error, Error), error
    assert error.code is code and says in error.message, error


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("cs_no_end", Code.INTERNAL, "end-of-stream"),
        ("cs_bad_end", Code.INTERNAL, "end-of-stream"),
        ("cs_error_end", Code.ABORTED, "x"),
        ("cs_truncated", Code.INTERNAL, "truncated"),
        ("cs_html", Code.UNAVAILABLE, "HTTP 502"),
        ("cs_unary_error", Code.RESOURCE_EXHAUSTED, "slow down"),
    ],
)
def test_bad_connect_streams(url: str, name: str, code: Code, says: str) -> None:
    assert outcome(url, "cs_ok", "connect-proto") == [Item(id=7, name="x")]
    error = outcome(url, name, "connect-proto")
    assert isinstance(error, Error), error
    assert error.code is code and says in error.message, error


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("sse_bad_json", Code.INTERNAL, "malformed"),
        ("sse_wrong_shape", Code.INTERNAL, "malformed Item"),
        ("sse_bad_error", Code.INTERNAL, "malformed error event"),
        ("sse_error", Code.ABORTED, "x"),
        ("sse_cut", Code.INTERNAL, "truncated"),
        ("sse_too_big", Code.RESOURCE_EXHAUSTED, "limit"),
        ("sse_html", Code.UNKNOWN, "text/html"),
        ("sse_problem", Code.NOT_FOUND, "no such stream"),
    ],
)
def test_bad_event_streams(url: str, name: str, code: Code, says: str) -> None:
    assert outcome(url, "sse_ok", "rest") == [Item(id=7)]
    error = outcome(url, name, "rest")
    assert isinstance(error, Error), error
    assert error.code is code and says in error.message, error


# -- native gRPC: a raw grpcio server ----------------------------------------------------


def _details() -> bytes:
    block = dict(NOT_FOUND)[b"grpc-status-details-bin"]
    return base64.b64decode(block + b"=" * (-len(block) % 4))


def _abort(details: bytes) -> Any:
    def handle(request: bytes, context: Any) -> bytes:
        context.set_trailing_metadata((("grpc-status-details-bin", details),))
        context.abort(grpc.StatusCode.NOT_FOUND, "café gone")

    return handle


def _stream(request: bytes, context: Any) -> Iterator[bytes]:
    yield ITEM
    yield GARBAGE


HANDLERS = {
    "Good": grpc.unary_unary_rpc_method_handler(lambda request, context: ITEM),
    "Garbage": grpc.unary_unary_rpc_method_handler(lambda request, context: GARBAGE),
    "Big": grpc.unary_unary_rpc_method_handler(lambda request, context: b"\x12" * 5000),
    "Details": grpc.unary_unary_rpc_method_handler(_abort(_details())),
    "BadDetails": grpc.unary_unary_rpc_method_handler(_abort(b"\xff\xff")),
    "StreamGarbage": grpc.unary_stream_rpc_method_handler(_stream),
}


@pytest.fixture(scope="module")
def grpc_target() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, HANDLERS),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None).wait()


@pytest.mark.parametrize("transport", [None, "h2"])  # grpcio's channel, the client's own HTTP/2
def test_bad_grpc_answers(grpc_target: str, transport: str | None) -> None:
    rpcs = [Rpc(SERVICE, n, Empty, Item, n) for n in HANDLERS if n != "StreamGarbage"]
    rpcs.append(Rpc(SERVICE, "StreamGarbage", Empty, Item, kind=StreamKind.SERVER))
    options: dict[str, Any] = {"protocol": "grpc", "retry": None, "max_response_size": LIMIT}
    options["transport"] = transport
    with Client(rpcs, grpc_target, **options) as client:
        assert client.call("Good") == Item(id=7, name="x")
        errors = {}
        for name in ("Garbage", "Big", "Details", "BadDetails"):
            with pytest.raises(Error) as info:
                client.call(name)
            errors[name] = info.value
        stream = client.call("StreamGarbage")
        assert next(stream) == Item(id=7, name="x")
        with pytest.raises(Error) as info:
            next(stream)
    assert errors["Garbage"].code is Code.INTERNAL and "malformed" in errors["Garbage"].message
    assert errors["Big"].code is Code.RESOURCE_EXHAUSTED
    assert (errors["Details"].code, errors["Details"].message) == (Code.NOT_FOUND, "café gone")
    assert [v.field for v in errors["Details"].violations] == ["id"]
    assert errors["BadDetails"].code is Code.NOT_FOUND and not errors["BadDetails"].details
    assert info.value.code is Code.INTERNAL
