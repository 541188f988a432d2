"""Calls refused before their handler are counted in /metrics and logged once, with their code.

Some refusals come from interceptors (credentials, rate and concurrency
limits), others from the protocol before any interceptor could run (a body
too large, an unsupported media type, a malformed message, an unknown
method). Every one of them must show up exactly once: one access-log line,
one count in ``twofold_calls_total``, and the request id on the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import msgspec
import pytest

from twofold import (
    AccessLog,
    App,
    Authentication,
    JwtBearer,
    Metrics,
    Options,
    RateLimit,
    RequestIds,
    Service,
    public,
    requires,
)
from twofold.interceptors.bearer import issue
from twofold.testing.parity import AsyncWires, serve

SECRET = "a test secret that is long enough for HS256"
REACHED: list[str] = []
ECHO = "refuse.v1.RefuseService/Echo"
OTHER = "_OTHER"


class Echo(msgspec.Struct):
    text: str


service = Service("refuse.v1")


@service.procedure(http=("POST", "/echo"))
@public
async def echo(text: str) -> Echo:
    REACHED.append(text)
    return Echo(text)


@service.procedure(http=("POST", "/guarded"))
@requires("admin")
async def guarded(text: str) -> Echo:
    REACHED.append(text)
    return Echo(text)


BIG = b'{"text": "' + b"x" * 2048 + b'"}'


def post(
    path: str, body: bytes, content_type: str, verb: str = "POST"
) -> Callable[[AsyncWires], Awaitable[int]]:
    async def send(w: AsyncWires) -> int:
        headers = {"content-type": content_type, "x-request-id": "refused-1"}
        r = await w.http.request(verb, path, content=body, headers=headers)
        if content_type.startswith("application/connect+"):
            # A stream's error headers are its end-of-stream metadata.
            end = json.loads(r.content[5:])
            assert end["metadata"]["x-request-id"] == ["refused-1"]
        else:
            assert r.headers["x-request-id"] == "refused-1"
        return r.status_code

    return send


def envelope(body: bytes) -> bytes:
    return b"\x00" + len(body).to_bytes(4, "big") + body


def grpc_call(path: str, body: bytes) -> Callable[[AsyncWires], Awaitable[int]]:
    async def send(w: AsyncWires) -> int:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await w.channel.unary_unary(path)(body, metadata=(("x-request-id", "refused-1"),))
        trailers = dict(raised.value.trailing_metadata() or ())
        assert trailers["x-request-id"] == "refused-1"
        return int(raised.value.code().value[0])

    return send


JSON = "application/json"
# (protocol, method label, code, the request, the status it must get)
CASES: list[tuple[str, str, str, Callable[[AsyncWires], Awaitable[int]], int]] = [
    ("rest", ECHO, "resource_exhausted", post("/echo", BIG, JSON), 413),
    ("rest", ECHO, "invalid_argument", post("/echo", b"text=hi", "text/plain"), 415),
    ("rest", ECHO, "invalid_argument", post("/echo", b"{", JSON), 400),
    ("rest", OTHER, "not_found", post("/nowhere", b"{}", JSON), 404),
    ("rest", OTHER, "unimplemented", post("/echo", b"", JSON, verb="DELETE"), 405),
    ("jsonrpc", OTHER, "resource_exhausted", post("/jsonrpc", BIG, JSON), 413),
    ("jsonrpc", OTHER, "invalid_argument", post("/jsonrpc", b"{}", "text/plain"), 415),
    ("jsonrpc", OTHER, "invalid_argument", post("/jsonrpc", b"{", JSON), 200),
    (
        "jsonrpc",
        OTHER,
        "unimplemented",
        post("/jsonrpc", b'{"jsonrpc": "2.0", "id": 1, "method": "Nope"}', JSON),
        200,
    ),
    (
        "jsonrpc",
        ECHO,
        "invalid_argument",
        post("/jsonrpc", b'{"jsonrpc": "2.0", "id": 1, "method": "Echo", "params": [5]}', JSON),
        200,
    ),
    ("connect", ECHO, "resource_exhausted", post(f"/{ECHO}", BIG, JSON), 429),
    ("connect", ECHO, "invalid_argument", post(f"/{ECHO}", b"{", JSON), 400),
    ("connect", ECHO, "invalid_argument", post(f"/{ECHO}", b"\xff", "application/proto"), 400),
    ("connect", ECHO, "invalid_argument", post(f"/{ECHO}", b"{}", "text/plain"), 415),
    (
        "connect",
        ECHO,
        "invalid_argument",
        post(f"/{ECHO}", envelope(b"{"), "application/connect+json"),
        200,
    ),
    (
        "grpc-web",
        ECHO,
        "resource_exhausted",
        post(f"/{ECHO}", envelope(b"\x0a" * 2048), "application/grpc-web+proto"),
        200,
    ),
    (
        "grpc-web",
        ECHO,
        "invalid_argument",
        post(f"/{ECHO}", envelope(b"\xff\xff"), "application/grpc-web+proto"),
        200,
    ),
    ("grpc", ECHO, "invalid_argument", grpc_call(f"/{ECHO}", b"\xff\xff"), 3),
    ("grpc", OTHER, "unimplemented", grpc_call("/refuse.v1.RefuseService/Nope", b""), 12),
]


def make_app(*extra: Any) -> tuple[App, Metrics]:
    metrics = Metrics()
    authentication = Authentication(JwtBearer(secret=SECRET))
    interceptors = [RequestIds(), metrics, AccessLog(), authentication, *extra]
    return App(service, interceptors=interceptors, options=Options(max_body_size=1024)), metrics


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "twofold.access"]


@pytest.mark.parametrize(
    ("protocol", "method", "code", "send", "status"),
    CASES,
    ids=[f"{c[0]}-{c[2]}-{c[4]}-{i}" for i, c in enumerate(CASES)],
)
def test_a_protocol_refusal_is_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
    protocol: str,
    method: str,
    code: str,
    send: Callable[[AsyncWires], Awaitable[int]],
    status: int,
) -> None:
    app, metrics = make_app()
    labels = {"protocol": protocol, "method": method, "code": code}

    async def main() -> None:
        async with serve(app) as w:
            REACHED.clear()
            assert await send(w) == status
            assert REACHED == []
            # Nothing else is counted: one request, one count.
            text = (await w.http.get("/metrics")).text
            counted = [
                line
                for line in text.splitlines()
                if line.startswith("twofold_calls_total{") and not line.endswith(" 0.0")
            ]
            assert len(counted) == 1, counted
            assert metrics.registry.get_sample_value("twofold_calls_total", labels) == 1.0

    with caplog.at_level(logging.INFO, logger="twofold.access"):
        asyncio.run(main())
    [line] = access_lines(caplog)
    assert {k: line[k] for k in ("protocol", "method", "code")} == labels
    assert line["request_id"] == "refused-1"


@pytest.mark.parametrize("protocol", ["rest", "jsonrpc", "connect", "grpc-web", "grpc"])
def test_interceptor_refusals_are_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    app, metrics = make_app(RateLimit(rate=0.001, burst=1))
    token = {"authorization": f"Bearer {issue(SECRET, 'alice', ['admin'])}"}
    weak = {"authorization": f"Bearer {issue(SECRET, 'bob')}"}

    async def main() -> None:
        async with serve(app) as w:
            REACHED.clear()
            results = [
                await w.call(protocol, "Guarded", {"text": "a"}, {}),
                await w.call(protocol, "Guarded", {"text": "b"}, {"authorization": "Bearer x"}),
                await w.call(protocol, "Guarded", {"text": "c"}, weak),
                await w.call(protocol, "Guarded", {"text": "d"}, token),
                await w.call(protocol, "Guarded", {"text": "e"}, token),  # over alice's rate
            ]
            codes = [r.code for r in results]
            assert codes == [
                "unauthenticated",
                "unauthenticated",
                "permission_denied",
                None,
                "resource_exhausted",
            ]
            assert REACHED == ["d"]
            if protocol == "rest":
                assert [r.status for r in results] == [401, 401, 403, 200, 429]
            label = "refuse.v1.RefuseService/Guarded"
            for name, count in [
                ("unauthenticated", 2.0),
                ("permission_denied", 1.0),
                ("ok", 1.0),
                ("resource_exhausted", 1.0),
            ]:
                labels = {"protocol": protocol, "method": label, "code": name}
                assert metrics.registry.get_sample_value("twofold_calls_total", labels) == count

    with caplog.at_level(logging.INFO, logger="twofold.access"):
        asyncio.run(main())
    lines = access_lines(caplog)
    assert [line["code"] for line in lines] == [
        "unauthenticated",
        "unauthenticated",
        "permission_denied",
        "ok",
        "resource_exhausted",
    ]
    assert SECRET not in caplog.text and "Bearer" not in caplog.text


# A malformed message to Guarded on each wire, which only credentials may look at.
MALFORMED: dict[str, Callable[[AsyncWires], Awaitable[int]]] = {
    "rest": post("/guarded", b"{", JSON),
    "jsonrpc": post(
        "/jsonrpc", b'{"jsonrpc": "2.0", "id": 1, "method": "Guarded", "params": [5]}', JSON
    ),
    "connect": post("/refuse.v1.RefuseService/Guarded", b"{", JSON),
    "grpc-web": post(
        "/refuse.v1.RefuseService/Guarded", envelope(b"\xff\xff"), "application/grpc-web+proto"
    ),
    "grpc": grpc_call("/refuse.v1.RefuseService/Guarded", b"\xff\xff"),
}
UNAUTHENTICATED = {"rest": 401, "jsonrpc": 200, "connect": 401, "grpc-web": 200, "grpc": 16}


@pytest.mark.parametrize("protocol", sorted(MALFORMED))
def test_credentials_refused_before_the_body_are_told_to_the_observers_before_them(
    caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    """As if the refusal had passed through the chain: the observers outside
    Authentication hear of it once, the ones inside it not at all."""
    metrics = Metrics()
    inside = AccessLog()
    authentication = Authentication(JwtBearer(secret=SECRET))
    app = App(service, interceptors=[RequestIds(), metrics, authentication, inside])
    labels = {"protocol": protocol, "method": "refuse.v1.RefuseService/Guarded"}

    async def main() -> None:
        async with serve(app) as w:
            REACHED.clear()
            assert await MALFORMED[protocol](w) == UNAUTHENTICATED[protocol]
            assert REACHED == []
            counted = metrics.registry.get_sample_value(
                "twofold_calls_total", {**labels, "code": "unauthenticated"}
            )
            assert counted == 1.0
            malformed = metrics.registry.get_sample_value(
                "twofold_calls_total", {**labels, "code": "invalid_argument"}
            )
            assert malformed is None

    with caplog.at_level(logging.INFO, logger="twofold.access"):
        asyncio.run(main())
    assert access_lines(caplog) == []
