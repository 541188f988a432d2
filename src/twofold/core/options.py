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
