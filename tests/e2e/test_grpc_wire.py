"""What the App's own gRPC wire adds beyond the calls both gRPC servers share
(tests/e2e/test_grpc_streaming.py): unknown methods, gzip, ``+json``, health
and reflection v1 and v1alpha over ASGI, and its answer over HTTP/1.1.

The App runs on hypercorn (h2c) in this process; the clients are grpcio's
(generic calls, health and reflection stubs), h2's and httpx's.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import httpx
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.e2e import grpc_app
from tests.e2e.grpc_app import Number
from tests.e2e.test_grpc_streaming import Calls, asgi
from twofold.http.envelope import frame


def run(test: Callable[[Calls, int], Awaitable[None]]) -> None:
    async def main() -> None:
        async with (
            asgi(grpc_app.app) as port,
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            await test(Calls(channel, grpc_app.app), port)

    asyncio.run(main())


def test_an_unknown_method_is_unimplemented_with_its_name() -> None:
    async def test(c: Calls, port: int) -> None:
        missing = c.channel.unary_unary("/streams.v1.Streams/Nope")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await missing(b"")
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
        assert info.value.details() == "unknown method /streams.v1.Streams/Nope"

    run(test)


def test_gzip_both_ways() -> None:
    async def test(c: Calls, port: int) -> None:
        double = c.stream_stream("Double")

        async def numbers() -> Any:
            for n in (1, 2, 3):
                yield Number(n)

        call = double(numbers(), compression=grpc.Compression.Gzip)
        assert [m async for m in call] == [Number(2), Number(4), Number(6)]

    run(test)


def h2_call(port: int, path: str, body: bytes, content_type: str) -> dict[str, Any]:
    """One gRPC call by h2 by hand: the response headers, data and trailers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    headers = [
        (":method", "POST"),
        (":path", path),
        (":scheme", "http"),
        (":authority", "localhost"),
        ("content-type", content_type),
        ("te", "trailers"),
    ]
    conn.send_headers(1, headers)
    conn.send_data(1, body, end_stream=True)
    sock.sendall(conn.data_to_send())
    out: dict[str, Any] = {"data": b""}
    with sock:
        while "ended" not in out:
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    out["headers"] = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    out["data"] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.TrailersReceived):
                    out["trailers"] = dict(event.headers)
                elif isinstance(event, h2.events.StreamEnded):
                    out["ended"] = True
            sock.sendall(conn.data_to_send())
    return out


def test_grpc_json_carries_proto3_json() -> None:
    async def test(c: Calls, port: int) -> None:
        path = c.methods["Count"].path
        body = frame(json.dumps({"n": 2}).encode())
        out = await asyncio.to_thread(h2_call, port, path, body, "application/grpc+json")
        assert out["headers"][b"content-type"] == b"application/grpc+json"
        assert out["trailers"][b"grpc-status"] == b"0"
        data, messages = out["data"], []
        while data:
            size = int.from_bytes(data[1:5], "big")
            messages.append(json.loads(data[5 : 5 + size]))
            data = data[5 + size :]
        assert messages == [{"n": "0"}, {"n": "1"}]  # int64 as a string, as proto3 JSON says

    run(test)


def test_a_length_prefix_over_the_limit_is_resource_exhausted() -> None:
    async def test(c: Calls, port: int) -> None:
        path = c.methods["Whoami"].path
        lying = b"\x00" + (1 << 31).to_bytes(4, "big") + b"\x08"
        out = await asyncio.to_thread(h2_call, port, path, lying, "application/grpc")
        assert out["trailers"][b"grpc-status"] == b"8"  # RESOURCE_EXHAUSTED, before reading it

    run(test)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x00\x00\x00\x00\x64\x08\x01", id="prefix-promises-more"),
        pytest.param(b"\x00\x00\x00", id="prefix-cut-short"),
    ],
)
def test_a_body_that_ends_inside_a_message_is_internal(body: bytes) -> None:
    async def test(c: Calls, port: int) -> None:
        for name in ("Whoami", "Total"):  # unary, and a client stream
            path = c.methods[name].path
            out = await asyncio.to_thread(h2_call, port, path, body, "application/grpc")
            # As grpc-go answers (an unexpected EOF inside a message is INTERNAL).
            assert out["trailers"][b"grpc-status"] == b"13"
            assert out["trailers"][b"grpc-message"].startswith(b"truncated message")

    run(test)


def test_over_http1_the_call_is_refused_with_a_status_in_the_headers() -> None:
    async def test(c: Calls, port: int) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            r = await client.post(
                c.methods["Whoami"].path,
                content=frame(b""),
                headers={"content-type": "application/grpc"},
            )
        assert (r.status_code, r.content) == (200, b"")
        assert r.headers["grpc-status"] == "12"  # UNIMPLEMENTED
        assert "HTTP/2" in r.headers["grpc-message"]

    run(test)


def test_health_check_and_watch() -> None:
    async def test(c: Calls, port: int) -> None:
        stub = health_pb2_grpc.HealthStub(c.channel)
        serving = health_pb2.HealthCheckResponse.SERVING
        for name in ("", "streams.v1.Streams"):
            answer = await stub.Check(health_pb2.HealthCheckRequest(service=name))
            assert answer.status == serving
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Check(health_pb2.HealthCheckRequest(service="nope.v1.Nope"))
        assert info.value.code() is grpc.StatusCode.NOT_FOUND
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == serving
        watch.cancel()

    run(test)


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_lists_and_describes_the_services(version: str) -> None:
    async def test(c: Calls, port: int) -> None:
        # v1's messages are v1alpha's, byte for byte: one stub, two paths.
        path = f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"
        info = c.channel.stream_stream(
            path,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="streams.v1.Streams"),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Thing"),
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol=f"grpc.reflection.{version}.ServerReflection"
            ),
        ]
        listed, described, missing, itself = [a async for a in info(iter(requests))]
        names = [s.name for s in listed.list_services_response.service]
        assert names == sorted(
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
                "streams.v1.Streams",
            ]
        )
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in described.file_descriptor_response.file_descriptor_proto
        ]
        (streams,) = [f for f in files if f.package == "streams.v1"]
        assert "Double" in [m.name for m in streams.service[0].method]
        assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
        (own,) = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in itself.file_descriptor_response.file_descriptor_proto
        ]
        assert own.package == f"grpc.reflection.{version}"

    run(test)


def test_reflection_with_grpcio_reflection_stub() -> None:
    async def test(c: Calls, port: int) -> None:
        stub = reflection_pb2_grpc.ServerReflectionStub(c.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        answers = [a async for a in stub.ServerReflectionInfo(iter([request]))]
        assert "streams.v1.Streams" in [s.name for s in answers[0].list_services_response.service]

    run(test)
