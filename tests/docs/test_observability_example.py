"""docs/observability.md: its example module does what the page says."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

from docs_src.observability.service import app

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_observability_example_serves_what_the_page_says(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as c:
            r = await c.get("/quotes/ACME", headers={"traceparent": TRACEPARENT})
            assert r.json()["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
            assert len(r.headers["x-request-id"]) == 32
            r = await c.get("/quotes/ACME", headers={"x-request-id": "abc-1"})
            assert r.headers["x-request-id"] == "abc-1"
            r = await c.get("/quotes/ACME", headers={"request-timeout": "0.05"})
            assert r.status_code == 200
            r = await c.get("/quotes/SLOW", headers={"request-timeout": "0.05"})
            assert r.status_code == 504 and r.json()["code"] == "deadline_exceeded"
            r = await c.get("/quotes/ACME", headers={"request-timeout": "-1"})
            assert r.status_code == 400
            metrics = (await c.get("/metrics")).text
            assert 'code="deadline_exceeded"' in metrics
            assert 'twofold_calls_total{code="ok",method="quotes.v1.QuotesService/GetQuote"' in (
                metrics
            )

    with caplog.at_level(logging.INFO, logger="twofold.access"):
        asyncio.run(main())
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "twofold.access"]
    codes = [line["code"] for line in lines]
    assert codes == ["ok", "ok", "ok", "deadline_exceeded", "invalid_argument"]
    assert lines[1]["request_id"] == "abc-1"


def test_the_tracing_example_makes_a_span_per_call_under_the_callers_trace() -> None:
    from docs_src.observability.traced import app, exporter

    async def main() -> None:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as c:
            r = await c.get("/quotes/ACME", headers={"traceparent": TRACEPARENT})
            assert r.status_code == 200
            r = await c.post("/quotes.v1.QuotesService/GetQuote", json={"symbol": "ACME"})
            assert r.status_code == 200

    exporter.clear()
    asyncio.run(main())
    rest, connect = exporter.get_finished_spans()
    assert rest.name == "GET /quotes/{symbol}"
    assert rest.parent is not None and format(rest.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert (rest.attributes or {})["http.response.status_code"] == 200
    assert connect.name == "quotes.v1.QuotesService/GetQuote" and connect.parent is None
    assert (connect.attributes or {})["rpc.system"] == "connect_rpc"
