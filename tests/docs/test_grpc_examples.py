"""docs/grpc.md's examples: docs_src/grpc/greeter.py, served and called over real gRPC."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from docs_src.grpc.greeter import Greeting, rpc, schema, service, start_grpc, violations


def test_greeter_serves_unary_streaming_metadata_and_errors() -> None:
    async def main() -> None:
        server, port = await start_grpc("127.0.0.1:0")
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                request = service.methods["Greet"].input_type
                call = rpc(channel, "Greet")(
                    request(name="Ada"), metadata=(("x-request-id", "r1"),), timeout=5
                )
                assert await call == Greeting("Hello, Ada!")
                assert ("x-request-id", "r1") in tuple(await call.initial_metadata())
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await rpc(channel, "Greet")(request(name=""))
                assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert violations(info.value) == ["name"]
                countdown = service.methods["Countdown"]
                stream = channel.unary_stream(
                    countdown.path,
                    request_serializer=schema.codec(countdown.input_type).encode,
                    response_deserializer=schema.codec(Greeting).decode,
                )
                got = [g.text async for g in stream(countdown.input_type(start=3))]
                assert got == ["3", "2", "1"]
        finally:
            await server.stop(grace=1)

    asyncio.run(main())
