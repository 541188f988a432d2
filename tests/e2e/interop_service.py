"""gRPC's interop TestService (grpc/grpc doc/interop-test-descriptions.md) as a Twofold service.

The messages are grpc.testing's (src/proto/grpc/testing/messages.proto and
empty.proto), pinned by name, package and field number, so that clients
generated from the real ``.proto`` (tests/e2e/proto/grpc/testing/) call it:
tests/e2e/test_interop.py checks the derived descriptors against protoc's
field by field. What Twofold cannot pin: an enum value's name is prefixed
with its enum's (``PayloadType.COMPRESSABLE`` is ``PAYLOAD_TYPE_COMPRESSABLE``
in the derived schema), which changes nothing on the binary wire, where
enums are numbers.

The server features, as the descriptions name them: EmptyCall, UnaryCall,
StreamingInputCall, StreamingOutputCall, FullDuplexCall, HalfDuplexCall,
Echo Status, Echo Metadata and ``interval_us``. UnimplementedCall is in the
``.proto`` and deliberately not here. Not implemented: CompressedRequest and
CompressedResponse (a handler cannot see or choose a message's compression
flag), CacheableUnaryCall and the auth echoes.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec

from twofold import App, Code, Context, Error, Service
from twofold.protobuf import FieldNumber

service = Service("grpc.testing", "TestService")

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


class Empty(msgspec.Struct):
    """grpc.testing.Empty."""


class BoolValue(msgspec.Struct):
    value: Annotated[bool, FieldNumber(1)] = False


class PayloadType(enum.IntEnum):
    COMPRESSABLE = 0


class GrpclbRouteType(enum.IntEnum):
    UNKNOWN = 0
    FALLBACK = 1
    BACKEND = 2


class Payload(msgspec.Struct):
    type: Annotated[PayloadType, FieldNumber(1)] = PayloadType.COMPRESSABLE
    body: Annotated[bytes, FieldNumber(2)] = b""


class EchoStatus(msgspec.Struct):
    code: Annotated[Int32, FieldNumber(1)] = 0
    message: Annotated[str, FieldNumber(2)] = ""


class TestOrcaReport(msgspec.Struct):
    cpu_utilization: Annotated[float, FieldNumber(1)] = 0.0
    memory_utilization: Annotated[float, FieldNumber(2)] = 0.0
    request_cost: Annotated[dict[str, float], FieldNumber(3)] = {}
    utilization: Annotated[dict[str, float], FieldNumber(4)] = {}


class SimpleRequest(msgspec.Struct, kw_only=True):
    response_type: Annotated[PayloadType, FieldNumber(1)] = PayloadType.COMPRESSABLE
    response_size: Annotated[Int32, FieldNumber(2)] = 0
    payload: Annotated[Payload | None, FieldNumber(3)] = None
    fill_username: Annotated[bool, FieldNumber(4)] = False
    fill_oauth_scope: Annotated[bool, FieldNumber(5)] = False
    response_compressed: Annotated[BoolValue | None, FieldNumber(6)] = None
    response_status: Annotated[EchoStatus | None, FieldNumber(7)] = None
    expect_compressed: Annotated[BoolValue | None, FieldNumber(8)] = None
    fill_server_id: Annotated[bool, FieldNumber(9)] = False
    fill_grpclb_route_type: Annotated[bool, FieldNumber(10)] = False
    orca_per_query_report: Annotated[TestOrcaReport | None, FieldNumber(11)] = None


class SimpleResponse(msgspec.Struct, kw_only=True):
    payload: Annotated[Payload | None, FieldNumber(1)] = None
    username: Annotated[str, FieldNumber(2)] = ""
    oauth_scope: Annotated[str, FieldNumber(3)] = ""
    server_id: Annotated[str, FieldNumber(4)] = ""
    grpclb_route_type: Annotated[GrpclbRouteType, FieldNumber(5)] = GrpclbRouteType.UNKNOWN
    hostname: Annotated[str, FieldNumber(6)] = ""


class StreamingInputCallRequest(msgspec.Struct, kw_only=True):
    payload: Annotated[Payload | None, FieldNumber(1)] = None
    expect_compressed: Annotated[BoolValue | None, FieldNumber(2)] = None


class StreamingInputCallResponse(msgspec.Struct):
    aggregated_payload_size: Annotated[Int32, FieldNumber(1)] = 0


class ResponseParameters(msgspec.Struct, kw_only=True):
    size: Annotated[Int32, FieldNumber(1)] = 0
    interval_us: Annotated[Int32, FieldNumber(2)] = 0
    compressed: Annotated[BoolValue | None, FieldNumber(3)] = None


class StreamingOutputCallRequest(msgspec.Struct, kw_only=True):
    response_type: Annotated[PayloadType, FieldNumber(1)] = PayloadType.COMPRESSABLE
    response_parameters: Annotated[list[ResponseParameters], FieldNumber(2)] = []
    payload: Annotated[Payload | None, FieldNumber(3)] = None
    response_status: Annotated[EchoStatus | None, FieldNumber(7)] = None
    orca_oob_report: Annotated[TestOrcaReport | None, FieldNumber(8)] = None


class StreamingOutputCallResponse(msgspec.Struct):
    payload: Annotated[Payload | None, FieldNumber(1)] = None


def zeros(size: int) -> Payload:
    """A payload body of ``size`` zero bytes, as every answer of the descriptions has."""
    if size < 0:
        raise Error.invalid("response_size", "must not be negative")
    return Payload(PayloadType.COMPRESSABLE, bytes(size))


def echo_metadata(ctx: Context) -> None:
    """Echo Metadata: the initial value back as initial metadata, the binary one as trailing."""
    if ECHO_INITIAL in ctx.headers:
        ctx.response_headers[ECHO_INITIAL] = ctx.headers[ECHO_INITIAL]
    if ECHO_TRAILING in ctx.headers:
        ctx.response_trailers[ECHO_TRAILING] = ctx.headers[ECHO_TRAILING]


def echo_status(status: EchoStatus | None) -> None:
    """Echo Status: end the call with the code and message the client asked for."""
    if status is None or status.code == 0:
        return
    try:
        code = Code(status.code)
    except ValueError:
        raise Error.invalid("response_status.code", "is not a gRPC status code") from None
    raise Error(code, status.message)


async def answers(
    request: StreamingOutputCallRequest,
) -> AsyncIterator[StreamingOutputCallResponse]:
    """One answer per ResponseParameters, each ``interval_us`` after the one before."""
    for parameters in request.response_parameters:
        if parameters.interval_us > 0:
            await asyncio.sleep(parameters.interval_us / 1e6)
        yield StreamingOutputCallResponse(zeros(parameters.size))


@service.procedure
async def empty_call(request: Empty, /) -> Empty:
    return Empty()


@service.procedure
async def unary_call(request: SimpleRequest, /, ctx: Context) -> SimpleResponse:
    echo_metadata(ctx)
    echo_status(request.response_status)
    return SimpleResponse(payload=zeros(request.response_size))


@service.procedure
async def streaming_output_call(
    request: StreamingOutputCallRequest, /, ctx: Context
) -> AsyncIterator[StreamingOutputCallResponse]:
    echo_metadata(ctx)
    async for answer in answers(request):
        yield answer
    echo_status(request.response_status)


@service.procedure
async def streaming_input_call(
    requests: AsyncIterator[StreamingInputCallRequest], ctx: Context
) -> StreamingInputCallResponse:
    echo_metadata(ctx)
    total = 0
    async for request in requests:
        total += len(request.payload.body) if request.payload else 0
    return StreamingInputCallResponse(total)


@service.procedure
async def full_duplex_call(
    requests: AsyncIterator[StreamingOutputCallRequest], ctx: Context
) -> AsyncIterator[StreamingOutputCallResponse]:
    echo_metadata(ctx)
    async for request in requests:
        # "The server will not process any further messages on the stream."
        echo_status(request.response_status)
        async for answer in answers(request):
            yield answer


@service.procedure
async def half_duplex_call(
    requests: AsyncIterator[StreamingOutputCallRequest], ctx: Context
) -> AsyncIterator[StreamingOutputCallResponse]:
    echo_metadata(ctx)
    buffered = [request async for request in requests]
    for request in buffered:
        echo_status(request.response_status)
        async for answer in answers(request):
            yield answer


app = App(service)
