"""Server-wide settings every protocol reads; one place, so one value."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class Options:
    """Limits and switches shared by all protocols of an :class:`~twofold.App`."""

    max_body_size: int = MiB
    """Largest request body (or RPC message) accepted; larger is rejected unread."""
    max_batch_size: int = 100
    """Most calls one JSON-RPC batch may carry."""
    jsonrpc_path: str = "/jsonrpc"
    openapi_path: str = "/openapi.json"
    docs_path: str | None = "/docs"
    """Where the interactive API page lives; None to serve none."""
