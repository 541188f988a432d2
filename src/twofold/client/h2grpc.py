"""Native gRPC with no grpcio: calls over the client's own HTTP/2 connection.

``Client(service, target, protocol="grpc", transport="h2")``. gRPC over HTTP/2
(doc/PROTOCOL-HTTP2.md): a POST of ``application/grpc`` with ``te: trailers``,
the messages 5-byte framed in DATA frames both ways, and the outcome in the
trailers (``grpc-status``, ``grpc-message``, ``grpc-status-details-bin``), or
in the headers alone when the call failed before any answer ("trailers-only").
The connection is :mod:`twofold.client.h2connection` (httpx has no trailers
and no full duplex, hence a connection of our own); the messages are the
protobuf codec's and the errors the same :class:`~twofold.Error` as over grpcio.

The deadline is sent as ``grpc-timeout`` and kept here too: a call still
running when it passes is reset (RST_STREAM CANCEL) and fails
DEADLINE_EXCEEDED; a call whose caller stops reading or is cancelled, too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import ssl
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Coroutine,
    Iterable,
    Mapping,
)
from typing import Any, TypeVar

import certifi

from twofold.client.codecs import Codecs, MessageCodec
from twofold.client.errors import Failure, fail, unexpected
from twofold.client.frames import Frames
from twofold.client.grpcwire import RESERVED, address, decoded, raise_status, remaining
from twofold.client.h2connection import Channel
from twofold.client.h2stream import Headers, Stream, StreamDone
from twofold.client.protocols import grpc_timeout
from twofold.client.rpc import Rpc
from twofold.client.transports import USER_AGENT
from twofold.core.code import Code
from twofold.http import envelope

T = TypeVar("T")
# gRPC's metadata grammar (doc/PROTOCOL-HTTP2.md): lower-case keys, printable ASCII values.
_KEY = re.compile(r"[0-9a-z_.-]+")
_VALUE = re.compile(r"[\x20-\x7e]*")
_GRPC_TYPES = ("application/grpc", "application/grpc+proto")
# Headers of the transport's own (and HTTP/2's): never sent from the client's headers.
_OWN = RESERVED | {"grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "content-length"}


def _split(host: str) -> tuple[str, int]:
    name, colon, port = host.rpartition(":")
    if not colon or not port.isdigit():
        raise ValueError(f"a gRPC target needs a port: {host!r}")
    return name.strip("[]"), int(port)


def tls_context() -> ssl.SSLContext:
    """Certificates verified as httpx verifies them (``SSL_CERT_FILE`` or
    ``SSL_CERT_DIR`` when set, else certifi's roots); HTTP/2 chosen by ALPN."""
    if os.environ.get("SSL_CERT_FILE"):
        context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    elif os.environ.get("SSL_CERT_DIR"):
        context = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    else:
        context = ssl.create_default_context(cafile=certifi.where())
    context.set_alpn_protocols(["h2"])
    return context


def _metadata(headers: Mapping[str, str]) -> Headers:
    """The client's headers as gRPC metadata; one gRPC does not allow is refused
    before anything is sent (h2 would send a newline in a value as it is)."""
    out = []
    for name, value in headers.items():
        key = name.lower()
        if key in _OWN or key.startswith(":"):
            continue
        if not _KEY.fullmatch(key):
            raise fail(Code.INVALID_ARGUMENT, f"{name!r} is not a gRPC metadata key")
        if key.endswith("-bin"):
            # Binary metadata travels as base64; gRPC asks senders to leave the padding off.
            value = base64.b64encode(value.encode()).decode("ascii").rstrip("=")
        elif not _VALUE.fullmatch(value):
            raise fail(
                Code.INVALID_ARGUMENT, f"metadata {key}: printable ASCII only (or a -bin key)"
            )
        out.append((key, value))
    return out


async def _each(messages: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterator[Any]:
    if isinstance(messages, AsyncIterable):
        async for message in messages:
            yield message
    else:
        for message in messages:
            yield message


async def _within(deadline: float | None, step: Awaitable[T]) -> T:
    """One wait of a call under what is left of its deadline.

    Each wait on its own: a timeout around a stream would fire in the caller's
    code, between two outputs.
    """
    try:
        async with asyncio.timeout(remaining(deadline)):
            return await step
    except TimeoutError:
        raise fail(Code.DEADLINE_EXCEEDED, "deadline exceeded waiting for the server") from None


class AsyncH2GrpcCalls:
    """Native gRPC calls over one HTTP/2 connection, made on first use (it
    belongs to the event loop it was made on) and shared by every call."""

    def __init__(
        self, target: object, codecs: Codecs, *, max_response_size: int, headers: Mapping[str, str]
    ) -> None:
        host, secure = address(target)
        self.url = host
        name, port = _split(host)
        self._channel = Channel(name, port, tls_context() if secure else None)
        self._scheme = "https" if secure else "http"
        self._agent = headers.get("user-agent", USER_AGENT)
        if not _VALUE.fullmatch(self._agent):
            raise ValueError(f"user-agent {self._agent!r}: printable ASCII only")
        self._limit = max_response_size
        self._codecs = codecs

    def _headers(
        self, rpc: Rpc[Any, Any], deadline: float | None, headers: Mapping[str, str]
    ) -> Headers:
        head = [
            (":method", "POST"),
            (":scheme", self._scheme),
            (":path", rpc.path),
            (":authority", self._channel.authority),
            ("content-type", "application/grpc+proto"),
            # te: trailers is how a gRPC server knows the client reads trailers.
            ("te", "trailers"),
            ("user-agent", self._agent),
            ("grpc-accept-encoding", "identity,gzip"),
        ]
        left = remaining(deadline)
        if left is not None:
            head.append(("grpc-timeout", grpc_timeout(left)))
        return head + _metadata(headers)

    async def _open(
        self,
        rpc: Rpc[Any, Any],
        deadline: float | None,
        headers: Mapping[str, str],
        first: bytes | None = None,
    ) -> Stream:
        """A stream with its headers sent (and, for ``first``, the one request)."""
        request = self._headers(rpc, deadline, headers)

        async def start() -> Stream:
            connection = await self._channel.connection()
            stream = await connection.stream(request, flush=first is None)
            try:
                if first is not None:
                    await stream.send(first, end=True)
            except StreamDone:
                pass  # the server answered first: the answer says how
            except BaseException:
                stream.close()
                raise
            return stream

        return await _within(deadline, start())

    async def _outputs(
        self,
        rpc: Rpc[Any, Any],
        codec: MessageCodec,
        stream: Stream | _Guarded,
        deadline: float | None,
    ) -> AsyncIterator[Any]:
        """The outputs of a stream as they arrive, then its status raised unless OK."""
        head = dict(await _within(deadline, stream.head()))
        status = int(head[":status"]) if head.get(":status", "").isdigit() else 0
        media_type = head.get("content-type", "").split(";", 1)[0].strip().lower()
        if "grpc-status" in head:  # trailers-only: the outcome is in the headers
            raise_status(head)
            return
        if status != 200 or not media_type.startswith(_GRPC_TYPES):
            raise unexpected(status, media_type, b"")
        coding = head.get("grpc-encoding", "identity")
        if coding not in ("identity", "gzip"):
            raise fail(Code.INTERNAL, f"the server compressed with {coding!r}, never offered")
        frames = Frames(self._limit, gzip=coding == "gzip")
        while (chunk := await _within(deadline, stream.read())) is not None:
            for item in frames.feed(chunk):
                yield decoded(rpc, codec, item.data)
        frames.end()
        trailers = dict(stream.trailers or [])
        if "grpc-status" not in trailers:
            raise fail(Code.INTERNAL, "protocol error: the response has no grpc-status")
        raise_status(trailers)

    async def _only(
        self,
        rpc: Rpc[Any, Any],
        codec: MessageCodec,
        stream: Stream | _Guarded,
        deadline: float | None,
    ) -> Any:
        outputs = [output async for output in self._outputs(rpc, codec, stream, deadline)]
        if len(outputs) != 1:
            raise fail(Code.INTERNAL, f"{rpc.name} answered {len(outputs)} messages, not one")
        return outputs[0]

    async def unary(
        self, rpc: Rpc[Any, Any], message: Any, deadline: float | None, headers: Mapping[str, str]
    ) -> Any:
        codec = self._codecs.proto(rpc)
        stream = await self._open(rpc, deadline, headers, envelope.frame(codec.encode(message)))
        try:
            return await self._only(rpc, codec, stream, deadline)
        finally:
            stream.close()

    async def client_stream(
        self,
        rpc: Rpc[Any, Any],
        messages: AsyncIterable[Any] | Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
    ) -> Any:
        codec = self._codecs.proto(rpc)
        stream = await self._open(rpc, deadline, headers)
        # The server may answer before the requests are all sent (an error,
        # say): the requests go out while the answer is awaited.
        writer = asyncio.ensure_future(_write(stream, messages, codec))
        try:
            output = await self._only(rpc, codec, _Guarded(stream, writer), deadline)
            # The answer ends the call: requests still unsent are not waited for.
            _raise_from(writer)
            return output
        except Failure:
            _raise_from(writer)
            raise
        finally:
            stream.close()
            await _stopped(writer)

    async def stream(
        self,
        rpc: Rpc[Any, Any],
        messages: AsyncIterable[Any] | Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
        *,
        single: bool,
    ) -> AsyncGenerator[Any, None]:
        """A server stream (``single``: one request) or a bidi stream's outputs,
        read while the requests are still being sent."""
        codec = self._codecs.proto(rpc)
        writer: asyncio.Future[None] | None = None
        if single:
            (message,) = [m async for m in _each(messages)]
            stream = await self._open(rpc, deadline, headers, envelope.frame(codec.encode(message)))
            read: Stream | _Guarded = stream
        else:
            stream = await self._open(rpc, deadline, headers)
            writer = asyncio.ensure_future(_write(stream, messages, codec))
            read = _Guarded(stream, writer)
        try:
            async for output in self._outputs(rpc, codec, read, deadline):
                yield output
            if writer is not None:
                _raise_from(writer)  # the status ends the call, even with requests unsent
        except Failure:
            if writer is not None:
                _raise_from(writer)
            raise
        finally:
            stream.close()  # RST_STREAM CANCEL unless the call is over: the server hears of it
            if writer is not None:
                await _stopped(writer)

    async def aclose(self) -> None:
        await self._channel.aclose()


class _Guarded:
    """A stream's reads that stop as soon as the request writer fails: the
    caller's iterable broke, so the call is over whatever the server says."""

    def __init__(self, stream: Stream, writer: asyncio.Future[None]) -> None:
        self._stream = stream
        self._writer = writer
        self.trailers: Headers | None = None

    async def head(self) -> Headers:
        return await self._first(self._stream.head())

    async def read(self) -> bytes | None:
        chunk = await self._first(self._stream.read())
        self.trailers = self._stream.trailers
        return chunk

    async def _first(self, step: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(step)
        try:
            if not self._writer.done():
                waiting: set[asyncio.Future[Any]] = {task, self._writer}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                _raise_from(self._writer)  # else the requests are all sent: wait on
            return await task
        finally:
            task.cancel()


def _raise_from(writer: asyncio.Future[None]) -> None:
    """Raise the caller's exception if its request iterable broke."""
    if writer.done() and not writer.cancelled() and writer.exception() is not None:
        raise writer.exception()  # type: ignore[misc]


async def _stopped(writer: asyncio.Future[None]) -> None:
    writer.cancel()
    with contextlib.suppress(BaseException):
        await writer


async def _write(
    stream: Stream, messages: AsyncIterable[Any] | Iterable[Any], codec: MessageCodec
) -> None:
    try:
        async for message in _each(messages):
            await stream.send(envelope.frame(codec.encode(message)))
        await stream.send(b"", end=True)
    except StreamDone:
        return  # the server ended the call: its reader says how
    except BaseException:
        stream.close()  # the caller's iterable broke: the call is cancelled
        raise
