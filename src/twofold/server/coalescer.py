"""One ``write()`` for a response's head and first body bytes on uvicorn's httptools protocol.

uvicorn writes the head at ``http.response.start`` and the body at
``http.response.body``: two ``send()`` system calls and, with
``TCP_NODELAY``, two TCP segments for a response that fits in one.
:class:`Coalescer` holds the head of a response of known length (or none)
until its first body write or its end (a HEAD, a 304): one write. A
chunked response's head (SSE, a long download) leaves at once, and an
interim ``100 Continue`` is never held. On REST GET it costs 4% more
user-space instructions and saves a fifth of the server's system time
(docs/benchmarks.md, "One write per small response").
"""

from __future__ import annotations

import asyncio
from typing import Any

from twofold.interceptors.access import CALL_LINES

# The access line's status from the head's three digits: a lookup costs a
# fraction of parsing them, on every request the access log is on.
_STATUS = {b"%d" % code: code for code in range(100, 600)}


class Coalescer:
    """The ``transport`` of a connection's request cycles (``write``, ``close``,
    ``is_closing``: all a cycle uses); :meth:`begin` for each new cycle."""

    __slots__ = ("_cycle", "_held", "head", "line", "transport", "writer")

    def __init__(self, transport: asyncio.Transport, writer: Any = None) -> None:
        self.transport = transport
        self.writer = writer  # what takes the access log's lines, if it is on
        self._cycle: Any = None
        self.head = False  # this cycle's head is written (or held)
        self._held: bytes | None = None
        # The access-log line of the cycle's request (twofold.server.accesslines),
        # told the status from the head: uvicorn keeps it nowhere else.
        self.line: Any = None

    def begin(self, cycle: Any) -> None:
        self._cycle = cycle
        self.head = False
        self.line = cycle.scope.get(CALL_LINES)

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self.transport.write(held + data)
        elif not self.head and self._cycle.response_started:
            # The cycle's first write once the response started is its head,
            # which uvicorn begins with its status line: "HTTP/1.1 200 OK".
            self.head = True
            if self.line is not None:
                code = data[9:12]
                self.line.status = _STATUS.get(code) or int(code)
            if self._cycle.chunked_encoding:
                self.transport.write(data)
            else:
                self._held = data
        else:
            self.transport.write(data)

    def flush(self) -> None:
        """Write a head still held (the response ended with no body write)."""
        held = self._held
        if held is not None:
            self._held = None
            if not self.transport.is_closing():  # else the client is gone
                self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()
