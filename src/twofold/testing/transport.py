"""httpx transports that call an ASGI app in process and stream its answer.

``httpx.ASGITransport`` (0.28, 0.29) collects the whole response body before
it returns the response: a server stream is only seen once the handler has
ended, and one that never ends hangs the test. :class:`AppTransport` runs the
app as a task and hands each ``http.response.body`` message over as it is
sent, so a test reads a stream as a client on a socket would; closing the
response early tells the app ``http.disconnect`` and cancels it, as a
dropped connection does.

:class:`PortalTransport` is the same for a sync ``httpx.Client``: the app
runs on the :class:`Portal`'s event loop, in a thread, and each chunk is
fetched from there when the caller reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import httpx

from twofold.core.asgi import ASGIApp, Message

T = TypeVar("T")

# Body messages held for the reader before the app's ``send`` waits: a
# stream is read at the reader's pace, as flow control paces it on a socket.
_BUFFERED = 16


class Portal:
    """An event loop of its own, in a daemon thread, that sync code calls into.

    The app's lifespan, its requests and a gRPC server started for it all run
    on this one loop, so that what the lifespan opens (a database pool, say)
    is used on the loop it belongs to.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="twofold-testing", daemon=True
        )
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (TimeoutError past ``timeout``)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.call(_cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


async def _cancel_the_rest() -> None:
    """Cancel what is still running (a stream nobody closed) and let it unwind."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class _Exchange:
    """One call of the app: its task, the messages it sends, and the client leaving."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Message] = asyncio.Queue(_BUFFERED)
        self.gone = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def send(self, message: Message) -> None:
        if self.gone.is_set():
            # As ASGI (2.4) says a server does on a closed connection. Dropping
            # the message instead would let a handler that never awaits
            # spin on the loop, never reaching the cancellation it was sent.
            raise OSError("the client has closed the connection")
        await self.messages.put(message)

    async def take(self) -> Message | None:
        """The app's next message, or None once it has returned with nothing more."""
        assert self.task is not None
        if not self.messages.empty():
            return self.messages.get_nowait()
        if self.task.done():
            self.task.result()  # the app's exception, raised to the reader
            return None
        getter = asyncio.ensure_future(self.messages.get())
        await asyncio.wait({getter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        return await self.take()

    async def close(self) -> None:
        """Leave: the app's ``receive`` says ``http.disconnect``, and it is cancelled."""
        assert self.task is not None
        self.gone.set()
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class _ResponseBody(httpx.AsyncByteStream):
    """The app's body messages as they come; closing it disconnects the app."""

    def __init__(self, exchange: _Exchange) -> None:
        self._exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._exchange.take()
            if message is None:
                return  # the app returned before its last body message
            if message["type"] != "http.response.body":
                continue
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return

    async def aclose(self) -> None:
        await self._exchange.close()


class AppTransport(httpx.AsyncBaseTransport):
    """An ASGI app called in process on the running loop, its response streamed."""

    def __init__(self, app: ASGIApp, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port or 80),
            "client": self.client,
            "root_path": "",
        }
        chunks = request.stream.__aiter__()
        sent_all = False
        exchange = _Exchange()

        async def receive() -> Message:
            nonlocal sent_all
            if not sent_all:
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    sent_all = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                return {"type": "http.request", "body": chunk, "more_body": True}
            # The request is all read: the next event is the client leaving.
            await exchange.gone.wait()
            return {"type": "http.disconnect"}

        async def run() -> None:
            await self.app(scope, receive, exchange.send)

        exchange.task = asyncio.create_task(run())
        try:
            start = await exchange.take()
        except BaseException:
            await exchange.close()
            raise
        if start is None:
            raise RuntimeError("the app returned without sending a response")
        if start["type"] != "http.response.start":
            await exchange.close()
            raise RuntimeError(f"the app sent {start['type']!r} before http.response.start")
        status, headers = start["status"], start.get("headers", [])
        if request.method == "HEAD":
            await exchange.close()
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, headers=headers, stream=_ResponseBody(exchange))


class _PortalBody(httpx.SyncByteStream):
    """A response body on the portal's loop, read chunk by chunk from this thread."""

    def __init__(self, portal: Portal, body: httpx.AsyncByteStream, read: float | None) -> None:
        self._portal = portal
        self._body = body
        self._chunks = body.__aiter__()
        self._read = read

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                yield self._portal.call(_next(self._chunks), self._read)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise httpx.ReadTimeout("the app sent nothing in time") from None

    def close(self) -> None:
        if not self._portal.loop.is_closed():
            self._portal.call(self._body.aclose())


async def _next(chunks: AsyncIterator[bytes]) -> bytes:
    return await anext(chunks)


class PortalTransport(httpx.BaseTransport):
    """An ASGI app behind a sync ``httpx.Client``, run on a :class:`Portal`'s loop."""

    def __init__(self, app: ASGIApp, portal: Portal) -> None:
        self._asgi = AppTransport(app)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # The request body is read here, in the caller's thread: a sync
        # iterable cannot be read from the loop's.
        body = request.read()
        copy = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        read = timeouts.get("read")
        try:
            response = self._portal.call(self._asgi.handle_async_request(copy), read)
        except TimeoutError:
            raise httpx.ReadTimeout("the app did not answer in time", request=request) from None
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers.raw,
            stream=_PortalBody(self._portal, stream, read),
            request=request,
        )
