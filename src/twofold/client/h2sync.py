"""The h2 gRPC calls for the sync :class:`~twofold.Client`.

The async calls (:mod:`twofold.client.h2grpc`) run on an event loop of the
client's own, in a daemon thread, as the in-process ASGI transport does;
each call waits for its answer. A request iterable is read in a worker
thread, so one that blocks does not stop the loop the other calls share.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from twofold.client.codecs import Codecs
from twofold.client.h2grpc import AsyncH2GrpcCalls
from twofold.client.rpc import Rpc

T = TypeVar("T")


_END = object()


async def _threaded(messages: Iterable[Any]) -> AsyncIterator[Any]:
    """A sync iterable read in a worker thread: a generator that blocks (one
    waiting for the previous answer, in a bidi call) does not stop the loop."""
    iterator = iter(messages)
    while (message := await asyncio.to_thread(next, iterator, _END)) is not _END:
        yield message


class H2GrpcCalls:
    """The same calls for the sync :class:`~twofold.Client`: the async ones run
    on an event loop of the client's own, in a daemon thread, as the
    in-process ASGI transport does; each call waits for its answer."""

    def __init__(
        self, target: object, codecs: Codecs, *, max_response_size: int, headers: Mapping[str, str]
    ) -> None:
        self._calls = AsyncH2GrpcCalls(
            target, codecs, max_response_size=max_response_size, headers=headers
        )
        self.url = self._calls.url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="twofold-grpc-h2", daemon=True
        )
        self._thread.start()

    def _run(self, step: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(step, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # KeyboardInterrupt in the caller: the call ends too
            raise

    def unary(
        self, rpc: Rpc[Any, Any], message: Any, deadline: float | None, headers: Mapping[str, str]
    ) -> Any:
        return self._run(self._calls.unary(rpc, message, deadline, headers))

    def client_stream(
        self,
        rpc: Rpc[Any, Any],
        messages: Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
    ) -> Any:
        return self._run(self._calls.client_stream(rpc, _threaded(messages), deadline, headers))

    def stream(
        self,
        rpc: Rpc[Any, Any],
        messages: Iterable[Any],
        deadline: float | None,
        headers: Mapping[str, str],
        *,
        single: bool,
    ) -> Iterator[Any]:
        requests = messages if single else _threaded(messages)
        outputs = self._calls.stream(rpc, requests, deadline, headers, single=single)
        try:
            while True:
                try:
                    output = self._run(anext(outputs))
                except StopAsyncIteration:
                    return
                yield output
        finally:
            if not self._loop.is_closed():  # else the client closed first, and the call with it
                self._run(outputs.aclose())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._calls.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
