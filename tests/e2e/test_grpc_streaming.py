"""Native gRPC in process: every streaming kind, metadata, cancellation, deadlines.

Calls go through grpcio's generic multicallables (``channel.unary_stream``...)
with our codec as the (de)serializer, on an ephemeral 127.0.0.1 port, to
each way Twofold serves native gRPC (the ``transport`` fixture): grpcio's
server (:class:`GrpcServer`), and the App's own gRPC wire over ASGI on an
HTTP/2 server with trailers (hypercorn, in process, so ``EVENTS`` is seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from tests.e2e import grpc_app
from tests.e2e.grpc_app import Number, Text
from twofold import App, Code, Context, Error, ErrorInfo, GrpcServer, Options
from twofold.core.details import rpc_status
from twofold.protobuf import Schema

TRANSPORTS = ("grpcio", "asgi")


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Calls:
    """One generic multicallable per method, with the schema's codec."""

    def __init__(self, channel: grpc.aio.Channel, app: App) -> None:
        self.channel = channel
        self.schema = Schema(app.table)
        self.methods = {m.name: m for m in app.table}

    def __getattr__(self, kind: str) -> Callable[[str], Any]:
        def make(name: str) -> Any:
            method = self.methods[name]
            return getattr(self.channel, kind)(
                method.path,
                request_serializer=self.schema.codec(method.input_type).encode,
                response_deserializer=self.schema.codec(method.output_type).decode,
            )

        return make

    def request(self, rpc: str, /, **fields: Any) -> Any:
        return self.methods[rpc].input_type(**fields)


@contextlib.asynccontextmanager
async def grpcio(app: App) -> AsyncIterator[int]:
    server = GrpcServer(app)
    port = server.add_port("127.0.0.1:0")
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


@contextlib.asynccontextmanager
async def asgi(app: App) -> AsyncIterator[int]:
    """The App on hypercorn (h2c), in this process, on a socket bound here."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections queue from now, before hypercorn accepts them
    config = Config()
    # hypercorn closes the descriptor it is given when it stops: give it its own.
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    config.accesslog = config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        await task
        sock.close()


def run(
    test: Callable[[Calls], Awaitable[None]], app: App = grpc_app.app, *, transport: str
) -> None:
    async def main() -> None:
        server = grpcio if transport == "grpcio" else asgi
        async with server(app) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await test(Calls(channel, app))

    grpc_app.EVENTS.clear()
    asyncio.run(main())


async def numbers(*values: int) -> AsyncIterator[Number]:
    for value in values:
        yield Number(value)


async def wait_for(event: str) -> None:
    for _ in range(500):  # 5 s
        if event in grpc_app.EVENTS:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{event!r} never happened: {grpc_app.EVENTS}")


def status_of(error: grpc.aio.AioRpcError) -> Any:
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(details)
    assert (status.code, status.message) == (error.code().value[0], error.details())
    return status


def test_unary_metadata_in_and_out(transport: str) -> None:
    async def test(c: Calls) -> None:
        call = c.unary_unary("EchoMetadata")(
            c.request("EchoMetadata", name="x-who"), metadata=(("x-who", "ada"),)
        )
        assert await call == Text("grpc ada")
        assert ("x-echo", "ada") in tuple(await call.initial_metadata())

    run(test, transport=transport)


def test_error_keeps_the_response_headers_set_before_it(transport: str) -> None:
    async def test(c: Calls) -> None:
        call = c.unary_unary("EchoMetadata")(
            c.request("EchoMetadata", name="fail"), metadata=(("fail", "x"),)
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert status_of(info.value).message == "no"
        assert ("x-echo", "x") in tuple(await call.initial_metadata())

    run(test, transport=transport)


def test_server_streaming(transport: str) -> None:
    async def test(c: Calls) -> None:
        got = [m async for m in c.unary_stream("Count")(c.request("Count", n=3))]
        assert got == [Number(0), Number(1), Number(2)]
        assert [m async for m in c.unary_stream("Count")(c.request("Count", n=0))] == []
        got = []
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for m in c.unary_stream("Count")(c.request("Count", n=-2)):
                got.append(m)
        assert got == [Number(0), Number(1)]  # the messages before the error arrive
        assert info.value.code() is grpc.StatusCode.OUT_OF_RANGE
        assert status_of(info.value).message == "negative count"

    run(test, transport=transport)


def test_client_streaming(transport: str) -> None:
    async def test(c: Calls) -> None:
        assert await c.stream_unary("Total")(numbers(1, 2, 3, 4)) == Number(10)
        assert await c.stream_unary("Total")(numbers()) == Number(0)

    run(test, transport=transport)


def test_bidi_streaming_and_its_errors(transport: str) -> None:
    async def test(c: Calls) -> None:
        got = [m async for m in c.stream_stream("Double")(numbers(1, 2, 3))]
        assert got == [Number(2), Number(4), Number(6)]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in c.stream_stream("Double")(numbers(1, -1)):
                pass
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        (detail,) = status_of(info.value).details
        bad = error_details_pb2.BadRequest.FromString(detail.value)
        assert detail.type_url == "type.googleapis.com/google.rpc.BadRequest"
        assert [v.field for v in bad.field_violations] == ["n"]

    run(test, transport=transport)


def test_malformed_message_in_a_client_stream_is_invalid_argument(transport: str) -> None:
    async def test(c: Calls) -> None:
        raw = c.channel.stream_unary(c.methods["Total"].path)

        async def frames() -> AsyncIterator[bytes]:
            yield b"\x08\x01"
            yield b"\xff\xff\xff"

        with pytest.raises(grpc.aio.AioRpcError) as info:
            await raw(frames())
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        try:
            total = await c.stream_unary("Total")(numbers(5))
        except grpc.aio.AioRpcError as exc:
            # hypercorn (the asgi transport) may drop the whole connection when
            # the refused stream's last frames come after it has removed that
            # stream (a KeyError in its HTTP/2 protocol), and this call with
            # it. The App still serves: the channel reconnects for the next.
            if transport != "asgi" or exc.code() is not grpc.StatusCode.UNAVAILABLE:
                raise
            total = await c.stream_unary("Total")(numbers(5))
        assert total == Number(5)  # still serving

    run(test, transport=transport)


def test_client_cancel_cancels_the_handler(transport: str) -> None:
    async def test(c: Calls) -> None:
        call = c.unary_unary("Sleep")(c.request("Sleep", seconds=30.0))
        await asyncio.sleep(0.2)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await wait_for("sleep cancelled")
        assert "sleep finally" in grpc_app.EVENTS

    run(test, transport=transport)


def test_deadline_cancels_the_handler(transport: str) -> None:
    async def test(c: Calls) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await c.unary_unary("Sleep")(c.request("Sleep", seconds=30.0), timeout=0.3)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        await wait_for("sleep cancelled")

    run(test, transport=transport)


def test_cancelling_a_server_stream_closes_the_generator(transport: str) -> None:
    async def test(c: Calls) -> None:
        call = c.unary_stream("Ticks")(c.request("Ticks", interval=0.01))
        got = [await call.read() for _ in range(3)]
        assert got == [Number(0), Number(1), Number(2)]
        call.cancel()
        await wait_for("ticks finally")

    run(test, transport=transport)


def test_deadline_ends_a_server_stream(transport: str) -> None:
    async def test(c: Calls) -> None:
        got = []
        with pytest.raises(grpc.aio.AioRpcError) as info:
            call = c.unary_stream("Ticks")(c.request("Ticks", interval=0.05), timeout=0.3)
            async for m in call:
                got.append(m)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert len(got) >= 2
        await wait_for("ticks finally")

    run(test, transport=transport)


def test_interceptors_see_grpc_calls(transport: str) -> None:
    seen: list[tuple[str, str, float | None]] = []

    async def record(ctx: Context, request: Any, call_next: Any) -> Any:
        seen.append((ctx.protocol, ctx.method.name, ctx.time_remaining()))
        return await call_next(request, ctx)

    app = App(grpc_app.service, interceptors=[record])

    async def test(c: Calls) -> None:
        whoami = c.unary_unary("Whoami")
        assert await whoami(c.request("Whoami"), timeout=5) == Number(os.getpid())
        assert await c.stream_unary("Total")(numbers(1)) == Number(1)

    run(test, app, transport=transport)
    (protocol, name, remaining), second = seen
    assert (protocol, name) == ("grpc", "Whoami")
    # The deadline arrived; grpc-timeout's units may round it up a little.
    assert remaining is not None and 0 < remaining < 6
    assert second == ("grpc", "Total", None)


def test_a_message_over_max_body_size_is_resource_exhausted(transport: str) -> None:
    app = App(grpc_app.service, options=Options(max_body_size=100))

    async def test(c: Calls) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await c.unary_unary("EchoMetadata")(c.request("EchoMetadata", name="x" * 200))
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await c.unary_unary("EchoMetadata")(c.request("EchoMetadata", name="y")) == Text(
            "grpc "
        )

    run(test, app, transport=transport)


def test_status_details_are_a_google_rpc_status() -> None:
    error = Error(Code.ABORTED, "stale", [ErrorInfo("STALE", "example.com", {"v": "3"})])
    status = status_pb2.Status.FromString(
        rpc_status(error.code.value, error.message, error.details)
    )
    assert (status.code, status.message) == (10, "stale")
    (detail,) = status.details
    assert detail.type_url == "type.googleapis.com/google.rpc.ErrorInfo"
    info = error_details_pb2.ErrorInfo.FromString(detail.value)
    assert (info.reason, info.domain, dict(info.metadata)) == ("STALE", "example.com", {"v": "3"})
