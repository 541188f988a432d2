"""``ServerLimits``: what one server process accepts from a connection before the app sees it.

These limits stand in front of every wire: a request head is parsed, and a
connection held, by the HTTP server, before any interceptor can count or
refuse it, so a limit on them has to live in the server. They are Twofold's
own settings, whatever the server under them; each server maps them in one
place (``twofold.server.uvicorn_limits`` for HTTP/1.1, ``twofold.server.grpc`` for
native gRPC).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

KIB = 1024


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Limits per server process (each of ``--workers N`` has its own).

    Defaults follow the common practice of mature servers: 16 KiB of header
    fields (Node's and h11's limit), 100 fields (gunicorn's and Envoy's), 8 KiB
    of request target (nginx's line buffer), a 10 s header-read timeout (Go
    servers' usual ``ReadHeaderTimeout``), 30 s without a byte of an unfinished
    body (nginx's ``client_body_timeout`` is 60 s), 5 s of keep-alive idleness
    (uvicorn's default; an hour for gRPC
    channels) and 1000 connections per process.
    """

    max_connections: int = 1000
    """Open connections (HTTP and WebSocket) one process holds; a connection
    beyond is answered 503 and closed at once, and those already open are
    untouched. gRPC: ``grpc.max_allowed_incoming_connections``."""
    max_header_bytes: int = 16 * KIB
    """The header fields of one request, names and values together: 431 past
    it. gRPC: ``grpc.max_metadata_size``."""
    max_headers: int = 100
    """Header fields in one request: 431 past it."""
    max_url_bytes: int = 8 * KIB
    """The request target (path and query): 414 past it."""
    header_timeout: float = 10.0
    """Seconds from the connection's start (or the first byte of a request
    on a kept-alive one) until the request's head is complete; past it the
    connection is closed, with a 408 when part of a request had arrived.
    gRPC: ``grpc.server_handshake_timeout_ms``."""
    body_timeout: float = 30.0
    """Seconds an unfinished request body may go without a byte arriving
    (while the server is reading it): 408 and close. A long upload that keeps
    moving is never cut."""
    idle_timeout: float = 5.0
    """Seconds a kept-alive HTTP/1.1 connection may wait for its next request."""
    grpc_idle_timeout: float = 3600.0
    """Seconds a native gRPC connection may go without a call before a GOAWAY
    (``grpc.max_connection_idle_ms``; the channel reconnects on its next
    call). Apart from ``idle_timeout`` because a gRPC channel is meant to live
    long and multiplex: closing it after seconds would make most calls pay a
    new connection. An hour is Envoy's default idle timeout."""
    max_concurrent_streams: int = 1000
    """Streams one HTTP/2 connection may have open at once (native gRPC:
    ``grpc.max_concurrent_streams``). Higher than a browser-facing server's
    usual 100 because one gRPC connection often carries a whole client's (or
    a proxy's) calls, and a stream past the limit is refused with
    REFUSED_STREAM, which grpcio reports as UNAVAILABLE rather than queueing
    it; grpc-go and Envoy set no limit at all. The App's stream budget
    (``ConcurrencyLimit``) is the limit on what the process holds."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not value > 0:
                raise ValueError(f"ServerLimits.{field.name} must be positive, not {value!r}")
