"""An HTTP/3 client for the tests: aioquic's QUIC and HTTP/3 stacks, driven per request.

aioquic (PyPI ``aioquic``, in the dev extra) does the work a browser's
HTTP/3 stack does: the QUIC handshake and TLS 1.3 with ALPN ``h3``, QPACK,
HTTP/3 framing, flow control. This module only opens request streams on
one connection and hands back what arrives on each, as it arrives: the
head, each DATA frame, trailers, or the stream's reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset

Headers = list[tuple[bytes, bytes]]


@dataclass
class Reset:
    """The server reset the request stream (RESET_STREAM) with ``code``."""

    code: int


@dataclass
class Closed:
    """The connection ended (CONNECTION_CLOSE, or the idle timeout)."""

    code: int
    reason: str


Event = HeadersReceived | DataReceived | Reset | Closed


class ConnectionClosed(ConnectionError):
    """The connection ended while a response was awaited."""

    def __init__(self, closed: Closed) -> None:
        super().__init__(f"the connection closed: {closed.code:#x} {closed.reason}")
        self.code = closed.code
        self.reason = closed.reason


class _Protocol(QuicConnectionProtocol):
    """Sorts the connection's HTTP/3 events by request stream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.streams: dict[int, asyncio.Queue[Event]] = {}
        self.ended: asyncio.Future[Closed] = asyncio.get_running_loop().create_future()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamReset) and event.stream_id in self.streams:
            self.streams[event.stream_id].put_nowait(Reset(event.error_code))
        if isinstance(event, ConnectionTerminated):
            closed = Closed(event.error_code, event.reason_phrase)
            for queue in self.streams.values():
                queue.put_nowait(closed)
            if not self.ended.done():
                self.ended.set_result(closed)
        h3_event: H3Event
        for h3_event in self.http.handle_event(event):
            if isinstance(h3_event, HeadersReceived | DataReceived):
                found = self.streams.get(h3_event.stream_id)
                if found is not None:
                    found.put_nowait(h3_event)


@dataclass
class Response:
    """What one request stream brought: ``status`` and headers (lower-case names,
    pseudo-headers left out), the body, trailers, and a reset if there was one."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    trailers: dict[str, str] = field(default_factory=dict)
    reset: Reset | None = None


def _fields(headers: Headers) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in headers if not k.startswith(b":")}


class Exchange:
    """One request stream: read its head, then its body as the frames arrive."""

    def __init__(self, client: Client, stream_id: int) -> None:
        self.client = client
        self.stream_id = stream_id
        self.queue = client.protocol.streams[stream_id]
        self.response = Response()
        self.ended = False

    async def _next(self) -> Event:
        event = await asyncio.wait_for(self.queue.get(), self.client.wait)
        if isinstance(event, Closed):
            raise ConnectionClosed(event)
        if isinstance(event, Reset):
            self.response.reset = event
            self.ended = True
        elif event.stream_ended:
            self.ended = True
        return event

    async def head(self) -> Response:
        """Wait for the response's head (the response itself if the stream ends there)."""
        while not self.response.status and not self.ended:
            event = await self._next()
            if isinstance(event, HeadersReceived):
                self.response.status = int(dict(event.headers)[b":status"])
                self.response.headers = _fields(event.headers)
        return self.response

    async def chunks(self) -> AsyncIterator[bytes]:
        """Each DATA frame's payload, as it arrives; trailers are kept on the response."""
        await self.head()
        while not self.ended:
            event = await self._next()
            if isinstance(event, DataReceived) and event.data:
                yield event.data
            elif isinstance(event, HeadersReceived):
                self.response.trailers = _fields(event.headers)

    async def read(self) -> Response:
        """The whole response."""
        body = [chunk async for chunk in self.chunks()]
        self.response.body = b"".join(body)
        return self.response

    def send(self, data: bytes, *, end: bool = False) -> None:
        self.client.protocol.http.send_data(self.stream_id, data, end_stream=end)
        self.client.protocol.transmit()

    def cancel(self) -> None:
        """Abandon the request, as a browser closing a tab does: RESET_STREAM and
        STOP_SENDING with H3_REQUEST_CANCELLED (RFC 9114 section 4.1.1)."""
        quic = self.client.protocol._quic
        with contextlib.suppress(Exception):
            quic.reset_stream(self.stream_id, ErrorCode.H3_REQUEST_CANCELLED)
        with contextlib.suppress(Exception):
            quic.stop_stream(self.stream_id, ErrorCode.H3_REQUEST_CANCELLED)
        self.client.protocol.transmit()


@dataclass
class Client:
    """Requests over one HTTP/3 connection to ``authority``."""

    protocol: _Protocol
    authority: str
    wait: float

    def open(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | Headers | None = None,
        body: bytes | None = None,
        *,
        end: bool = True,
    ) -> Exchange:
        """Send a request's head (and ``body``); ``end=False`` keeps the request open."""
        items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        head: Headers = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", self.authority.encode()),
            (b":path", path.encode()),
            *((k.encode() if isinstance(k, str) else k, v.encode() if isinstance(v, str) else v)
              for k, v in items),
        ]  # fmt: skip
        quic = self.protocol._quic
        stream_id = quic.get_next_available_stream_id()
        self.protocol.streams[stream_id] = asyncio.Queue()
        last = end and body is None
        self.protocol.http.send_headers(stream_id, head, end_stream=last)
        if body is not None:
            self.protocol.http.send_data(stream_id, body, end_stream=end)
        self.protocol.transmit()
        return Exchange(self, stream_id)

    async def closed(self) -> Closed:
        """Wait for the connection to end, with no request of ours open."""
        return await asyncio.wait_for(asyncio.shield(self.protocol.ended), self.wait)

    @property
    def peer_max_streams(self) -> int:
        """The requests the server lets this connection have open at once
        (its transport parameter ``initial_max_streams_bidi``, or a later MAX_STREAMS)."""
        return int(self.protocol._quic._remote_max_streams_bidi)

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | Headers | None = None,
        body: bytes | None = None,
    ) -> Response:
        return await self.open(method, path, headers, body).read()


@contextlib.asynccontextmanager
async def client(
    port: int, cafile: Path, *, host: str = "127.0.0.1", wait: float = 20.0
) -> AsyncIterator[Client]:
    """An HTTP/3 connection to ``host:port`` (UDP) that trusts ``cafile`` only;
    ``wait``: the seconds the handshake, and then each event of a response, may take."""
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_REQUIRED
    )
    configuration.load_verify_locations(cafile=str(cafile))
    async with contextlib.AsyncExitStack() as stack:
        # A server that never answers the handshake fails the test, not hangs it.
        connecting = connect(host, port, configuration=configuration, create_protocol=_Protocol)
        protocol = await asyncio.wait_for(stack.enter_async_context(connecting), wait)
        assert isinstance(protocol, _Protocol)
        yield Client(protocol, f"{host}:{port}", wait)
