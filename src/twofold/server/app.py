"""The ASGI transport: one app serving every HTTP protocol of a method table.

Requests are routed by exact path first (RPC paths, JSON-RPC, OpenAPI, docs),
where a method's RPC protocols are tried in order and the first that can
handle the request's content type wins; every other path goes to the REST
router. That makes the common cases one dict lookup.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from twofold.contracts import docs, openapi
from twofold.core.asgi import ASGIApp, Receive, Scope, Send
from twofold.core.chain import Interceptor, admission, chain, refusals
from twofold.core.code import Code
from twofold.core.definition import DefinitionError, Service
from twofold.core.errors import Error
from twofold.core.method import UNKNOWN, Idempotency, Method, StreamKind
from twofold.core.options import Options
from twofold.core.table import MethodTable
from twofold.http.body import header, media_type, respond
from twofold.http.cors import Cors, CrossOrigin
from twofold.interceptors.auth import Authentication
from twofold.interceptors.limits import ConcurrencyLimit, Deadlines, RateLimit
from twofold.interceptors.tracing import RequestIds
from twofold.server import health
from twofold.server.grpc_services import GrpcServices
from twofold.server.health import Readiness
from twofold.wires import connect, grpc, sse
from twofold.wires.connect import ConnectProtocol
from twofold.wires.grpc import GrpcProtocol
from twofold.wires.grpcweb import GrpcWebProtocol
from twofold.wires.jsonrpc import JsonRpcProtocol
from twofold.wires.rest import RestProtocol

logger = logging.getLogger("twofold")

# What an RPC path takes, for the 415 that answers anything else.
RPC_MEDIA_TYPES = (
    "application/json or application/proto (Connect), application/connect+json or "
    "application/connect+proto (Connect streams), application/grpc-web[-text][+proto] (gRPC-Web), "
    "application/grpc[+proto|+json] (gRPC, over HTTP/2)"
)

Lifespan = Callable[["App"], AbstractAsyncContextManager[None]]


class RpcProtocol(Protocol):
    """A protocol served at every method's RPC path (Connect, gRPC-Web, ...)."""

    name: str

    def can_handle(self, scope: Scope) -> bool: ...

    async def serve(self, method: Method, scope: Scope, receive: Receive, send: Send) -> None: ...


def _check_deadlines(table: MethodTable, interceptors: Sequence[Interceptor]) -> None:
    """Refuse timeouts and lifetimes that would not hold (here, whatever the decorator order)."""
    for method in table:
        if method.lifetime is None:
            continue
        if method.kind not in (StreamKind.SERVER, StreamKind.BIDI):
            raise DefinitionError(
                f"{method.full_name}: @lifetime is for server and bidi streams; use @timeout"
            )
        if method.timeout is not None:
            raise DefinitionError(
                f"{method.full_name}: a long-lived stream (@lifetime) has no @timeout"
            )
    timed = [m for m in table if m.timeout is not None or m.lifetime is not None]
    if timed and not any(isinstance(i, Deadlines) for i in interceptors):
        # As for credentials: a declared timeout (or a stream's lifetime)
        # nobody enforces would be a promise the server silently breaks.
        declared = "@timeout" if timed[0].timeout is not None else "@lifetime"
        raise DefinitionError(
            f"{timed[0].full_name} declares a {declared}: add twofold.Deadlines "
            "to the App's interceptors"
        )


class App:
    """Serve services over REST, JSON-RPC and Connect from one ASGI app.

    ``interceptors`` wrap every call of every protocol, first one outermost.
    ``lifespan`` is an async context manager factory run around the server's
    life (open a database pool on enter, close it on exit). A lifespan that
    raises :class:`Error` on enter refuses to start with its message and no
    traceback; any other exception is logged with its traceback. ``cors``
    lets browser pages on other origins call every wire (docs/cors.md).
    """

    def __init__(
        self,
        services: Service | Sequence[Service],
        *,
        interceptors: Sequence[Interceptor] = (),
        options: Options | None = None,
        lifespan: Lifespan | None = None,
        title: str | None = None,
        version: str = "0.1.0",
        cors: Cors | None = None,
    ) -> None:
        services = [services] if isinstance(services, Service) else list(services)
        self.services = services
        self.options = options or Options()
        self.interceptors = tuple(interceptors)
        self.lifespan = lifespan
        self.title = title or ", ".join(s.full_name for s in services)
        self.version = version
        self.table = MethodTable(services)
        # Protocols tell these interceptors of requests refused before the chain.
        self.table.refused = refusals(self.interceptors)
        # Their header-only steps (credentials), run before a body is read.
        self.table.admit = admission(self.interceptors)
        self.authentication = next(
            (i for i in self.interceptors if isinstance(i, Authentication)), None
        )
        if self.authentication is not None:
            _check_decided(self.table)
        guarded = [m.full_name for m in self.table if m.security and not m.security.public]
        if guarded and self.authentication is None:
            # Fail closed: a declared requirement nobody enforces is an open door.
            raise DefinitionError(
                f"{guarded[0]} requires credentials: add twofold.Authentication "
                "to the App's interceptors"
            )
        _check_deadlines(self.table, self.interceptors)
        # Each App composes its own chain, so one service can sit in two apps
        # with different interceptors.
        for i, method in enumerate(self.table.methods):
            bound = dataclasses.replace(method)
            bound.call = chain(self.interceptors, method.handler)
            self.table.methods[i] = bound
            self.table.by_path[bound.path] = bound
        self.rest = RestProtocol(self.table, self.options, sse.serve)
        self.jsonrpc = JsonRpcProtocol(self.table, self.options)
        self.grpc = GrpcProtocol(self.table, self.options)
        self.rpc_protocols: list[RpcProtocol] = [
            ConnectProtocol(self.table, self.options),
            GrpcWebProtocol(self.table, self.options),
            self.grpc,
        ]
        self._openapi: bytes | None = None
        self._exact: dict[str, ASGIApp] = {}
        for method in self.table:
            self._exact[method.path] = self._rpc_endpoint(method)
        self._exact[self.options.jsonrpc_path] = self.jsonrpc
        for interceptor in self.interceptors:
            # An interceptor may serve paths of its own (twofold.interceptors.metrics: /metrics).
            endpoints = getattr(interceptor, "endpoints", None)
            if endpoints is not None:
                self._exact.update(endpoints())
        self._exact[self.options.openapi_path] = self._serve_openapi
        self.readiness = Readiness()
        """Whether to send this App traffic (``/readyz``); the server running it flips it."""
        # gRPC health and reflection, on every server with HTTP/2 trailers;
        # a service of the App's own at those paths wins.
        own = GrpcServices(self.grpc, self.readiness, (s.full_name for s in services))
        for path, endpoint in own.endpoints().items():
            self._exact.setdefault(path, endpoint)
        probes = health.endpoints(self.options.health_path, self.options.ready_path, self.readiness)
        _check_probe_paths(probes, self._exact, self.rest)
        self._exact.update(probes)
        if self.options.docs_path:
            for path, endpoint in docs.endpoints(
                self.options.docs_path, self.options.openapi_path, self.title
            ).items():
                self._exact[path] = endpoint
        self.cors = cors
        # Before routing, so that a preflight reaches no wire, interceptor or handler.
        self._cross_origin = None if cors is None else CrossOrigin(cors, self._route)
        for service in services:
            # This App has copied the methods: a later one would never be served.
            service.freeze(f"App({self.title!r})")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._cross_origin is not None:
                await self._cross_origin(scope, receive, send)
                return
            # _route, inlined: this is every request's path.
            endpoint = self._exact.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
            elif scope["method"] == "POST":  # perhaps a gRPC call of an unknown method
                await self._other(scope, receive, send)
            else:
                await self.rest(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Routing alone, which CrossOrigin wraps when the App has a CORS policy."""
        endpoint = self._exact.get(scope["path"])
        if endpoint is not None:
            await endpoint(scope, receive, send)
        elif scope["method"] == "POST":
            await self._other(scope, receive, send)
        else:
            await self.rest(scope, receive, send)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A POST to a path no RPC names: REST's, unless a gRPC client asks for a method we lack."""
        if media_type(header(scope, b"content-type")) in grpc.CONTENT_TYPES:
            # A gRPC client reads a 404 as UNIMPLEMENTED without a word of
            # why; the status in trailers-only headers says which method.
            error = Error(Code.UNIMPLEMENTED, f"unknown method {scope['path']}")
            await self.table.refuse(grpc.PROTOCOL, UNKNOWN, scope, error)
            await grpc.refuse(scope, send, error)
            return
        await self.rest(scope, receive, send)

    def _rpc_endpoint(self, method: Method) -> ASGIApp:
        protocols = self.rpc_protocols
        table = self.table
        # Connect's GET is for unary side-effect-free methods only.
        gettable = method.idempotency is Idempotency.NO_SIDE_EFFECTS and (
            method.kind is StreamKind.UNARY
        )
        allow = b"GET, POST" if gettable else b"POST"

        async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            for protocol in protocols:
                if protocol.can_handle(scope):
                    await protocol.serve(method, scope, receive, send)
                    return
            # No RPC protocol takes this verb or content type: say what would
            # work, as a Connect error (the JSON the clients of an RPC path
            # read), since a bodiless answer leaves a client guessing at the
            # cause. Counted as Connect's, whose answer this is.
            verb = scope["method"]
            if verb not in ("POST", "GET"):
                message = f"{verb} is not allowed on {method.path}: use {allow.decode()}"
                error = Error(Code.UNIMPLEMENTED, message)
                error.http_status = status = 405
                headers = [(b"allow", allow)]
            else:
                content_type = header(scope, b"content-type")
                given = content_type.decode("latin-1") if content_type else "no Content-Type"
                message = f"unsupported media type ({given}): send {RPC_MEDIA_TYPES}"
                error = Error(Code.INVALID_ARGUMENT, message)
                error.http_status = status = 415
                headers = [(b"accept-post", b"application/json")]
            await table.refuse("connect", method, scope, error)
            await connect.send_error(send, error, status, headers)

        return endpoint

    @property
    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of this app, derived from its method table."""
        schemes = self.authentication.openapi_schemes() if self.authentication else None

        def has(*kinds: type) -> bool:
            return any(isinstance(i, kinds) for i in self.interceptors)

        policies = openapi.Policies(
            request_ids=has(RequestIds),
            deadlines=has(Deadlines),
            limits=has(RateLimit, ConcurrencyLimit),
        )
        document = openapi.document(
            self.table,
            title=self.title,
            version=self.version,
            security_schemes=schemes,
            policies=policies,
        )
        if self.options.health_in_openapi:
            paths = health.openapi_paths(self.options.health_path, self.options.ready_path)
            document.setdefault("paths", {}).update(paths)
        return document

    async def _serve_openapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await respond(send, 405, headers=[(b"allow", b"GET, HEAD")])
            return
        if self._openapi is None:
            self._openapi = openapi.encode(self.openapi)
        body = self._openapi if scope["method"] == "GET" else b""
        await respond(send, 200, body, content_type=b"application/json")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        stack = contextlib.AsyncExitStack()
        try:
            if self.lifespan is not None:
                await stack.enter_async_context(self.lifespan(self))
        except Error as exc:
            # Raised on purpose (a database that cannot be used, say): its
            # message says what is wrong and the server logs it, alone; a
            # traceback would only bury it.
            await send({"type": "lifespan.startup.failed", "message": exc.message})
            return
        except Exception as exc:
            logger.exception("startup failed")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        self.readiness.started = True
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown: the server is stopping
        self.readiness.started = False
        try:
            await stack.aclose()
        except Exception as exc:
            logger.exception("shutdown failed")
            await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})


def _check_decided(table: MethodTable) -> None:
    """Secure by default: with Authentication, every method must say who may call it.

    A method that declares nothing would otherwise be callable by anyone,
    which is how a forgotten ``@requires`` ships. Public is a decision too:
    ``@public``.
    """
    undecided = [m.full_name for m in table if m.security is None]
    if not undecided:
        return
    fix = "add @public or @requires(...), or give the service a default: Service(..., security=...)"
    if len(undecided) == 1:
        raise DefinitionError(f"{undecided[0]} has no security decision: {fix}")
    raise DefinitionError(
        f"{len(undecided)} methods have no security decision ({', '.join(undecided)}): "
        f"for each, {fix}"
    )


def _check_probe_paths(
    probes: dict[str, ASGIApp], exact: dict[str, ASGIApp], rest: RestProtocol
) -> None:
    """A health path that hid a method, or a method that hid a probe, is a mistake either way."""
    # A REST route with variables that would match (``/{name}``) is no
    # clash: the probe is the more specific path, as a literal route would be.
    literal = {t.text for t in rest.router if not t.variables}
    for path in probes:
        if path in exact or path in literal:
            raise DefinitionError(
                f"{path} is both a health path and served by the App: "
                "move one (Options(health_path=..., ready_path=...))"
            )
