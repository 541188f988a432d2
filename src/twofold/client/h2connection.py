"""One HTTP/2 connection of a client: asyncio streams driven by the ``h2`` state machine.

Why a connection of our own: httpx (httpcore + h2) sends a streamed request
body whole before it reads the answer and exposes no response trailers, so
it can carry neither gRPC's status (in the trailers) nor a full-duplex bidi
stream. ``h2`` is the HTTP/2 protocol (frames, HPACK, stream states, flow
control accounting); this module only moves its bytes and hands each
stream's events to the call that owns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from twofold.client.errors import Failure, fail
from twofold.client.h2stream import Headers, Stream, StreamDone
from twofold.core.code import Code
from twofold.core.errors import Error

READ_SIZE = 65536
# What the client accepts of the server's response headers (gRPC's own
# default metadata limit is 8 KiB; details can be larger).
MAX_HEADER_LIST_SIZE = 65536
# The code of a stream the server reset, gRPC's mapping of HTTP/2 error codes
# (doc/PROTOCOL-HTTP2.md): REFUSED_STREAM means never processed, so
# retryable; ENHANCE_YOUR_CALM is the server shedding load.
_RESET_CODES = {
    h2.errors.ErrorCodes.REFUSED_STREAM: Code.UNAVAILABLE,
    h2.errors.ErrorCodes.CANCEL: Code.CANCELED,
    h2.errors.ErrorCodes.ENHANCE_YOUR_CALM: Code.RESOURCE_EXHAUSTED,
    h2.errors.ErrorCodes.INADEQUATE_SECURITY: Code.PERMISSION_DENIED,
}


class FrameCheck:
    """Frame headers checked as they arrive, before ``h2`` sees the bytes.

    ``h2`` checks a frame's length only once its whole body is buffered, so
    a peer that is not HTTP/2 at all (``HTTP/1.1 400``... reads as a frame of
    4.7 MB) would leave a call waiting for bytes that never come. A server's
    first frame must be SETTINGS (RFC 9113 §3.4), and no frame may pass the
    size the client allows.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._head = bytearray()
        self._left = 0  # bytes of the current frame's body still to come
        self._first = True

    def feed(self, data: bytes) -> str | None:
        """What is wrong with the frames ``data`` continues, or None."""
        pos = 0
        while pos < len(data):
            if self._left:
                step = min(self._left, len(data) - pos)
                self._left -= step
                pos += step
                continue
            taken = data[pos : pos + 9 - len(self._head)]
            self._head += taken
            pos += len(taken)
            if len(self._head) < 9:
                break
            length, kind = int.from_bytes(self._head[:3], "big"), self._head[3]
            if self._first and kind != SETTINGS:
                return f"it answered {bytes(self._head)!r}..., not an HTTP/2 SETTINGS frame"
            if length > self._limit:
                return f"it sent a frame of {length} bytes, over the {self._limit}-byte limit"
            self._first = False
            self._left = length
            self._head.clear()
        return None


SETTINGS = 0x4


def _latin1(headers: Sequence[tuple[bytes | str, bytes | str]]) -> Headers:
    # h2 hands headers over as bytes (header_encoding=None): decoding them here,
    # as latin-1, means hostile bytes cannot raise from inside the state machine.
    return [
        (
            k.decode("latin-1") if isinstance(k, bytes) else k,
            v.decode("latin-1") if isinstance(v, bytes) else v,
        )
        for k, v in headers
    ]


class Connection:
    """An HTTP/2 client connection and the task that reads it.

    - One task reads the socket and feeds ``h2``; every stream's headers, data
      and end land in that stream's :class:`Stream`. Writers (the calls) write
      ``h2``'s output and wait for the socket to drain, so a slow server slows
      the sender instead of growing a buffer.
    - Flow control both ways: data is sent no faster than the server's window
      allows, and the client's window is opened again (WINDOW_UPDATE) only as
      the call consumes what it received, so a server can never make the
      client hold more than one window per stream.
    - GOAWAY: the streams the server says it never processed (above its
      ``last_stream_id``) fail UNAVAILABLE at once, the others finish, and the
      connection takes no new stream: :class:`Channel` opens another.
    - A socket that ends, or bytes that are not HTTP/2, fail every open stream
      UNAVAILABLE with what happened: never a hang.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str
    ) -> None:
        self.authority = authority
        self._reader = reader
        self._writer = writer
        # The request headers are built and checked by the caller
        # (twofold.client.h2grpc): h2's own pass over them again is skipped.
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self._h2 = h2.connection.H2Connection(config)
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_SIZE,
            },
        )
        self._h2.initiate_connection()
        self._streams: dict[int, Stream] = {}
        self._freed = asyncio.Event()
        self._check = FrameCheck(self._h2.max_inbound_frame_size)
        self._loop = asyncio.get_running_loop()
        self._scheduled = False
        self.failure: Failure | None = None
        self.going_away = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    @classmethod
    async def open(
        cls, host: str, port: int, tls: ssl.SSLContext | None, authority: str
    ) -> Connection:
        where = f"{host}:{port}"
        try:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise Failure(Error(Code.UNAVAILABLE, f"cannot connect to {where}: {exc}")) from None
        if tls is not None:
            chosen = writer.get_extra_info("ssl_object").selected_alpn_protocol()
            if chosen != "h2":
                writer.close()
                message = f"{where} did not agree to HTTP/2 (ALPN chose {chosen!r}): not gRPC"
                raise Failure(Error(Code.UNAVAILABLE, message))
        connection = cls(reader, writer, authority)
        await connection.flush()
        return connection

    @property
    def usable(self) -> bool:
        return self.failure is None and not self.going_away

    @property
    def max_frame(self) -> int:
        return int(self._h2.max_outbound_frame_size)

    def window(self, stream_id: int) -> int:
        try:
            return int(self._h2.local_flow_control_window(stream_id))
        except h2.exceptions.StreamClosedError:
            raise StreamDone from None

    async def stream(self, headers: Headers, *, flush: bool = True) -> Stream:
        """A new stream, its request headers queued, and sent unless ``flush``
        is False (a first message follows at once: one send for both)."""
        while self.usable and self._h2.open_outbound_streams >= self._concurrency:
            # The server's MAX_CONCURRENT_STREAMS: wait for a stream to end.
            self._freed.clear()
            await self._freed.wait()
        if not self.usable:
            raise self.failure or _refused()
        stream_id = self._h2.get_next_available_stream_id()
        stream = Stream(self, stream_id)
        self._streams[stream_id] = stream
        try:
            self._h2.send_headers(stream_id, headers)
        except h2.exceptions.ProtocolError as exc:
            # A header HTTP/2 forbids (a newline in a value, a connection header).
            self.forget(stream_id)
            raise fail(
                Code.INVALID_ARGUMENT, f"a header cannot be sent over HTTP/2: {exc}"
            ) from None
        if flush:
            await self.flush()
        return stream

    @property
    def _concurrency(self) -> int:
        return int(self._h2.remote_settings.max_concurrent_streams)

    def send_data(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        try:
            self._h2.send_data(stream_id, data, end_stream=end)
        except h2.exceptions.StreamClosedError:
            raise StreamDone from None

    def end_stream(self, stream_id: int) -> None:
        try:
            self._h2.end_stream(stream_id)
        except h2.exceptions.StreamClosedError:
            raise StreamDone from None

    def consumed(self, stream_id: int, flow: int) -> None:
        """The call took ``flow`` bytes of a stream: the server may send that many more."""
        if flow and self.failure is None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.acknowledge_received_data(flow, stream_id)
            self._write()

    def reset(self, stream_id: int) -> None:
        if self.failure is None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            self._write()

    def forget(self, stream_id: int) -> None:
        self._streams.pop(stream_id, None)
        self._freed.set()
        if self.going_away and not self._streams:
            self._writer.close()

    def _write(self) -> None:
        """Write what ``h2`` has queued, once this turn of the loop is over: the
        window updates and resets of many calls go out in one send."""
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._write_now)

    def _write_now(self) -> None:
        self._scheduled = False
        data = self._h2.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def flush(self) -> None:
        """Write what ``h2`` has queued (with what other calls queue in the same
        turn of the loop: one send for all), waiting while the socket is full."""
        self._write()
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._lost(f"connection to {self.authority} failed: {exc}")

    async def _run(self) -> None:
        try:
            while True:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    self._lost(f"{self.authority} closed the connection")
                    return
                wrong = self._check.feed(data)
                if wrong is not None:
                    self._lost(f"{self.authority} does not speak HTTP/2: {wrong}")
                    return
                try:
                    events = self._h2.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    # Broken HTTP/2: tell the server why (h2's GOAWAY), then stop.
                    self._write_now()
                    self._lost(f"{self.authority} does not speak HTTP/2 correctly: {exc!r}")
                    return
                for event in events:
                    self._dispatch(event)
                self._write()
        except (ConnectionError, OSError) as exc:
            self._lost(f"connection to {self.authority} failed: {exc}")

    def _dispatch(self, event: h2.events.Event) -> None:
        stream_id = getattr(event, "stream_id", None)
        stream = self._streams.get(stream_id) if stream_id else None
        if isinstance(event, h2.events.ResponseReceived) and stream:
            stream.on_head(_latin1(event.headers or []))
        elif isinstance(event, h2.events.TrailersReceived) and stream:
            stream.trailers = _latin1(event.headers or [])
        elif isinstance(event, h2.events.DataReceived):
            if stream:
                stream.on_data(event.data or b"", event.flow_controlled_length or 0)
            elif event.flow_controlled_length and stream_id:
                # Data for a stream the call already left: give the window back.
                self.consumed(stream_id, event.flow_controlled_length)
        elif isinstance(event, h2.events.StreamEnded) and stream:
            stream.on_end()
        elif isinstance(event, h2.events.StreamReset) and stream and stream.ended:
            # RST_STREAM after a complete response: the server needs no more of
            # the request (RFC 9113 §8.1); the answer stands.
            stream.on_window()
        elif isinstance(event, h2.events.StreamReset) and stream:
            code = _RESET_CODES.get(event.error_code, Code.INTERNAL)  # type: ignore[call-overload]
            message = f"the server reset the stream (HTTP/2 error {event.error_code!s})"
            stream.on_failure(Failure(Error(code, message), retryable=code is Code.UNAVAILABLE))
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            for each in self._streams.values():
                each.on_window()
            self._freed.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event.last_stream_id or 0, event.error_code)

    def _goaway(self, last_stream_id: int, error_code: object) -> None:
        self.going_away = True
        self._freed.set()
        message = (
            f"{self.authority} is going away (GOAWAY, HTTP/2 error {error_code!s})"
            " before it processed the call"
        )
        for stream_id, stream in list(self._streams.items()):
            if stream_id > last_stream_id:
                # Never processed, on the server's word: safe to try again.
                stream.on_failure(Failure(Error(Code.UNAVAILABLE, message)))
        if not self._streams:
            self._writer.close()

    def _lost(self, message: str) -> None:
        if self.failure is None:
            self.failure = Failure(Error(Code.UNAVAILABLE, message))
        self._freed.set()
        for stream in self._streams.values():
            stream.on_failure(self.failure)
        self._writer.close()

    async def aclose(self) -> None:
        if self.failure is None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.close_connection()
            self._write_now()
            self.failure = Failure(Error(Code.UNAVAILABLE, "the client is closed"))
        self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await self._task
        with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
            await self._writer.wait_closed()


def _refused() -> Failure:
    return Failure(Error(Code.UNAVAILABLE, "the connection is going away"))


class Channel:
    """The connection a client's calls share: opened on first use, and
    replaced once the server sends GOAWAY or the connection fails."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        self.authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._connection: Connection | None = None
        self._old: list[Connection] = []
        self._lock: asyncio.Lock | None = None

    async def connection(self) -> Connection:
        if self._connection is not None and self._connection.usable:
            return self._connection
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            current = self._connection
            if current is None or not current.usable:
                # A connection going away may still finish its last streams.
                self._old = [c for c in self._old if c.failure is None]
                if current is not None:
                    self._old.append(current)
                current = await Connection.open(self._host, self._port, self._tls, self.authority)
                self._connection = current
            return current

    async def aclose(self) -> None:
        for connection in [*self._old, *filter(None, [self._connection])]:
            await connection.aclose()
        self._connection, self._old = None, []
