"""One request/response exchange on an HTTP/2 connection, as its call sees it.

The connection's reader (:mod:`twofold.client.h2connection`) pushes the
stream's head, data, trailers and end in; the call reads the data chunk by
chunk, which is when the bytes are given back to the server's window, and
sends its own as the server's window allows. A stream the call leaves
while it is still open is reset with CANCEL: that is how the server hears
the call was cancelled.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from twofold.client.errors import Failure

if TYPE_CHECKING:
    from twofold.client.h2connection import Connection

Headers = list[tuple[str, str]]


class StreamDone(Exception):
    """Sending on a stream the server already ended or reset: its reader says how."""


class Stream:
    """One request/response exchange on a :class:`Connection`."""

    def __init__(self, connection: Connection, stream_id: int) -> None:
        self.id = stream_id
        self._connection = connection
        self._head: asyncio.Future[Headers] = asyncio.get_running_loop().create_future()
        self._chunks: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue()
        self._window = asyncio.Event()
        self.trailers: Headers | None = None
        self.error: Failure | None = None
        self.ended = False  # the server ended its side
        self.sent_end = False
        self._closed = False

    # Called by the connection's reader.
    def on_head(self, headers: Headers) -> None:
        if not self._head.done():
            self._head.set_result(headers)

    def on_data(self, data: bytes, flow: int) -> None:
        self._chunks.put_nowait((data, flow))

    def on_end(self) -> None:
        self.ended = True
        self.on_head([])  # an end with no head at all: the reader reports it
        self._chunks.put_nowait(None)
        self._window.set()

    def on_failure(self, failure: Failure) -> None:
        if self.error is None:
            self.error = failure
        if not self._head.done():
            self._head.set_exception(failure)
            self._head.exception()  # a stream nobody reads must not log it as lost
        self._chunks.put_nowait(None)
        self._window.set()

    def on_window(self) -> None:
        self._window.set()

    # Called by the call.
    async def head(self) -> Headers:
        """The response headers (those of a trailers-only response included)."""
        return await asyncio.shield(self._head)

    async def read(self) -> bytes | None:
        """The next chunk of the body, or None at its end; raises how the stream failed."""
        item = await self._chunks.get()
        if item is None:
            self._chunks.put_nowait(None)  # the end stays the end
            # A connection lost after the server ended the stream takes nothing from it.
            if self.error is not None and not self.ended:
                raise self.error
            return None
        data, flow = item
        self._connection.consumed(self.id, flow)
        return data

    async def send(self, data: bytes, *, end: bool = False) -> None:
        """Send ``data`` as the server's flow-control windows allow."""
        view = memoryview(data)
        connection = self._connection
        while view:
            self._check_open()
            size = min(len(view), connection.window(self.id), connection.max_frame)
            if size <= 0:
                self._window.clear()
                await self._window.wait()
                continue
            chunk, view = view[:size].tobytes(), view[size:]
            last = end and not view  # the end in the last DATA frame: one frame fewer
            connection.send_data(self.id, chunk, end=last)
            self.sent_end = last
            await connection.flush()
        if end and not self.sent_end:
            self._check_open()
            self.sent_end = True
            connection.end_stream(self.id)
            await connection.flush()

    def _check_open(self) -> None:
        if self.error is not None or self.ended or self._closed:
            raise StreamDone

    def close(self) -> None:
        """End the exchange; a stream still open is reset with CANCEL, which the
        server sees as the call cancelled."""
        if self._closed:
            return
        self._closed = True
        if self.error is None and not (self.ended and self.sent_end):
            self._connection.reset(self.id)
        # What arrived unread still counts against the connection's window: give it back.
        while not self._chunks.empty():
            item = self._chunks.get_nowait()
            if item is not None:
                self._connection.consumed(self.id, item[1])
        self._connection.forget(self.id)
