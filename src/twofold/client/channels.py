"""Native gRPC: calls over a grpcio channel, sync or ``grpc.aio``, with no generated stubs.

grpcio owns the HTTP/2 connection, the framing, the deadline (sent as
``grpc-timeout``) and the status trailers; the client gives it bytes, from
the protobuf codec derived from the Python types (:mod:`twofold.client.codecs`),
through grpcio's generic multi-callables (``channel.unary_unary(path)`` and
kin, with no serializers: encoding and decoding stay here, so that a bad
message is a coded error with a clear message rather than grpcio's bare
"Exception deserializing response!").
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
)
from typing import Any

import grpc
import grpc.aio

from twofold.client.codecs import Codecs, MessageCodec
from twofold.client.errors import Failure, fail, message_from, status_details
from twofold.client.grpcwire import (
    DETAILS_KEY,
    PUSHBACK_KEY,
    address,
    decoded,
    metadata,
    remaining,
)
from twofold.client.grpcwire import pushback as pushback_of
from twofold.client.rpc import Rpc
from twofold.core.code import Code
from twofold.core.errors import Error

_NUMBERS = {c.value for c in Code}


def channel_options(max_response_size: int, headers: Mapping[str, str]) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", max_response_size)]
    agent = headers.get("user-agent")
    if agent:
        options.append(("grpc.primary_user_agent", agent))
    return options


def failure(exc: Any) -> Failure:
    """The :class:`Failure` of a grpcio error (sync ``RpcError`` or ``AioRpcError``)."""
    number = exc.code().value[0]
    code = Code(number) if number in _NUMBERS else Code.UNKNOWN
    message = exc.details() or ""
    details: list[Any] = []
    pushback = None
    for key, value in exc.trailing_metadata() or ():
        if key == DETAILS_KEY:
            details = status_details(value)
        elif key == PUSHBACK_KEY:
            pushback = pushback_of(value)
    # grpcio's own refusal of a message over max_receive_message_length:
    # the same call would be refused the same way.
    local = code is Code.RESOURCE_EXHAUSTED and "larger than max" in message
    error = Error(code, message_from(message, code), details)
    return Failure(error, retryable=not local, retry_after=pushback)


class _Requests:
    """A request stream for grpcio: the caller's messages, encoded; an exception
    from the caller's iterable is kept, and the call cancelled, instead of
    being logged by grpcio's thread and turned into an UNKNOWN."""

    def __init__(self, messages: Iterable[Any], encode: Any) -> None:
        self._messages = messages
        self._encode = encode
        self._lock = threading.Lock()
        self._call: Any = None
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for message in self._messages:
                yield self._encode(message)
        except Exception as exc:
            with self._lock:
                self.error = exc
                call = self._call
            if call is not None:
                call.cancel()

    def bind(self, call: Any) -> Any:
        with self._lock:
            self._call = call
            broken = self.error is not None
        if broken:
            call.cancel()
        return call

    def check(self) -> None:
        if self.error is not None:
            raise self.error


class GrpcCalls:
    """Calls over a sync grpcio channel.

    A failed call is :class:`grpc.RpcError` (sync) or ``grpc.aio.AioRpcError``:
    its status code is our code (the numbers are gRPC's), its details the
    message, and ``grpc-status-details-bin`` in its trailing metadata the
    error's details. The headers of a client (``auth``, ``headers``) go as
    metadata, lower-case, as HTTP/2 requires. A request stream that the caller's
    iterable breaks cancels the call and raises the caller's exception.
    """

    def __init__(
        self, target: object, codecs: Codecs, *, max_response_size: int, headers: Mapping[str, str]
    ) -> None:
        host, secure = address(target)
        self.url = host
        options = channel_options(max_response_size, headers)
        if secure:
            credentials = grpc.ssl_channel_credentials()
            self.channel = grpc.secure_channel(host, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(host, options=options)
        self._codecs = codecs

    def unary(
        self, rpc: Rpc[Any, Any], message: Any, deadline: float | None, headers: Mapping[str, str]
    ) -> Any:
        codec = self._codecs.proto(rpc)
        call = self.channel.unary_unary(rpc.path)
        try:
            raw = call(
                codec.encode(message), timeout=remaining(deadline), metadata=metadata(headers)
            )
        except grpc.RpcError as exc:
            raise failure(exc) from None
        return decoded(rpc, codec, raw)

    def client_stream(
        self,
        rpc: Rpc[Any, Any],
        messages: Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
    ) -> Any:
        codec = self._codecs.proto(rpc)
        requests = _Requests(messages, codec.encode)
        call = self.channel.stream_unary(rpc.path)
        future = requests.bind(
            call.future(iter(requests), timeout=remaining(deadline), metadata=metadata(headers))
        )
        try:
            raw = future.result()
        except grpc.RpcError as exc:
            requests.check()
            raise failure(exc) from None
        except grpc.FutureCancelledError:
            requests.check()
            raise fail(Code.CANCELED, f"{rpc.name} was cancelled") from None
        requests.check()
        return decoded(rpc, codec, raw)

    def stream(
        self,
        rpc: Rpc[Any, Any],
        messages: Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
        *,
        single: bool,
    ) -> Iterator[Any]:
        """A server stream (``single``: one request) or a bidi stream's outputs."""
        codec = self._codecs.proto(rpc)
        options = {"timeout": remaining(deadline), "metadata": metadata(headers)}
        requests = _Requests(messages, codec.encode)
        if single:
            (message,) = messages
            call = self.channel.unary_stream(rpc.path)(codec.encode(message), **options)
        else:
            call = requests.bind(self.channel.stream_stream(rpc.path)(iter(requests), **options))
        try:
            for raw in call:
                yield decoded(rpc, codec, raw)
        except grpc.RpcError as exc:
            requests.check()
            raise failure(exc) from None
        finally:
            call.cancel()  # a no-op once the call is over; else the server hears of it
        requests.check()

    def close(self) -> None:
        self.channel.close()


async def _each(messages: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterator[Any]:
    if isinstance(messages, AsyncIterable):
        async for message in messages:
            yield message
    else:
        for message in messages:
            yield message


class AsyncGrpcCalls:
    """Calls over a ``grpc.aio`` channel, made on first use: an aio channel
    belongs to the event loop it was made on."""

    def __init__(
        self, target: object, codecs: Codecs, *, max_response_size: int, headers: Mapping[str, str]
    ) -> None:
        self._host, self._secure = address(target)
        self.url = self._host
        self._options = channel_options(max_response_size, headers)
        self._codecs = codecs
        self._channel: Any = None

    @property
    def channel(self) -> Any:
        if self._channel is None:
            if self._secure:
                credentials = grpc.ssl_channel_credentials()
                self._channel = grpc.aio.secure_channel(self._host, credentials, self._options)
            else:
                self._channel = grpc.aio.insecure_channel(self._host, options=self._options)
        return self._channel

    async def unary(
        self, rpc: Rpc[Any, Any], message: Any, deadline: float | None, headers: Mapping[str, str]
    ) -> Any:
        codec = self._codecs.proto(rpc)
        call = self.channel.unary_unary(rpc.path)
        try:
            raw = await call(
                codec.encode(message), timeout=remaining(deadline), metadata=metadata(headers)
            )
        except grpc.aio.AioRpcError as exc:
            raise failure(exc) from None
        return decoded(rpc, codec, raw)

    async def client_stream(
        self,
        rpc: Rpc[Any, Any],
        messages: AsyncIterable[Any] | Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
    ) -> Any:
        codec = self._codecs.proto(rpc)
        call = self.channel.stream_unary(rpc.path)(
            timeout=remaining(deadline), metadata=metadata(headers)
        )
        try:
            await _write(call, messages, codec)
            raw = await call
        except grpc.aio.AioRpcError as exc:
            raise failure(exc) from None
        finally:
            call.cancel()
        return decoded(rpc, codec, raw)

    async def stream(
        self,
        rpc: Rpc[Any, Any],
        messages: AsyncIterable[Any] | Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
        *,
        single: bool,
    ) -> AsyncGenerator[Any, None]:
        codec = self._codecs.proto(rpc)
        options = {"timeout": remaining(deadline), "metadata": metadata(headers)}
        writer: asyncio.Task[None] | None = None
        if single:
            (message,) = [m async for m in _each(messages)]
            call = self.channel.unary_stream(rpc.path)(codec.encode(message), **options)
        else:
            call = self.channel.stream_stream(rpc.path)(**options)
            # Full duplex: the requests are written while the outputs are read.
            writer = asyncio.ensure_future(_write(call, messages, codec))
        try:
            while True:
                raw = await call.read()
                if raw is grpc.aio.EOF:
                    break
                yield decoded(rpc, codec, raw)
            if writer is not None:
                await writer
        except (grpc.aio.AioRpcError, asyncio.CancelledError) as exc:
            if writer is not None and writer.done() and not writer.cancelled():
                # The caller's iterable broke first, and the writer cancelled
                # the call (a read then raises CancelledError): its exception.
                writer.result()
            if isinstance(exc, asyncio.CancelledError):
                raise  # our task was cancelled: not the call's doing
            raise failure(exc) from None
        finally:
            call.cancel()
            if writer is not None:
                if writer.done() and not writer.cancelled():
                    writer.exception()  # retrieved: asyncio must not log it as lost
                writer.cancel()

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.close()


async def _write(
    call: Any, messages: AsyncIterable[Any] | Iterable[Any], codec: MessageCodec
) -> None:
    try:
        async for message in _each(messages):
            await call.write(codec.encode(message))
        await call.done_writing()
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        return  # the call is over: its reader reports how
    except BaseException:
        call.cancel()
        raise
