"""HTTP caching shared by the HTTP protocols: validators, Cache-Control, conditions.

A method declares how its answers may be cached with :class:`Cache`
(``@products.get(cache=Cache(max_age=60, public=True))``); without one, a
side-effect-free method answers ``no-cache`` (any cache must revalidate every
time) and every other method, and every error, ``no-store``.

Every successful read carries a strong ETag. When the output has a string
field named ``etag`` (AIP-154: the resource's version, which the database
bumps on each write) that is the validator, so a conditional GET can be
answered without reading more than the version; otherwise it is a digest of
the encoded body, which is strong because the encoding is deterministic.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.core.method import Idempotency, Method
from twofold.core.policy import NO_CACHE, NO_STORE

ETAG_FIELD = "etag"
# The output field that declares a modification time, and the write request
# field If-Unmodified-Since fills.
MODIFIED_FIELD = "updated_at"
UNMODIFIED_SINCE_FIELD = "unmodified_since"


def cache_control(method: Method) -> bytes:
    """The Cache-Control of a method's successful answers."""
    if method.cache is not None:
        return method.cache.header
    return NO_CACHE if method.idempotency is Idempotency.NO_SIDE_EFFECTS else NO_STORE


def vary(method: Method) -> bytes:
    """The Vary of a method's answers: Accept-Encoding, then what the method declares."""
    names = ["Accept-Encoding", *(method.cache.vary if method.cache else ())]
    return ", ".join(dict.fromkeys(names)).encode()


# What an ETag adds to the resource's version for each other representation.
XML_SUFFIX = "-xml"
GZIP_SUFFIX = "-gzip"


def etag(output: Any, body: bytes, gzip: bool = False, xml: bool = False) -> bytes:
    """The strong ETag of a successful read: its ``etag`` field, else a body digest.

    A gzipped or XML answer is another representation, so it gets another
    strong tag (``"v3-gzip"``, ``"v3-xml"``, ``"v3-xml-gzip"``), as RFC 9110
    §8.8.3 asks; :func:`if_match` takes any of them back to the version.
    """
    value = getattr(output, ETAG_FIELD, None)
    if isinstance(value, str) and value:
        tag = value.encode()
    else:
        tag = hashlib.blake2b(body, digest_size=16).hexdigest().encode()
    if xml:
        tag += b"-xml"
    return b'"' + tag + (b'-gzip"' if gzip else b'"')


def read_headers(
    method: Method, tag: bytes, present: list[tuple[bytes, bytes]], when: datetime | None = None
) -> list[tuple[bytes, bytes]]:
    """The caching headers of a successful read: Cache-Control, ETag, Vary and,
    given the output's modification time, Last-Modified; except those among
    ``present`` (headers the handler set win)."""
    names = {name for name, _ in present}
    found = [(b"cache-control", cache_control(method)), (b"etag", tag), (b"vary", vary(method))]
    if when is not None:
        found.append((b"last-modified", last_modified(when)))
    return [h for h in found if h[0] not in names]


def not_modified(
    if_none_match: bytes | None,
    tag: bytes,
    if_modified_since: bytes | None = None,
    when: datetime | None = None,
) -> bool:
    """True when a read with these conditions is answered 304 Not Modified.

    If-None-Match decides when present; only without it is If-Modified-Since
    read (RFC 9110 §13.2.2), and only for an output with a modification time.
    """
    if if_none_match is not None:
        return none_match(if_none_match, tag)
    return (
        if_modified_since is not None
        and when is not None
        and not_modified_since(if_modified_since, when)
    )


def none_match(if_none_match: bytes, tag: bytes) -> bool:
    """True when ``If-None-Match`` names ``tag`` (weakly) or is ``*``: answer 304.

    RFC 9110 §13.1.2 compares weakly, so ``W/"x"`` matches ``"x"``.
    Unparsable members simply do not match.
    """
    for member in if_none_match.split(b","):
        member = member.strip()
        if member == b"*" or member.removeprefix(b"W/") == tag:
            return True
    return False


def if_match(value: str) -> str:
    """The ``etag`` request field for an ``If-Match`` header.

    ``*`` asks only that the resource exists, which every write of an item
    checks anyway: it becomes "" (no version to compare). A weak tag can never
    match, as If-Match compares strongly (RFC 9110 §13.1.1): it is answered
    412. More than one tag, or anything that is not a quoted tag, is
    INVALID_ARGUMENT.
    """
    value = value.strip()
    if value == "*":
        return ""
    if value.startswith("W/"):
        raise PreconditionFailed("If-Match takes a strong ETag; a weak one never matches")
    if len(value) < 2 or value[0] != '"' or value[-1] != '"' or '"' in value[1:-1]:
        raise Error.invalid(
            "If-Match", 'expected one strong ETag in quotes, such as "v3", or *', message=""
        )
    tag = value[1:-1]
    if not tag or not all(0x21 <= ord(c) <= 0x7E for c in tag):
        raise Error.invalid("If-Match", "the ETag has characters an ETag may not contain")
    # Any representation's tag names the same version (see etag()).
    return tag.removesuffix(GZIP_SUFFIX).removesuffix(XML_SUFFIX)


def check_etag(expected: str, current: str, what: str = "the resource") -> None:
    """Raise :class:`PreconditionFailed` unless ``expected`` is "" or equals ``current``.

    Writes are made conditional the AIP way, so that the check is atomic with
    the write: the request message has an ``etag`` field, REST fills it from
    ``If-Match``, RPC callers send it, and the handler compares it with the
    stored version inside its transaction (:func:`check_etag`). A stale one is
    ABORTED, answered 412 on REST (:class:`PreconditionFailed`).

    Call it inside the write's transaction, after locking the row, so that
    no other write can come between the check and this one.
    """
    if expected and expected != current:
        raise PreconditionFailed(
            f"{what} has changed: its etag is no longer {expected!r}; read it again"
        )


def modified(output: Any) -> datetime | None:
    """The modification time an output declares (its ``updated_at``), if any."""
    value = getattr(output, MODIFIED_FIELD, None)
    return value if isinstance(value, datetime) else None


def last_modified(when: datetime) -> bytes:
    """``Last-Modified``'s value: an IMF-fixdate, ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return format_datetime(_utc(when).replace(microsecond=0), usegmt=True).encode()


def http_date(value: bytes | str) -> datetime | None:
    """An HTTP-date header value as an aware datetime; None when it is not one,
    since RFC 9110 (§13.1.3, §13.1.4) has recipients ignore an invalid date."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    try:
        parsed = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000": no zone given, which HTTP dates never are
        return None
    return parsed.astimezone(UTC)


def not_modified_since(if_modified_since: bytes, when: datetime) -> bool:
    """True when a read with this ``If-Modified-Since`` is answered 304."""
    since = http_date(if_modified_since)
    return since is not None and _seconds(when) <= since


def check_unmodified(since: datetime | None, when: datetime, what: str = "the resource") -> None:
    """Raise :class:`PreconditionFailed` if the resource changed after ``since``.

    A resource that also declares a modification time, an output field named
    ``updated_at`` (a ``datetime``), gets the other validator as well: reads
    carry ``Last-Modified`` and answer ``If-Modified-Since`` with 304 (when no
    ``If-None-Match`` is given, RFC 9110 §13.2.2), and a write whose request has
    an ``unmodified_since`` field takes ``If-Unmodified-Since`` into it, for the
    handler to compare inside its transaction (:func:`check_unmodified`) just as
    it does the etag. HTTP dates count whole seconds, so times are compared at
    that precision.

    ``since`` is the request's ``unmodified_since`` (None: unconditional);
    ``when`` its stored modification time. Call it where :func:`check_etag`
    goes: inside the transaction, after locking the row.
    """
    if since is not None and _seconds(when) > _utc(since):
        raise PreconditionFailed(
            f"{what} has changed since {last_modified(since).decode()}; read it again"
        )


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _seconds(when: datetime) -> datetime:
    # What an HTTP date can say: whole seconds.
    return _utc(when).replace(microsecond=0)


class PreconditionFailed(Error):
    """A conditional write found the resource changed: ABORTED, 412 on REST.

    RPC has no 412, and ABORTED is what AIP-154 asks for a stale etag; REST
    keeps HTTP's own status, which caches and clients act upon.
    """

    http_status = 412

    def __init__(self, message: str) -> None:
        super().__init__(Code.ABORTED, message)
