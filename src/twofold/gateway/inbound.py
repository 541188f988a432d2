"""A client's request stream, relayed to the upstream message by message.

grpcio reads a stream call's requests from an async iterator in a task of
its own; :meth:`Inbound.messages` is that iterator. It reads one envelope
at a time from the ASGI body (never the whole stream), so the upstream sees
each message as the client sends it. Two things must never reach the
upstream as a clean half-close: a request stream that broke (bad framing,
a message too large, JSON that does not parse) and a client that left. Both
cancel the upstream call instead; the relay then learns why from
:attr:`Inbound.error` and :attr:`Inbound.gone`. Once the body has ended, a
watcher keeps reading ``receive`` so that a client leaving while the
upstream still answers cancels the call too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc

from twofold.core.asgi import Receive
from twofold.core.errors import Error
from twofold.http import envelope
from twofold.http.body import ClientDisconnected, disconnect


class Abandoned(Exception):
    """Raised into grpcio's request task: a request iterator that raises makes grpcio
    cancel the call, never half-close it (returning would end the stream cleanly)."""


class Inbound:
    """The request side of one relayed stream call.

    ``convert`` turns each envelope into the bytes that go upstream (a JSON
    message parsed and re-encoded, a binary one as it is), raising the front
    wire's Error for one that cannot go.
    """

    def __init__(
        self,
        reader: envelope.Reader,
        receive: Receive,
        convert: Callable[[envelope.Envelope], bytes],
    ) -> None:
        self._reader = reader
        self._receive = receive
        self._convert = convert
        self._watch: asyncio.Future[None] | None = None
        self._closed = False
        self.call: grpc.aio.Call | None = None
        # Why the upstream call was cancelled by us, if it was.
        self.error: Error | None = None
        self.gone = False

    @property
    def cancelled(self) -> bool:
        """Did the request side cancel the upstream call (and not the upstream fail)?"""
        return self.error is not None or self.gone

    def opened(self, call: grpc.aio.Call) -> None:
        """The upstream call exists: the one to cancel if the request side fails."""
        self.call = call

    async def messages(self) -> AsyncIterator[bytes]:
        try:
            while (item := await self._reader.next()) is not None:
                yield self._convert(item)
        except ClientDisconnected:
            self._cancel(None)
            raise Abandoned from None
        except Error as exc:
            self._cancel(exc)
            raise Abandoned from None
        self._watch = asyncio.ensure_future(self._disconnect())

    async def _disconnect(self) -> None:
        await disconnect(self._receive)
        if not self._closed:
            self._cancel(None)

    def _cancel(self, error: Error | None) -> None:
        if error is None:
            self.gone = True
        else:
            self.error = error
        if self.call is not None:
            self.call.cancel()

    async def close(self) -> None:
        """Stop caring about the client (the call is over).

        The watcher is left to end by itself: every ASGI server answers a
        pending ``receive`` with ``http.disconnect`` once the response is
        complete, whereas cancelling it makes some (pyvoy) log an error per call.
        """
        self._closed = True
