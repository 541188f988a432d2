"""A raw HTTP/2 client driven frame by frame, for the tests that break the protocol on purpose.

hyperframe serializes and parses the frames and hpack codes the header
blocks (both come with ``h2``), but nothing here keeps HTTP/2's state: a
test sends exactly the frames it means to, in the order it means to, even
those a conforming client never would (a wrong preface, DATA past the
window, thousands of resets). What the server sends back is read frame by
frame until a test's condition holds or the connection closes.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_SIZE = 16384  # SETTINGS_MAX_FRAME_SIZE's initial value, which the tests never raise
WAIT = 30.0  # seconds any one read may block: only so that a broken server cannot hang the test

# RFC 9113 §7's error codes, by the names the tests use.
PROTOCOL_ERROR = 0x1
FLOW_CONTROL_ERROR = 0x3
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9


@dataclass
class Stream:
    """What the server sent on one stream."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None  # the RST_STREAM error code, if the server reset it

    @property
    def over(self) -> bool:
        """Whether the server ended or reset the stream."""
        return self.ended or self.reset is not None

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def trailer(self, name: str) -> str | None:
        return next((value for key, value in self.trailers if key == name), None)


class Connection:
    """One TCP (or TLS) connection to the server, and what came back on it."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None, rcvbuf: int = 0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # Set before connecting, so that the window TCP offers stays small too.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(WAIT)
        sock.connect(("127.0.0.1", port))
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname="127.0.0.1")
        self.sock = sock
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.buffer = bytearray()
        self.streams: dict[int, Stream] = {}
        self.goaway: GoAwayFrame | None = None
        self.settings: dict[int, int] = {}
        self.closed = False
        self._block: tuple[int, bytearray, bool] | None = None  # a header block being continued

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    # Sending.

    def send(self, *items: Frame | bytes) -> bool:
        """Send frames (or raw bytes); False if the server had closed the connection."""
        data = b"".join(item if isinstance(item, bytes) else item.serialize() for item in items)
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            return False
        return True

    def open(self, settings: dict[int, int] | None = None) -> None:
        """The client's preface and SETTINGS, the server's SETTINGS read and acknowledged."""
        self.send(PREFACE, SettingsFrame(settings=settings or {}))
        first = self.until(
            lambda frame: isinstance(frame, SettingsFrame) and "ACK" not in frame.flags
        )
        assert isinstance(first, SettingsFrame), "the server sent no SETTINGS"
        self.settings = dict(first.settings)
        self.send(SettingsFrame(flags=["ACK"]))

    def headers(
        self, stream_id: int, fields: Iterable[tuple[str, str]], *, end_stream: bool = False
    ) -> list[Frame]:
        """A header block: HEADERS, then CONTINUATION frames where it is over one frame's size."""
        block = self.encoder.encode(list(fields), huffman=False)
        frames: list[Frame] = [HeadersFrame(stream_id, block[:FRAME_SIZE])]
        frames += [
            ContinuationFrame(stream_id, block[start : start + FRAME_SIZE])
            for start in range(FRAME_SIZE, len(block), FRAME_SIZE)
        ]
        if end_stream:
            frames[0].flags.add("END_STREAM")
        frames[-1].flags.add("END_HEADERS")
        return frames

    def request(
        self,
        stream_id: int,
        method: str,
        path: str,
        extra: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> None:
        """A whole request; without ``body`` its HEADERS end the stream."""
        fields = [
            (":method", method),
            (":scheme", "http"),
            (":path", path),
            (":authority", "127.0.0.1"),
            *extra,
        ]
        self.send(*self.headers(stream_id, fields, end_stream=body is None))
        if body is not None:
            self.send(DataFrame(stream_id, body, flags=["END_STREAM"]))

    # Receiving.

    def read(self) -> Frame | None:
        """The next frame from the server, or None once it closed the connection."""
        while True:
            if len(self.buffer) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
                if len(self.buffer) >= 9 + length:
                    frame.parse_body(memoryview(bytes(self.buffer[9 : 9 + length])))
                    del self.buffer[: 9 + length]
                    self._note(frame)
                    return frame
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            except TimeoutError:
                raise AssertionError(f"the server sent nothing for {WAIT} s") from None
            if not chunk:
                self.closed = True
                return None
            self.buffer += chunk

    def until(self, done: Callable[[Frame], bool]) -> Frame | None:
        """Read frames until one satisfies ``done`` (it is returned), or the connection closes."""
        while (frame := self.read()) is not None:
            if done(frame):
                return frame
        return None

    def drain(self) -> None:
        """Read until the server closes the connection."""
        self.until(lambda _: False)

    def stream(self, stream_id: int) -> Stream:
        """What the server sent on ``stream_id`` so far."""
        return self.streams.setdefault(stream_id, Stream())

    def answer(self, stream_id: int) -> Stream:
        """Read until ``stream_id`` ends (or is reset, or the connection closes)."""
        self.until(lambda _: stream_id in self.streams and self.streams[stream_id].over)
        return self.stream(stream_id)

    def _note(self, frame: Frame) -> None:
        if isinstance(frame, PingFrame) and "ACK" not in frame.flags:
            self.send(PingFrame(flags=["ACK"], opaque_data=frame.opaque_data))
        elif isinstance(frame, GoAwayFrame):
            self.goaway = frame
        elif isinstance(frame, RstStreamFrame):
            self.streams.setdefault(frame.stream_id, Stream()).reset = frame.error_code
        elif isinstance(frame, DataFrame):
            stream = self.streams.setdefault(frame.stream_id, Stream())
            stream.data += frame.data
            stream.ended = "END_STREAM" in frame.flags
        elif isinstance(frame, HeadersFrame | ContinuationFrame):
            self._header_block(frame)

    def _header_block(self, frame: HeadersFrame | ContinuationFrame) -> None:
        if isinstance(frame, HeadersFrame):
            self._block = (frame.stream_id, bytearray(frame.data), "END_STREAM" in frame.flags)
        elif self._block is not None:
            self._block[1].extend(frame.data)
        if "END_HEADERS" not in frame.flags or self._block is None:
            return
        stream_id, block, end = self._block
        self._block = None
        fields = [(str(name), str(value)) for name, value in self.decoder.decode(bytes(block))]
        stream = self.streams.setdefault(stream_id, Stream())
        if stream.headers:
            stream.trailers = fields
        else:
            stream.headers = fields
        stream.ended = stream.ended or end


def grpc_frame(message: bytes, claimed: int | None = None) -> bytes:
    """A gRPC length-prefixed message, its prefix claiming ``claimed`` bytes if given."""
    size = len(message) if claimed is None else claimed
    return b"\x00" + size.to_bytes(4, "big") + message
