"""What native gRPC's two client transports share, with no grpcio in sight.

The target's address, the client's headers as metadata, the status of a
call from ``grpc-status`` and its companions, and the decoding of an
answer: grpcio's channels (:mod:`twofold.client.channels`) and the client's
own HTTP/2 transport (:mod:`twofold.client.h2grpc`) read and write them
the same way, so a call fails with the same :class:`~twofold.Error` on both.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from twofold.client.codecs import MessageCodec
from twofold.client.errors import Failure, fail, grpc_code, message_from, status_details
from twofold.client.rpc import Rpc
from twofold.core.code import Code
from twofold.core.errors import Error

DETAILS_KEY = "grpc-status-details-bin"
PUSHBACK_KEY = "grpc-retry-pushback-ms"
# Headers the transport sets itself (or HTTP/2 forbids): never sent as metadata.
RESERVED = frozenset({"content-type", "user-agent", "te", "host", "connection"})
Metadata = tuple[tuple[str, str], ...]


def address(target: object) -> tuple[str, bool]:
    """``host:port`` and whether to use TLS, from ``host:port`` or an http(s) URL."""
    if not isinstance(target, str):
        raise ValueError("protocol 'grpc' needs a server address: no in-process transport")
    if "://" not in target:
        return target, False
    url = urllib.parse.urlsplit(target)
    if url.scheme not in ("http", "https") or not url.netloc or url.path not in ("", "/"):
        raise ValueError(f"a gRPC target is host:port or http(s)://host:port, got {target!r}")
    return url.netloc, url.scheme == "https"


def metadata(headers: Mapping[str, str]) -> Metadata:
    return tuple((k.lower(), v) for k, v in headers.items() if k.lower() not in RESERVED)


def pushback(value: object) -> float | None:
    """``grpc-retry-pushback-ms``, gRPC's own Retry-After, in seconds."""
    text = str(value)
    return int(text) / 1000 if text.isdigit() else None


def status_failure(trailers: Mapping[str, str]) -> Failure | None:
    """The failure ``grpc-status`` and its companions describe; None for OK.

    ``grpc-message`` is percent-encoded UTF-8; ``grpc-status-details-bin`` is
    a google.rpc.Status in base64, padded or not.
    """
    status = trailers.get("grpc-status", "")
    if status.strip() == "0":
        return None
    code = grpc_code(status)
    message = urllib.parse.unquote(trailers.get("grpc-message", ""), errors="replace")
    details = status_details(trailers.get(DETAILS_KEY))
    error = Error(code, message_from(message, code), details)
    return Failure(error, retry_after=pushback(trailers.get(PUSHBACK_KEY)))


def raise_status(trailers: Mapping[str, str]) -> None:
    """Raise the failure ``grpc-status`` describes; return on OK."""
    failure = status_failure(trailers)
    if failure is not None:
        try:
            raise failure
        finally:
            # The failure's traceback holds this frame: a local still holding
            # the failure would make the two a reference cycle.
            del failure


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.001, deadline - time.monotonic())


def decoded(rpc: Rpc[Any, Any], codec: MessageCodec, raw: bytes) -> Any:
    try:
        return codec.decode(raw)
    except Error as exc:
        name = rpc.output_type.__name__
        raise fail(
            Code.INTERNAL, f"{rpc.name} answered a malformed {name}: {exc.message}"
        ) from None
