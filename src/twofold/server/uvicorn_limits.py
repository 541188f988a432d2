"""``ServerLimits`` on uvicorn: its two HTTP/1.1 protocols, with what they lack added.

uvicorn bounds neither the size nor the count of a request's header fields
with httptools (llhttp keeps a header value in memory however long it grows),
times out neither a head nor a body that stops arriving (its keep-alive
timer runs only between requests, and any byte resets it), and refuses no
connection: ``limit_concurrency`` answers 503 per request, after the head
was read. Each protocol class here overrides the few methods it needs (:class:`_Limited`).
"""

from __future__ import annotations

import asyncio
import http
import importlib.util
import logging
import sys
from typing import Any

import h11
from uvicorn._types import ASGI3Application, ASGISendCallable
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from twofold.core.context import address
from twofold.server.accesslines import AccessWriter, HttpLines, RequestLine
from twofold.server.coalescer import Coalescer
from twofold.server.limits import ServerLimits

logger = logging.getLogger("uvicorn.error")
# What h11 may buffer of a head beyond the target and the fields: the method,
# the version, the separators and line ends of up to max_headers fields.
H11_HEAD_SLACK = 4096


class _Refusal(Exception):
    """A request refused while its head is parsed, with the status to answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _problem_body(status: int, detail: str) -> bytes:
    """An RFC 9457 problem, as the App's own refusals are."""
    title = http.HTTPStatus(status).phrase
    return b'{"type":"about:blank","title":"%s","status":%d,"detail":"%s"}' % (
        title.encode(),
        status,
        detail.encode(),
    )


def refusal_bytes(status: int, detail: str) -> bytes:
    """A complete HTTP/1.1 answer, a problem, that closes the connection."""
    body = _problem_body(status, detail)
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, http.HTTPStatus(status).phrase.encode()),
            b"content-type: application/problem+json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )


async def _problem(send: ASGISendCallable, status: int, detail: str) -> None:
    """``refusal_bytes`` as ASGI messages, for a refusal once the head is parsed."""
    logger.warning("Refused a request: %s", detail)
    body = _problem_body(status, detail)
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _State:
    """What a connection keeps for its limits, as one attribute of the protocol.

    uvicorn's protocol has 28 attributes; past 30, CPython stops sharing an
    instance dict's keys, which slows every attribute read uvicorn makes per
    request (these nine as attributes of their own: 1.4% more instructions
    per REST GET).
    """

    __slots__ = (
        "head_bound",
        "head_bytes",
        "head_mark",
        "head_scope",
        "head_since",
        "limits",
        "quiet_since",
        "received",
        "seen",
    )

    def __init__(self, now: float, limits: ServerLimits) -> None:
        self.limits = limits
        self.head_bound = limits.max_url_bytes + limits.max_header_bytes
        self.received = 0  # bytes received on the connection
        self.seen = 0  # ``received`` when watch last looked
        self.quiet_since = now  # when watch last saw bytes come
        self.head_since: float | None = now  # since when a request head has been read
        self.head_scope: Any = None  # httptools: the request whose head that is
        self.head_bytes = 0  # httptools: bytes of the head being read, bar its first read
        self.head_mark = 0  # httptools: ``received`` before the read the head began in, or earlier


class _Limited:
    """What both protocols add: the connection cap, the timeouts and refusals.

    - httptools: ``data_received`` bounds a head that is still unfinished after
      a whole read (what llhttp and uvicorn gather of it), and
      ``on_headers_complete`` checks the exact limits (414, 431) before uvicorn
      starts the app; a ``_Refusal`` raised there comes back out of
      ``feed_data`` as the parser error's context. No wrapper runs per header:
      a Python method that httptools calls from C costs one to three thousand
      instructions, which per header was most of a request's overhead.
    - h11: h11 itself refuses a head larger than ``h11_max_incomplete_event_size``
      (431, or 414 while the request line is unfinished); the exact field and
      target limits are checked before the app is called.

    Mixed in before uvicorn's protocol class, whose attributes it uses
    (``transport``, ``connections``, ``cycle``, ``flow``, ``loop``).
    """

    config: Config
    transport: asyncio.Transport
    connections: set[Any]
    loop: asyncio.AbstractEventLoop
    cycle: Any
    flow: Any
    limited: _State

    def _start(self, transport: asyncio.Transport) -> bool:
        """Whether to serve this new connection; if not, it is answered 503 and closed."""
        limits = _limits(self.config)
        self.limited = _State(self.loop.time(), limits)
        if len(self.connections) < limits.max_connections:
            return True
        # uvicorn's connection_lost, called after the close, needs a transport.
        self.transport = transport
        logger.warning("Refused a connection: %d open", len(self.connections))
        transport.write(refusal_bytes(503, "too many connections"))
        transport.close()
        return False

    @property
    def limits(self) -> ServerLimits:
        return self.limited.limits

    def _refuse(self, status: int, detail: str) -> None:
        logger.warning("Refused a request: %s", detail)
        self.limited.head_since = None
        if not self.transport.is_closing():
            self.transport.write(refusal_bytes(status, detail))
            self.transport.close()

    def _head_since(self, now: float) -> float | None:
        """Since when the request head being read has been (None: none is)."""
        raise NotImplementedError

    def _awaiting_continue(self) -> bool:
        raise NotImplementedError

    def check_deadlines(self, now: float) -> None:
        """Close the connection if its head or body has been too slow (called by ``watch``)."""
        state = self.limited
        flow = self.flow
        if state.received != state.seen or (flow is not None and flow.read_paused):
            # Progress, or reading paused by us (the app has not read what came).
            state.seen = state.received
            state.quiet_since = now
        head = self._head_since(now)
        if head is not None:
            if now - head > self.limits.header_timeout:
                # Nothing received at all: an idle connection, closed without
                # an answer that a client sending its first request just now
                # would take for that request's.
                if state.received:
                    self._refuse(408, "the request head took too long")
                else:
                    self.transport.close()
            return
        cycle = self.cycle
        if (
            cycle is not None
            and cycle.more_body
            and not cycle.response_complete
            and not cycle.disconnected
            and now - state.quiet_since > self.limits.body_timeout
            and not self._awaiting_continue()
        ):
            logger.warning("Closed a connection: its request body stalled")
            if not cycle.response_started:
                self.transport.write(refusal_bytes(408, "the request body stalled"))
            self.transport.close()
            # As connection_lost will: the app's receive() answers http.disconnect now.
            cycle.disconnected = True
            cycle.message_event.set()


# uvicorn[standard] brings httptools; without it (some platforms) h11 serves.
HTTPTOOLS = importlib.util.find_spec("httptools") is not None

if HTTPTOOLS:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class LimitedHttpTools(_Limited, HttpToolsProtocol):
        """uvicorn's httptools protocol, with ``ServerLimits``.

        No per-request timer or timestamp: a head is being read while the
        parser has begun a request (``scope``) that has no cycle yet, and
        ``watch`` notes when it first sees one.
        """

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            writer = _access_writer(self.config)
            if isinstance(writer, AccessWriter):
                self.coalescer = Coalescer(transport, writer.add)
            else:  # None, or a callable a test gave
                self.coalescer = Coalescer(transport, writer)
            self.peer: str | None = None
            if self._start(transport):
                super().connection_made(transport)
                if writer is not None:  # every request's line names it: made once
                    self.peer = address(self.client)

        def on_response_complete(self) -> None:
            coalescer = self.coalescer
            coalescer.flush()  # a head held for a body that never came (HEAD, 304)
            if coalescer.line is not None:
                coalescer.line.close()
            if self.pipeline:  # uvicorn starts the next pipelined request now
                coalescer.begin(self.pipeline[-1][0])
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            line = self.coalescer.line
            if line is not None and not line.ended:
                # Gone before the response ended; before it began: nginx's 499
                # ("client closed request"), not the 500 nobody was sent.
                if not self.coalescer.head:
                    line.status = 499
                line.close()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            # uvicorn's, plus the count of bytes and the refusals of _Refusal.
            self._unset_keepalive_if_required()
            state = self.limited
            cycle = self.cycle
            in_head = cycle is None or cycle.scope is not self.scope
            if not in_head:
                state.head_mark = state.received  # any head begins in this read or later
            state.received += len(data)
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                if isinstance(exc.__context__, _Refusal):
                    self._refuse(exc.__context__.status, exc.__context__.detail)
                    return
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
                return
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            cycle = self.cycle
            if cycle is not None and cycle.scope is self.scope:
                state.head_bytes = 0  # no head being read
            elif in_head:
                # A head still unfinished after a whole read: llhttp holds an
                # unfinished header value itself, and the fields gather in
                # uvicorn's list, until the head ends. Bound what they may
                # gather (counting the reads that came wholly inside the
                # head, so never more than it).
                state.head_bytes += len(data)
                if state.head_bytes > state.head_bound:
                    if len(self.url) > self.limits.max_url_bytes:
                        self._refuse(414, "the request target is too long")
                    else:
                        self._refuse(431, "the request head is too large")

        def on_headers_complete(self) -> None:
            # The exact limits, before uvicorn starts the app. Summing the
            # fields' sizes is needed only when the reads since the head
            # began hold more bytes than the limit.
            state = self.limited
            limits = state.limits
            if len(self.url) > limits.max_url_bytes:
                raise _Refusal(414, "the request target is too long")
            headers = self.headers
            if len(headers) > limits.max_headers:
                raise _Refusal(431, "the request has too many header fields")
            if state.received - state.head_mark > limits.max_header_bytes and (
                sum(len(name) + len(value) for name, value in headers) > limits.max_header_bytes
            ):
                raise _Refusal(431, "the request header fields are too large")
            cycle = self.cycle
            HttpToolsProtocol.on_headers_complete(self)
            if self.cycle is not cycle:  # a request to answer, not an upgrade
                self.cycle.transport = self.coalescer
                writer = self.coalescer.writer
                if writer is not None:
                    RequestLine(writer, self.cycle.scope, self.peer)
                if cycle is None or cycle.response_complete:
                    self.coalescer.begin(self.cycle)

        def _head_since(self, now: float) -> float | None:
            state = self.limited
            scope = self.scope
            cycle = self.cycle
            if cycle is not None and (cycle.scope is scope or not cycle.response_complete):
                # The head is read (the body, the app or idleness follow), or
                # a pipelined one waits for the answer before it: its time
                # counts from that answer's end, and no 408 cuts into it.
                return None
            if scope is not state.head_scope:  # a head begun since watch last looked
                state.head_scope = scope
                state.head_since = now
            return state.head_since

        def _awaiting_continue(self) -> bool:
            return bool(self.cycle.waiting_for_100_continue)


class LimitedH11(_Limited, H11Protocol):
    """uvicorn's h11 protocol, with ``ServerLimits``."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.app = self._checked(self.app)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if self._start(transport):
            super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        state = self.limited
        state.received += len(data)
        if state.head_since is None and self.conn.their_state is h11.IDLE:
            state.head_since = self.loop.time()
        super().data_received(data)
        if state.head_since is not None and self.conn.their_state is not h11.IDLE:
            state.head_since = None

    def _head_since(self, now: float) -> float | None:
        return self.limited.head_since

    def send_400_response(self, msg: str) -> None:
        # Called from uvicorn's handler of h11's RemoteProtocolError, whose
        # status hint is 431 when the head outgrew h11's buffer.
        error = sys.exc_info()[1]
        if getattr(error, "error_status_hint", 400) != 431:
            super().send_400_response(msg)
            return
        buffered, _ = self.conn.trailing_data
        if b"\n" not in buffered:
            self._refuse(414, "the request target is too long")
        else:
            self._refuse(431, "the request head is too large")

    def _checked(self, app: ASGI3Application) -> ASGI3Application:
        limits = _limits(self.config)

        async def checked(scope: Any, receive: Any, send: Any) -> None:
            # h11 parsed the whole head within its buffer; the exact limits here.
            headers = scope.get("headers", ())
            target = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
            if target > limits.max_url_bytes:
                await _problem(send, 414, "the request target is too long")
            elif len(headers) > limits.max_headers:
                await _problem(send, 431, "the request has too many header fields")
            elif sum(len(k) + len(v) for k, v in headers) > limits.max_header_bytes:
                await _problem(send, 431, "the request header fields are too large")
            else:
                await app(scope, receive, send)

        return checked

    def _awaiting_continue(self) -> bool:
        return bool(self.conn.they_are_waiting_for_100_continue)


def protocol(http: str = "auto") -> type[asyncio.Protocol]:
    """uvicorn's ``http`` protocol class for ``http`` ("auto", "httptools" or "h11")."""
    if http not in ("auto", "httptools", "h11"):
        raise ValueError(f"unknown HTTP/1.1 implementation {http!r}")
    if http != "h11" and HTTPTOOLS:
        return LimitedHttpTools
    if http == "httptools":
        raise ValueError("httptools is not installed")
    return LimitedH11


class LimitedConfig(Config):
    """uvicorn's ``Config``, carrying ``limits`` to the protocols above.

    ``LimitedConfig`` carries the limits to the protocols, and ``watch`` is
    started beside ``uvicorn.Server.serve`` (``twofold.server.serving``).

    The limits travel in the config, not in a class made for them, because
    ``--reload`` pickles the config into its worker process.
    """

    def __init__(self, app: Any, *, limits: ServerLimits, http: str = "auto", **options: Any):
        super().__init__(
            app,
            http=protocol(http),
            # uvicorn hands it to loop.call_later: seconds, a float is fine.
            timeout_keep_alive=limits.idle_timeout,  # type: ignore[arg-type]
            h11_max_incomplete_event_size=(
                limits.max_url_bytes + limits.max_header_bytes + H11_HEAD_SLACK
            ),
            **options,
        )
        self.limits = limits
        self.access_writer: AccessWriter | None = None

    def log_requests(self, writer: AccessWriter) -> None:
        """Give each HTTP request its access-log line (:class:`RequestLine`), once loaded:
        the httptools protocol makes it itself (no ASGI wrapper on the hot path);
        with h11, :class:`HttpLines` around the app does."""
        self.access_writer = writer
        if not (HTTPTOOLS and issubclass(self.http_protocol_class, LimitedHttpTools)):
            self.loaded_app = HttpLines(self.loaded_app, writer)


def _access_writer(config: Config) -> AccessWriter | None:
    return config.access_writer if isinstance(config, LimitedConfig) else None


def _limits(config: Config) -> ServerLimits:
    if not isinstance(config, LimitedConfig):
        raise TypeError(
            "the twofold protocols are served with a twofold.server.uvicorn_limits.LimitedConfig"
        )
    return config.limits


async def watch(limits: ServerLimits, state: ServerState) -> None:
    """Time out slow heads and stalled bodies among ``state``'s connections, forever.

    Timeouts are not timers per request (two more timer handles per request
    would cost the hot path several percent): each connection counts the bytes
    it receives, the httptools one tells a head being read from uvicorn's own
    state, and one ``watch`` task per server looks at every connection a few
    times per timeout. The keep-alive idle timeout stays uvicorn's.

    It looks four times per shortest timeout (at least every second, at most
    twenty times a second), so a timeout fires within a quarter of its value
    of being due.
    """
    tick = min(max(min(limits.header_timeout, limits.body_timeout) / 4, 0.05), 1.0)
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(tick)
        now = loop.time()
        for connection in list(state.connections):
            if isinstance(connection, _Limited):
                try:
                    connection.check_deadlines(now)
                except Exception:  # one connection's fault must not end every timeout
                    logger.exception("Checking a connection's deadlines failed")
                    connection.transport.close()
