"""The exchange loop's disconnect watch: it runs the call in the server's own
task, listens only from ``WATCH_AFTER`` on, and a client gone before then
still ends the call."""

from __future__ import annotations

import asyncio
from typing import Any

from twofold.wires.exchange import WATCH_AFTER, Exchange


class Receive:
    """The server's side of ``receive`` once the body is read: ``http.disconnect``
    when the client has left (at once if it already has), counted."""

    def __init__(self, gone: bool) -> None:
        self.calls = 0
        self.left = asyncio.Event()
        if gone:
            self.left.set()

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        await self.left.wait()
        return {"type": "http.disconnect"}


def test_a_call_answered_before_the_watch_never_receives() -> None:
    async def main() -> tuple[int, bool]:
        receive = Receive(gone=False)
        exchange = Exchange(receive)
        task = asyncio.current_task()

        async def work() -> None:
            exchange.watch()
            assert asyncio.current_task() is task  # no task of its own

        await exchange.run(work())
        # Past WATCH_AFTER: the watch's timer, had it outlived the call, fires first.
        await asyncio.sleep(WATCH_AFTER * 5)
        return receive.calls, exchange.gone

    assert asyncio.run(main()) == (0, False)


def test_a_client_gone_before_the_watch_still_ends_the_call() -> None:
    async def main() -> tuple[list[str], bool, int]:
        receive = Receive(gone=True)
        exchange = Exchange(receive)
        seen: list[str] = []

        async def work() -> None:
            exchange.watch()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
            finally:
                seen.append("finally")

        await exchange.run(work())  # returns: the client's leaving is no error of ours
        task = asyncio.current_task()
        assert task is not None
        return seen, exchange.gone, task.cancelling()

    # The cancellation was the exchange's and is spent: the task goes on uncancelled.
    assert asyncio.run(main()) == (["cancelled", "finally"], True, 0)


def test_a_server_cancellation_is_not_swallowed() -> None:
    async def main() -> str:
        exchange = Exchange(Receive(gone=False))

        async def work() -> None:
            exchange.watch()
            await asyncio.sleep(30)

        async def call() -> None:
            await exchange.run(work())

        task = asyncio.ensure_future(call())
        await asyncio.sleep(0)
        task.cancel()  # the server stopping, not the client leaving
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "swallowed"

    assert asyncio.run(main()) == "cancelled"
