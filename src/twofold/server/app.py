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
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

from twofold.contracts import docs, openapi
from twofold.core import messages
from twofold.core.asgi import ASGIApp, Receive, Scope, Send
from twofold.core.chain import Interceptor, admission, chain, refusals
from twofold.core.code import Code
from twofold.core.definition import DefinitionError, Service
from twofold.core.dependencies import Dependencies, Provide
from twofold.core.errors import Error
from twofold.core.method import UNKNOWN, Idempotency, Method, StreamKind
from twofold.core.options import Options
from twofold.core.table import MethodTable
from twofold.http import resumption
from twofold.http.body import header, media_type, respond
from twofold.http.cors import Cors, CrossOrigin
from twofold.interceptors.auth import Authentication
from twofold.interceptors.limits import ConcurrencyLimit, Deadlines, RateLimit
from twofold.interceptors.tracing import RequestIds
from twofold.server import health
from twofold.server.grpc_services import GrpcServices
from twofold.server.health import Readiness
from twofold.server.middleware import MiddlewareEntry, wrap
from twofold.wires import connect, grpc, longpoll, sse
from twofold.wires.connect import ConnectProtocol
from twofold.wires.grpc import GrpcProtocol
from twofold.wires.grpcweb import GrpcWebProtocol
from twofold.wires.jsonrpc import JsonRpcProtocol
from twofold.wires.rest import RestProtocol
from twofold.wires.websocket import WebSocketProtocol
from twofold.wires.xmlrpc import XmlRpcProtocol

logger = logging.getLogger("twofold")

# What an RPC path takes, for the 415 that answers anything else.
RPC_MEDIA_TYPES = (
    "application/json or application/proto (Connect), application/connect+json or "
    "application/connect+proto (Connect streams), application/grpc-web[-text][+proto] (gRPC-Web), "
    "application/grpc[+proto|+json] (gRPC, over HTTP/2)"
)

Lifespan = Callable[["App"], AbstractAsyncContextManager[None]]
T = TypeVar("T")


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
    ``middleware`` wraps the App in ASGI middleware, first entry outermost
    (``Middleware(cls, **options)``, Starlette's too, or a callable taking
    the app and returning one); it sees every HTTP wire, and ``twofold
    serve`` still serves native gRPC beside it (docs/middleware.md).
    ``dependencies`` say how to make what handlers take as ``Provided[T]``
    (:class:`~twofold.Provide`, docs/dependencies.md); the app-scoped ones
    open after ``lifespan`` has entered and close before it exits.
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
        middleware: Sequence[MiddlewareEntry] = (),
        dependencies: Sequence[Provide] = (),
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
        self.dependencies = Dependencies(dependencies)
        self.dependencies.give(App, self)
        self.dependencies.check(self.table.methods)
        _check_resume(self.table)
        # Each App composes its own chain, so one service can sit in two apps
        # with different interceptors.
        for i, method in enumerate(self.table.methods):
            bound = dataclasses.replace(method)
            self.table.methods[i] = bound
            self.table.by_path[bound.path] = bound
        self._bind()
        self.rest = RestProtocol(self.table, self.options, sse.serve, longpoll.serve)
        self.jsonrpc = JsonRpcProtocol(self.table, self.options)
        # Origins are checked against the CORS policy on the upgrade (docs/websocket.md).
        self.websocket = WebSocketProtocol(self.table, self.options, cors)
        self.grpc = GrpcProtocol(self.table, self.options)
        self.rpc_protocols: list[RpcProtocol] = [
            ConnectProtocol(self.table, self.options),
            GrpcWebProtocol(self.table, self.options),
            self.grpc,
        ]
        if self.options.openapi_version not in openapi.VERSIONS:
            raise DefinitionError(
                f"Options(openapi_version={self.options.openapi_version!r}): "
                f"choose one of {', '.join(repr(v) for v in openapi.VERSIONS)}"
            )
        self._openapi: dict[str, bytes] = {}  # version -> the encoded document
        self._exact: dict[str, ASGIApp] = {}
        for method in self.table:
            self._exact[method.path] = self._rpc_endpoint(method)
        self._exact[self.options.jsonrpc_path] = self.jsonrpc
        if self.options.xmlrpc_path:
            self._exact[self.options.xmlrpc_path] = XmlRpcProtocol(self.table, self.options)
        for interceptor in self.interceptors:
            # An interceptor may serve paths of its own (twofold.interceptors.metrics: /metrics).
            endpoints = getattr(interceptor, "endpoints", None)
            if endpoints is not None:
                self._exact.update(endpoints())
        self._exact[self.options.openapi_path] = self._openapi_endpoint(
            self.options.openapi_version
        )
        # The page's Swagger UI 5 renders OpenAPI 3.0 and 3.1 only: beside a
        # 3.2 document it reads a 3.1 rendition of it, at a path of its own.
        docs_document = self.options.openapi_path
        if self.options.docs_path and self.options.openapi_version != openapi.DEFAULT_VERSION:
            docs_document = f"{self.options.docs_path.rstrip('/')}/openapi-3.1.json"
            self._exact[docs_document] = self._openapi_endpoint(openapi.DEFAULT_VERSION)
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
                self.options.docs_path, docs_document, self.title
            ).items():
                self._exact[path] = endpoint
        self.cors = cors
        # Before routing, so that a preflight reaches no wire, interceptor or handler.
        self._cross_origin = None if cors is None else CrossOrigin(cors, self._route)
        self.middleware = tuple(middleware)
        # The middleware around the App, which every scope goes through, and
        # what an HTTP request goes to first: the middleware, else CORS, else
        # (None) the routes, one dict lookup away.
        self._outer = wrap(self._dispatch, self.middleware) if self.middleware else None
        self._http = self._outer or self._cross_origin
        for service in services:
            # This App has copied the methods: a later one would never be served.
            service.freeze(f"App({self.title!r})")

    def _bind(self) -> None:
        """Compose each method's call: the interceptors, then its dependencies, then it."""
        for method in self.table.methods:
            method.call = chain(self.interceptors, self.dependencies.bind(method))

    @contextlib.contextmanager
    def override(self, *provides: Provide) -> Iterator[None]:
        """Provide these in place of the App's own until the block ends (for tests).

        An app-scoped dependency (or one replaced by an app-scoped provider)
        is overridden before the App starts: its value is opened at startup.
        """
        try:
            with self.dependencies.override(provides):
                self.dependencies.check(self.table.methods)
                self._bind()
                yield
        finally:
            self._bind()

    def provided(self, tp: type[T]) -> T:
        """The running App's app-scoped ``tp`` (for code outside handlers: a store, a task).

        Raises :class:`Error` UNAVAILABLE before the App has started or after it stopped.
        """
        try:
            value: T = self.dependencies.values[tp]
        except KeyError:
            raise Error(
                Code.UNAVAILABLE,
                f"{getattr(tp, '__qualname__', tp)} is not open: the App has not started",
            ) from None
        return value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._http is not None:
                await self._http(scope, receive, send)
                return
            # _route, inlined: this is every request's path.
            endpoint = self._exact.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
            elif scope["method"] == "POST":  # perhaps a gRPC call of an unknown method
                await self._unrouted(scope, receive, send)
            else:
                await self.rest(scope, receive, send)
        elif self._outer is not None:  # the middleware sees the lifespan too
            await self._outer(scope, receive, send)
        else:
            await self._other(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The App inside its middleware: every scope, CORS then routing for HTTP."""
        if scope["type"] != "http":
            await self._other(scope, receive, send)
        elif self._cross_origin is not None:
            await self._cross_origin(scope, receive, send)
        else:
            await self._route(scope, receive, send)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            if scope["path"] == self.options.jsonrpc_path:
                await self.websocket(scope, receive, send)
            else:
                # Refused before the handshake: the server answers 403.
                await send({"type": "websocket.close", "code": 1008})

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Routing alone, which CrossOrigin wraps when the App has a CORS policy."""
        endpoint = self._exact.get(scope["path"])
        if endpoint is not None:
            await endpoint(scope, receive, send)
        elif scope["method"] == "POST":
            await self._unrouted(scope, receive, send)
        else:
            await self.rest(scope, receive, send)

    async def _unrouted(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        """The OpenAPI document of this app, derived from its method table, in
        ``Options.openapi_version`` (3.1 unless set)."""
        return self.openapi_document(self.options.openapi_version)

    def openapi_document(self, openapi_version: str) -> dict[str, Any]:
        """The OpenAPI document of this app in ``openapi_version``: "3.1" or "3.2"."""
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
            openapi_version=openapi_version,
            max_poll_wait=self.options.max_poll_wait,
        )
        if self.options.health_in_openapi:
            paths = health.openapi_paths(self.options.health_path, self.options.ready_path)
            document.setdefault("paths", {}).update(paths)
        return document

    def _openapi_endpoint(self, openapi_version: str) -> ASGIApp:
        async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["method"] not in ("GET", "HEAD"):
                await respond(send, 405, headers=[(b"allow", b"GET, HEAD")])
                return
            encoded = self._openapi.get(openapi_version)
            if encoded is None:
                encoded = openapi.encode(self.openapi_document(openapi_version))
                self._openapi[openapi_version] = encoded
            body = encoded if scope["method"] == "GET" else b""
            await respond(send, 200, body, content_type=b"application/json")

        return endpoint

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        stack = contextlib.AsyncExitStack()
        try:
            if self.lifespan is not None:
                await stack.enter_async_context(self.lifespan(self))
            exits = await self.dependencies.open_app()
            stack.push_async_callback(self.dependencies.close_app, exits)
        except Error as exc:
            # Raised on purpose (a database that cannot be used, say): its
            # message says what is wrong and the server logs it, alone; a
            # traceback would only bury it.
            await _unwind(stack)
            await send({"type": "lifespan.startup.failed", "message": exc.message})
            return
        except Exception as exc:
            logger.exception("startup failed")
            await _unwind(stack)
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


async def _unwind(stack: contextlib.AsyncExitStack) -> None:
    """Close what a failed startup had opened (the lifespan, when a dependency failed)."""
    try:
        await stack.aclose()
    except Exception:
        logger.exception("closing after a failed startup failed")


def _check_resume(table: MethodTable) -> None:
    """A ``@resumable`` stream's two fields exist, it is a server stream, and its
    request leaves ``wait`` to long polling."""
    for method in table:
        resume = method.resume
        if resume is None:
            continue
        where = f"{method.full_name}: @resumable"
        if method.kind is not StreamKind.SERVER:
            raise DefinitionError(f"{where} is for server streams")
        for tp, name, side in (
            (method.output_type, resume.event_id, "output"),
            (method.input_type, resume.after, "request"),
        ):
            names = {f.name for f in messages.fields(tp)}
            if name not in names:
                listed = ", ".join(sorted(names)) or "none"
                raise DefinitionError(f"{where}: its {side} has no field {name!r} ({listed})")
        if resumption.WAIT in {f.name for f in messages.fields(method.input_type)}:
            # ?wait= asks for a long poll of the stream (twofold.wires.longpoll).
            raise DefinitionError(
                f"{where}: its request field {resumption.WAIT!r} would hide the long-poll "
                "query parameter of the same name; rename it"
            )


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
