"""``twofold serve``'s access log: one JSON line per request, buffered, written off the event loop.

Every HTTP request gets one line (:class:`RequestLine`) when it ends (a
stream's at its end): its call's line (with :class:`~twofold.AccessLog`)
plus the request's ``request`` and ``status``, or the server's own line for
a request no call covered (a 404, ``/metrics``). WebSocket and gRPC-port
calls get their call line; uvicorn's access log is off (a second line).

Not the logging module: a line through it cost 28 µs on REST GET, where
serving the request costs 37 µs (docs/benchmarks.md, "The access log").
:class:`AccessWriter` hands lines to a thread of its own that writes them
at the latest ``FLUSH_SECONDS`` after a line, at once past ``FLUSH_BYTES``,
and at shutdown (no line lost on SIGTERM). The loop never waits on the
output: past ``MAX_PENDING_BYTES`` waiting lines are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import stat
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec

from twofold.core.context import address
from twofold.interceptors.access import CALL_LINES

logger = logging.getLogger("uvicorn.error")

FLUSH_SECONDS = 0.2
FLUSH_BYTES = 64 * 1024
MAX_PENDING_BYTES = 16 * 1024 * 1024
# Each write() to a pipe at most PIPE_BUF bytes long, cut at line ends: the
# kernel keeps such writes whole, so the lines of several workers sharing
# one pipe never interleave mid-line (longer writes to a pipe may).
PIPE_BUF = getattr(os, "PIPE_BUF", None) or 4096


class AccessWriter:
    """Lines (bytes ending in a newline) gathered on the event loop, written by a thread.

    Called from the event loop's thread only (uvicorn and the grpc.aio
    server share that loop). :meth:`close` writes what is left.
    """

    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdout.fileno() if fd is None else fd
        # A regular file or a terminal takes a chunk in one write (Linux keeps
        # a write to a file whole, workers sharing its offset included); a pipe
        # or a socket, which the workers may share, in pieces cut at PIPE_BUF.
        self._piece = PIPE_BUF if _shared(self._fd) else None
        self._loop = asyncio.get_running_loop()
        self._lines: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending = 0  # bytes handed to the thread and not yet written
        self._lock = threading.Lock()
        self.dropped = 0  # lines dropped because the output did not keep up
        # Bound once, for the server to give each RequestLine: calling it
        # skips the lookup of the instance's __call__ on every line.
        self.add: Callable[[bytes], None] = self.__call__
        self._thread = threading.Thread(target=self._write_chunks, name="access-log", daemon=True)
        self._thread.start()

    def __call__(self, line: bytes) -> None:
        self._lines.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Hand the gathered lines to the writing thread."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        chunk = b"".join(self._lines)
        lines = len(self._lines)
        self._lines.clear()
        self._size = 0
        with self._lock:
            if self._pending + len(chunk) > MAX_PENDING_BYTES:
                self.dropped += lines
                return
            self._pending += len(chunk)
        self._chunks.put(chunk)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is left and stop the thread (waiting ``timeout`` at most on a
        stalled output: a stopping server does not hang on its log)."""
        self.flush()
        self._chunks.put(None)
        self._thread.join(timeout)
        if self.dropped:
            logger.warning(
                "The access log dropped %d lines: its output did not keep up", self.dropped
            )

    def _write_chunks(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            # An output that is gone (a closed pipe) leaves nothing to tell.
            with contextlib.suppress(OSError):
                self._write(chunk)
            with self._lock:
                self._pending -= len(chunk)

    def _write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        start, size = 0, len(chunk)
        while start < size:
            end = size
            if self._piece is not None and end - start > PIPE_BUF:
                cut = chunk.rfind(b"\n", start, start + PIPE_BUF)
                # A line longer than PIPE_BUF goes alone, in as many writes as it takes.
                end = cut + 1 if cut >= 0 else chunk.find(b"\n", start) + 1 or size
            start += os.write(self._fd, view[start:end])


def _shared(fd: int) -> bool:
    """Whether ``fd`` is a pipe or a socket, where long writes may interleave."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return True
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


_encode = msgspec.json.Encoder().encode


class _ServerLine(msgspec.Struct, gc=False):
    """The server's own line, for a request no call covered: encoded from a
    struct, a third cheaper than from a dict (no keys to hash)."""

    protocol: str
    request: str
    status: int
    duration_ms: float
    peer: str | None


class RequestLine:
    """The access-log line of one HTTP request, at ``scope[CALL_LINES]``.

    Its call lines (the App's AccessLog) are held and written, with the
    request's ``request`` (the HTTP method and path) and ``status`` added,
    once both the request and its calls have ended: a stream's handler may
    end after the response did (cancelled when the client went away). A
    request no call covered gets the server's line: ``protocol`` "http",
    ``request``, ``status``, ``duration_ms``, ``peer``. The path is written
    without its query: a query may carry a token or what the caller typed,
    which the access log never shows.

    Told the ``status`` and :meth:`close` d by whoever serves the request:
    uvicorn's httptools protocol (:mod:`twofold.server.uvicorn_limits`, with
    no ASGI wrapper on the hot path) or :class:`HttpLines`.
    """

    __slots__ = ("calls", "ended", "open", "peer", "request", "start", "status", "write")

    def __init__(
        self, write: Callable[[bytes], None], scope: dict[str, Any], peer: str | None = None
    ) -> None:
        """``peer``: the client's ``host:port`` when the connection has it formatted
        already (once per connection, not per request); else made from the scope."""
        self.write = write
        # What the line says of the request, taken now rather than kept as the
        # scope: the scope keeps the line (scope[CALL_LINES]), and a line that
        # kept the scope would be a reference cycle per request, freed only by
        # the garbage collector (a quarter of REST GET's req/s, measured).
        self.request = f"{scope['method']} {scope['path']}"
        self.peer = peer if peer is not None else address(scope.get("client"))
        self.start = time.perf_counter()
        self.calls: list[dict[str, Any]] | None = None  # most requests of most Apps have none
        self.open = 0  # calls begun and not ended
        self.ended = False
        self.status = 500  # until the response starts: what uvicorn answers an app that failed
        scope[CALL_LINES] = self

    def begin(self) -> None:
        self.open += 1

    def end(self, line: dict[str, Any]) -> None:
        self.open -= 1
        if self.calls is None:
            self.calls = [line]
        else:
            self.calls.append(line)
        if self.ended and not self.open:
            self._flush()

    def close(self) -> None:
        """The request has ended (its response, or its connection)."""
        if self.ended:
            return
        self.ended = True
        if self.open:
            return  # the last call to end writes the lines
        if self.calls is not None:
            self._flush()
            return
        line = _ServerLine(
            "http",
            self.request,
            self.status,
            # milliseconds(), inlined: this is every request's line.
            int((time.perf_counter() - self.start) * 1_000_000 + 0.5) / 1000,
            self.peer,
        )
        self.write(_encode(line) + b"\n")

    def _flush(self) -> None:
        request = self.request
        for line in self.calls or ():
            line["request"] = request
            line["status"] = self.status
            self.write(_encode(line) + b"\n")
        self.calls = []  # written; a call that ends later still counts as covering


class HttpLines:
    """ASGI middleware giving each HTTP request its :class:`RequestLine`, for a server
    that does not (uvicorn's h11 protocol)."""

    def __init__(self, app: Any, writer: AccessWriter) -> None:
        self.app = app
        self.writer = writer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        line = RequestLine(self.writer, scope)

        # Not a coroutine: what it returns (send's) is what the app awaits,
        # one frame less per message.
        def sending(message: Any) -> Any:
            if message["type"] == "http.response.start":
                line.status = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            line.close()
