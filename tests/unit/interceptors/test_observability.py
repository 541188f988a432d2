"""Access log, metrics, request ids and trace context, the same over every protocol."""

from __future__ import annotations

import json
import logging

import msgspec
import pytest

from tests.conftest import PROTOCOLS, run
from twofold import (
    AccessLog,
    App,
    Authentication,
    Code,
    Context,
    Error,
    JwtBearer,
    Metrics,
    RequestIds,
    Service,
    public,
    requires,
)
from twofold.interceptors.bearer import issue
from twofold.interceptors.tracing import TRACE, TraceParent, parse_traceparent
from twofold.testing.parity import AsyncWires

SECRET = "a test secret that is long enough for HS256"
SEEN: list[object] = []
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Echo(msgspec.Struct):
    text: str


service = Service("obs.v1")


@service.procedure(http=("POST", "/echo"))
@public
async def echo(text: str, ctx: Context) -> Echo:
    SEEN.append(ctx.state.get(TRACE))
    if text == "fail":
        raise Error(Code.NOT_FOUND, "no such text")
    return Echo(text)


@service.procedure(http=("POST", "/secret"))
@requires("admin")
async def secret(text: str) -> Echo:
    return Echo(text)


def make_app() -> tuple[App, Metrics]:
    metrics = Metrics()
    interceptors = [
        RequestIds(),
        metrics,
        AccessLog(),
        Authentication(JwtBearer(secret=SECRET)),
    ]
    return App(service, interceptors=interceptors), metrics


def test_metrics_count_every_protocol(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app()
    token = issue(SECRET, "alice", ["user"])

    async def scenario(w: AsyncWires) -> None:
        for protocol in PROTOCOLS:
            assert (await w.call(protocol, "Echo", {"text": "hi"}, {})).code is None
            assert (await w.call(protocol, "Echo", {"text": "fail"}, {})).code == "not_found"
            denied = await w.call(
                protocol, "Secret", {"text": "x"}, {"authorization": f"Bearer {token}"}
            )
            assert denied.code == "permission_denied"
        r = await w.http.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
        for protocol in ("rest", "jsonrpc", "xmlrpc", "connect", "grpc-web", "grpc"):
            for code in ("ok", "not_found"):
                labels = f'code="{code}",method="obs.v1.ObsService/Echo",protocol="{protocol}"'
                assert f"twofold_calls_total{{{labels}}}" in text, (protocol, code)
        assert 'twofold_calls_total{code="permission_denied",method="obs.v1.ObsService/Secret"' in (
            text
        )
        assert "twofold_call_duration_seconds_bucket" in text
        assert "twofold_calls_in_flight" in text
        assert token not in text
        assert (await w.http.post("/metrics")).status_code == 405

    with caplog.at_level(logging.INFO, logger="twofold.access"):
        run(app, scenario)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "twofold.access"]
    assert len(lines) == 3 * len(PROTOCOLS)
    assert {line["protocol"] for line in lines} == set(
        ["rest", "jsonrpc", "xmlrpc", "connect", "grpc-web", "grpc"]
    )
    first = lines[0]
    assert set(first) == {"protocol", "method", "code", "duration_ms", "peer", "request_id"}
    assert {line["code"] for line in lines} == {"ok", "not_found", "permission_denied"}
    assert all(line["request_id"] for line in lines)
    assert (
        token not in caplog.text
        and SECRET not in caplog.text
        and "no such text" not in (caplog.text)
    )


def test_request_id_is_echoed_and_traceparent_reaches_the_handler(protocol: str) -> None:
    app, _ = make_app()

    async def scenario(w: AsyncWires) -> None:
        SEEN.clear()
        headers = {"x-request-id": "req-123", "traceparent": TRACEPARENT}
        ok = await w.call(protocol, "Echo", {"text": "hi"}, headers)
        failed = await w.call(protocol, "Echo", {"text": "fail"}, {"x-request-id": "req-456"})
        made = await w.call(protocol, "Echo", {"text": "hi"}, {"x-request-id": "bad\u00ffid"})
        if protocol != "grpc":  # grpcio's response headers are initial metadata (not read here)
            assert ok.headers["x-request-id"] == "req-123"
            assert len(made.headers["x-request-id"]) == 32
        assert failed.headers["x-request-id"] == "req-456"
        assert SEEN[0] == TraceParent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1)

    run(app, scenario)


def test_parse_traceparent() -> None:
    assert parse_traceparent(TRACEPARENT) is not None
    assert parse_traceparent(TRACEPARENT).sampled  # type: ignore[union-attr]
    for bad in [None, "", "00-xyz", TRACEPARENT.upper(), "ff" + TRACEPARENT[2:]]:
        assert parse_traceparent(bad) is None
    assert parse_traceparent(f"00-{'0' * 32}-00f067aa0ba902b7-01") is None
