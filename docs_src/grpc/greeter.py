"""A service over native gRPC, beside HTTP: the examples of docs/grpc.md."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import msgspec
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from twofold import App, Context, Error, GrpcServer, Service
from twofold.protobuf import Schema

service = Service("greet.v1")


class Greeting(msgspec.Struct):
    text: str


@service.procedure
async def greet(name: str, ctx: Context) -> Greeting:
    """Greet someone; the caller's x-request-id comes back as response metadata."""
    if not name:
        raise Error.invalid("name", "must not be empty")
    ctx.response_headers["x-request-id"] = ctx.headers.get("x-request-id", "")
    return Greeting(f"Hello, {name}!")


@service.procedure
async def countdown(start: int) -> AsyncIterator[Greeting]:
    """Server streaming: one message per number, down to 1."""
    for n in range(start, 0, -1):
        yield Greeting(str(n))


app = App(service)


async def start_grpc(address: str = "127.0.0.1:50051") -> tuple[GrpcServer, int]:
    """Serve the app's gRPC side from your own event loop; ``twofold serve`` does this for you."""
    server = GrpcServer(app)
    port = server.add_port(address)  # "127.0.0.1:0": any free port
    await server.start()
    return server, port  # later: await server.stop(grace=5)


schema = Schema(app.table)


def rpc(channel: grpc.aio.Channel, name: str) -> grpc.aio.UnaryUnaryMultiCallable:
    """A typed call with no generated code: the schema's codec (de)serializes."""
    method = service.methods[name]
    return channel.unary_unary(
        method.path,
        request_serializer=schema.codec(method.input_type).encode,
        response_deserializer=schema.codec(method.output_type).decode,
    )


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    """The fields a failed call names, from its ``grpc-status-details-bin``."""
    raw = dict(error.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    fields = []
    for detail in status.details:
        if detail.type_url == "type.googleapis.com/google.rpc.BadRequest":
            bad = error_details_pb2.BadRequest.FromString(detail.value)
            fields += [v.field for v in bad.field_violations]
    return fields
