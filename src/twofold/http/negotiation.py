"""Content negotiation, for every wire: Accept (406) and the one gzip negotiation.

Twofold answers JSON (and problem+json for errors) on every wire; REST
answers XML too (:mod:`twofold.http.xmlmessage`) to a client that prefers it.
:func:`accepts_json` asks whether a client takes JSON at all;
:func:`representation` picks REST's by the q-values of ``Accept``
(RFC 9110 §12.5.1), JSON when they tie. Every list that
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
# The Accept values that are JSON outright, which nearly every client sends.
COMMON = frozenset((b"*/*", b"application/json", b"application/problem+json"))


def accepts_json(accept: bytes) -> bool:
    """True when ``Accept`` admits application/json or application/problem+json."""
    if accept in COMMON:
        return True
    for member in accept.split(b","):
        media, _, params = member.partition(b";")
        media = media.strip().lower()
        if _refused(params):
            continue
        if media in (b"*/*", b"application/*", b"application/json", b"application/problem+json"):
            return True
    return False


# What REST answers: its representations, in the server's order of preference.
JSON, XML = 1, 2
_JSON_TYPES = (b"application/json", b"application/problem+json")
_XML_TYPES = (b"application/xml", b"text/xml", b"application/problem+xml")


def representation(accept: bytes | None) -> int | None:
    """REST's representation for ``Accept``: JSON, XML, or None (neither: 406).

    Each is weighed by the most specific range that matches it (an exact
    type over ``application/*`` over ``*/*``); the higher q wins and JSON
    wins a tie, so ``Accept: */*`` and no Accept at all stay JSON.
    """
    if accept is None or accept in COMMON:
        return JSON
    json_q = xml_q = -1.0
    json_rank = xml_rank = -1
    for member in accept.split(b","):
        media, _, params = member.partition(b";")
        media = media.strip().lower()
        if media == b"*/*":
            rank = 0
        elif media == b"application/*" or media == b"text/*":
            rank = 1
        elif media in _JSON_TYPES or media in _XML_TYPES:
            rank = 2
        else:
            continue
        q = _quality(params)
        if (media in _JSON_TYPES or rank < 2) and media != b"text/*" and rank > json_rank:
            json_q, json_rank = q, rank
        elif media in _JSON_TYPES and rank == json_rank:
            json_q = max(json_q, q)
        if (media in _XML_TYPES or rank < 2) and rank > xml_rank:
            xml_q, xml_rank = q, rank
        elif media in _XML_TYPES and rank == xml_rank:
            xml_q = max(xml_q, q)
    if json_q <= 0 and xml_q <= 0:
        return None
    return XML if xml_q > json_q else JSON


def _quality(params: bytes) -> float:
    """The q of a member (1 when absent); a malformed q counts as 0, as it never matches."""
    for param in params.split(b";"):
        name, _, value = param.partition(b"=")
        if name.strip().lower() == b"q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0 <= q <= 1 else 0.0
    return 1.0


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
    """``Accept`` excludes both JSON and XML: 406 on REST."""

    http_status = 406

    def __init__(self) -> None:
        super().__init__(
            Code.INVALID_ARGUMENT,
            "this API answers application/json or application/xml (errors "
            "application/problem+json or application/problem+xml): "
            "send an Accept that admits one of them",
        )


class Unrepresentable(Error):
    """The answer would hold a character XML 1.0 cannot carry (a control
    character such as U+0001 in a string): 406, asking for JSON, rather than
    a malformed document."""

    http_status = 406

    def __init__(self) -> None:
        super().__init__(
            Code.INVALID_ARGUMENT,
            "the answer would hold a character XML 1.0 cannot carry: ask for application/json",
        )
