"""The gateway: an ASGI app that fronts a gRPC upstream with Twofold's wires.

Requests are routed in this order: the gateway's own exact paths (OpenAPI,
docs, JSON-RPC), then RPC paths ``/pkg.Service/Method`` for Connect and
gRPC-Web (by content type), then the google.api.http routes (REST, and SSE
for server streams). Nothing reaches the upstream that did not parse, and
everything the upstream says comes back as the front wire's own answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message

from twofold.contracts import docs
from twofold.core.asgi import ASGIApp, Receive, Scope, Send
from twofold.core.asgi import Message as AsgiMessage
from twofold.core.code import Code
from twofold.core.errors import Error, as_error
from twofold.core.headers import Headers
from twofold.core.options import WebSocketOptions
from twofold.gateway import rpc
from twofold.gateway.descriptors import Schema
from twofold.gateway.passthrough import GrpcRelay
from twofold.gateway.reflection import PATHS as REFLECTION
from twofold.gateway.rules import Route, Router, routes
from twofold.gateway.socket import GatewayCalls
from twofold.gateway.transcode import request_message, response_json
from twofold.gateway.upstream import (
    DEFAULT_TIMEOUT,
    FORWARD,
    BadGateway,
    Upstream,
    grpc_timeout,
)
from twofold.http import caching, grpcstatus
from twofold.http.body import BodyTooLarge, ClientDisconnected, header, media_type, read_body
from twofold.http.body import respond as send_response
from twofold.http.cors import Cors, CrossOrigin
from twofold.http.negotiation import accepts_gzip, compress
from twofold.http.problem import UnsupportedMediaType, problem, send_problem
from twofold.interceptors.auth import Authentication, unauthenticated
from twofold.interceptors.metrics import Metrics
from twofold.wires import websocket_connection

if TYPE_CHECKING:
    from twofold.gateway.tracing import UpstreamTracing

logger = logging.getLogger("twofold.gateway")

JSON = b"application/json"
EVENT_STREAM = b"text/event-stream"
NDJSON = b"application/x-ndjson"
# Smaller answers go as they are: gzip's frame and CPU are not worth it below a packet.
COMPRESS_MIN = 1024
# Seconds of silence on a stream before a comment line (SSE) or an empty line
# (NDJSON), so that proxies which close quiet connections leave it open.
KEEPALIVE = 15.0
_encode = msgspec.json.Encoder().encode
_PRINTABLE = re.compile(rb"[\x20-\x7e]*").fullmatch


@dataclass(frozen=True)
class GatewayOptions:
    """What a gateway may be told beyond its schema and upstream."""

    max_body_size: int = 4 * 1024 * 1024
    # Request headers passed upstream as metadata (lower case).
    forward_headers: tuple[str, ...] = FORWARD
    # The deadline of a call whose client set none, and the longest one allowed.
    timeout: float = DEFAULT_TIMEOUT
    # Print fields at their default value (grpc-gateway's EmitUnpopulated).
    emit_defaults: bool = False
    # Cache-Control of successful GETs, by full method name ("pkg.Svc.Get");
    # others revalidate with their ETag.
    cache_control: Mapping[str, str] = field(default_factory=dict)
    jsonrpc_path: str = "/jsonrpc"
    openapi_path: str = "/openapi.json"
    docs_path: str | None = "/docs"
    title: str = "gateway"
    # Browser pages on other origins (twofold.http.cors), for every wire at once.
    cors: Cors | None = None
    # Prometheus metrics of the upstream calls, by front wire, method and code, and
    # their /metrics endpoint (twofold.interceptors.metrics.Metrics, its path).
    metrics: Metrics | None = None
    # Credentials checked at the edge, before any body is read, with Twofold's own
    # verifiers (JwtBearer, ApiKeys). Every method then needs an identity, except
    # those ``public`` names; ``scopes`` maps a method's full name
    # ("pkg.Svc.Get") to the scopes it needs.
    authentication: Authentication | None = None
    # A CLIENT span per upstream call (twofold.gateway.tracing; needs twofold[otel]).
    tracing: UpstreamTracing | None = None
    public: tuple[str, ...] = ()
    scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Calls in one JSON-RPC batch (POST or WebSocket); a larger batch is refused whole.
    max_batch_size: int = 100
    # The limits of a JSON-RPC WebSocket connection (docs/websocket.md); None: an
    # App's defaults, with max_message_size at max_body_size.
    websocket: WebSocketOptions | None = None


class Gateway:
    """An ASGI app: the REST (and RPC) edge of the gRPC service at ``upstream``.

    ``upstream`` is ``host:port`` or an :class:`Upstream` (TLS, several channels).
    """

    def __init__(
        self, schema: Schema, upstream: str | Upstream, options: GatewayOptions | None = None
    ) -> None:
        self.schema = schema
        self.upstream = Upstream(upstream) if isinstance(upstream, str) else upstream
        self.options = options or GatewayOptions()
        self.routes = routes(schema)
        self.router = Router(self.routes)
        self.methods: dict[str, MethodDescriptor] = {
            f"/{m.containing_service.full_name}/{m.name}": m for m in schema.methods()
        }
        self.rpc = rpc.RpcFront(self)
        self.grpc = GrpcRelay(self)
        self.keepalive = KEEPALIVE
        self.websocket = self.options.websocket or WebSocketOptions(
            max_message_size=self.options.max_body_size
        )
        self._openapi: bytes | None = None
        self._exact: dict[str, ASGIApp] = {
            self.options.openapi_path: self._serve_openapi,
            self.options.jsonrpc_path: self.rpc.jsonrpc,
        }
        if self.options.docs_path:
            self._exact.update(
                docs.endpoints(
                    self.options.docs_path, self.options.openapi_path, self.options.title
                )
            )
        self.upstream.tracing = self.options.tracing
        if self.options.metrics is not None:
            self.upstream.metrics = self.options.metrics
            self._exact.update(self.options.metrics.endpoints())
        cors = self.options.cors
        self._http: ASGIApp = self._safe if cors is None else CrossOrigin(cors, self._safe)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind == "websocket":
            if scope["path"] != self.options.jsonrpc_path:
                return  # the server closes it (403)
            await websocket_connection.serve(
                scope,
                receive,
                send,
                GatewayCalls(self.rpc, scope),
                limits=self.websocket,
                max_batch_size=self.options.max_batch_size,
                cors=self.options.cors,
            )
            return
        if kind != "http":
            return
        await self._http(scope, receive, send)

    async def _safe(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route, and turn anything unforeseen into INTERNAL with no traceback on the wire."""
        started = False

        async def watched(message: AsgiMessage) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._route(scope, receive, watched)
        except ClientDisconnected:
            pass
        except Exception as exc:
            if started:
                raise  # the answer is under way: the server can only cut it
            await send_problem(send, as_error(exc), scope["path"])

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        exact = self._exact.get(path)
        if exact is not None:
            await exact(scope, receive, send)
            return
        method = self.methods.get(path)
        if method is not None and self.grpc.can_handle(scope):
            await self.grpc.serve(method, scope, receive, send)
            return
        if path in REFLECTION and self.grpc.can_handle(scope):
            await self.grpc.reflection(path, scope, receive, send)
            return
        if method is not None and self.rpc.can_handle(scope):
            await self.rpc.serve(method, scope, receive, send)
            return
        raw = scope.get("raw_path") or quote(path).encode()
        raw_path = raw.decode("latin-1").partition("?")[0]
        verb: str = scope["method"]
        try:
            found = self.router.match("GET" if verb == "HEAD" else verb, raw_path)
            allowed = [] if found else self.router.allowed(raw_path)
        except UnicodeDecodeError:
            await send_problem(send, Error.invalid("", "the path is not UTF-8"), path)
            return
        if found is None:
            if allowed:
                error = Error(Code.UNIMPLEMENTED, f"{verb} is not allowed on {path}")
                error.http_status = 405
                await send_problem(send, error, path, [(b"allow", ", ".join(allowed).encode())])
            else:
                await send_problem(send, Error(Code.NOT_FOUND, f"no route for {path}"), path)
            return
        route, values = found
        await self.rest(route, values, scope, receive, send)

    async def admit(self, method: MethodDescriptor, scope: Scope) -> None:
        """The edge's credential check (``options.authentication``), header-only."""
        auth = self.options.authentication
        if auth is None:
            return
        # Invalid credentials are refused even on a public method, as on an App.
        identity = await auth.identify(Headers(scope["headers"]))
        name = method.full_name
        if name in self.options.public:
            return
        if identity is None:
            raise unauthenticated("credentials are required", f'Bearer realm="{auth.realm}"')
        needed = self.options.scopes.get(name, ())
        if not identity.has_scopes(needed):
            missing = " ".join(needed)
            challenge = (
                f'Bearer realm="{auth.realm}", error="insufficient_scope", scope="{missing}"'
            )
            raise Error(
                Code.PERMISSION_DENIED,
                f"requires scope {missing}",
                headers={"WWW-Authenticate": challenge},
            )

    def deadline(self, scope: Scope) -> float:
        """The upstream call's timeout: the client's (gRPC, Connect or RFC-style
        header), never more than the configured one."""
        limit = self.options.timeout
        for name, parse in (
            (b"grpc-timeout", grpc_timeout),
            (b"connect-timeout-ms", _milliseconds),
            (b"request-timeout", _seconds),
        ):
            value = header(scope, name)
            if value is not None:
                asked = parse(value.decode("latin-1"))
                if asked is None:
                    raise Error.invalid("", f"{name.decode()}: not a timeout: {value!r}")
                return min(asked, limit)
        return limit

    def metadata(self, scope: Scope) -> list[tuple[str, str | bytes]]:
        """The request headers that go upstream: only the allow-listed ones."""
        allow = self.options.forward_headers
        out: list[tuple[str, str | bytes]] = []
        for k, v in scope["headers"]:
            name = k.decode("latin-1")
            if name in allow:
                if name.endswith("-bin"):
                    # Binary metadata is base64 on HTTP (as gRPC over HTTP/2
                    # sends it); grpcio takes the bytes and encodes them itself.
                    out.extend((name, b) for _, b in grpcstatus.decode_metadata([(k, v)]))
                elif _PRINTABLE(v):
                    out.append((name, v.decode("ascii")))
                else:
                    # gRPC's ASCII metadata is printable ASCII only; grpcio would raise.
                    raise Error.invalid("", f"header {name}: gRPC metadata is printable ASCII")
        return out

    async def rest(
        self, route: Route, values: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        path: str = scope["path"]
        try:
            await self.admit(route.method, scope)
            timeout = self.deadline(scope)
            body = b""
            if route.body is not None:
                body = await read_body(scope, receive, self.options.max_body_size)
                content_type = media_type(header(scope, b"content-type"))
                if (
                    body.strip()
                    and content_type not in (b"", JSON)
                    and not content_type.endswith(b"+json")
                ):
                    raise UnsupportedMediaType(b"accept-post")
            request = request_message(self.schema, route, values, scope["query_string"], body)
            if route.streams:
                await rpc.cancel_on_disconnect(
                    self._stream(route, request, timeout, scope, send), receive
                )
                return
            raw = await self.upstream.unary(
                _rpc_path(route.method),
                request.SerializeToString(),
                self.metadata(scope),
                timeout,
                "rest",
            )
            answer = self.parse(route.method, raw)
            out = response_json(self.schema, route, answer, self.options.emit_defaults)
        except BodyTooLarge as exc:
            await send_problem(send, exc, path, [(b"connection", b"close")])
            return
        except Error as exc:
            await send_problem(send, exc, path)
            return
        headers: list[tuple[bytes, bytes]] = [(b"vary", b"accept-encoding")]
        gzipped = len(out) >= COMPRESS_MIN and accepts_gzip(header(scope, b"accept-encoding"))
        if gzipped:
            out = compress(out)
            headers.append((b"content-encoding", b"gzip"))
        if route.verb == "GET":
            # Another representation, another strong tag (RFC 9110 §8.8.3).
            tag = caching.etag(None, raw, gzipped)
            name = route.method.full_name
            policy = self.options.cache_control.get(name, "no-cache").encode()
            headers += [(b"etag", tag), (b"cache-control", policy)]
            if_none_match = header(scope, b"if-none-match")
            if if_none_match is not None and caching.none_match(if_none_match, tag):
                await send_response(send, 304, b"", headers)
                return
        if scope["method"] == "HEAD":
            out = b""
        await send_response(send, 200, out, headers, JSON)

    def parse(self, method: MethodDescriptor, raw: bytes) -> Message:
        """The upstream's answer as the declared message, or a 502."""
        cls = self.schema.message_class(method.output_type)
        try:
            return cls.FromString(raw)  # type: ignore[no-any-return]
        except (DecodeError, RuntimeWarning) as exc:
            logger.warning("%s: the upstream answer does not parse: %s", method.full_name, exc)
            raise BadGateway(
                f"the upstream's answer is not a {method.output_type.full_name}"
            ) from None

    async def _stream(
        self, route: Route, request: Message, seconds: float, scope: Scope, send: Send
    ) -> None:
        """A server stream as Server-Sent Events (NDJSON if the client asks for it).

        An error before the first message is an ordinary problem document; after
        it, a last ``event: error`` (SSE) or ``{"error": ...}`` line (NDJSON).
        """
        ndjson = media_type(header(scope, b"accept")) == NDJSON
        items = self.upstream.server_stream(
            _rpc_path(route.method),
            request.SerializeToString(),
            self.metadata(scope),
            seconds,
            "sse",
        )
        started = False
        path: str = scope["path"]
        content_type = NDJSON if ndjson else EVENT_STREAM

        async def start() -> None:
            nonlocal started
            started = True
            headers = [
                (b"content-type", content_type),
                (b"cache-control", b"no-store"),
                (b"x-accel-buffering", b"no"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})

        try:
            async for raw in _with_keepalive(items, self.keepalive):
                if raw is None:
                    if not started:
                        await start()
                    idle = b"\n" if ndjson else b": keep-alive\n\n"
                    await send({"type": "http.response.body", "body": idle, "more_body": True})
                    continue
                data = response_json(
                    self.schema, route, self.parse(route.method, raw), self.options.emit_defaults
                )
                if not started:
                    await start()
                chunk = data + b"\n" if ndjson else b"data: " + data + b"\n\n"
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except Error as exc:
            if not started:
                raise
            doc = _encode(problem(exc, path))
            last = (
                b'{"error":' + doc + b"}\n" if ndjson else b"event: error\ndata: " + doc + b"\n\n"
            )
            await send({"type": "http.response.body", "body": last, "more_body": True})
        finally:
            await items.aclose()  # type: ignore[attr-defined]
        if not started:
            # An empty stream: the headers still go out, then the end.
            await send_response(send, 200, b"", [], content_type)
            return
        await send({"type": "http.response.body", "body": b""})

    @property
    def openapi(self) -> dict[str, Any]:
        from twofold.gateway.openapi import document

        return document(self.schema, self.routes, self.options)

    async def _serve_openapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_response(send, 405, headers=[(b"allow", b"GET, HEAD")])
            return
        if self._openapi is None:
            self._openapi = _encode(self.openapi)
        body = self._openapi if scope["method"] == "GET" else b""
        await send_response(send, 200, body, [], JSON)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.upstream.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _with_keepalive(items: AsyncIterator[bytes], every: float) -> AsyncIterator[bytes | None]:
    """The stream's items, and None after each ``every`` seconds without one.

    The pending item is awaited in a task of its own, never cancelled by the
    wait: cancelling it would cancel the upstream call.
    """
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(items))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield None
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield item
    finally:
        if pending is not None and not pending.done():
            pending.cancel()


def _rpc_path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _milliseconds(value: str) -> float | None:
    return int(value) / 1000 if value.isdigit() and len(value) <= 10 else None


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 1e9 and seconds == seconds else None
