"""One ``write()`` for a small response's head and body on uvicorn's httptools protocol.

uvicorn writes the head when the app sends ``http.response.start`` and the
body when it sends ``http.response.body``: two ``transport.write`` calls,
so two ``send()`` system calls and, with ``TCP_NODELAY``, two TCP segments
for a response that fits in one (ASGI has no message carrying both).
:class:`Coalescer` stands between a request's cycle and the connection's
transport: what the cycle writes in one turn of the event loop leaves in
one write, when the response ends (:meth:`flush`, from the protocol's
``on_response_complete``) or at the end of that turn, whichever is first,
so a head whose body comes later (a stream, a long poll) is never held
back longer than the turn that wrote it.
"""

from __future__ import annotations

import asyncio


class Coalescer:
    """The ``transport`` of a connection's request cycles (``write``, ``close``,
    ``is_closing``: all a cycle uses)."""

    __slots__ = ("_held", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = [data]
            self._loop.call_soon(self.flush)
        else:
            held.append(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if self.transport.is_closing():
                return  # the client is gone, or a refusal closed the connection
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()
