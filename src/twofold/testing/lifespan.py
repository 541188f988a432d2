"""An ASGI app's lifespan, run the way a server runs it, around a test.

Like a server (uvicorn's ``LifespanOn``), this speaks the ASGI lifespan
protocol to the app: ``lifespan.startup`` before the first request,
``lifespan.shutdown`` after the last. It works for any ASGI app, a Twofold
App mounted in another framework's included.
"""

from __future__ import annotations

import asyncio
from typing import Any

from twofold.core.asgi import ASGIApp, Message


class LifespanError(RuntimeError):
    """The app's startup or shutdown failed; the message is the app's."""


class Lifespan:
    """``await startup()``, the test, ``await shutdown()``, on one event loop."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        """Start the app; LifespanError if its startup fails."""
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }

        async def run() -> None:
            await self.app(scope, self._to_app.get, self._from_app.put)

        self._task = asyncio.create_task(run())
        await self._to_app.put({"type": "lifespan.startup"})
        answer = await self._answer()
        if answer["type"] == "lifespan.startup.failed":
            await self._task
            raise LifespanError(f"the app's startup failed: {answer.get('message', '')}")
        if answer["type"] != "lifespan.startup.complete":
            raise LifespanError(f"the app answered lifespan.startup with {answer['type']!r}")

    async def shutdown(self) -> None:
        """Stop the app; LifespanError if its shutdown fails."""
        if self._task is None or self._task.done():
            return
        await self._to_app.put({"type": "lifespan.shutdown"})
        answer = await self._answer()
        await self._task
        if answer["type"] == "lifespan.shutdown.failed":
            raise LifespanError(f"the app's shutdown failed: {answer.get('message', '')}")

    async def _answer(self) -> Message:
        """The app's next lifespan message; its exception if it raised instead."""
        assert self._task is not None
        getter = asyncio.ensure_future(self._from_app.get())
        await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        self._task.result()  # the app's exception, as a server would report it
        raise LifespanError("the app returned from its lifespan without answering")
