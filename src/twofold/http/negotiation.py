"""Content negotiation, for every wire: Accept (406) and the one gzip negotiation.

Twofold answers JSON (and problem+json for errors), so the only question
``Accept`` asks is whether the client takes JSON at all. Every list that
names content codings (``Accept-Encoding`` on REST, Connect and the docs
page, Connect's ``connect-accept-encoding``, gRPC's ``grpc-accept-encoding``)
is read by one rule, :func:`accepts_gzip`; every coding a request declares
(``content-encoding``, ``connect-content-encoding``, ``grpc-encoding``,
Connect GET's ``compression``) by :func:`decompressor`. Lists are parsed
leniently, as RFC 9110 does: a malformed member simply does not match.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable

from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.http import compression

GZIP = b"gzip"
# Below this, gzip's header and the CPU cost outweigh the bytes saved.
GZIP_MIN_SIZE = 1024
# (data, limit) -> the inflated data, at most limit bytes.
Decompress = Callable[[bytes, int], bytes]
_COMMON = frozenset((b"*/*", b"application/json", b"application/problem+json"))


def accepts_json(accept: bytes) -> bool:
    """True when ``Accept`` admits application/json or application/problem+json."""
    if accept in _COMMON:
        return True
    for member in accept.split(b","):
        media, _, params = member.partition(b";")
        media = media.strip().lower()
        if _refused(params):
            continue
        if media in (b"*/*", b"application/*", b"application/json", b"application/problem+json"):
            return True
    return False


def accepts_gzip(accept_encoding: bytes | None) -> bool:
    """True when ``Accept-Encoding`` admits gzip (or ``*``) with a q above 0."""
    if not accept_encoding:
        return False
    for member in accept_encoding.split(b","):
        name, _, params = member.partition(b";")
        if name.strip().lower() in (GZIP, b"*") and not _refused(params):
            return True
    return False


def compress(body: bytes) -> bytes:
    # Level 6 is zlib's default balance; mtime=0: the same body always
    # compresses to the same bytes (an ETag per representation stays stable).
    return gzip.compress(body, compresslevel=6, mtime=0)


def decompressor(where: str, coding: bytes | str | None) -> Decompress | None:
    """How to read a body whose ``where`` (a header or parameter) says ``coding``.

    Absent or identity is None. Anything but gzip is UNIMPLEMENTED with the
    supported codings in the message, as Connect and gRPC ask.
    """
    if isinstance(coding, str):
        coding = coding.encode("latin-1")
    if coding is None or coding == b"identity":
        return None
    if coding != GZIP:
        value = coding.decode("latin-1")
        raise Error(Code.UNIMPLEMENTED, f"{where} {value!r} is not supported: use gzip or identity")
    return compression.gunzip


def _refused(params: bytes) -> bool:
    """``q=0`` (or 0.0, 0.00, 0.000) among a member's parameters."""
    for param in params.split(b";"):
        name, _, value = param.partition(b"=")
        if name.strip().lower() == b"q":
            try:
                return float(value.strip()) == 0
            except ValueError:
                return True
    return False


class NotAcceptable(Error):
    """``Accept`` excludes JSON: 406 on REST, whose answers are only JSON."""

    http_status = 406

    def __init__(self) -> None:
        super().__init__(
            Code.INVALID_ARGUMENT,
            "this API answers application/json (errors application/problem+json): "
            "send an Accept that admits one of them",
        )
