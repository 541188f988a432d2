"""Compressed request bodies and messages: the one inflater every wire uses.

Whatever the framing (REST's and JSON-RPC's ``Content-Encoding``, Connect's
``Content-Encoding`` and ``Connect-Content-Encoding``, gRPC-Web's
``grpc-encoding`` with the envelope's compressed flag) the bytes are gzip
(RFC 1952), inflated by :func:`gunzip` under the limit, whatever the framing.
"""

from __future__ import annotations

import zlib

from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.http.body import BodyTooLarge

GZIP = b"gzip"
IDENTITY = b"identity"
# What a 415 names as accepted, as the Accept-Encoding response header.
ACCEPTED = "gzip"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip's header and trailer, not zlib's


class UnsupportedEncoding(Error):
    """A ``Content-Encoding`` we cannot undo: 415 naming the ones we can."""

    http_status = 415

    def __init__(self, coding: bytes) -> None:
        super().__init__(
            Code.INVALID_ARGUMENT,
            f"Content-Encoding {coding.decode('latin-1')!r} is not supported: "
            f"send the body as it is or with Content-Encoding: {ACCEPTED}",
            headers={"Accept-Encoding": ACCEPTED},
        )


def gunzip(data: bytes, limit: int, what: str = "message") -> bytes:
    """Inflate one gzip member, refusing to produce more than ``limit`` bytes.

    Two things hold wherever a body or message is inflated:

    - The limit applies to what comes *out*: a few kilobytes of gzip can
      inflate to gigabytes. :func:`gunzip` inflates at most ``limit + 1``
      bytes, however large the input promises to be, and refuses the message
      if that many came out.
    - One gzip member, nothing after it. A second member or stray bytes would
      be data that some readers see and others drop (Python's
      ``gzip.decompress`` reads every member, a single ``zlib`` pass stops at
      the first): malformed, never ignored.

    Over the limit is :class:`~twofold.http.body.BodyTooLarge` (RESOURCE_EXHAUSTED,
    413 on REST); anything else wrong (not gzip, truncated, bytes after the
    member) is INVALID_ARGUMENT. ``what`` names the data in messages.
    """
    inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
    try:
        # max_length bounds the output: zlib stops there and keeps the rest
        # of the input unread, so a bomb costs limit + 1 bytes at most.
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise Error(Code.INVALID_ARGUMENT, f"{what} is not valid gzip") from None
    if len(out) > limit:
        raise BodyTooLarge(limit, f"{what} is larger than {limit} bytes once decompressed")
    if not inflater.eof:
        raise Error(Code.INVALID_ARGUMENT, f"{what} is not valid gzip: truncated")
    if inflater.unused_data:
        raise Error(Code.INVALID_ARGUMENT, f"{what} is not valid gzip: data after the gzip stream")
    return out


def decode_body(content_encoding: bytes | None, body: bytes, limit: int) -> bytes:
    """``body`` with its ``Content-Encoding`` undone, within ``limit`` bytes.

    Only gzip is taken: it is what every HTTP and RPC client sends, and
    ``deflate`` is ambiguous in practice (zlib-wrapped per RFC 9110, raw
    deflate from some clients). A request in another coding is refused with
    415 and ``Accept-Encoding: gzip`` (RFC 9110 §15.5.16) on REST and JSON-RPC.

    The header is a list of codings in the order they were applied (RFC
    9110 §8.4), matched case-insensitively; ``identity`` is no coding.
    Raises :class:`UnsupportedEncoding` for any coding but gzip.
    """
    if content_encoding is None:
        return body
    codings = [c.strip().lower() for c in content_encoding.split(b",")]
    for coding in codings:
        if coding not in (GZIP, IDENTITY, b""):
            raise UnsupportedEncoding(coding)
    for coding in reversed(codings):
        if coding == GZIP:
            body = gunzip(body, limit, "request body")
    return body
