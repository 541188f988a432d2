"""Calls over HTTP: a protocol (the wire) on an httpx transport (the bytes).

:class:`HttpCalls` and :class:`AsyncHttpCalls` have the shape of the gRPC
ones (:mod:`twofold.client.channels`): ``unary``, ``client_stream`` and
``stream``, each raising :class:`~twofold.client.errors.Failure`, so the
stubs run retries and deadlines the same way over every protocol.

Streams go over Connect and gRPC-Web, and server streams over REST as
Server-Sent Events. A request stream is sent as it is produced, but
HTTP/1.1 (and httpx over HTTP/2) sends the whole request before reading the
response: fine for a client stream, which is answered once it ends, and for
a server stream's one message; a bidi stream needs both directions at once,
which only native gRPC gives this client.
"""

from __future__ import annotations

import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Iterable,
    Iterator,
    Mapping,
)
from typing import Any

from twofold.client.errors import Failure, fail
from twofold.client.protocols import Protocol
from twofold.client.retry import retry_after
from twofold.client.rpc import Rpc
from twofold.client.streams import STREAM_TYPES, Reader
from twofold.client.transports import (
    AsyncHttpTransport,
    HttpRequest,
    HttpResponse,
    HttpTransport,
)
from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.core.method import StreamKind


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _result(protocol: Protocol, rpc: Rpc[Any, Any], response: HttpResponse) -> Any:
    try:
        return protocol.response(rpc, response)
    except Failure as failure:
        raise _waiting(failure, response) from None


def _reader(protocol: Protocol, rpc: Rpc[Any, Any], head: HttpResponse, limit: int) -> Reader:
    try:
        return protocol.reader(rpc, head, limit)
    except Failure as failure:  # refused before the stream began: a 503, a 429...
        raise _waiting(failure, head) from None


def _waiting(failure: Failure, response: HttpResponse) -> Failure:
    """``failure`` with the server's ``Retry-After``, unless it has a wait already."""
    if failure.retry_after is None:
        failure.retry_after = retry_after(response.headers.get("retry-after"))
    return failure


def _check_streams(protocol: Protocol, rpc: Rpc[Any, Any]) -> None:
    if rpc.kind is StreamKind.BIDI:
        raise Error(
            Code.UNIMPLEMENTED,
            f"{rpc.name} is bidi streaming, which needs both directions at once: call it over grpc",
        )
    if rpc.kind not in protocol.kinds:
        kind = rpc.kind.value
        raise Error(
            Code.UNIMPLEMENTED,
            f"{rpc.name} is {kind} streaming, which {protocol.name} does not carry: "
            "call it over connect, connect-proto, grpc-web or grpc",
        )


def _request(
    protocol: Protocol,
    rpc: Rpc[Any, Any],
    messages: Iterable[Any] | AsyncIterable[Any],
    deadline: float | None,
    headers: Mapping[str, str],
) -> HttpRequest:
    request = protocol.stream_request(rpc, messages, _remaining(deadline))
    request.headers.update(headers)
    return request


def _is_stream(head: HttpResponse) -> bool:
    return head.status == 200 and head.media_type in STREAM_TYPES


class HttpCalls:
    """Sync calls: a protocol over an :class:`HttpTransport`."""

    def __init__(self, protocol: Protocol, transport: HttpTransport) -> None:
        self.protocol = protocol
        self.transport = transport

    def unary(
        self, rpc: Rpc[Any, Any], message: Any, deadline: float | None, headers: Mapping[str, str]
    ) -> Any:
        request = self.protocol.request(rpc, message, _remaining(deadline))
        request.headers.update(headers)
        return _result(self.protocol, rpc, self.transport.send(request, deadline))

    def client_stream(
        self,
        rpc: Rpc[Any, Any],
        messages: Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
    ) -> Any:
        outputs = list(self.stream(rpc, messages, deadline, headers, single=False))
        if len(outputs) != 1:
            raise fail(Code.INTERNAL, f"{rpc.name} answered {len(outputs)} messages, not one")
        return outputs[0]

    def stream(
        self,
        rpc: Rpc[Any, Any],
        messages: Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
        *,
        single: bool,
    ) -> Iterator[Any]:
        protocol = self.protocol
        _check_streams(protocol, rpc)
        limit = self.transport.max_response_size
        request = _request(protocol, rpc, messages, deadline, headers)
        head, chunks = self.transport.open(request, deadline)
        try:
            whole: list[bytes] | None = None
            if not _is_stream(head):  # an error document, a proxy's page: read it whole
                whole = [chunks.read(limit)]
                head = HttpResponse(head.status, head.headers, whole[0])
            reader = _reader(protocol, rpc, head, limit)
            for chunk in chunks if whole is None else whole:
                yield from reader.feed(chunk)
            reader.end()
        finally:
            chunks.close()

    def close(self) -> None:
        self.transport.close()


class AsyncHttpCalls:
    """Async calls: a protocol over an :class:`AsyncHttpTransport`."""

    def __init__(self, protocol: Protocol, transport: AsyncHttpTransport) -> None:
        self.protocol = protocol
        self.transport = transport

    async def unary(
        self, rpc: Rpc[Any, Any], message: Any, deadline: float | None, headers: Mapping[str, str]
    ) -> Any:
        request = self.protocol.request(rpc, message, _remaining(deadline))
        request.headers.update(headers)
        return _result(self.protocol, rpc, await self.transport.send(request, deadline))

    async def client_stream(
        self,
        rpc: Rpc[Any, Any],
        messages: AsyncIterable[Any] | Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
    ) -> Any:
        outputs = [o async for o in self.stream(rpc, messages, deadline, headers, single=False)]
        if len(outputs) != 1:
            raise fail(Code.INTERNAL, f"{rpc.name} answered {len(outputs)} messages, not one")
        return outputs[0]

    async def stream(
        self,
        rpc: Rpc[Any, Any],
        messages: AsyncIterable[Any] | Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
        *,
        single: bool,
    ) -> AsyncGenerator[Any, None]:
        protocol = self.protocol
        _check_streams(protocol, rpc)
        limit = self.transport.max_response_size
        request = _request(protocol, rpc, messages, deadline, headers)
        head, chunks = await self.transport.open(request, deadline)
        try:
            if _is_stream(head):
                reader = _reader(protocol, rpc, head, limit)
                async for chunk in chunks:
                    for output in reader.feed(chunk):
                        yield output
            else:  # an error document, a proxy's page: read it whole
                content = await chunks.read(limit)
                whole = HttpResponse(head.status, head.headers, content)
                reader = _reader(protocol, rpc, whole, limit)
                for output in reader.feed(content):
                    yield output
            reader.end()
        finally:
            await chunks.aclose()

    async def aclose(self) -> None:
        await self.transport.aclose()
