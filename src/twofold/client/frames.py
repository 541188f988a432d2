"""Reading enveloped messages from a response, as the bytes arrive.

Connect streams and gRPC-Web share gRPC's 5-byte framing
(:mod:`twofold.http.envelope`: a flags byte, a 4-byte length, the payload). The
server side reads it from an ASGI ``receive``; a client gets chunks from
httpx, in either colour, so this reader is pushed to instead: ``feed`` a
chunk, get the envelopes it completed. It holds at most one message (plus
one chunk), and refuses a length prefix over the limit before the payload
arrives, so a hostile server cannot make the client buffer without bound.

Faults are the server's, so they are coded from the client's side: a body
that ends inside an envelope is INTERNAL (the server broke the protocol), a
message over the limit is RESOURCE_EXHAUSTED, as in grpc-go and connect-go.
"""

from __future__ import annotations

from twofold.client.errors import Failure, fail
from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.http import compression, envelope
from twofold.http.envelope import HEADER_SIZE, Envelope


class Frames:
    """Envelopes from a response body; ``gzip`` when the server said it compresses."""

    def __init__(self, limit: int, *, gzip: bool = False) -> None:
        self._limit = limit
        self._gzip = gzip
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[Envelope]:
        self._buffer += chunk
        out = []
        while len(self._buffer) >= HEADER_SIZE:
            flags = self._buffer[0]
            size = int.from_bytes(self._buffer[1:HEADER_SIZE], "big")
            if size > self._limit:
                raise _too_large(size, self._limit)
            if len(self._buffer) < HEADER_SIZE + size:
                break
            data = bytes(self._buffer[HEADER_SIZE : HEADER_SIZE + size])
            del self._buffer[: HEADER_SIZE + size]
            out.append(Envelope(flags, self._inflate(flags, data)))
        return out

    def end(self) -> None:
        """The body ended: fail if it ended inside an envelope."""
        if self._buffer:
            have = len(self._buffer)
            raise fail(
                Code.INTERNAL, f"truncated response: the body ends {have} bytes into a message"
            )

    def _inflate(self, flags: int, data: bytes) -> bytes:
        if not flags & envelope.COMPRESSED:
            return data
        if not self._gzip:
            # gRPC's rule: a compressed flag with no encoding declared is a protocol error.
            raise fail(Code.INTERNAL, "protocol error: a compressed message with no encoding")
        try:
            return compression.gunzip(data, self._limit)
        except Error as exc:
            code = Code.RESOURCE_EXHAUSTED if exc.code is Code.RESOURCE_EXHAUSTED else Code.INTERNAL
            raise fail(code, f"response message: {exc.message}") from None


def _too_large(size: int, limit: int) -> Failure:
    return fail(
        Code.RESOURCE_EXHAUSTED,
        f"response message of {size} bytes is larger than the {limit}-byte limit",
    )
