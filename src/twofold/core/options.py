"""Server-wide settings every protocol reads; one place, so one value."""

from __future__ import annotations

from dataclasses import dataclass, fields

MiB = 1 << 20
# The default longest long poll, in seconds (Options.max_poll_wait).
MAX_POLL_WAIT = 30.0


@dataclass(frozen=True, slots=True)
class WebSocketOptions:
    """The limits of one JSON-RPC WebSocket connection (docs/websocket.md).

    RFC 6455 close codes say which one a connection hit: 1009 for a message
    too large, 1008 for a client that stopped reading, 1000 after idleness.
    """

    max_message_size: int = MiB
    """Largest message a client may send (text or binary): close 1009 past it."""
    max_streams: int = 100
    """Streams (subscriptions, client and bidi streams) open at once on one
    connection; one more is refused with RESOURCE_EXHAUSTED, the others go on."""
    max_calls: int = 100
    """Unary calls running at once on one connection; one more is refused with
    RESOURCE_EXHAUSTED."""
    max_queued_messages: int = 256
    """Messages waiting to be sent to a client that reads slower than its
    streams produce. Once full, the streams wait (backpressure) ..."""
    send_timeout: float = 10.0
    """... and once they have waited this many seconds, the connection is
    closed with 1008: one slow client holds no handler forever."""
    idle_timeout: float = 300.0
    """Seconds a connection with no call or stream running may go without a
    message from its client before it is closed (1000)."""
    ping_interval: float = 20.0
    """Seconds between the server's WebSocket pings (``twofold serve``)."""
    ping_timeout: float = 20.0
    """Seconds a ping may wait for its pong before the connection is closed (1011)."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not value > 0:
                raise ValueError(f"WebSocketOptions.{field.name} must be positive, not {value!r}")


@dataclass(frozen=True, slots=True)
class Options:
    """Limits and switches shared by all protocols of an :class:`~twofold.App`."""

    max_body_size: int = MiB
    """Largest request body (or RPC message) accepted; larger is rejected unread."""
    max_upload_size: int = 32 * MiB
    """Largest uploaded file (a File body sent raw or as multipart/form-data; docs/files.md)."""
    max_batch_size: int = 100
    """Most calls one JSON-RPC batch may carry."""
    jsonrpc_path: str = "/jsonrpc"
    xmlrpc_path: str | None = "/RPC2"
    """Where XML-RPC calls go (docs/xmlrpc.md); None to serve none."""
    openapi_path: str = "/openapi.json"
    docs_path: str | None = "/docs"
    """Where the interactive API page lives; None to serve none."""
    health_path: str | None = "/healthz"
    """Liveness (200 while the process answers); None to serve none."""
    ready_path: str | None = "/readyz"
    """Readiness (503 while starting or draining); None to serve none."""
    health_in_openapi: bool = False
    """Document the two health paths in OpenAPI (they are for probes, not clients)."""
    openapi_version: str = "3.1"
    """The OpenAPI version of the served document: ``"3.1"`` or ``"3.2"`` (docs/openapi.md)."""
    websocket: WebSocketOptions = WebSocketOptions()
    """The limits of JSON-RPC over WebSocket, on ``jsonrpc_path``."""
    max_poll_wait: float = MAX_POLL_WAIT
    """The longest a long poll (``?wait=`` on a resumable stream's REST route,
    docs/rest.md) is held; a longer ``wait`` is taken as this. Half of the 60 s
    idle timeout of nginx's ``proxy_read_timeout`` and of cloud load balancers,
    so that a held poll is answered before a proxy gives up on it."""

    def __post_init__(self) -> None:
        if not 0 < self.max_poll_wait <= 3600:
            raise ValueError(
                f"Options.max_poll_wait must be in (0, 3600], not {self.max_poll_wait!r}"
            )
