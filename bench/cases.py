"""What is measured: each case is one request, the servers that answer it, and the targets.

The requests are byte for byte those of the peer baselines (the peer
directory's ``lua/`` scripts and its gRPC body, ``grpc_get42.bin``), so the
figures can be set beside its RESULTS.md; connect-proto-create, which the
peers did not measure, is connect-json-create's product in protobuf. A
target is the least ratio ``twofold req/s / peer req/s`` the issue asks
for; it is reported, never asserted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import msgspec

from bench import wire
from bench.apps.catalog import NEW_PRODUCT, PRODUCTS

JSON = "application/json"
PROTO = "application/proto"
CONNECT_HEADERS = (("Content-Type", JSON), ("Connect-Protocol-Version", "1"))
CONNECT_PROTO_HEADERS = (("Content-Type", PROTO), ("Connect-Protocol-Version", "1"))
GRPC_HEADERS = (("content-type", "application/grpc"), ("te", "trailers"))
CONNECT_PREFIX = "/catalog.v1.ProductService"


@dataclass(frozen=True)
class Request:
    """The one request the load generator repeats."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    answer_size: int | None = None  # bytes of every answer's body, when the tool can check it


@dataclass(frozen=True)
class Server:
    """An ASGI app served by uvicorn: ``module:attr`` under ``app_dir``.

    ``app_dir`` is "repo" (this repository) or "peers" (the peer ``apps/``
    directory); the runner resolves both. A server that is not an ASGI app
    (gRPC) gives its ``argv`` instead, run from the repository, where
    ``{python}`` is this interpreter and ``{port}`` the port to listen on.
    """

    name: str
    app: str
    app_dir: str
    needs_stubs: bool = False
    check: str | None = None  # instead of the case's check
    pythonpath: str | None = None  # put first on the server's PYTHONPATH
    argv: tuple[str, ...] = ()

    @property
    def asgi(self) -> bool:
        return not self.argv


@dataclass(frozen=True)
class Case:
    name: str
    request: Request
    check: str  # a check in bench.checks
    servers: tuple[Server, ...]
    targets: dict[str, float] = field(default_factory=dict)  # peer name -> least ratio
    tool: str | None = None  # the load generator, when only one can speak the protocol

    @property
    def peers(self) -> tuple[Server, ...]:
        return tuple(s for s in self.servers if not s.name.startswith(TWOFOLD.name))


TWOFOLD = Server("twofold", "bench.apps.twofold_app:app", "repo")
FASTAPI = Server("fastapi", "fastapi_app:app", "peers")
LITESTAR = Server("litestar", "litestar_app:app", "peers")
CONNECTRPC = Server("connectrpc", "bench.apps.connectrpc_app:app", "repo", needs_stubs=True)
# Twofold's gRPC side as users run it: `twofold serve`, HTTP on a port nobody uses.
TWOFOLD_GRPC = Server(
    TWOFOLD.name, TWOFOLD.app, TWOFOLD.app_dir,
    argv=("{python}", "-m", "twofold", "serve", TWOFOLD.app, "--port", "0",
          "--grpc-port", "{port}", "--no-access-log", "--log-level", "warning"),
)  # fmt: skip
# The peers' hand-written grpc.aio service (generated servicer, upb messages).
GRPCIO = Server(
    "grpcio", "bench.apps.grpcio_app", "repo", needs_stubs=True,
    argv=("{python}", "-m", "bench.apps.grpcio_app", "{port}"),
)  # fmt: skip
# The same service on uvloop's event loop.
GRPCIO_UVLOOP = Server(
    "grpcio-uvloop", "bench.apps.grpcio_app", "repo", needs_stubs=True,
    argv=("{python}", "-m", "bench.apps.grpcio_app", "{port}", "--uvloop"),
)  # fmt: skip
# The same App on `twofold serve --server pyvoy`: gRPC on the one port, through
# the App's own wire, and a constant answer there (bench/apps/grpc_constant.py),
# the floor of any gRPC app on that server. Counted by bench.instructions --pyvoy.
TWOFOLD_PYVOY = Server(
    f"{TWOFOLD.name}-pyvoy", TWOFOLD.app, TWOFOLD.app_dir,
    argv=("{python}", "-m", "twofold", "serve", TWOFOLD.app, "--server", "pyvoy",
          "--port", "{port}", "--no-access-log", "--log-level", "warning"),
)  # fmt: skip
PYVOY_CONSTANT = Server(
    "pyvoy-constant", "bench.apps.grpc_constant:app", "repo", check="grpc-constant",
    argv=("{python}", "-m", "twofold", "serve", "bench.apps.grpc_constant:app", "--server",
          "pyvoy", "--port", "{port}", "--no-access-log", "--log-level", "warning"),
)  # fmt: skip
# A reference, not a peer: uvicorn answering every request with a constant
# body and no framework at all, the ceiling of any app on this server.
RAW = Server("uvicorn-raw", "raw_asgi:app", "peers", check="raw")
SERVERS = {s.name: s for s in (TWOFOLD, FASTAPI, LITESTAR, CONNECTRPC, GRPCIO, RAW)}


def candidate(ours: Server, src: str) -> Server:
    """Twofold served from another source tree (``--compare``), to A/B a core change
    against the checkout and the peers in one run."""
    return replace(ours, name=f"{ours.name}-b", pythonpath=src)


PRODUCT_BODY = msgspec.json.encode(NEW_PRODUCT)  # the peers' post_product.lua body
GET_PROTO = wire.get_product_request(42)  # the peers' connect_proto.lua body, 08 2a
CREATE_PROTO = wire.create_product_request(NEW_PRODUCT)
GRPC_ANSWER = len(wire.grpc_frame(wire.product(PRODUCTS[42])))
# gRPC GetProduct: the frame of the peers' grpc_get42.bin, on either gRPC server.
GRPC_GET = Request(
    "POST",
    f"{CONNECT_PREFIX}/GetProduct",
    wire.grpc_frame(GET_PROTO),
    GRPC_HEADERS,
    answer_size=GRPC_ANSWER,
)

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
        # Twofold only: the same read, answered in XML (twofold.http.xmlmessage).
        Case(
            "rest-xml-get",
            Request("GET", "/products/42", b"", (("Accept", "application/xml"),)),
            "rest-xml-get",
            (TWOFOLD,),
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
        Case(
            "connect-proto-get",
            Request("POST", f"{CONNECT_PREFIX}/GetProduct", GET_PROTO, CONNECT_PROTO_HEADERS),
            "connect-proto-get",
            (TWOFOLD, CONNECTRPC),
            {"connectrpc": 1.5},
        ),
        Case(
            # No target in the issue, as for connect-json-create.
            "connect-proto-create",
            Request("POST", f"{CONNECT_PREFIX}/CreateProduct", CREATE_PROTO, CONNECT_PROTO_HEADERS),
            "connect-proto-create",
            (TWOFOLD, CONNECTRPC),
        ),
        Case(
            "grpc-get",
            GRPC_GET,
            "grpc-get",
            (TWOFOLD_GRPC, GRPCIO),
            {"grpcio": 0.95},
            tool="h2load",
        ),
        Case(
            # The same call on the one port: `twofold serve --server pyvoy`,
            # native gRPC through the App's own wire, against grpc.aio as its
            # author runs it and on uvloop.
            "grpc-get-one-port",
            GRPC_GET,
            "grpc-get",
            (TWOFOLD_PYVOY, GRPCIO, GRPCIO_UVLOOP),
            {"grpcio": 3.0},
            tool="h2load",
        ),
    )
}
