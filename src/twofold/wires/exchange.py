"""What the streaming HTTP protocols share: a client that goes away cancels the call.

A unary call notices a disconnect when it next reads the body; a streaming
response may run for minutes after the body was read, so someone has to
keep listening. :class:`Exchange` runs the exchange as a task and, once the
request body is consumed, watches ``receive`` for ``http.disconnect`` and
cancels that task: the handler's generator sees ``CancelledError`` at its
next ``await`` or ``yield``, and its ``finally`` blocks run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from twofold.core.asgi import Receive


class Exchange:
    """One streaming call, cancelled if the client disconnects."""

    __slots__ = ("_receive", "_task", "_watcher", "gone")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.gone = False

    async def run(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` to its end, or until the client disconnects."""
        self._task = task = asyncio.ensure_future(work)
        try:
            await task
        except asyncio.CancelledError:
            if not self.gone:
                raise  # the server cancelled us, not the client
        finally:
            if self._watcher is not None:
                self._watcher.cancel()

    def watch(self) -> None:
        """Start listening for a disconnect: call once the request body is consumed."""
        if self._watcher is None:
            self._watcher = asyncio.ensure_future(self._watch())

    def disconnected(self) -> None:
        """The client is gone: cancel the exchange."""
        self.gone = True
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected()
                return
