"""OpenTelemetry at the gateway: a CLIENT span per upstream call, between the caller's
trace and the upstream's (tests with the SDK's in-memory exporter)."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.gateway.conftest import gateway_for, serve
from tests.gateway.upstream import Upstream
from twofold.gateway.tracing import UpstreamTracing

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


def test_a_span_per_upstream_call_in_the_callers_trace(upstream: Upstream) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = UpstreamTracing(tracer_provider=provider)
    headers = {"traceparent": f"00-{TRACE}-{PARENT}-01"}
    with serve(gateway_for(upstream.target, tracing=tracing)) as url:
        assert httpx.get(f"{url}/v1/shelves/2", headers=headers).status_code == 200
        sent = upstream.library.metadata["GetShelf"]["traceparent"]
        assert httpx.get(f"{url}/v1/shelves/1/books/none").status_code == 404
        httpx.get(f"{url}/v1/shelves/1/books:watch?count=2")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    shelf = spans["library.v1.Library/GetShelf"]
    assert shelf.kind is SpanKind.CLIENT
    assert f"{shelf.context.trace_id:032x}" == TRACE
    assert shelf.parent is not None and f"{shelf.parent.span_id:016x}" == PARENT
    # The upstream's parent is the gateway's span, not the caller's.
    assert sent == f"00-{TRACE}-{shelf.context.span_id:016x}-01"
    assert shelf.attributes is not None
    assert shelf.attributes["rpc.grpc.status_code"] == 0
    assert shelf.attributes["twofold.gateway.protocol"] == "rest"
    missing = spans["library.v1.Library/GetBook"]
    assert missing.status.status_code is StatusCode.ERROR
    assert missing.attributes is not None and missing.attributes["error.type"] == "not_found"
    watch = spans["library.v1.Library/WatchBooks"]
    assert watch.attributes is not None and watch.attributes["twofold.gateway.protocol"] == "sse"
