"""OpenTelemetry tracing: one server span per call, on every protocol (``twofold[otel]``).

:class:`Tracing` is an interceptor; add it to an App's interceptors to switch
tracing on (this module is the only one that imports ``opentelemetry``, and
only the API: the application installs the SDK and its exporter, as
OpenTelemetry asks of libraries). Each call, including one refused before its
handler ran, becomes a SERVER span (:class:`Tracing` lists its attributes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from twofold.core.chain import CallNext
from twofold.core.code import HTTP_STATUS, Code
from twofold.core.context import Context
from twofold.core.errors import Error
from twofold.interceptors import outcome

# ctx.protocol -> rpc.system; REST is described as HTTP instead.
RPC_SYSTEM = {
    "grpc": "grpc",
    # gRPC-Web is gRPC's calls and status codes in another framing.
    "grpc-web": "grpc",
    "connect": "connect_rpc",
    "jsonrpc": "jsonrpc",
    # JSON-RPC over WebSocket (twofold.wires.websocket).
    "websocket": "jsonrpc",
    # Not among the conventions' well-known values, which allow others: the
    # wire's own name, so that XML-RPC calls are not mistaken for another system.
    "xmlrpc": "xmlrpc",
}
REST = "rest"
# The HTTP methods the conventions name as they are; any other is _OTHER.
_KNOWN_METHODS = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY")
)
PROTOCOL_ATTRIBUTE = "twofold.protocol"
INSTRUMENTATION = "twofold"


class Tracing:
    """The interceptor that traces calls; put it first, so that its span covers the others.

    - its parent is the caller's W3C ``traceparent`` (and ``tracestate``,
      ``baggage``), read by the global propagator from the HTTP headers or the
      gRPC metadata alike;
    - RPC protocols (JSON-RPC, Connect, gRPC-Web, gRPC) follow the RPC semantic
      conventions: span name ``package.Service/Method``, ``rpc.system``
      (``jsonrpc``, ``connect_rpc``, ``grpc``), ``rpc.service``, ``rpc.method``,
      and ``rpc.grpc.status_code`` or ``rpc.connect_rpc.error_code``;
    - REST follows the HTTP server conventions: span name ``GET /products/{id}``,
      ``http.request.method``, ``http.route``, ``url.path``, ``url.scheme``,
      ``http.response.status_code`` (no query string: it may carry secrets);
    - a failed call has status ERROR and ``error.type``, the canonical code name.
      No message, header or body is recorded: they may hold what the caller sent.

    A stream's span lasts until its last message, and the handler's own spans
    are children of the call's span, between its yields too.

    ``tracer_provider`` defaults to the global one (set by the SDK's setup or
    ``opentelemetry-instrument``), ``propagator`` to the global propagator.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        propagator: TextMapPropagator | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)
        self.propagator = propagator

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        span = self._start(ctx)
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                result = await call_next(request, ctx)
        except BaseException as exc:
            _end(span, ctx, exc)
            raise
        if outcome.streams(ctx):
            return _traced(result, span, ctx)
        _end(span, ctx, None)
        return result

    async def refused(self, ctx: Context, error: Error) -> None:
        """A call refused before its handler (malformed, too large, unknown method)."""
        _end(self._start(ctx), ctx, error)

    def _start(self, ctx: Context) -> Span:
        if self.propagator is None:
            parent = propagate.extract(ctx.headers)
        else:
            parent = self.propagator.extract(ctx.headers)
        method = ctx.method
        attributes: dict[str, Any] = {PROTOCOL_ATTRIBUTE: ctx.protocol}
        scope = ctx.scope
        if scope is not None:
            attributes["network.protocol.name"] = "http"
            attributes["network.protocol.version"] = scope.get("http_version", "1.1")
        binding = method.http
        if ctx.protocol == REST:
            verb = scope["method"] if scope is not None else binding.verb if binding else ""
            if verb not in _KNOWN_METHODS:
                verb = "_OTHER"  # the conventions' bound on what a caller may send
            attributes["http.request.method"] = verb
            if scope is not None:
                attributes["url.path"] = scope.get("path", "")
                attributes["url.scheme"] = scope.get("scheme", "http")
            if binding is not None:
                name = f"{verb} {binding.path}"
                attributes["http.route"] = binding.path
            else:
                # No route matched: the method alone, or HTTP for an unknown one.
                name = "HTTP" if verb == "_OTHER" else verb
        else:
            name = method.full_name if method.service else method.name
            attributes["rpc.system"] = RPC_SYSTEM.get(ctx.protocol, ctx.protocol)
            if method.service:
                attributes["rpc.service"] = method.service
            attributes["rpc.method"] = method.name
            if ctx.protocol in ("jsonrpc", "websocket"):
                attributes["rpc.jsonrpc.version"] = "2.0"
        attributes.update(_peer(ctx.peer))
        return self.tracer.start_span(name, parent, SpanKind.SERVER, attributes)


async def _traced(stream: AsyncIterator[Any], span: Span, ctx: Context) -> AsyncIterator[Any]:
    """The stream, each of its steps run with the call's span as the current one."""
    try:
        while True:
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                item = await anext(stream)
            except StopAsyncIteration:
                break
            finally:
                otel_context.detach(token)
            yield item
    except BaseException as exc:
        _end(span, ctx, outcome.ended(ctx, exc))
        raise
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    _end(span, ctx, None)


def _end(span: Span, ctx: Context, exc: BaseException | None) -> None:
    code = None if exc is None else outcome.code(ctx, exc)
    if ctx.protocol == REST:
        span.set_attribute("http.response.status_code", _http_status(ctx, code, exc))
    elif ctx.protocol in ("grpc", "grpc-web"):
        span.set_attribute("rpc.grpc.status_code", 0 if code is None else code.value)
    elif ctx.protocol == "connect" and code is not None:
        span.set_attribute("rpc.connect_rpc.error_code", code.wire_name)
    if code is not None:
        span.set_attribute("error.type", code.wire_name)
        span.set_status(Status(StatusCode.ERROR, code.wire_name))
    span.end()


def _http_status(ctx: Context, code: Code | None, exc: BaseException | None) -> int:
    """The status REST answers: the one its wire recorded on success, else the error's."""
    if code is None:
        return ctx.status or 200
    # The error's own status, as REST sends it (413, 412, 415... or its code's).
    return exc.status if isinstance(exc, Error) else HTTP_STATUS[code]


def _peer(peer: str | None) -> dict[str, Any]:
    """``client.address`` and ``client.port`` from ``host:port``, ``[v6]:port`` or gRPC's form."""
    if not peer:
        return {}
    # grpcio says "ipv4:127.0.0.1:5000" or "ipv6:[::1]:5000".
    if peer.startswith(("ipv4:", "ipv6:")):
        peer = peer[5:]
    host, _, port = peer.rpartition(":")
    if not host or not port.isdigit():
        return {}
    return {"client.address": host.strip("[]"), "client.port": int(port)}
