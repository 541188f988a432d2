"""Turning what came back into :class:`~twofold.Error`, whatever came back.

Each protocol module reads its own error document; this module holds what
they share: the code for an HTTP status when the body is not an error
document at all (a proxy's HTML page, an empty 502), the reconstruction of
error details from JSON or from protobuf bytes, and :class:`Failure`, which
carries an error to the retry loop with what it needs to decide.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import Any

from twofold.core.code import Code
from twofold.core.details import BadRequest, Detail, ErrorInfo, FieldViolation
from twofold.core.errors import Error

# The code of a response that carries no error document of its protocol, by
# HTTP status: gRPC's and Connect's table for "the status is all we have".
# Surprising entries: 400 is INTERNAL because a well-formed call was
# misunderstood by something in between, not refused by the service; 404 is
# UNIMPLEMENTED because no route exists; 429 is UNAVAILABLE because an
# intermediary's rate limit is temporary, so retryable. Everything else,
# 2xx included, is UNKNOWN.
HTTP_FALLBACK: dict[int, Code] = {
    400: Code.INTERNAL,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.UNIMPLEMENTED,
    429: Code.UNAVAILABLE,
    502: Code.UNAVAILABLE,
    503: Code.UNAVAILABLE,
    504: Code.UNAVAILABLE,
}


class Failure(Exception):
    """One attempt failed: the error to raise, and whether trying again could help.

    ``retryable`` is False for what the client itself decided (a response
    over the size limit, an undecodable body): the same call would fail the
    same way. ``retry_after`` is the server's ``Retry-After``, in seconds.
    """

    def __init__(
        self, error: Error, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.retryable = retryable
        self.retry_after = retry_after

    def release(self) -> Error:
        """The error to raise in this failure's place, let go of.

        Raised while the failure is handled, the error's context is the
        failure; a failure still holding the error would make the two a
        reference cycle, left to the garbage collector, on every failed call.
        """
        error = self.error
        del self.error
        return error


def fail(code: Code, message: str) -> Failure:
    """A failure the client diagnosed itself, never worth retrying."""
    return Failure(Error(code, message), retryable=False)


def unexpected(status: int, content_type: str, body: bytes) -> Failure:
    """A response that is not an answer of the protocol spoken: code from its status."""
    code = HTTP_FALLBACK.get(status, Code.UNKNOWN)
    what = content_type or "no content type"
    excerpt = body[:80].decode("utf-8", "replace").strip()
    message = f"unexpected HTTP {status} response ({what})"
    if excerpt:
        message += f": {excerpt!r}"
    return Failure(Error(code, message), retryable=code is Code.UNAVAILABLE)


class RawDetail:
    """An error detail of a type this client does not model: its type name, its
    JSON form and its protobuf bytes, as received (either may be empty)."""

    def __init__(self, type_name: str, json: Mapping[str, Any], proto: bytes = b"") -> None:
        self.TYPE_NAME = type_name
        self.json = dict(json)
        self.proto = proto

    def to_json(self) -> dict[str, Any]:
        return dict(self.json)

    def to_proto(self) -> bytes:
        return self.proto

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RawDetail):
            return NotImplemented
        return (self.TYPE_NAME, self.json, self.proto) == (other.TYPE_NAME, other.json, other.proto)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RawDetail({self.TYPE_NAME!r}, {self.json!r})"


def code_from(name: object) -> Code:
    """A wire name (``not_found``) as a code; anything else is UNKNOWN."""
    return Code.from_wire_name(name) if isinstance(name, str) else Code.UNKNOWN


def message_from(text: object, code: Code) -> str:
    # Servers fill an empty message with the code's name; take that back.
    return text if isinstance(text, str) and text != code.wire_name else ""


def violations(items: object) -> list[Detail]:
    """``[{"field", "description"}]`` (problem+json, JSON-RPC data) as a BadRequest."""
    if not isinstance(items, list) or not items:
        return []
    found = [
        FieldViolation(str(v.get("field", "")), str(v.get("description", "")))
        for v in items
        if isinstance(v, dict)
    ]
    return [BadRequest(tuple(found))] if found else []


def json_details(items: object) -> list[Detail]:
    """``[{"type": ..., ...members}]`` as typed details where the type is known."""
    if not isinstance(items, list):
        return []
    out: list[Detail] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("type"), str):
            members = {k: v for k, v in item.items() if k != "type"}
            out.append(_from_json(item["type"], members))
    return out


def connect_details(items: object) -> list[Detail]:
    """Connect's ``[{"type", "value", "debug"}]``: the protobuf ``value`` is the
    detail; ``debug`` is only read when ``value`` cannot be."""
    if not isinstance(items, list):
        return []
    out: list[Detail] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            continue
        type_name = item["type"]
        debug = item.get("debug")
        debug = debug if isinstance(debug, dict) else {}
        try:
            raw = _b64(item.get("value", ""))
            out.append(_from_proto(type_name, raw, debug))
        except ValueError:
            out.append(_from_json(type_name, debug))
    return out


def grpc_code(status: object) -> Code:
    """``grpc-status`` as a code: its number, 1 to 16; anything else is UNKNOWN."""
    text = status.decode("latin-1") if isinstance(status, bytes) else status
    if isinstance(text, str) and text.strip().isdigit():
        number = int(text)
        if 0 < number <= max(c.value for c in Code):
            return Code(number)
    return Code.UNKNOWN


def status_details(raw: bytes | str | None) -> list[Detail]:
    """The details of ``grpc-status-details-bin``: a google.rpc.Status, as bytes (grpcio
    decodes -bin metadata) or as base64 text, padded or not (gRPC-Web's trailers).

    Details that cannot be read are dropped: the code and message still stand.
    """
    if not raw:
        return []
    try:
        data = _b64(raw) if isinstance(raw, str) else raw
        out: list[Detail] = []
        for number, value in _fields(data):
            if number == 3 and isinstance(value, bytes):  # repeated google.protobuf.Any
                parts = dict(_fields(value))
                url, packed = parts.get(1, b""), parts.get(2, b"")
                if isinstance(url, bytes) and isinstance(packed, bytes):
                    type_name = url.decode().rsplit("/", 1)[-1]
                    out.append(_from_proto(type_name, packed, {}))
        return out
    except (ValueError, UnicodeDecodeError):
        return []


def _b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("not base64")
    text = value.translate(str.maketrans("-_", "+/"))
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _from_json(type_name: str, members: dict[str, Any]) -> Detail:
    if type_name == BadRequest.TYPE_NAME:
        items = members.get("fieldViolations", members.get("field_violations"))
        found = violations(items)
        return found[0] if found else BadRequest()
    if type_name == ErrorInfo.TYPE_NAME and isinstance(members.get("reason"), str):
        metadata = members.get("metadata")
        return ErrorInfo(
            members["reason"],
            str(members.get("domain", "")),
            {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {},
        )
    return RawDetail(type_name, members)


def _from_proto(type_name: str, raw: bytes, debug: dict[str, Any]) -> Detail:
    """BadRequest and ErrorInfo from their protobuf bytes; others kept as they came."""
    if type_name == BadRequest.TYPE_NAME:
        found = []
        for number, value in _fields(raw):
            if number == 1 and isinstance(value, bytes):
                parts = _strings(value)
                found.append(FieldViolation(parts.get(1, ""), parts.get(2, "")))
        return BadRequest(tuple(found))
    if type_name == ErrorInfo.TYPE_NAME:
        reason = domain = ""
        metadata: dict[str, str] = {}
        for number, value in _fields(raw):
            if not isinstance(value, bytes):
                continue
            if number == 1:
                reason = value.decode()
            elif number == 2:
                domain = value.decode()
            elif number == 3:
                entry = _strings(value)
                metadata[entry.get(1, "")] = entry.get(2, "")
        return ErrorInfo(reason, domain, metadata)
    return RawDetail(type_name, debug, raw)


def _strings(raw: bytes) -> dict[int, str]:
    return {n: v.decode() for n, v in _fields(raw) if isinstance(v, bytes)}


def _fields(raw: bytes) -> Iterator[tuple[int, int | bytes]]:
    """The (field number, value) pairs of a protobuf message; ValueError if malformed.

    Enough of the wire format for google.rpc details: varints and
    length-delimited fields are read, fixed-width ones skipped.
    """
    pos = 0
    while pos < len(raw):
        key, pos = _varint(raw, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(raw, pos)
            yield number, value
        elif wire_type == 2:
            size, pos = _varint(raw, pos)
            if pos + size > len(raw):
                raise ValueError("truncated field")
            yield number, raw[pos : pos + size]
            pos += size
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    if pos != len(raw):
        raise ValueError("truncated field")


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(raw) and shift < 64:
        byte = raw[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise ValueError("truncated varint")
