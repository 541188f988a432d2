"""OpenTelemetry spans from a real server, every protocol: names, parents, attributes, status.

HTTP goes to uvicorn on an ephemeral 127.0.0.1 port, gRPC to a real grpcio
server; the SDK's in-memory exporter collects the spans the server made.
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import sys
import xmlrpc.client
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import msgspec
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import PROTOCOLS
from tests.e2e.threaded import serve
from twofold import App, Code, Error, RequestIds, Service, Tracing
from twofold.testing import parity
from twofold.testing.parity import AsyncWires

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
# The span current in the handler, as (trace id, span id), each time it looked.
CURRENT: list[tuple[int, int]] = []


class Echo(msgspec.Struct):
    text: str


class Tick(msgspec.Struct):
    n: int


service = Service("traced.v1")


def look() -> None:
    context = trace.get_current_span().get_span_context()
    CURRENT.append((context.trace_id, context.span_id))


@service.procedure(http=("POST", "/echo"))
async def echo(text: str) -> Echo:
    look()
    if text == "fail":
        raise Error(Code.NOT_FOUND, "no such text")
    return Echo(text)


@service.procedure(http=("GET", "/ticks"))
async def ticks(n: int) -> AsyncIterator[Tick]:
    for i in range(n):
        look()  # between yields too, the call's span is the current one
        yield Tick(i)
        await asyncio.sleep(0)


exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
app = App(service, interceptors=[Tracing(tracer_provider=provider), RequestIds()])

RPC = {
    "jsonrpc": "jsonrpc",
    "xmlrpc": "xmlrpc",
    "connect": "connect_rpc",
    "connect-proto": "connect_rpc",
    "grpc-web": "grpc",
    "grpc": "grpc",
}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(app) as base:
        yield base


def spans() -> list[ReadableSpan]:
    found = list(exporter.get_finished_spans())
    exporter.clear()
    return found


def run(url: str, scenario: Any) -> None:
    async def main() -> None:
        async with parity.serve(app, url=url) as w:
            await scenario(w)

    asyncio.run(main())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_one_server_span_per_call_child_of_the_callers_traceparent(url: str, protocol: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        spans()
        CURRENT.clear()
        result = await w.call(protocol, "Echo", {"text": "hi"}, {"traceparent": TRACEPARENT})
        assert result.code is None
        [span] = spans()
        assert span.kind is SpanKind.SERVER
        assert span.parent is not None and span.parent.is_remote
        assert format(span.parent.span_id, "016x") == PARENT_ID
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert [(span.context.trace_id, span.context.span_id)] == CURRENT
        attributes = dict(span.attributes or {})
        # rest-xml is REST answering XML: the same protocol.
        assert attributes["twofold.protocol"] == protocol.removesuffix("-proto").removesuffix(
            "-xml"
        )
        assert attributes["client.address"] == "127.0.0.1"
        if protocol != "grpc":
            assert attributes["network.protocol.version"] == "1.1"
        if protocol.startswith("rest"):
            assert span.name == "POST /echo"
            assert attributes["http.request.method"] == "POST"
            assert attributes["http.route"] == "/echo"
            assert attributes["url.path"] == "/echo" and attributes["url.scheme"] == "http"
            assert attributes["http.response.status_code"] == 200
        else:
            assert span.name == "traced.v1.TracedService/Echo"
            assert attributes["rpc.system"] == RPC[protocol]
            assert attributes["rpc.service"] == "traced.v1.TracedService"
            assert attributes["rpc.method"] == "Echo"
        if RPC.get(protocol) == "grpc":
            assert attributes["rpc.grpc.status_code"] == 0
        assert span.status.status_code is StatusCode.UNSET

        # Without a traceparent the span starts a trace of its own.
        assert (await w.call(protocol, "Echo", {"text": "hi"}, {})).code is None
        [root] = spans()
        assert root.parent is None and format(root.context.trace_id, "032x") != TRACE_ID

    run(url, scenario)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_failed_call_is_an_error_span_with_its_code(url: str, protocol: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        spans()
        result = await w.call(protocol, "Echo", {"text": "fail"}, {"traceparent": TRACEPARENT})
        assert result.code == "not_found"
        [span] = spans()
        attributes = dict(span.attributes or {})
        assert span.status.status_code is StatusCode.ERROR
        assert attributes["error.type"] == "not_found"
        assert "no such text" not in str(span.to_json())  # no message: it may quote input
        if protocol.startswith("rest"):
            assert attributes["http.response.status_code"] == 404
        elif RPC[protocol] == "grpc":
            assert attributes["rpc.grpc.status_code"] == 5
        elif RPC[protocol] == "connect_rpc":
            assert attributes["rpc.connect_rpc.error_code"] == "not_found"

    run(url, scenario)


def grpc_web_body(w: AsyncWires, message: Any) -> bytes:
    data = w.schema.codec(type(message)).encode(message)
    return struct.pack(">BI", 0, len(data)) + data


@pytest.mark.parametrize("protocol", ["rest", "connect", "grpc-web", "grpc"])
def test_a_stream_has_one_span_to_its_end(url: str, protocol: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        spans()
        CURRENT.clear()
        method = w.methods["Ticks"]
        headers = {"traceparent": TRACEPARENT}
        if protocol == "rest":
            r = await w.http.get("/ticks", params={"n": 3}, headers=headers)
            assert r.text.count("data: ") == 3
        elif protocol == "connect":
            body = json.dumps({"n": 3}).encode()
            r = await w.http.post(
                method.path,
                content=struct.pack(">BI", 0, len(body)) + body,
                headers={**headers, "content-type": "application/connect+json"},
            )
            assert r.content.count(b'{"n":') == 3
        elif protocol == "grpc-web":
            r = await w.http.post(
                method.path,
                content=grpc_web_body(w, method.input_type(n=3)),
                headers={**headers, "content-type": "application/grpc-web+proto"},
            )
            assert b"grpc-status: 0" in r.content
        else:
            call = w.channel.unary_stream(
                method.path,
                request_serializer=w.schema.codec(method.input_type).encode,
                response_deserializer=w.schema.codec(method.output_type).decode,
            )
            got = [m async for m in call(method.input_type(n=3), metadata=tuple(headers.items()))]
            assert len(got) == 3
        [span] = spans()
        assert format(span.parent.span_id, "016x") == PARENT_ID  # type: ignore[union-attr]
        assert [(span.context.trace_id, span.context.span_id)] * 3 == CURRENT
        assert span.status.status_code is StatusCode.UNSET

    run(url, scenario)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_call_refused_before_its_handler_has_its_span(url: str, protocol: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        spans()
        headers = {"traceparent": TRACEPARENT}
        # A message that does not decode: refused before the interceptor chain.
        if protocol == "rest":
            json_body = {**headers, "content-type": "application/json"}
            r = await w.http.post("/echo", content=b"{", headers=json_body)
            assert r.status_code == 400
        elif protocol == "rest-xml":
            xml_body = {**headers, "content-type": "application/xml"}
            r = await w.http.post("/echo", content=b"<EchoRequest>", headers=xml_body)
            assert r.status_code == 400
        elif protocol == "jsonrpc":
            call = {"jsonrpc": "2.0", "id": 1, "method": "Echo", "params": {"text": 5}}
            r = await w.http.post("/jsonrpc", json=call, headers=headers)
            assert r.json()["error"]["code"] == -32602
        elif protocol == "xmlrpc":
            body = xmlrpc.client.dumps(({"text": 5},), "Echo").encode()
            r = await w.http.post(
                "/RPC2", content=body, headers={**headers, "content-type": "text/xml"}
            )
            with pytest.raises(xmlrpc.client.Fault) as fault:
                xmlrpc.client.loads(r.content)
            assert fault.value.faultCode == 3  # INVALID_ARGUMENT
        elif protocol == "grpc":
            call = w.channel.unary_unary("/traced.v1.TracedService/Echo")
            with pytest.raises(grpc.aio.AioRpcError):
                await call(b"\xff\xff\xff", metadata=tuple(headers.items()))
        else:
            content_type = {
                "connect": "application/json",
                "connect-proto": "application/proto",
                "grpc-web": "application/grpc-web+proto",
            }[protocol]
            body = b"{" if protocol == "connect" else b"\x00\x00\x00\x00\x03\xff\xff\xff"
            if protocol == "connect-proto":
                body = b"\xff\xff\xff"
            await w.http.post(
                "/traced.v1.TracedService/Echo",
                content=body,
                headers={**headers, "content-type": content_type},
            )
        [span] = spans()
        assert span.status.status_code is StatusCode.ERROR
        assert dict(span.attributes or {})["error.type"] == "invalid_argument"
        assert format(span.parent.span_id, "016x") == PARENT_ID  # type: ignore[union-attr]

    run(url, scenario)


def test_an_unknown_method_is_traced_as_other(url: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        spans()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await w.channel.unary_unary("/traced.v1.TracedService/Nope")(b"")
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
        call = {"jsonrpc": "2.0", "id": 1, "method": "Nope"}
        assert (await w.http.post("/jsonrpc", json=call)).json()["error"]["code"] == -32601
        assert (await w.http.get("/nope")).status_code == 404
        found = {(s.name, dict(s.attributes or {})["error.type"]) for s in spans()}
        assert found == {("_OTHER", "unimplemented"), ("GET", "not_found")}

    run(url, scenario)


def test_without_the_extra_nothing_imports_opentelemetry() -> None:
    # The catalog and both servers, imported and serving a call, in a fresh process.
    code = (
        "import sys, asyncio, httpx\n"
        "import twofold, twofold.server.grpc\n"
        "import twofold.interceptors.metrics, twofold.interceptors.access\n"
        "from examples.catalog import app\n"
        "async def main():\n"
        "    t = httpx.ASGITransport(app)\n"
        "    async with httpx.AsyncClient(transport=t, base_url='http://t') as c:\n"
        "        r = await c.get('/openapi.json', headers={'traceparent': '00-' + '1' * 32"
        " + '-' + '2' * 16 + '-01'})\n"
        "        assert r.status_code == 200\n"
        "asyncio.run(main())\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
