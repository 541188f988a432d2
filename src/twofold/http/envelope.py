"""The 5-byte message framing shared by Connect streaming, gRPC-Web and gRPC.

Every enveloped message is one flags byte, a 4-byte big-endian length and
that many bytes of payload (gRPC's "Length-Prefixed-Message"; Connect's
streaming "envelope"). The flag bits are the only thing the protocols
disagree on, so their meaning is left to the caller:

- ``0x01`` (all): the payload is compressed with the negotiated encoding.
- ``0x02`` (Connect): the end-of-stream message, JSON whatever the codec.
- ``0x80`` (gRPC-Web): the trailers, as HTTP/1 header lines.

:class:`Reader` reads envelopes incrementally from an ASGI ``receive``,
never buffering more than one message (plus one chunk), and turns every
framing fault into the code the gRPC and Connect specs give it.
"""

from __future__ import annotations

import binascii
from typing import NamedTuple

from twofold.core.asgi import Receive
from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.http.body import ClientDisconnected
from twofold.http.negotiation import Decompress

COMPRESSED = 0x01
END_STREAM = 0x02
TRAILERS = 0x80
HEADER_SIZE = 5


class Envelope(NamedTuple):
    flags: int
    data: bytes


def frame(data: bytes, flags: int = 0) -> bytes:
    """One envelope: flags, the length of ``data`` in 4 big-endian bytes, ``data``."""
    return bytes((flags,)) + len(data).to_bytes(4, "big") + data


class Reader:
    """Envelopes from a request body, one at a time.

    ``limit`` bounds each message's (decompressed) size: a larger length
    prefix is RESOURCE_EXHAUSTED before its payload is read. ``decompress``
    is the negotiated encoding's, or None when none was: then a message with
    the compressed flag is INTERNAL, as the gRPC spec says (the peer broke
    the protocol, nothing in the request is wrong). A body that ends inside
    an envelope (a truncated stream, or a length prefix that promised more
    than was sent) is ``truncated``: INVALID_ARGUMENT by default, as in
    connect-go; native gRPC passes INTERNAL, as grpc-go answers.

    ``text`` reads gRPC-Web-text: the body is base64, possibly several
    padded base64 runs back to back (one per message the client wrote).
    """

    def __init__(
        self,
        receive: Receive,
        limit: int,
        decompress: Decompress | None = None,
        *,
        text: bool = False,
        first: bytes = b"",
        truncated: Code = Code.INVALID_ARGUMENT,
    ) -> None:
        self._receive = receive
        self._truncated = truncated
        self._limit = limit
        self._decompress = decompress
        self._text = text
        self._pending = b""  # base64 text not yet a whole 4-character group
        self._buffer = bytearray()
        self._more = True
        if first:
            self._feed(first)

    @property
    def finished(self) -> bool:
        """True once the whole body was read."""
        return not self._more

    async def next(self) -> Envelope | None:
        """The next envelope, or None where the body ends cleanly between envelopes."""
        if not await self._fill(HEADER_SIZE):
            if self._buffer:
                raise Error(self._truncated, "truncated message: incomplete envelope header")
            return None
        flags = self._buffer[0]
        size = int.from_bytes(self._buffer[1:5], "big")
        if size > self._limit:
            raise Error(
                Code.RESOURCE_EXHAUSTED,
                f"message of {size} bytes is larger than the limit of {self._limit} bytes",
            )
        if not await self._fill(HEADER_SIZE + size):
            have = len(self._buffer) - HEADER_SIZE
            raise Error(
                self._truncated,
                f"truncated message: the envelope promised {size} bytes, the body had {have}",
            )
        data = bytes(self._buffer[HEADER_SIZE : HEADER_SIZE + size])
        del self._buffer[: HEADER_SIZE + size]
        if flags & COMPRESSED:
            if self._decompress is None:
                raise Error(
                    Code.INTERNAL, "protocol error: compressed message without a message encoding"
                )
            data = self._decompress(data, self._limit)
        return Envelope(flags, data)

    async def _fill(self, size: int) -> bool:
        """Read until ``size`` bytes are buffered; False if the body ends first."""
        while len(self._buffer) < size:
            if not self._more:
                return False
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            self._more = message.get("more_body", False)
            self._feed(message.get("body", b""))
            if not self._more and self._pending:
                raise Error(Code.INVALID_ARGUMENT, "request body is not valid base64")
        return True

    def _feed(self, chunk: bytes) -> None:
        if not self._text:
            self._buffer += chunk
            return
        text = self._pending + bytes(chunk).translate(None, b"\r\n \t")
        whole = len(text) - len(text) % 4
        self._pending = text[whole:]
        try:
            # Decode group by group after any padding: "QQ==QUJD" is two runs.
            start = 0
            while start < whole:
                pad = text.find(b"=", start, whole)
                end = whole if pad == -1 else min(whole, (pad // 4 + 1) * 4)
                self._buffer += binascii.a2b_base64(text[start:end], strict_mode=True)
                start = end
        except binascii.Error:
            raise Error(Code.INVALID_ARGUMENT, "request body is not valid base64") from None
