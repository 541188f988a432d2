"""A server that answers badly: twofold.Client raises twofold.Error, never anything else.

The server is a tiny raw ASGI app (no Twofold in it) that answers each path
with one kind of bad response: HTML, truncated JSON, a body cut short on
the socket, a wrong content type, an unknown error code, a body over the
client's size limit, broken JSON-RPC envelopes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from tests.e2e.threaded import serve
from twofold import Client, Code, Error
from twofold.client import Empty, HttpBinding, Idempotency, Retry, Rpc
from twofold.core.asgi import Receive, Scope, Send

LIMIT = 1000
BIG = b'{"id": 1, "name": "' + b"x" * 5000 + b'"}'


class Item(msgspec.Struct, kw_only=True):
    id: int
    name: str = ""


def response(
    status: int, body: bytes, content_type: str | None = "application/json", **headers: str
) -> list[dict[str, Any]]:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    if content_type:
        raw.append((b"content-type", content_type.encode()))
    if "content_length" not in headers:
        raw.append((b"content-length", str(len(body)).encode()))
    return [
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": body},
    ]


ANSWERS: dict[str, list[dict[str, Any]]] = {
    "html": response(200, b"<html><body>Welcome to nginx!</body></html>", "text/html"),
    "html502": response(502, b"<html><body>Bad Gateway</body></html>", "text/html"),
    "html500": response(500, b"<html>Internal Server Error</html>", "text/html"),
    "truncated": response(200, b'{"id": 1, "na'),
    "truncated_error": response(404, b'{"code": "not_fo'),
    "wrongtype": response(200, b'{"id": 1}', "text/plain"),
    "notype": response(200, b'{"id": 1}', None),
    "wrongshape": response(200, b'{"id": "one"}'),
    "array": response(200, b"[1, 2, 3]"),
    "unknowncode": response(418, b'{"code": "teapot", "message": "short and stout"}'),
    "problem_unknown": response(
        418, b'{"code": "teapot", "detail": "short and stout"}', "application/problem+json"
    ),
    "empty204": response(204, b"", None, content_length="0"),
    "declared": response(200, BIG),
    # Chunked: no Content-Length, the size is only known by reading.
    "chunked": [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        },
        *[
            {"type": "http.response.body", "body": BIG[i : i + 500], "more_body": True}
            for i in range(0, len(BIG), 500)
        ],
        {"type": "http.response.body", "body": b""},
    ],
    # The socket closes 10 bytes into a 100-byte body.
    "cut": response(200, b'{"id": 1, ', content_length="100"),
    "jsonrpc_no_result": response(200, b'{"jsonrpc": "2.0", "id": 1}'),
    "jsonrpc_bare_error": response(
        200,
        b'{"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "Method not found"}}',
    ),
    "jsonrpc_unknown_code": response(
        200,
        b'{"jsonrpc": "2.0", "id": 1, "error": '
        b'{"code": -32000, "message": "x", "data": {"code": "teapot"}}}',
    ),
    "jsonrpc_html": response(200, b"<html></html>", "text/html"),
}


SEEN: Counter[str] = Counter()


async def bad_server(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    name = scope["path"].rsplit("/", 1)[-1]
    if name == "jsonrpc":
        name = msgspec.json.decode(body)["method"].rsplit("/", 1)[-1]
    SEEN[name] += 1
    for message in ANSWERS[name]:
        await send(message)


def rpc(name: str, output: type[Any] = Item) -> Rpc[Any, Any]:
    return Rpc(
        "bad.v1.BadService",
        name,
        Empty,
        output,
        python_name=name,
        idempotency=Idempotency.NO_SIDE_EFFECTS,
        http=HttpBinding("GET", f"/{name}"),
    )


RPCS = [rpc(name) for name in ANSWERS]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(bad_server) as base:
        yield base


def call(url: str, name: str, protocol: str = "connect", **options: Any) -> Error:
    options.setdefault("retry", None)
    client = Client(RPCS, url, protocol=protocol, max_response_size=LIMIT, **options)
    with client, pytest.raises(Error) as info:
        client.call(name)
    assert type(info.value) is Error
    return info.value


@pytest.mark.parametrize("protocol", ["rest", "connect"])
@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("html", Code.UNKNOWN, "text/html"),
        ("html502", Code.UNAVAILABLE, "HTTP 502"),
        ("html500", Code.UNKNOWN, "HTTP 500"),
        ("truncated", Code.INTERNAL, "malformed"),
        ("truncated_error", Code.UNIMPLEMENTED, "HTTP 404"),
        ("wrongtype", Code.UNKNOWN, "text/plain"),
        ("notype", Code.UNKNOWN, "no content type"),
        ("wrongshape", Code.INTERNAL, "malformed Item"),
        ("array", Code.INTERNAL, "malformed"),
        ("unknowncode", Code.UNKNOWN, ""),
        ("declared", Code.RESOURCE_EXHAUSTED, f"{LIMIT}-byte limit"),
        ("chunked", Code.RESOURCE_EXHAUSTED, f"{LIMIT}-byte limit"),
        ("cut", Code.UNAVAILABLE, "before the response was complete"),
    ],
)
def test_bad_answers_are_coded_errors(
    url: str, protocol: str, name: str, code: Code, says: str
) -> None:
    error = call(url, name, protocol)
    assert error.code is code, error
    assert says in error.message


def test_unknown_codes_keep_their_message(url: str) -> None:
    assert call(url, "unknowncode").message == "short and stout"
    problem = call(url, "problem_unknown", "rest")
    assert problem.code is Code.UNKNOWN and problem.message == "short and stout"


def test_a_204_for_a_method_with_output_is_internal(url: str) -> None:
    assert call(url, "empty204", "rest").code is Code.INTERNAL


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("jsonrpc_no_result", Code.INTERNAL),
        ("jsonrpc_bare_error", Code.UNIMPLEMENTED),
        ("jsonrpc_unknown_code", Code.UNKNOWN),
        ("jsonrpc_html", Code.UNKNOWN),
        ("truncated", Code.INTERNAL),
        ("declared", Code.RESOURCE_EXHAUSTED),
        ("html502", Code.UNAVAILABLE),
    ],
)
def test_bad_jsonrpc_answers(url: str, name: str, code: Code) -> None:
    assert call(url, name, "jsonrpc").code is code


def test_errors_the_client_diagnosed_are_not_retried(url: str) -> None:
    # An oversized or malformed answer would be the same next time.
    for name in ("declared", "truncated", "html"):
        before = SEEN[name]
        call(url, name, retry=Retry(attempts=5, backoff=5))
        assert SEEN[name] == before + 1


def test_a_proxy_502_is_retried(url: str) -> None:
    before = SEEN["html502"]
    error = call(url, "html502", retry=Retry(attempts=2, backoff=0.01))
    assert error.code is Code.UNAVAILABLE
    assert SEEN["html502"] == before + 2
