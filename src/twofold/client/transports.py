"""Moving bytes: one HTTP exchange per call, over httpx, with the failures coded.

The contract is httpx's own: ``send(request, deadline)`` returns the whole
response or raises :class:`~twofold.client.errors.Failure`; for streams,
``open(request, deadline)`` returns the response head and a :class:`Body`
to read chunk by chunk (each read bounded by what is left of the deadline). The
protocol modules build the request and read the response and never see
httpx; this module never sees a message. ``target`` is a base URL, or an
ASGI app called in process (no socket): the async transport uses
``httpx.ASGITransport``; the sync one runs the app on an event loop of its
own, in a background thread, so a plain ``def test_...`` can use it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import httpx

from twofold.client.errors import Failure, fail
from twofold.core.asgi import ASGIApp
from twofold.core.code import Code
from twofold.core.errors import Error

Target: TypeAlias = str | ASGIApp
"""Where a client sends its calls: a base URL, or an ASGI app called in process."""

IN_PROCESS_URL = "http://twofold.local"
USER_AGENT = "twofold-client"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What a protocol asks the transport to send; the path is relative to the base URL."""

    method: str
    path: str
    headers: dict[str, str]
    content: bytes = b""
    params: tuple[tuple[str, str], ...] = ()
    stream: Iterable[bytes] | AsyncIterable[bytes] | None = None
    """A body sent as it is produced (a client stream), instead of ``content``."""

    @property
    def body(self) -> Any:
        return self.stream if self.stream is not None else (self.content or None)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete response; header names are case-insensitive."""

    status: int
    headers: Mapping[str, str]
    content: bytes = field(repr=False)

    @property
    def media_type(self) -> str:
        """``application/json; charset=utf-8`` -> ``application/json``."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def base_url(target: Target) -> str:
    if not isinstance(target, str):
        return IN_PROCESS_URL
    if not target.startswith(("http://", "https://")):
        raise ValueError(f"a client needs an http(s):// URL or an ASGI app, got {target!r}")
    return target


def _coded(exc: httpx.HTTPError, url: str) -> Failure:
    """The code of a transport failure; only coded errors leave the client."""
    if isinstance(exc, httpx.TimeoutException):
        return fail(Code.DEADLINE_EXCEEDED, f"deadline exceeded waiting for {url}")
    if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
        return Failure(Error(Code.UNAVAILABLE, f"cannot connect to {url}: {exc}"))
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        # The connection broke: the server restarted, a proxy gave up. The
        # request may or may not have run, which is why only calls that are
        # safe to repeat are ever retried.
        message = f"connection to {url} failed before the response was complete: {exc}"
        return Failure(Error(Code.UNAVAILABLE, message))
    if isinstance(exc, httpx.DecodingError):
        return fail(Code.INTERNAL, f"the response body cannot be decoded: {exc}")
    return fail(Code.UNKNOWN, f"HTTP exchange with {url} failed: {exc}")


def _too_large(limit: int) -> Failure:
    return fail(Code.RESOURCE_EXHAUSTED, f"response is larger than the {limit}-byte limit")


def _declared_too_large(response: httpx.Response | HttpResponse, limit: int) -> bool:
    declared = response.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > limit


def _timeout(seconds: float | None) -> httpx.Timeout:
    return httpx.Timeout(seconds)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _late() -> Failure:
    return fail(Code.DEADLINE_EXCEEDED, "deadline exceeded reading the response")


def _head(response: httpx.Response) -> HttpResponse:
    return HttpResponse(response.status_code, response.headers, b"")


class Body:
    """A response body being read, sync: iterate for chunks, then ``close``.

    A response body is read in chunks and refused once it passes
    ``max_response_size`` (RESOURCE_EXHAUSTED): a server, or anything posing as
    one, cannot make the client buffer without bound.
    """

    def __init__(self, response: httpx.Response, url: str, deadline: float | None) -> None:
        self._response = response
        self._url = url
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._response.iter_bytes():
                # Each read times out on its own; the deadline is for the whole.
                if self._deadline is not None and time.monotonic() > self._deadline:
                    raise _late()
                yield chunk
        except httpx.HTTPError as exc:
            raise _coded(exc, self._url) from None

    def read(self, limit: int) -> bytes:
        """The rest of the body, refused past ``limit`` bytes."""
        chunks, size = [], 0
        for chunk in self:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        # Closing mid-body drops the connection: that is how the server hears of it.
        self._response.close()


class AsyncBody:
    """A response body being read, async: ``async for`` chunks, then ``aclose``."""

    def __init__(self, response: httpx.Response, url: str, deadline: float | None) -> None:
        self._response = response
        self._url = url
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._response.aiter_bytes()
        while True:
            try:
                # One read at a time under the deadline: a timeout around the
                # whole loop would fire while the caller holds a chunk, in its code.
                async with asyncio.timeout(_remaining(self._deadline)):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise _late() from None
            except httpx.HTTPError as exc:
                raise _coded(exc, self._url) from None
            yield chunk

    async def read(self, limit: int) -> bytes:
        """The rest of the body, refused past ``limit`` bytes."""
        chunks, size = [], 0
        async for chunk in self:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpTransport:
    """The sync transport: an ``httpx.Client``."""

    def __init__(
        self,
        target: Target,
        *,
        max_response_size: int,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if transport is None and not isinstance(target, str):
            transport = PortalTransport(target)
        self.url = base_url(target)
        self.max_response_size = max_response_size
        self.client = httpx.Client(
            base_url=self.url, transport=transport, headers={"user-agent": USER_AGENT}
        )

    def send(self, request: HttpRequest, deadline: float | None) -> HttpResponse:
        """Send and read the whole response; ``deadline`` is on ``time.monotonic()``."""
        limit = self.max_response_size
        head, body = self.open(request, deadline)
        try:
            if _declared_too_large(head, limit):
                raise _too_large(limit)
            return HttpResponse(head.status, head.headers, body.read(limit))
        finally:
            body.close()

    def open(self, request: HttpRequest, deadline: float | None) -> tuple[HttpResponse, Body]:
        """Send, and return the head of the response and its body, still to read."""
        try:
            built = self.client.build_request(
                request.method,
                request.path,
                params=request.params or None,
                headers=request.headers,
                content=request.body,
                timeout=_timeout(_remaining(deadline)),
            )
            response = self.client.send(built, stream=True)
        except httpx.HTTPError as exc:
            raise _coded(exc, self.url) from None
        return _head(response), Body(response, self.url, deadline)

    def close(self) -> None:
        self.client.close()


class AsyncHttpTransport:
    """The async transport: an ``httpx.AsyncClient``, or ``httpx.ASGITransport`` for an app."""

    def __init__(
        self,
        target: Target,
        *,
        max_response_size: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if transport is None and not isinstance(target, str):
            transport = httpx.ASGITransport(target)
        self.url = base_url(target)
        self.max_response_size = max_response_size
        self.client = httpx.AsyncClient(
            base_url=self.url, transport=transport, headers={"user-agent": USER_AGENT}
        )

    async def send(self, request: HttpRequest, deadline: float | None) -> HttpResponse:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            # The whole exchange, body included, within the deadline; leaving
            # the block early closes the connection, which tells the server.
            async with asyncio.timeout(remaining):
                return await self._send(request, remaining)
        except TimeoutError:
            message = f"deadline exceeded waiting for {self.url}"
            raise fail(Code.DEADLINE_EXCEEDED, message) from None
        except httpx.HTTPError as exc:
            raise _coded(exc, self.url) from None

    async def _send(self, request: HttpRequest, remaining: float | None) -> HttpResponse:
        limit = self.max_response_size
        built = self.client.build_request(
            request.method,
            request.path,
            params=request.params or None,
            headers=request.headers,
            content=request.body,
            timeout=_timeout(remaining),
        )
        response = await self.client.send(built, stream=True)
        try:
            if _declared_too_large(response, limit):
                raise _too_large(limit)
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
            return HttpResponse(response.status_code, response.headers, b"".join(chunks))
        finally:
            await response.aclose()

    async def open(
        self, request: HttpRequest, deadline: float | None
    ) -> tuple[HttpResponse, AsyncBody]:
        """Send, and return the head of the response and its body, still to read."""
        remaining = _remaining(deadline)
        try:
            built = self.client.build_request(
                request.method,
                request.path,
                params=request.params or None,
                headers=request.headers,
                content=request.body,
                timeout=_timeout(remaining),
            )
            async with asyncio.timeout(remaining):
                response = await self.client.send(built, stream=True)
        except TimeoutError:
            raise fail(
                Code.DEADLINE_EXCEEDED, f"deadline exceeded waiting for {self.url}"
            ) from None
        except httpx.HTTPError as exc:
            raise _coded(exc, self.url) from None
        return _head(response), AsyncBody(response, self.url, deadline)

    async def aclose(self) -> None:
        await self.client.aclose()


class PortalTransport(httpx.BaseTransport):
    """An ASGI app behind a sync ``httpx.Client``: the app runs on an event loop
    of its own, in a daemon thread, and each request waits for its answer.

    Like ``httpx.ASGITransport``, it does not run the app's lifespan; and the
    app's objects live on that loop, so they must not be shared with
    another one (an async database engine made elsewhere, say).
    """

    def __init__(self, app: ASGIApp) -> None:
        self._asgi = httpx.ASGITransport(app)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="twofold-asgi", daemon=True
        )
        self._thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        future = asyncio.run_coroutine_threadsafe(self._handle(request, body), self._loop)
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        try:
            status, headers, content = future.result(timeouts.get("read"))
        except TimeoutError:
            future.cancel()
            raise httpx.ReadTimeout("the app did not answer in time", request=request) from None
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _handle(
        self, request: httpx.Request, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        copy = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        response = await self._asgi.handle_async_request(copy)
        # The raw bytes: content-encoding stays for the outer client to undo.
        content = b"".join([chunk async for chunk in response.aiter_raw()])
        return response.status_code, response.headers.raw, content

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
