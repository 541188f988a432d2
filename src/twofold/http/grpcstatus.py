"""What gRPC and gRPC-Web share above the envelope: deadlines and the status.

Both take ``grpc-timeout`` (github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md:
1 to 8 digits and a unit) and end every call with ``grpc-status``,
``grpc-message`` (percent-encoded UTF-8) and ``grpc-status-details-bin`` (a
google.rpc.Status in unpadded base64). Native gRPC sends them as HTTP/2
trailers, gRPC-Web as a last envelope of header lines; either may send them
"trailers-only", as the response's headers, when no message went out.

Metadata whose name ends in ``-bin`` is binary, base64 on the wire (padded
or not, the spec says; gRPC implementations send it unpadded). A handler
sees and sets such values as the latin-1 text of their bytes, as grpcio's
server gives them, whichever server carried the call.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from twofold.core.code import Code
from twofold.core.details import rpc_status
from twofold.core.errors import Error
from twofold.http.body import encode_headers

# grpc-timeout's units, in seconds.
_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
# grpc-message is percent-encoded: every byte outside printable ASCII, and "%".
_SAFE = frozenset(range(0x20, 0x7F)) - {ord("%")}


def deadline(value: bytes | None) -> float | None:
    """``grpc-timeout`` as a deadline on the loop clock; None without one."""
    if value is None:
        return None
    digits, unit = value[:-1], value[-1:]
    if not 0 < len(digits) <= 8 or not digits.isdigit() or unit not in _UNITS:
        raise Error(Code.INVALID_ARGUMENT, "grpc-timeout must be 1 to 8 digits and a unit")
    return asyncio.get_running_loop().time() + int(digits) * _UNITS[unit]


def decode_metadata(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Request headers with each ``-bin`` value's bytes in place of its base64."""
    for k, _ in raw:
        if k.endswith(b"-bin"):
            break
    else:
        return raw  # nearly every call: no copy (a loop, cheaper than any() here)
    out = []
    for k, v in raw:
        if not k.endswith(b"-bin"):
            out.append((k, v))
            continue
        # A proxy may have joined repeated values with commas, each its own base64.
        for part in v.split(b","):
            part = part.strip()
            try:
                out.append((k, base64.b64decode(part + b"=" * (-len(part) % 4), validate=True)))
            except binascii.Error:
                raise Error(
                    Code.INVALID_ARGUMENT, f"metadata {k.decode('latin-1')} is not base64"
                ) from None
    return out


def encode_metadata(metadata: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """Handler-set metadata as header fields: ``-bin`` values in unpadded base64."""
    out = encode_headers(metadata)
    return [
        (k, base64.b64encode(v).rstrip(b"=")) if k.endswith(b"-bin") else (k, v) for k, v in out
    ]


def percent_encode(message: str) -> bytes:
    """grpc-message's encoding: UTF-8, with bytes outside printable ASCII and "%" escaped."""
    return b"".join(bytes((b,)) if b in _SAFE else b"%%%02X" % b for b in message.encode("utf-8"))


def status_trailers(error: Error | None, always_details: bool = False) -> list[tuple[bytes, bytes]]:
    """``grpc-status``, ``grpc-message`` and ``grpc-status-details-bin`` of an outcome.

    ``always_details``: a failure carries ``grpc-status-details-bin`` even
    without details, as grpcio's server sends it (native gRPC's clients may
    read the status from it alone).
    """
    if error is None:
        return [(b"grpc-status", b"0")]
    out = [(b"grpc-status", str(error.code.value).encode())]
    if error.message:
        out.append((b"grpc-message", percent_encode(error.message)))
    if error.details or always_details:
        # -bin metadata is base64; gRPC implementations send it unpadded.
        value = base64.b64encode(rpc_status(error.code.value, error.message, error.details)).rstrip(
            b"="
        )
        out.append((b"grpc-status-details-bin", value))
    out.extend(encode_headers(error.headers))
    return out
