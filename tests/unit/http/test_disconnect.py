"""Waiting for a client to leave: on servers whose receive after the body waits, and others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from twofold.http.body import disconnect

Message = dict[str, Any]


class Ready:
    """An awaitable that is done at once and never suspends, as pyvoy 1.3's receive is."""

    def __init__(self, message: Message) -> None:
        self.message = message

    def __await__(self) -> Generator[Any, None, Message]:
        return self.message
        yield  # a generator, so that awaiting it returns without suspending


def eager(answers: int) -> tuple[Callable[[], Awaitable[Message]], list[int]]:
    """pyvoy's receive after the body: an empty final http.request ``answers``
    times, then http.disconnect; ``calls`` counts the calls."""
    calls: list[int] = []

    def receive() -> Awaitable[Message]:
        calls.append(1)
        if len(calls) > answers:
            return Ready({"type": "http.disconnect"})
        return Ready({"type": "http.request", "body": b"", "more_body": False})

    return receive, calls


def test_a_receive_that_answers_at_once_does_not_hold_the_event_loop() -> None:
    async def main() -> list[str]:
        receive, calls = eager(answers=3)
        seen: list[str] = []

        async def other() -> None:
            # Another request of the same process: it runs while the watcher waits.
            while len(calls) < 4:
                seen.append(f"ran after {len(calls)} receives")
                await asyncio.sleep(0)

        other_task = asyncio.ensure_future(other())
        await disconnect(receive)
        await other_task
        return seen

    seen = asyncio.run(main())
    # The other task ran between the watcher's receives, not only after them.
    assert "ran after 2 receives" in seen and "ran after 3 receives" in seen


def test_a_receive_that_waits_is_called_once() -> None:
    async def main() -> int:
        gone = asyncio.Event()
        calls = 0

        async def receive() -> Message:
            nonlocal calls
            calls += 1
            await gone.wait()
            return {"type": "http.disconnect"}

        watcher = asyncio.ensure_future(disconnect(receive))
        await asyncio.sleep(0)
        gone.set()
        await watcher
        return calls

    assert asyncio.run(main()) == 1
