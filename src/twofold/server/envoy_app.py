"""The App inside Envoy (``twofold serve --server pyvoy``), as pyvoy imports it.

pyvoy imports ``twofold.server.envoy_app:app`` inside each Envoy process,
which loads the target the CLI named (``$TWOFOLD_APP``) and serves it
through :class:`Controlled`: the checks Envoy cannot make (the request
target's length, 414; a body that stalls, 408), and the end of the control
pipe through which the supervisor (:mod:`twofold.server.envoy_supervisor`)
tells the App to drain and, at the end of the grace period, to end the
calls still in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from typing import Any

from twofold.core.asgi import ASGIApp, Message, Receive, Scope, Send
from twofold.server.envoy_sockets import Hop, from_edge
from twofold.server.health import Readiness
from twofold.server.limits import ServerLimits
from twofold.server.loader import ENV_TARGET, load_served

logger = logging.getLogger("twofold.server")

ENV_LIMITS = "TWOFOLD_LIMITS"  # the limits, as JSON, for the App inside Envoy
ENV_CONTROL = "TWOFOLD_CONTROL_FD"  # the read end of the supervisor's control pipe
DRAIN = b"d"  # stopping: readiness (/readyz, gRPC health) says no from now on
CUT = b"c"  # the grace period is over: end the calls still in flight
PROBLEM = "application/problem+json"


class Controlled:
    """``app`` as the supervisor drives it, from inside Envoy.

    - ``max_url_bytes``: a request target longer than this is 414 (Envoy has
      no limit on the target alone); None: no check.
    - ``body_timeout``: a request body that gets no byte for this long while
      the App reads it is 408 (if the App has not answered yet), as on
      uvicorn (:mod:`twofold.server.uvicorn_limits`); None: no check. Envoy's
      only timer for it, ``stream_idle_timeout``, would also end a server
      stream that is quiet as long, so the clock is here, on the App's reads.
      A gRPC or Connect stream's body is its client's messages, which may
      pause as long as the call lives: its deadline bounds it, as on grpcio.
    - WebSocket connections, which pyvoy starts on a loop of its own, are
      served on the lifespan's (:mod:`twofold.server.envoy_sockets`), with
      the client's address and scheme (:func:`~twofold.server.envoy_sockets.from_edge`).
    - The control pipe (``$TWOFOLD_CONTROL_FD``), watched from the lifespan on,
      on the loop that runs every call (pyvoy runs the App on one event loop,
      whatever Envoy's worker threads): :data:`DRAIN` turns ``readiness`` to
      draining, :data:`CUT` cancels every call in flight, as uvicorn does when
      its grace period is over, so that a stream still open ends with
      UNAVAILABLE on its wire (:func:`twofold.wires.exchange.stopping`) rather
      than being cut by Envoy's exit. The pipe reading as closed means the
      supervisor is gone (even killed with SIGKILL): the App drains, ends its
      calls and stops Envoy, so that an orphaned Envoy does not keep the port.
    """

    def __init__(
        self,
        app: ASGIApp,
        readiness: Readiness | None,
        max_url_bytes: int | None = None,
        body_timeout: float | None = None,
    ) -> None:
        self.app = app
        self.readiness = readiness
        self.max_url_bytes = max_url_bytes
        self.body_timeout = body_timeout
        self.calls: set[asyncio.Task[Any]] = set()
        self.home: asyncio.AbstractEventLoop | None = None  # the lifespan's loop, the App's
        self.cut = False  # the calls in flight were cancelled on the supervisor's word
        # The body clocks of the calls reading a body, and the one timer that
        # looks at them while there are any (see _BodyClock).
        self.clocks: set[_BodyClock] = set()
        self.ticking = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.home = asyncio.get_running_loop()
            self._watch()
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            scope = from_edge(scope)
            if self.home is not None and asyncio.get_running_loop() is not self.home:
                # Started by pyvoy on a loop of its own: served on the App's.
                await Hop(self.home, receive, send).serve(self, scope)
                return
        if scope["type"] == "http" and self.max_url_bytes is not None:
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            if size > self.max_url_bytes:
                await _too_long(send, self.max_url_bytes)
                return
        task = asyncio.current_task()
        if task is None:
            await self.app(scope, receive, send)
            return
        self.calls.add(task)
        started = False
        clock = None
        if scope["type"] == "http" and self.body_timeout is not None and not _streams(scope):
            clock = _BodyClock(receive)
            receive = clock
            self.clocks.add(clock)
            if not self.ticking:
                self.ticking = True
                loop = asyncio.get_running_loop()
                loop.call_later(self._tick_seconds(), self._tick, loop)

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] in ("http.response.start", "websocket.accept")
            try:
                await send(message)
            except Exception as exc:
                # ASGI (2.4) says a send after the client left raises OSError,
                # which the wires take as "gone" (uvicorn's does). pyvoy's is
                # its own, made by its native module and reachable by no
                # import, so known by name: it would escape as an unhandled
                # error, its traceback logged for every stream a client abandons.
                if type(exc).__qualname__ == "ClientDisconnectedError":
                    raise OSError("the client disconnected") from exc
                raise

        try:
            await self.app(scope, receive, sending)
            if clock is not None and clock.stalled and not started:
                # The App saw its client gone (http.disconnect) and answered
                # nobody: the client hears why, and the connection closes.
                await _problem(send, 408, "Request Timeout", _STALLED % self.body_timeout)
        except asyncio.CancelledError:
            if not self.cut:  # the client went away, or pyvoy ended the call
                raise
            task.uncancel()
            if scope["type"] == "http" and not started:
                # Ended by the grace period before it answered: 503, which gRPC
                # and Connect clients read as UNAVAILABLE.
                await _unavailable(send)
        finally:
            self.calls.discard(task)
            if clock is not None:
                self.clocks.discard(clock)

    def _tick_seconds(self) -> float:
        # A stalled read is found between body_timeout and a quarter more after it.
        assert self.body_timeout is not None
        return min(1.0, self.body_timeout / 4)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Expire the reads that have waited longer than the body timeout."""
        assert self.body_timeout is not None
        if not self.clocks:
            self.ticking = False
            return
        oldest = loop.time() - self.body_timeout
        for clock in self.clocks:
            if clock.since is not None and clock.since < oldest:
                clock.expire()
        loop.call_later(self._tick_seconds(), self._tick, loop)

    def _watch(self) -> None:
        fd = os.environ.get(ENV_CONTROL)
        if fd is None:  # Envoy started by someone else: nobody to listen to
            return
        loop = asyncio.get_running_loop()
        loop.add_reader(int(fd), self._read, loop, int(fd))

    def _read(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        try:
            data = os.read(fd, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if (DRAIN in data or not data) and self.readiness is not None:
            self.readiness.drain()
        if CUT in data or not data:
            self.cut = True
            for call in list(self.calls):
                call.cancel()
        if not data:
            loop.remove_reader(fd)
            logger.warning("The supervisor is gone: stopping")
            # Envoy's own SIGTERM, once the calls have seen their cancellation.
            loop.call_later(1.0, os.kill, os.getpid(), signal.SIGTERM)


_STALLED = "the request body got no byte for %g s"
# Bodies that are a client's stream of messages (gRPC, Connect streaming):
# not a body that stalls, a stream that pauses; the call's deadline bounds it.
_STREAMED = (b"application/grpc", b"application/connect+")


def _streams(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            value = value.lower()
            return value.startswith(_STREAMED) and not value.startswith(b"application/grpc-web")
    return False


class _BodyClock:
    """``receive`` with the body timeout on each read of the body: a read that
    waits longer tells the App its client is gone (``http.disconnect``), which
    ends its call as a disconnect would, and :class:`Controlled` answers 408.
    Once the body is whole, reads go straight through.

    A read notes when it began, and :class:`Controlled`'s one timer expires
    it (cancelling the task that waits in it) once it has waited too long: an
    ``asyncio.timeout`` around each read, a timer made and cancelled per
    request, cost 40,000 instructions on every POST (docs/benchmarks.md).
    """

    __slots__ = ("reader", "receive", "since", "stalled", "whole")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.whole = False
        self.stalled = False
        self.since: float | None = None  # when the read now waiting began
        self.reader: asyncio.Task[Any] | None = None  # the task waiting in it

    async def __call__(self) -> Message:
        if self.whole:
            return await self.receive()
        reader = self.reader = asyncio.current_task()
        self.since = asyncio.get_running_loop().time()
        try:
            message = await self.receive()
        except asyncio.CancelledError:
            # Ours (expire), unless someone else cancelled the task as well.
            if not self.stalled or reader is None or reader.uncancel() > 0:
                raise
            self.whole = True
            return {"type": "http.disconnect"}
        finally:
            self.since = None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.whole = True
        return message

    def expire(self) -> None:
        """The read waiting now has waited too long: end it."""
        if self.stalled or self.reader is None:
            return
        self.stalled = True
        self.since = None
        self.reader.cancel()


async def _too_long(send: Send, limit: int) -> None:
    detail = f"the request target is longer than {limit} bytes"
    await _problem(send, 414, "URI Too Long", detail)


async def _unavailable(send: Send) -> None:
    await _problem(send, 503, "Service Unavailable", "the server is shutting down")


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        separators=(",", ":"),
    ).encode()
    headers = [(b"content-type", PROBLEM.encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def __getattr__(name: str) -> Any:
    """``app``: what pyvoy imports inside Envoy, loaded on first use."""
    if name != "app":
        raise AttributeError(name)
    limits = json.loads(os.environ.get(ENV_LIMITS, "{}"))
    served, inner = load_served(os.environ[ENV_TARGET])
    max_url_bytes = limits.get("max_url_bytes", ServerLimits().max_url_bytes)
    found = Controlled(served, inner.readiness, max_url_bytes, limits.get("body_timeout"))
    globals()["app"] = found
    return found
