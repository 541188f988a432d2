"""Server-side deadlines (``@timeout``, ``Deadlines(default=...)``) cover streams, on every wire.

Each stream sends one message, then its handler sleeps past the deadline: the
call must end with DEADLINE_EXCEEDED in the stream's own error form (an SSE
``error`` event, Connect's end-of-stream message, gRPC-Web's trailers, a gRPC
status) after that first message, and the handler must be cancelled.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import msgspec
import pytest

from twofold import App, Deadlines, Metrics, Service, timeout
from twofold.http.envelope import frame
from twofold.testing.parity import AsyncWires, serve
from twofold.testing.parity.answers import envelopes

EVENTS: list[str] = []


class Tick(msgspec.Struct):
    n: int


class Total(msgspec.Struct):
    sum: int


service = Service("deadlines.v1")


@service.procedure(http=("GET", "/ticks"))
@timeout(0.5)
async def ticks(pause: float) -> AsyncIterator[Tick]:
    """One message, then a pause longer than the declared timeout."""
    try:
        yield Tick(0)
        await asyncio.sleep(pause)
        yield Tick(1)
    except asyncio.CancelledError:
        EVENTS.append("cancelled")
        raise


@service.procedure(http=("GET", "/drips"))
async def drips(pause: float) -> AsyncIterator[Tick]:
    """No declared timeout: only the server's default applies."""
    try:
        yield Tick(0)
        await asyncio.sleep(pause)
        yield Tick(1)
    except asyncio.CancelledError:
        EVENTS.append("cancelled")
        raise


@service.procedure
@timeout(0.5)
async def add(ticks: AsyncIterator[Tick]) -> Total:
    """A client stream whose handler is slow once it has read everything."""
    total = 0
    async for tick in ticks:
        total += tick.n
    try:
        await asyncio.sleep(total)
    except asyncio.CancelledError:
        EVENTS.append("cancelled")
        raise
    return Total(total)


def run(scenario: Callable[[AsyncWires], Awaitable[None]], default: float | None = None) -> Metrics:
    metrics = Metrics()
    app = App(service, interceptors=[metrics, Deadlines(default=default)])

    async def main() -> None:
        async with serve(app) as w:
            await scenario(w)

    asyncio.run(main())
    return metrics


async def sse(w: AsyncWires, path: str) -> tuple[list[Any], str]:
    r = await w.http.get(path, params={"pause": 5})
    assert r.status_code == 200
    data = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert "event: error" in r.text
    return data[:-1], data[-1]["code"]


async def connect(w: AsyncWires, rpc: str, body: bytes, binary: bool) -> tuple[list[Any], str]:
    kind = "proto" if binary else "json"
    headers = {"content-type": f"application/connect+{kind}"}
    r = await w.http.post(f"/deadlines.v1.DeadlinesService/{rpc}", content=body, headers=headers)
    assert r.status_code == 200
    *messages, (flags, end) = envelopes(r.content)
    assert flags == 0x02
    return [m for _, m in messages], json.loads(end)["error"]["code"]


async def grpc_web(w: AsyncWires, rpc: str, body: bytes) -> tuple[list[Any], str]:
    headers = {"content-type": "application/grpc-web+proto"}
    r = await w.http.post(f"/deadlines.v1.DeadlinesService/{rpc}", content=body, headers=headers)
    if not r.content:  # trailers-only: the status in the headers
        assert r.headers["grpc-status"] == "4"
        return [], "deadline_exceeded"
    *messages, (flags, trailers) = envelopes(r.content)
    assert flags == 0x80
    assert b"grpc-status: 4\r\n" in trailers
    return [m for _, m in messages], "deadline_exceeded"


def encode(w: AsyncWires, rpc: str, message: Any) -> bytes:
    return w.schema.codec(w.methods[rpc].input_type).encode(message)


@pytest.mark.parametrize("wire", ["rest", "connect", "connect-proto", "grpc-web", "grpc"])
@pytest.mark.parametrize("rpc", ["Ticks", "Drips"])
def test_a_server_side_deadline_ends_a_server_stream(wire: str, rpc: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        EVENTS.clear()
        request = w.methods[rpc].input_type(pause=5)
        if wire == "rest":
            messages, code = await sse(w, f"/{rpc.lower()}")
        elif wire.startswith("connect"):
            binary = wire == "connect-proto"
            body = encode(w, rpc, request) if binary else b'{"pause": 5}'
            messages, code = await connect(w, rpc, frame(body), binary)
        elif wire == "grpc-web":
            messages, code = await grpc_web(w, rpc, frame(encode(w, rpc, request)))
        else:
            method = w.methods[rpc]
            call = w.channel.unary_stream(
                method.path,
                request_serializer=w.schema.codec(method.input_type).encode,
                response_deserializer=w.schema.codec(method.output_type).decode,
            )
            messages = []
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                async for message in call(request):
                    messages.append(message)
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            code = "deadline_exceeded"
        assert code == "deadline_exceeded"
        assert len(messages) == 1  # the first message went out before the deadline
        await asyncio.sleep(0.05)
        assert EVENTS == ["cancelled"]

    # Ticks declares @timeout(0.5); Drips declares none and gets the default.
    metrics = run(scenario, default=0.5 if rpc == "Drips" else None)
    # Measured to its end: the stream's outcome is what /metrics counts.
    labels = {
        "protocol": wire.removesuffix("-proto"),
        "method": f"deadlines.v1.DeadlinesService/{rpc}",
        "code": "deadline_exceeded",
    }
    assert metrics.registry.get_sample_value("twofold_calls_total", labels) == 1.0


@pytest.mark.parametrize("wire", ["connect", "grpc-web", "grpc"])
def test_a_declared_timeout_ends_a_client_stream(wire: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        EVENTS.clear()
        ticks = [Tick(2), Tick(3)]  # the handler then sleeps 5 s
        if wire == "connect":
            body = b"".join(frame(msgspec.json.encode(t)) for t in ticks)
            messages, code = await connect(w, "Add", body, binary=False)
        elif wire == "grpc-web":
            body = b"".join(frame(encode(w, "Add", t)) for t in ticks)
            messages, code = await grpc_web(w, "Add", body)
        else:
            method = w.methods["Add"]
            call = w.channel.stream_unary(
                method.path,
                request_serializer=w.schema.codec(Tick).encode,
                response_deserializer=w.schema.codec(Total).decode,
            )

            async def feed() -> AsyncIterator[Tick]:
                for t in ticks:
                    yield t

            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call(feed())
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            messages, code = [], "deadline_exceeded"
        assert code == "deadline_exceeded" and messages == []
        await asyncio.sleep(0.05)
        assert EVENTS == ["cancelled"]

    run(scenario)


def test_a_stream_within_its_deadline_is_untouched() -> None:
    async def scenario(w: AsyncWires) -> None:
        r = await w.http.get("/ticks", params={"pause": 0})
        data = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
        assert data == [{"n": 0}, {"n": 1}] and "event: error" not in r.text

    run(scenario)
