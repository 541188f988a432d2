"""The request of a server stream on its REST route, and where it resumes.

Both representations of a stream's route read the request the same way
(:mod:`twofold.wires.sse`, :mod:`twofold.wires.longpoll`): path and query
values, a body when the binding has one, and, for a ``@resumable`` method,
``Last-Event-ID`` in its ``after`` field. They also write an event id the
same way (the SSE ``id:`` line, a poll's ``cursor``), and this module says
when a request asks for a long poll (``?wait=``) and for how long.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec

from twofold.core.asgi import Receive, Scope
from twofold.core.code import Code
from twofold.core.errors import Error, validation_error
from twofold.http import compression
from twofold.http.body import header, read_body
from twofold.http.operation import Operation, add_query

# Longest Last-Event-ID read: an id is a row id or a token, never a document.
MAX_LAST_EVENT_ID = 1024
# The query parameter that asks for a long poll, and so cannot be a request
# field of a resumable method (the App refuses such a definition).
WAIT = "wait"
# Most events in one long poll's answer: a client far behind catches up in
# several polls, each answered at once, rather than one answer of unbounded size.
MAX_POLL_EVENTS = 1000
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """A stream's decoded request, and the event id it resumes after, as sent."""

    request: Any
    after: str | None
    """``Last-Event-ID``, else the query's ``after`` field, as text; None when neither."""


async def read(
    op: Operation, scope: Scope, params: dict[str, Any], receive: Receive, max_body_size: int
) -> StreamRequest:
    """The request of a stream's route; raises :class:`Error` for bad input."""
    qs: bytes = scope["query_string"]
    if qs and op.query_fields:
        add_query(params, qs, op.query_fields)
    resume = op.method.resume
    last = None if resume is None else header(scope, b"last-event-id")
    if last is not None and len(last) > MAX_LAST_EVENT_ID:
        raise Error.invalid("Last-Event-ID", "is too long")
    raw = b""
    if op.body is not None:
        raw = await read_body(scope, receive, max_body_size)
        coding = header(scope, b"content-encoding")
        if coding is not None:
            raw = compression.decode_body(coding, raw, max_body_size)
    try:
        request = op.decode(params, raw)
        if last is not None and resume is not None:
            # An EventSource comes back to the same URL with the last id it
            # saw: the header is newer than the query's ``after``, which
            # was still checked above, as any parameter is.
            params[resume.after] = last.decode("latin-1")
            request = op.decode(params, raw)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise Error(Code.INVALID_ARGUMENT, f"malformed JSON body: {exc}") from None
    after = None
    if resume is not None and resume.after in params:
        after = event_id(getattr(request, resume.after))
    return StreamRequest(request, after)


def event_id(value: Any) -> str:
    """An event id as text: a string as it is, anything else as its JSON (``42``).

    A line break or NUL would end or void an SSE ``id:`` line.
    """
    text = value if isinstance(value, str) else _encode(value).decode()
    if any(c in text for c in "\r\n\0"):
        raise Error(Code.INTERNAL, "an event id holds a line break or NUL")
    return text


def wait_of(query_string: bytes) -> str | None:
    """The ``wait`` query value when there is one: a request for a long poll."""
    if not query_string or WAIT.encode() not in query_string:
        return None  # what nearly every stream request is: skip the parse
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return None  # add_query reports a malformed query string
    values = [value for name, value in pairs if name == WAIT]
    if len(values) > 1:  # as any other parameter given twice (add_query)
        raise Error.invalid(WAIT, "given more than once")
    return values[0] if values else None


def seconds(raw: str, maximum: float) -> float:
    """``wait`` as seconds, at most ``maximum``: a longer wait is a wish this
    server grants as far as it can, not an error; the client is answered sooner."""
    try:
        value = float(raw) if 0 < len(raw) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not value >= 0:  # also refuses nan
        raise Error.invalid(WAIT, "must be a number of seconds, 0 or more")
    return min(value, maximum)


def next_poll(scope: Scope, after_field: str, cursor: str | None) -> bytes:
    """``Link: </products:watchPrices?wait=30&after_id=42>; rel="next"`` (RFC 8288):
    the same poll, after ``cursor``."""
    pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    if cursor is not None:
        pairs = [(k, v) for k, v in pairs if k != after_field]
        pairs.append((after_field, cursor))
    root: str = scope.get("root_path", "")
    return f'<{root}{scope["path"]}?{urlencode(pairs)}>; rel="next"'.encode("latin-1")
