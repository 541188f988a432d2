"""HTTP plumbing the HTTP protocols share: bodies with limits, headers, responses.

This is not a protocol and knows no wire format beyond HTTP itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.code import Code
from twofold.core.context import address
from twofold.core.errors import Error


class BodyTooLarge(Error):
    """The request body is over the limit: RESOURCE_EXHAUSTED, 413 on REST."""

    http_status = 413

    def __init__(self, limit: int, message: str = "") -> None:
        super().__init__(
            Code.RESOURCE_EXHAUSTED, message or f"request body is larger than {limit} bytes"
        )
        self.limit = limit


class ClientDisconnected(Exception):
    """The client went away before the body was read; there is no one to answer."""


# Seconds between two looks for a disconnect, on a server whose receive answers
# at once after the body instead of waiting for one (:func:`disconnect`).
DISCONNECT_POLL = 0.25


async def disconnect(receive: Receive) -> None:
    """Return when the client has gone, or the response is complete; call
    once the wire has read what it wants of the request body (what it left
    is read and dropped here).

    After the body's end, ``receive`` is one a server may hold until
    ``http.disconnect`` (uvicorn and hypercorn do). pyvoy (1.3) answers the
    body's end again at once instead, from an awaitable that never suspends:
    asked again without a pause, this loop would hold the event loop and
    stall every request of the process. It does tell ``http.disconnect`` in
    the end, so from the second end on it is asked again after a pause.
    """
    ended = False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if ended:
            await asyncio.sleep(DISCONNECT_POLL)
        ended = not message.get("more_body", False)


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a lowercase header name, or None."""
    for k, v in scope["headers"]:
        if k == name:
            return v  # type: ignore[no-any-return]
    return None


def media_type(content_type: bytes | None) -> bytes:
    """``application/json; charset=utf-8`` -> ``application/json`` (lowercased)."""
    if not content_type:
        return b""
    return content_type.split(b";", 1)[0].strip().lower()


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing to buffer more than ``limit`` bytes.

    A Content-Length over the limit is refused before a byte is read; a
    chunked body is counted as it arrives.
    """
    declared = header(scope, b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge(limit)
        except ValueError:
            raise Error(Code.INVALID_ARGUMENT, "invalid Content-Length") from None
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise BodyTooLarge(limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(
    send: Send,
    status: int,
    body: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = (),
    content_type: bytes | None = None,
) -> None:
    """Send a complete response with a Content-Length."""
    raw = list(headers)
    if content_type is not None:
        raw.append((b"content-type", content_type))
    # RFC 9110 §8.6: no Content-Length on 1xx and 204; a 304 would have to
    # repeat the GET's length, so it carries none either.
    if status >= 200 and status not in (204, 304):
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """Handler-set response headers, refusing CR/LF so no one can split a response."""
    out = []
    for k, v in headers.items():
        if "\r" in k or "\n" in k or "\r" in v or "\n" in v:
            raise ValueError(f"response header {k!r} contains a line break")
        out.append((k.lower().encode("latin-1"), v.encode("latin-1")))
    return out


def peer(scope: Scope) -> str | None:
    return address(scope.get("client"))
