"""The gRPC transport: a ``grpc.aio`` server built from an App's method table.

No protoc step: every method becomes a grpcio method handler that takes and
returns raw bytes, and the protobuf codec derived from the types
(:class:`twofold.protobuf.Schema`) does the rest. Decoding happens inside the
handler, not in grpcio's ``request_deserializer`` hook: grpcio turns an
exception in that hook into a bare INTERNAL, whereas a decode failure is the
caller's fault and must be INVALID_ARGUMENT with its field violations.

Per call (docs/architecture.md): the metadata becomes the Context's headers,
``grpc-timeout`` its deadline, the call runs through the same
:func:`~twofold.core.invoke.invoke` as every wire, and an Error goes out as
status, message and ``grpc-status-details-bin``. A client that cancels, or
a deadline that passes, cancels the handler's task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from twofold.core.chain import Admit, Refused, nobody
from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.details import rpc_status
from twofold.core.errors import Error, as_error
from twofold.core.headers import Headers
from twofold.core.invoke import deadline, invoke, stream
from twofold.core.method import UNKNOWN, Method, StreamKind
from twofold.protobuf import Schema, descriptors
from twofold.server.limits import ServerLimits

if TYPE_CHECKING:
    # Only its table and options are used: a gRPC-only server loads no HTTP wire.
    from twofold.server.app import App

PROTOCOL = "grpc"
DETAILS_KEY = "grpc-status-details-bin"
# Our codes are gRPC's numbers; grpcio wants its own enum members.
STATUS: dict[Code, grpc.StatusCode] = {
    code: next(s for s in grpc.StatusCode if s.value[0] == code.value) for code in Code
}
_ServicerContext = Any  # grpc.aio.ServicerContext: grpcio ships no type hints


class GrpcServer:
    """A ``grpc.aio`` server for one App: its services, health and reflection.

    Beside the app's services the server carries the standard health service
    (SERVING for each service and for ``""``, NOT_SERVING once shutdown starts)
    and server reflection, which serves the descriptors of our schema.
    ``grpc.max_receive_message_length`` is the app's ``max_body_size``, so a
    larger message is refused with RESOURCE_EXHAUSTED before it is read (by
    grpcio: no interceptor hears of it). A message that does not decode, and a
    method no service has (answered UNIMPLEMENTED by a last, catch-all handler),
    are told to the App's observers (:class:`~twofold.core.chain.Observer`) as
    refusals, so that metrics, logs and traces count them. The server's
    :class:`~twofold.server.limits.ServerLimits` become grpcio's options
    (``_limit_options``): those grpcio has a counterpart for.

    ``reuse_port`` lets several worker processes listen on one port (Linux's
    SO_REUSEPORT); off by default, so that a port already taken is an error
    instead of a silent share with some other process.
    """

    def __init__(
        self,
        app: App,
        *,
        schema: Schema | None = None,
        reuse_port: bool = False,
        limits: ServerLimits | None = None,
    ) -> None:
        self.app = app
        self.schema = schema or Schema(app.table)
        self.server: Any = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", app.options.max_body_size),
                ("grpc.so_reuseport", int(reuse_port)),
                *_limit_options(limits or ServerLimits()),
            ]
        )
        # One generic handler, one dict lookup by path, for every method of
        # every service; nothing is a grpcio "registered method" (see _Unregistered).
        handlers = {
            method.path: handler(method, self.schema, app.table.refused, app.table.admit)
            for method in app.table
        }
        self.server.add_generic_rpc_handlers((_Dispatch(handlers),))
        self.services = list(dict.fromkeys(method.service for method in app.table))
        self.health = health.aio.HealthServicer()
        unregistered = _Unregistered(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, unregistered)
        names = [*self.services, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(names, pool=self._reflection_pool()), unregistered
        )
        # Last, after every real service: a method nobody serves is refused
        # here (UNIMPLEMENTED, as grpcio would) so that observers count it.
        self.server.add_generic_rpc_handlers((_Unknown(app.table.refused),))

    def _reflection_pool(self) -> Any:
        # Our files, plus health's and reflection's own, so that a client can
        # describe every service the server lists.
        extra = []
        for module in (health_pb2, reflection_pb2):
            proto = descriptor_pb2.FileDescriptorProto()
            module.DESCRIPTOR.CopyToProto(proto)
            extra.append(proto)
        return descriptors.pool([*self.schema.descriptors, *extra])

    def add_port(self, address: str) -> int:
        """Listen on ``host:port`` (port 0: any free one); the port bound.

        Raises OSError when the address cannot be bound, as a socket would.
        """
        try:
            port = int(self.server.add_insecure_port(address))
        except RuntimeError as exc:  # grpcio >= 1.5x raises; older ones return 0
            raise OSError(f"cannot listen on {address}: {exc}") from None
        if port == 0:
            raise OSError(f"cannot listen on {address}")
        return port

    async def start(self) -> None:
        await self.server.start()
        for name in ("", *self.services):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def drain(self) -> None:
        """Report NOT_SERVING (so health checkers move away) while still serving calls."""
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float | None) -> None:
        """Refuse new calls, let calls in flight finish for ``grace`` seconds, then cancel them."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def _limit_options(limits: ServerLimits) -> list[tuple[str, int]]:
    """``limits`` as grpcio channel arguments. Header count, target length and
    body timeout have none: gRPC's metadata size covers the first two, and a
    stalled message is the call's deadline's business."""
    return [
        ("grpc.max_allowed_incoming_connections", limits.max_connections),
        # Soft and hard limit alike: between the two grpcio refuses at random.
        ("grpc.max_metadata_size", limits.max_header_bytes),
        ("grpc.absolute_max_metadata_size", limits.max_header_bytes),
        ("grpc.max_concurrent_streams", limits.max_concurrent_streams),
        # From accept until the HTTP/2 preface and SETTINGS have arrived.
        ("grpc.server_handshake_timeout_ms", round(limits.header_timeout * 1000)),
        # A connection with no call for this long gets a GOAWAY; the channel
        # reconnects on its next call.
        ("grpc.max_connection_idle_ms", round(limits.grpc_idle_timeout * 1000)),
    ]


class _Dispatch(grpc.GenericRpcHandler):  # type: ignore[misc]
    """The app's methods by gRPC path (``/package.Service/Method``)."""

    def __init__(self, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.handlers = handlers

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self.handlers.get(details.method)


class _Unregistered:
    """The server as generated ``add_*Servicer_to_server`` functions see it, minus
    grpcio's "registered methods".

    grpc.aio's serving loop keeps one pending request per registered method
    and ``asyncio.wait``s on all of them for every call it accepts, so each
    registered method costs every call, whoever it is for: with health's
    three and reflection's one beside the app's, that was 7 futures armed
    and disarmed per call, and more with every method the app adds.
    Unregistered, a call is matched in Python by one dict lookup
    (:class:`_Dispatch` first: the app's calls are the hot ones); the cost
    is in docs/benchmarks.md.
    """

    def __init__(self, server: Any) -> None:
        self.server = server

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self.server.add_generic_rpc_handlers(tuple(handlers))

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        pass  # served by the generic handler added beside


def handler(
    method: Method, schema: Schema, refused: Refused = nobody, admit: Admit | None = None
) -> grpc.RpcMethodHandler:
    """The grpcio handler of one method: bytes in, bytes out, the codec inside.

    ``refused`` hears of a call refused before the interceptor chain (a
    message that does not decode). ``admit`` runs the interceptors'
    header-only steps (credentials) on the metadata before any message is
    decoded, or, for a client stream, read.
    """
    decode = schema.codec(method.input_type).decode
    encode = schema.codec(method.output_type).encode

    async def decoded(requests: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        # A malformed message in a client stream fails the call (INVALID_ARGUMENT)
        # where the handler reads it.
        async for raw in requests:
            yield decode(raw)

    async def decode_or_refuse(request: bytes, context: _ServicerContext, ctx: Context) -> Any:
        # A message that does not decode never reaches the chain: a refusal.
        try:
            return decode(request)
        except Exception as exc:
            await _refuse(context, ctx, as_error(exc), refused)

    async def unary_unary(request: bytes, context: _ServicerContext) -> bytes:
        ctx = _context(method, context)
        if admit is not None:
            await _admit(context, ctx, admit)
        message = await decode_or_refuse(request, context, ctx)
        try:
            output = await invoke(method, ctx, message)
            body = encode(output)
            if ctx.has_response_headers():  # most calls set none: no coroutine for them
                await _send_headers(context, ctx)
            _set_trailers(context, ctx)
        except Exception as exc:
            await _abort(context, ctx, as_error(exc))
        return body

    async def stream_unary(requests: AsyncIterator[bytes], context: _ServicerContext) -> bytes:
        ctx = _context(method, context)
        if admit is not None:
            await _admit(context, ctx, admit)
        try:
            output = await invoke(method, ctx, decoded(requests))
            body = encode(output)
            await _send_headers(context, ctx)
            _set_trailers(context, ctx)
        except Exception as exc:
            await _abort(context, ctx, as_error(exc))
        return body

    async def send_stream(request: Any, context: _ServicerContext, ctx: Context) -> None:
        # Messages are written with context.write() from this coroutine rather
        # than yielded from a generator, so the deadline's timeout covers the
        # writes between the handler's yields and cancels one task: this one.
        try:
            async with deadline(ctx):
                started = False
                async with contextlib.aclosing(stream(method, ctx, request)) as outputs:
                    async for output in outputs:
                        if not started:
                            await _send_headers(context, ctx)
                            started = True
                        await context.write(encode(output))
                if not started:
                    await _send_headers(context, ctx)
            _set_trailers(context, ctx)
        except Exception as exc:
            await _abort(context, ctx, as_error(exc))

    async def unary_stream(request: bytes, context: _ServicerContext) -> None:
        ctx = _context(method, context)
        if admit is not None:
            await _admit(context, ctx, admit)
        await send_stream(await decode_or_refuse(request, context, ctx), context, ctx)

    async def stream_stream(requests: AsyncIterator[bytes], context: _ServicerContext) -> None:
        ctx = _context(method, context)
        if admit is not None:
            await _admit(context, ctx, admit)
        await send_stream(decoded(requests), context, ctx)

    make: dict[StreamKind, tuple[Callable[..., grpc.RpcMethodHandler], Any]] = {
        StreamKind.UNARY: (grpc.unary_unary_rpc_method_handler, unary_unary),
        StreamKind.SERVER: (grpc.unary_stream_rpc_method_handler, unary_stream),
        StreamKind.CLIENT: (grpc.stream_unary_rpc_method_handler, stream_unary),
        StreamKind.BIDI: (grpc.stream_stream_rpc_method_handler, stream_stream),
    }
    factory, behaviour = make[method.kind]
    # No (de)serializers: the handler sees bytes and owns the errors of decoding.
    return factory(behaviour)


def _context(method: Method, context: _ServicerContext) -> Context:
    remaining = context.time_remaining()
    when = None if remaining is None else asyncio.get_running_loop().time() + remaining
    return Context(
        PROTOCOL, method, _headers(context.invocation_metadata() or ()), context.peer(), when
    )


def _headers(metadata: Iterable[tuple[str, str | bytes]]) -> Headers:
    # Binary (-bin) values arrive as bytes, the others as str.
    return Headers(
        [
            (key.encode("latin-1"), value if isinstance(value, bytes) else value.encode("latin-1"))
            for key, value in metadata
        ]
    )


async def _send_headers(context: _ServicerContext, ctx: Context) -> None:
    if ctx.has_response_headers():
        pairs = _metadata(ctx.response_headers)
        ctx.response_headers.clear()  # sent once, even if an error follows
        await context.send_initial_metadata(pairs)


def _set_trailers(context: _ServicerContext, ctx: Context) -> None:
    """The trailing metadata the handler set, for grpcio to send with the status."""
    if ctx.has_response_trailers():
        context.set_trailing_metadata(_metadata(ctx.response_trailers))


async def _refuse(
    context: _ServicerContext, ctx: Context, error: Error, refused: Refused
) -> NoReturn:
    """End a call refused before the chain, once the observers have heard of it."""
    await refused(ctx, error)
    await _abort(context, ctx, error)
    raise AssertionError("unreachable: grpcio's abort raises")


async def _admit(context: _ServicerContext, ctx: Context, admit: Admit) -> None:
    """Run the header-only steps; a refusal (told to its observers already) ends the call."""
    refusal = await admit(ctx)
    if refusal is not None:
        await _abort(context, ctx, refusal)


class _Unknown(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Every method no service serves: UNIMPLEMENTED, told to the observers first."""

    def __init__(self, refused: Refused) -> None:
        self.refused = refused

    def service(self, details: Any) -> grpc.RpcMethodHandler:
        name = details.method
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        refused = self.refused

        async def refuse(requests: AsyncIterator[bytes], context: _ServicerContext) -> None:
            metadata = _headers(context.invocation_metadata() or ())
            ctx = Context(PROTOCOL, UNKNOWN, metadata, context.peer())
            error = Error(Code.UNIMPLEMENTED, f"unknown method {name}")
            await _refuse(context, ctx, error, refused)

        # Whatever the caller's streaming kind: nothing is read before the refusal.
        return grpc.stream_stream_rpc_method_handler(refuse)


async def _abort(context: _ServicerContext, ctx: Context, error: Error) -> None:
    """End the call with ``error``; raises grpcio's AbortError, never returns."""
    try:
        # Headers the handler set before failing are still its leading metadata.
        await _send_headers(context, ctx)
    except Exception:
        error = Error(Code.INTERNAL, "internal error")
    details = rpc_status(error.code.value, error.message, error.details)
    trailers = ((DETAILS_KEY, details), *_metadata(error.headers))
    if ctx.has_response_trailers():
        try:
            trailers += _metadata(ctx.response_trailers)
        except ValueError:
            error = Error(Code.INTERNAL, "internal error")
            details = rpc_status(error.code.value, error.message, error.details)
            trailers = ((DETAILS_KEY, details),)
    await context.abort(STATUS[error.code], error.message, trailing_metadata=trailers)


def _metadata(headers: dict[str, str]) -> tuple[tuple[str, str | bytes], ...]:
    """Headers as gRPC metadata: lower-case keys, as HTTP/2 requires, and a
    ``-bin`` value as the bytes of its latin-1 text (grpcio base64s them);
    a line break is refused (ValueError), as the HTTP wires refuse it."""
    out: list[tuple[str, str | bytes]] = []
    for k, v in headers.items():
        key = k.lower()
        if "\r" in v or "\n" in v:
            raise ValueError(f"metadata {k!r} contains a line break")
        out.append((key, v.encode("latin-1")) if key.endswith("-bin") else (key, v))
    return tuple(out)
