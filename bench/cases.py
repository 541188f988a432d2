"""What is measured: each case is one request, the servers that answer it, and the targets.

The requests are byte for byte those of the peer baselines (the peer
directory's ``lua/`` scripts), so the figures can be set beside its
RESULTS.md. A target is the least ratio ``twofold req/s / peer req/s`` the
issue asks for; it is reported, never asserted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from bench.apps.catalog import NEW_PRODUCT

JSON = "application/json"
CONNECT_HEADERS = (("Content-Type", JSON), ("Connect-Protocol-Version", "1"))
CONNECT_PREFIX = "/catalog.v1.ProductService"


@dataclass(frozen=True)
class Request:
    """The one request the load generator repeats."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Server:
    """An ASGI app served by uvicorn: ``module:attr`` under ``app_dir``.

    ``app_dir`` is "repo" (this repository) or "peers" (the peer ``apps/``
    directory); the runner resolves both.
    """

    name: str
    app: str
    app_dir: str
    needs_stubs: bool = False
    check: str | None = None  # instead of the case's check
    pythonpath: str | None = None  # put first on the server's PYTHONPATH


@dataclass(frozen=True)
class Case:
    name: str
    request: Request
    check: str  # a check in bench.checks
    servers: tuple[Server, ...]
    targets: dict[str, float] = field(default_factory=dict)  # peer name -> least ratio

    @property
    def peers(self) -> tuple[Server, ...]:
        return tuple(s for s in self.servers if not s.name.startswith(TWOFOLD.name))


TWOFOLD = Server("twofold", "bench.apps.twofold_app:app", "repo")
FASTAPI = Server("fastapi", "fastapi_app:app", "peers")
LITESTAR = Server("litestar", "litestar_app:app", "peers")
CONNECTRPC = Server("connectrpc", "bench.apps.connectrpc_app:app", "repo", needs_stubs=True)
# A reference, not a peer: uvicorn answering every request with a constant
# body and no framework at all, the ceiling of any app on this server.
RAW = Server("uvicorn-raw", "raw_asgi:app", "peers", check="raw")
SERVERS = {s.name: s for s in (TWOFOLD, FASTAPI, LITESTAR, CONNECTRPC, RAW)}


def candidate(src: str) -> Server:
    """Twofold served from another source tree (``--compare``), to A/B a core change
    against the checkout and the peers in one run."""
    return Server(f"{TWOFOLD.name}-b", TWOFOLD.app, TWOFOLD.app_dir, pythonpath=src)


PRODUCT_BODY = msgspec.json.encode(NEW_PRODUCT)  # the peers' post_product.lua body

CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case(
            "rest-get",
            Request("GET", "/products/42"),
            "rest-get",
            (TWOFOLD, FASTAPI, LITESTAR),
            {"fastapi": 2.5, "litestar": 1.6},
        ),
        Case(
            "rest-post",
            Request("POST", "/products", PRODUCT_BODY, (("Content-Type", JSON),)),
            "rest-post",
            (TWOFOLD, FASTAPI, LITESTAR),
            {"fastapi": 2.5, "litestar": 1.6},
        ),
        Case(
            "connect-json-get",
            Request("POST", f"{CONNECT_PREFIX}/GetProduct", b'{"id":42}', CONNECT_HEADERS),
            "connect-get",
            (TWOFOLD, CONNECTRPC),
            {"connectrpc": 1.5},
        ),
        Case(
            # No target in the issue: reported for the write path's sake.
            "connect-json-create",
            Request(
                "POST",
                f"{CONNECT_PREFIX}/CreateProduct",
                b'{"product":' + PRODUCT_BODY + b"}",
                CONNECT_HEADERS,
            ),
            "connect-create",
            (TWOFOLD, CONNECTRPC),
        ),
    )
}
