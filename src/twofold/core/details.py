"""Typed error details, modelled on google.rpc's standard detail messages.

Each detail knows its protobuf type name, its JSON form and its protobuf
bytes, so that every protocol can carry it natively: REST as problem+json
members, Connect as ``{"type", "value", "debug"}``, gRPC in
``grpc-status-details-bin``. The protobuf bytes are written by hand because
these messages are only strings and repeated messages: a dependency on
googleapis-common-protos for three tiny messages is not worth its import time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import msgspec

# What a google.protobuf.Any's type_url starts with.
TYPE_URL_PREFIX = "type.googleapis.com/"


class Detail(Protocol):
    """What an error detail provides to the protocols."""

    TYPE_NAME: str

    def to_json(self) -> dict[str, Any]: ...

    def to_proto(self) -> bytes: ...


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        bits = n & 0x7F
        n >>= 7
        if n:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    # Wire type 2 (length-delimited): strings and embedded messages alike.
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def rpc_status(code: int, message: str, details: Iterable[Detail]) -> bytes:
    """A google.rpc.Status: the code, the message, and each detail packed as a
    google.protobuf.Any. What gRPC and gRPC-Web send as grpc-status-details-bin."""
    out = b"\x08" + _varint(code)  # field 1, varint: the code
    if message:
        out += _field_bytes(2, message.encode())
    for d in details:
        url = f"{TYPE_URL_PREFIX}{d.TYPE_NAME}".encode()
        out += _field_bytes(3, _field_bytes(1, url) + _field_bytes(2, d.to_proto()))
    return out


def _field_str(number: int, value: str) -> bytes:
    return _field_bytes(number, value.encode()) if value else b""


class FieldViolation(msgspec.Struct, frozen=True):
    """One invalid field: a dotted path into the request and why it is wrong."""

    field: str
    description: str

    def to_proto(self) -> bytes:
        return _field_str(1, self.field) + _field_str(2, self.description)


class BadRequest(msgspec.Struct, frozen=True):
    """google.rpc.BadRequest: the field violations of an INVALID_ARGUMENT error."""

    TYPE_NAME = "google.rpc.BadRequest"

    field_violations: tuple[FieldViolation, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "fieldViolations": [
                {"field": v.field, "description": v.description} for v in self.field_violations
            ]
        }

    def to_proto(self) -> bytes:
        return b"".join(_field_bytes(1, v.to_proto()) for v in self.field_violations)


class ErrorInfo(msgspec.Struct, frozen=True):
    """google.rpc.ErrorInfo: a machine-readable reason, its domain and metadata."""

    TYPE_NAME = "google.rpc.ErrorInfo"

    reason: str
    domain: str = ""
    metadata: dict[str, str] = {}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason}
        if self.domain:
            out["domain"] = self.domain
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    def to_proto(self) -> bytes:
        entries = b"".join(
            _field_bytes(3, _field_str(1, k) + _field_str(2, v)) for k, v in self.metadata.items()
        )
        return _field_str(1, self.reason) + _field_str(2, self.domain) + entries
