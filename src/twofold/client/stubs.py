"""The clients: :class:`Client` and :class:`AsyncClient`, over a shared base.

Two layers in each colour. A *stub* (:class:`Stub`, :class:`AsyncStub`)
calls an :class:`~twofold.client.Rpc` with a typed message, one primitive
per streaming kind (``invoke`` for unary calls, ``server_stream``,
``client_stream``, ``bidi_stream``), or a method by name (``call``); a
generated client module subclasses it and adds one typed method per RPC.
A *client* (:class:`Client`, :class:`AsyncClient`) is a stub that also
answers every method's Python name: ``client.get_product(id=1)``. Those
attributes are found at run time, so a type checker sees
``Callable[..., Any]``; the generated module is where the types are.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx

from twofold.client import uploads
from twofold.client.auth import Auth
from twofold.client.base import DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_RETRY, BaseClient
from twofold.client.calls import AsyncHttpCalls, HttpCalls
from twofold.client.errors import Failure
from twofold.client.protocols import GRPC, H2, REST
from twofold.client.protocols import protocol as make_protocol
from twofold.client.retry import Retry
from twofold.client.rpc import Rpc, Services
from twofold.client.transports import AsyncHttpTransport, HttpTransport, Target
from twofold.core.method import StreamKind

if TYPE_CHECKING:
    # grpcio is imported when a client speaks gRPC, not by every client.
    from twofold.client.channels import AsyncGrpcCalls, GrpcCalls
    from twofold.client.h2grpc import AsyncH2GrpcCalls
    from twofold.client.h2sync import H2GrpcCalls

T = TypeVar("T")
InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")
S = TypeVar("S", bound="Stub")
A = TypeVar("A", bound="AsyncStub")


class Stub(BaseClient):
    """A sync client of some methods: over HTTP (httpx) or an in-process ASGI
    app, or over native gRPC (grpcio).

    ``target`` is the server's base URL (``"http://127.0.0.1:8000"``) or an
    ASGI app; for ``protocol="grpc"``, the gRPC server's ``host:port`` (or
    ``http(s)://host:port``). ``protocol`` is ``"connect"``,
    ``"connect-proto"``, ``"grpc-web"``, ``"grpc"``, ``"rest"`` or
    ``"jsonrpc"``. ``timeout`` is every call's deadline in seconds (None: no
    deadline). ``transport`` replaces httpx's (``httpx.HTTPTransport(verify=...)``,
    ``httpx.MockTransport(handler)``...); for gRPC it is None (grpcio's
    channels) or ``"h2"``, Twofold's own HTTP/2 transport, with no grpcio.
    """

    def __init__(
        self,
        services: Services,
        target: Target,
        *,
        protocol: str = "connect",
        timeout: float | None = None,
        retry: Retry | None = DEFAULT_RETRY,
        auth: Auth | None = None,
        headers: Mapping[str, str] | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        transport: httpx.BaseTransport | Literal["h2"] | None = None,
    ) -> None:
        super().__init__(
            services, protocol=protocol, timeout=timeout, retry=retry, auth=auth, headers=headers
        )
        self._calls: HttpCalls | GrpcCalls | H2GrpcCalls
        if self.protocol == GRPC:
            options: dict[str, Any] = {
                "max_response_size": max_response_size,
                "headers": self._headers,
            }
            if _own_h2(transport):
                from twofold.client.h2sync import H2GrpcCalls

                self._calls = H2GrpcCalls(target, self._codecs, **options)
            else:
                from twofold.client.channels import GrpcCalls

                self._calls = GrpcCalls(target, self._codecs, **options)
        else:
            http = HttpTransport(
                target, max_response_size=max_response_size, transport=_httpx_only(transport)
            )
            self._calls = HttpCalls(make_protocol(self.protocol, self._codecs), http)

    def invoke(
        self,
        rpc: Rpc[InputT, OutputT],
        message: InputT,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> OutputT:
        """Call ``rpc`` with ``message``: the output, or :class:`~twofold.Error`.

        ``timeout`` overrides the client's deadline for this call (retries
        included); ``headers`` are added to this call only.
        """
        sent = self._start(rpc, StreamKind.UNARY, headers)
        message = self._message(rpc, message, {})
        once = uploads.prepare(message, self.protocol == REST)
        deadline = self._deadline(timeout)
        attempt = 0
        while True:
            attempt += 1
            self._check_deadline(rpc, deadline)
            try:
                output: OutputT = self._calls.unary(rpc, message, deadline, sent)
                return output
            except Failure as failure:
                if once:  # its chunks are gone: a retry would send an empty file
                    raise failure.release() from None
                delay = self._delay(rpc, failure, attempt, deadline)
                if delay is None:
                    raise failure.release() from None
            time.sleep(delay)

    def server_stream(
        self,
        rpc: Rpc[InputT, OutputT],
        message: InputT,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Generator[OutputT, None, None]:
        """Call a server-streaming ``rpc``: an iterator of its outputs.

        The call is made when iteration starts; leaving the loop early (or
        ``close()`` on the iterator) ends it. A failure before the first
        output is retried as a unary call's would be; after it, never.
        """
        sent = self._start(rpc, StreamKind.SERVER, headers)
        return self._streamed(rpc, self._message(rpc, message, {}), self._deadline(timeout), sent)

    def _streamed(
        self, rpc: Rpc[Any, Any], message: Any, deadline: float | None, sent: dict[str, str]
    ) -> Generator[Any, None, None]:
        attempt = 0
        while True:
            attempt += 1
            self._check_deadline(rpc, deadline)
            received = False
            try:
                for output in self._calls.stream(rpc, [message], deadline, sent, single=True):
                    received = True
                    yield output
                return
            except Failure as failure:
                delay = None if received else self._delay(rpc, failure, attempt, deadline)
                if delay is None:
                    raise failure.release() from None
            time.sleep(delay)

    def client_stream(
        self,
        rpc: Rpc[InputT, OutputT],
        messages: Iterable[InputT],
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> OutputT:
        """Call a client-streaming ``rpc`` with ``messages``, sent as they are
        produced: its one output. Never retried (the messages are used up)."""
        sent = self._start(rpc, StreamKind.CLIENT, headers)
        deadline = self._deadline(timeout)
        self._check_deadline(rpc, deadline)
        requests = (self._message(rpc, m, {}) for m in messages)
        try:
            output: OutputT = self._calls.client_stream(rpc, requests, deadline, sent)
        except Failure as failure:
            raise failure.release() from None
        return output

    def bidi_stream(
        self,
        rpc: Rpc[InputT, OutputT],
        messages: Iterable[InputT],
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Generator[OutputT, None, None]:
        """Call a bidi-streaming ``rpc`` (over gRPC): the outputs, read while
        ``messages`` are sent. Never retried."""
        sent = self._start(rpc, StreamKind.BIDI, headers)
        deadline = self._deadline(timeout)
        requests = (self._message(rpc, m, {}) for m in messages)
        return _unwrapped(self._calls.stream(rpc, requests, deadline, sent, single=False))

    def call(
        self,
        method: str,
        message: Any = None,
        /,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Any:
        """Call a method by RPC name with a message, a dict, or keyword fields
        (a client or bidi stream: with an iterable of those)."""
        rpc = self._lookup(method)
        options: dict[str, Any] = {"timeout": timeout, "headers": headers}
        if rpc.kind is StreamKind.CLIENT:
            return self.client_stream(rpc, _stream_of(rpc, message, fields), **options)
        if rpc.kind is StreamKind.BIDI:
            return self.bidi_stream(rpc, _stream_of(rpc, message, fields), **options)
        request = self._message(rpc, message, fields)
        if rpc.kind is StreamKind.SERVER:
            return self.server_stream(rpc, request, **options)
        return self.invoke(rpc, request, **options)

    def close(self) -> None:
        self._calls.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        self.close()


class AsyncStub(BaseClient):
    """An async client of some methods; see :class:`Stub` for the options.

    With an ASGI app as ``target`` the calls go to the app in process through
    ``httpx.ASGITransport`` (its lifespan is not run: enter it yourself).
    """

    def __init__(
        self,
        services: Services,
        target: Target,
        *,
        protocol: str = "connect",
        timeout: float | None = None,
        retry: Retry | None = DEFAULT_RETRY,
        auth: Auth | None = None,
        headers: Mapping[str, str] | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        transport: httpx.AsyncBaseTransport | Literal["h2"] | None = None,
    ) -> None:
        super().__init__(
            services, protocol=protocol, timeout=timeout, retry=retry, auth=auth, headers=headers
        )
        self._calls: AsyncHttpCalls | AsyncGrpcCalls | AsyncH2GrpcCalls
        if self.protocol == GRPC:
            options: dict[str, Any] = {
                "max_response_size": max_response_size,
                "headers": self._headers,
            }
            if _own_h2(transport):
                from twofold.client.h2grpc import AsyncH2GrpcCalls

                self._calls = AsyncH2GrpcCalls(target, self._codecs, **options)
            else:
                from twofold.client.channels import AsyncGrpcCalls

                self._calls = AsyncGrpcCalls(target, self._codecs, **options)
        else:
            http = AsyncHttpTransport(
                target, max_response_size=max_response_size, transport=_httpx_only(transport)
            )
            self._calls = AsyncHttpCalls(make_protocol(self.protocol, self._codecs), http)

    async def invoke(
        self,
        rpc: Rpc[InputT, OutputT],
        message: InputT,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the RPC's deadline
        headers: Mapping[str, str] | None = None,
    ) -> OutputT:
        """Call ``rpc`` with ``message``: the output, or :class:`~twofold.Error`."""
        sent = self._start(rpc, StreamKind.UNARY, headers)
        message = self._message(rpc, message, {})
        once = await uploads.aprepare(message, self.protocol == REST)
        deadline = self._deadline(timeout)
        attempt = 0
        while True:
            attempt += 1
            self._check_deadline(rpc, deadline)
            try:
                output: OutputT = await self._calls.unary(rpc, message, deadline, sent)
                return output
            except Failure as failure:
                if once:  # its chunks are gone: a retry would send an empty file
                    raise failure.release() from None
                delay = self._delay(rpc, failure, attempt, deadline)
                if delay is None:
                    raise failure.release() from None
            await asyncio.sleep(delay)

    def server_stream(
        self,
        rpc: Rpc[InputT, OutputT],
        message: InputT,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[OutputT, None]:
        """Call a server-streaming ``rpc``: an async iterator of its outputs
        (``async for``, no ``await``); see :meth:`Stub.server_stream`."""
        sent = self._start(rpc, StreamKind.SERVER, headers)
        return self._streamed(rpc, self._message(rpc, message, {}), self._deadline(timeout), sent)

    async def _streamed(
        self, rpc: Rpc[Any, Any], message: Any, deadline: float | None, sent: dict[str, str]
    ) -> AsyncGenerator[Any, None]:
        attempt = 0
        while True:
            attempt += 1
            self._check_deadline(rpc, deadline)
            received = False
            try:
                # aclosing: a caller that stops early ends the call now, not at collection.
                outputs = self._calls.stream(rpc, [message], deadline, sent, single=True)
                async with contextlib.aclosing(outputs):
                    async for output in outputs:
                        received = True
                        yield output
                return
            except Failure as failure:
                delay = None if received else self._delay(rpc, failure, attempt, deadline)
                if delay is None:
                    raise failure.release() from None
            await asyncio.sleep(delay)

    async def client_stream(
        self,
        rpc: Rpc[InputT, OutputT],
        messages: AsyncIterable[InputT] | Iterable[InputT],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the RPC's deadline
        headers: Mapping[str, str] | None = None,
    ) -> OutputT:
        """Call a client-streaming ``rpc`` with ``messages`` (sync or async
        iterable): its one output. Never retried."""
        sent = self._start(rpc, StreamKind.CLIENT, headers)
        deadline = self._deadline(timeout)
        self._check_deadline(rpc, deadline)
        requests = self._checked(rpc, messages)
        try:
            output: OutputT = await self._calls.client_stream(rpc, requests, deadline, sent)
        except Failure as failure:
            raise failure.release() from None
        return output

    def bidi_stream(
        self,
        rpc: Rpc[InputT, OutputT],
        messages: AsyncIterable[InputT] | Iterable[InputT],
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[OutputT, None]:
        """Call a bidi-streaming ``rpc`` (over gRPC): the outputs, read while
        ``messages`` are sent. Never retried."""
        sent = self._start(rpc, StreamKind.BIDI, headers)
        deadline = self._deadline(timeout)
        requests = self._checked(rpc, messages)
        return _async_unwrapped(self._calls.stream(rpc, requests, deadline, sent, single=False))

    async def _checked(
        self, rpc: Rpc[Any, Any], messages: AsyncIterable[Any] | Iterable[Any]
    ) -> AsyncIterator[Any]:
        if isinstance(messages, AsyncIterable):
            async for message in messages:
                yield self._message(rpc, message, {})
        else:
            for message in messages:
                yield self._message(rpc, message, {})

    async def call(
        self,
        method: str,
        message: Any = None,
        /,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the RPC's deadline
        headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Any:
        """Call a unary or client-streaming method by RPC name (a streaming
        output comes from :meth:`call_stream`)."""
        rpc = self._lookup(method)
        if rpc.kind is StreamKind.CLIENT:
            messages = _stream_of(rpc, message, fields)
            return await self.client_stream(rpc, messages, timeout=timeout, headers=headers)
        request = self._message(rpc, message, fields)
        return await self.invoke(rpc, request, timeout=timeout, headers=headers)

    def call_stream(
        self,
        method: str,
        message: Any = None,
        /,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> AsyncIterator[Any]:
        """Call a server- or bidi-streaming method by RPC name: its outputs."""
        rpc = self._lookup(method)
        if rpc.kind is StreamKind.BIDI:
            messages = _stream_of(rpc, message, fields)
            return self.bidi_stream(rpc, messages, timeout=timeout, headers=headers)
        request = self._message(rpc, message, fields)
        return self.server_stream(rpc, request, timeout=timeout, headers=headers)

    async def aclose(self) -> None:
        await self._calls.aclose()

    async def __aenter__(self: A) -> A:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.aclose()


class Client(Stub):
    """A sync client whose attributes are the methods' Python names.

    ``Client(service, "http://127.0.0.1:8000").get_product(id=1)`` returns a
    ``Product``. A method also takes its request message, or a dict, as the
    one positional argument, and ``timeout=`` for its deadline.
    """

    def __getattr__(self, name: str) -> Callable[..., Any]:
        rpc = _find(self, name)

        def method(message: Any = None, /, *, timeout: float | None = None, **fields: Any) -> Any:
            return self.call(rpc.full_name, message, timeout=timeout, **fields)

        return _named(method, rpc)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(r.python_name for r in self._rpcs)]


class AsyncClient(AsyncStub):
    """An async client whose attributes are the methods' Python names:
    ``await client.get_product(id=1)``."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        rpc = _find(self, name)
        if rpc.kind in (StreamKind.SERVER, StreamKind.BIDI):
            # A stream is an async iterator straight away: ``async for`` with no ``await``.
            def stream(
                message: Any = None,
                /,
                *,
                timeout: float | None = None,
                **fields: Any,
            ) -> AsyncIterator[Any]:
                return self.call_stream(rpc.full_name, message, timeout=timeout, **fields)

            return _named(stream, rpc)

        async def method(
            message: Any = None,
            /,
            *,
            timeout: float | None = None,  # noqa: ASYNC109
            **fields: Any,
        ) -> Any:
            return await self.call(rpc.full_name, message, timeout=timeout, **fields)

        return _named(method, rpc)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(r.python_name for r in self._rpcs)]


def _own_h2(transport: object) -> bool:
    """Whether a gRPC client runs on Twofold's own HTTP/2 transport (``"h2"``)
    rather than grpcio (None)."""
    if transport is None or transport == H2:
        return transport == H2
    raise ValueError(
        f"transport= for protocol 'grpc' is None (grpcio) or \"h2\" (no grpcio), not {transport!r}"
    )


def _httpx_only(transport: T | str | None) -> T | None:
    if isinstance(transport, str):
        raise ValueError(f"transport={transport!r} is for protocol 'grpc'; pass an httpx transport")
    return transport


def _stream_of(rpc: Rpc[Any, Any], messages: Any, fields: Mapping[str, Any]) -> Any:
    if fields or messages is None:
        raise TypeError(f"{rpc.name} takes a stream: pass an iterable of messages (or dicts)")
    return messages


def _unwrapped(outputs: Iterator[Any]) -> Generator[Any, None, None]:
    """The outputs, with a failure raised as its error."""
    try:
        yield from outputs
    except Failure as failure:
        raise failure.release() from None


async def _async_unwrapped(outputs: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    try:
        async with contextlib.aclosing(outputs):
            async for output in outputs:
                yield output
    except Failure as failure:
        raise failure.release() from None


def _find(client: BaseClient, name: str) -> Rpc[Any, Any]:
    # Private names are never methods: this also keeps lookups made before
    # __init__ has run (copy, pickle) from recursing.
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        rpc = client._rpcs.by_python_name(name)
    except LookupError as exc:
        raise AttributeError(str(exc)) from None
    if rpc is None:
        # A misspelt method is the commonest mistake with a dynamic client:
        # name the methods it was probably meant to be.
        close = difflib.get_close_matches(name, client._rpcs.python_names(), n=3, cutoff=0.6)
        hint = f": did you mean {', '.join(close)}?" if close else ""
        raise AttributeError(f"{type(client).__name__} has no method {name!r}{hint}")
    return rpc


F = TypeVar("F", bound=Callable[..., Any])


def _named(fn: F, rpc: Rpc[Any, Any]) -> F:
    fn.__name__ = fn.__qualname__ = rpc.python_name
    fn.__doc__ = f"Call {rpc.full_name}."
    return fn
