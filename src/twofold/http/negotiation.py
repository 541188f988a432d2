"""Content negotiation for JSON answers: Accept (406) and Accept-Encoding (gzip).

Twofold answers JSON (and problem+json for errors), so the only question
``Accept`` asks is whether the client takes JSON at all; ``Accept-Encoding``
whether it takes gzip. Both parse the RFC 9110 lists leniently: a malformed
member simply does not match.
"""

from __future__ import annotations

import gzip

from twofold.core.code import Code
from twofold.core.errors import Error

GZIP = b"gzip"
# Below this, gzip's header and the CPU cost outweigh the bytes saved.
GZIP_MIN_SIZE = 1024
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
    # mtime=0: the same body always compresses to the same bytes.
    return gzip.compress(body, compresslevel=6, mtime=0)


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
