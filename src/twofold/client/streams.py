"""Reading a streamed response: Connect, gRPC-Web, or Server-Sent Events (REST).

Connect and gRPC-Web are enveloped messages (:mod:`twofold.client.frames`) followed by a
last word that says how the call ended, and both always answer HTTP 200,
so an error arrives after the headers, possibly after some messages:

- Connect streams end with an end-of-stream envelope (flag 0x02) holding
  JSON ``{"error": {"code", "message", "details"}, "metadata"}``; a stream
  that stops without one was cut short.
- gRPC-Web ends with a trailers envelope (flag 0x80) holding
  ``grpc-status``, ``grpc-message`` (percent-encoded) and
  ``grpc-status-details-bin`` as HTTP/1 header lines; or, when the call
  failed before any message, "trailers-only": those in the response
  headers and an empty body.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import msgspec

from twofold.client.errors import (
    Failure,
    code_from,
    connect_details,
    fail,
    grpc_code,
    message_from,
    status_details,
    unexpected,
)
from twofold.client.frames import Frames
from twofold.client.transports import HttpResponse
from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.http import envelope

CONNECT_STREAM_TYPES = ("application/connect+json", "application/connect+proto")
GRPC_WEB_TYPES = ("application/grpc-web", "application/grpc-web+proto")
EVENT_STREAM = "text/event-stream"
STREAM_TYPES = (*CONNECT_STREAM_TYPES, *GRPC_WEB_TYPES, EVENT_STREAM)
_decode_json = msgspec.json.Decoder().decode


class Reader:
    """The outputs of one streamed response, chunk by chunk, then its end.

    A reader is pushed chunks (``feed``) and returns the messages they
    completed, decoded; it raises :class:`~twofold.client.errors.Failure` with
    the server's error as soon as the outcome says so, and ``end`` checks that
    the outcome came at all. Unary gRPC-Web calls read their whole body through
    the same reader.

    REST serves a server stream as Server-Sent Events (:mod:`twofold.wires.sse`):
    one ``data:`` line of REST JSON per output, and a failure after the first
    one as a last ``event: error`` whose data is the problem document. SSE has
    no end marker: the body ending between events is the stream ending.
    """

    def feed(self, chunk: bytes) -> list[Any]:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError


class Enveloped(Reader):
    """Enveloped messages, then the outcome."""

    def __init__(self, decode: Callable[[bytes], Any], limit: int, head: HttpResponse) -> None:
        self._decode = decode
        self.done = False
        self._frames = Frames(limit, gzip=self._gzip(head))

    def _gzip(self, head: HttpResponse) -> bool:
        raise NotImplementedError

    def feed(self, chunk: bytes) -> list[Any]:
        out = []
        for item in self._frames.feed(chunk):
            if self.done:
                raise fail(Code.INTERNAL, "protocol error: data after the end of the stream")
            if self._is_end(item):
                self.done = True
                self._outcome(item.data)
            else:
                out.append(self._message(item.data))
        return out

    def end(self) -> None:
        self._frames.end()
        if not self.done:
            raise self._missing()

    def _is_end(self, item: envelope.Envelope) -> bool:
        raise NotImplementedError

    def _outcome(self, data: bytes) -> None:
        raise NotImplementedError

    def _missing(self) -> Failure:
        raise NotImplementedError

    def _message(self, data: bytes) -> Any:
        try:
            return self._decode(data)
        except Error as exc:  # the codec's complaint is the server's fault here
            raise fail(Code.INTERNAL, f"malformed response message: {exc.message}") from None


class ConnectReader(Enveloped):
    """A Connect stream's response (``application/connect+json`` or ``+proto``)."""

    def __init__(self, decode: Callable[[bytes], Any], limit: int, head: HttpResponse) -> None:
        if head.status != 200 or head.media_type not in CONNECT_STREAM_TYPES:
            # Not a stream: a proxy's page, or a Connect unary-style error.
            raise connect_error(head) or unexpected(head.status, head.media_type, head.content)
        super().__init__(decode, limit, head)

    def _gzip(self, head: HttpResponse) -> bool:
        return head.headers.get("connect-content-encoding", "identity") == "gzip"

    def _is_end(self, item: envelope.Envelope) -> bool:
        return bool(item.flags & envelope.END_STREAM)

    def _outcome(self, data: bytes) -> None:
        try:
            end = _decode_json(data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            raise fail(Code.INTERNAL, "malformed end-of-stream message") from None
        if not isinstance(end, dict):
            raise fail(Code.INTERNAL, "malformed end-of-stream message")
        error = end.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise fail(Code.INTERNAL, "malformed end-of-stream error")
            raise Failure(_connect_error(error))

    def _missing(self) -> Failure:
        # connect-go's wording and code: the stream was cut short.
        return fail(
            Code.INTERNAL, "protocol error: the stream ended without an end-of-stream message"
        )


class GrpcWebReader(Enveloped):
    """A gRPC-Web response (``application/grpc-web`` or ``+proto``)."""

    def __init__(self, decode: Callable[[bytes], Any], limit: int, head: HttpResponse) -> None:
        status = head.headers.get("grpc-status")
        if head.status != 200 and status is None:
            raise unexpected(head.status, head.media_type, head.content)
        if head.media_type not in GRPC_WEB_TYPES:
            raise unexpected(head.status, head.media_type, head.content)
        super().__init__(decode, limit, head)
        if status is not None:  # trailers-only: the outcome is in the headers
            self.done = True
            _raise_status(head.headers)

    def _gzip(self, head: HttpResponse) -> bool:
        return head.headers.get("grpc-encoding", "identity") == "gzip"

    def _is_end(self, item: envelope.Envelope) -> bool:
        return bool(item.flags & envelope.TRAILERS)

    def _outcome(self, data: bytes) -> None:
        trailers: dict[str, str] = {}
        for line in data.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                trailers[name.strip().lower()] = value.strip()
        if "grpc-status" not in trailers:
            raise self._missing()
        _raise_status(trailers)

    def _missing(self) -> Failure:
        return fail(Code.INTERNAL, "protocol error: the response has no grpc-status")


class EventReader(Reader):
    """A REST server stream: Server-Sent Events, each ``data`` one output.

    ``decode`` reads an output from REST JSON, ``problem`` the failure of an
    ``event: error``'s problem document; an event larger than ``limit`` is
    RESOURCE_EXHAUSTED, like any other message.
    """

    def __init__(
        self,
        decode: Callable[[bytes], Any],
        problem: Callable[[bytes], Failure],
        limit: int,
    ) -> None:
        self._decode = decode
        self._problem = problem
        self._limit = limit
        self._buffer = bytearray()
        self._event = b""
        self._data: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[Any]:
        self._buffer += chunk
        out = []
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end]).removesuffix(b"\r")
            del self._buffer[: end + 1]
            if line:
                self._field(line)
            elif self._data:  # a blank line ends an event
                data, event = b"\n".join(self._data), self._event
                self._event, self._data, self._size = b"", [], 0
                if event == b"error":
                    raise self._problem(data)
                out.append(self._decode(data))
        self._check(len(self._buffer))  # a line still arriving counts too
        return out

    def _check(self, pending: int) -> None:
        if self._size + pending > self._limit:
            message = f"an event is larger than the {self._limit}-byte limit"
            raise fail(Code.RESOURCE_EXHAUSTED, message)

    def _field(self, line: bytes) -> None:
        if line.startswith(b":"):
            return  # a comment: the server's keepalive
        name, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if name == b"data":
            self._data.append(value)
            self._size += len(value)
            self._check(0)
        elif name == b"event":
            self._event = value

    def end(self) -> None:
        if self._data or self._buffer.strip():
            raise fail(Code.INTERNAL, "truncated response: the event stream ends inside an event")


def _raise_status(trailers: Any) -> None:
    """Raise the error ``grpc-status`` and its companions describe; return on OK."""
    status = trailers.get("grpc-status", "")
    if status.strip() == "0":
        return
    code = grpc_code(status)
    message = urllib.parse.unquote(trailers.get("grpc-message", ""), errors="replace")
    details = status_details(trailers.get("grpc-status-details-bin"))
    retry = trailers.get("retry-after")
    # The error made in the raise, not kept in a local: this frame, which the
    # failure's traceback holds, would hold it, a reference cycle per failure.
    raise Failure(
        Error(code, message_from(message, code), details),
        retry_after=float(retry) if retry and retry.isdigit() else None,
    )


def _connect_error(doc: dict[str, Any]) -> Error:
    code = code_from(doc.get("code"))
    details = connect_details(doc.get("details"))
    return Error(code, message_from(doc.get("message"), code), details)


def connect_error(response: HttpResponse) -> Failure | None:
    """A Connect error body (``{"code", "message", "details"}``) as a failure, or None."""
    if response.media_type != "application/json" or response.status == 200:
        return None
    try:
        doc = _decode_json(response.content)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("code"), str):
        return None
    # Retrying a body that was too large fails the same way however long one waits.
    return Failure(_connect_error(doc), retryable=response.status != 413)
