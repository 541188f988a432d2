"""OpenTelemetry for the gateway: one CLIENT span per upstream call (``twofold[otel]``).

The span's parent is the caller's W3C ``traceparent`` (forwarded by the
allow-list, so it is in the call's metadata), and the span itself is what
goes upstream as the new ``traceparent``: the upstream's server span hangs
under the gateway's. Names and attributes follow the RPC conventions
(``pkg.Service/Method``, ``rpc.system=grpc``, ``rpc.grpc.status_code``, plus
``twofold.gateway.protocol`` for the front wire). Only the API is imported,
and only here; the application installs the SDK and its exporter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from twofold.core.errors import Error

INSTRUMENTATION = "twofold.gateway"
# The keys the W3C propagators write: replaced, not repeated, in the metadata.
_PROPAGATED = frozenset({"traceparent", "tracestate", "baggage"})

Metadata = list[tuple[str, str | bytes]]


class UpstreamTracing:
    """Spans around upstream calls; ``tracer_provider`` defaults to the global one."""

    def __init__(self, *, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)

    @contextmanager
    def span(
        self, protocol: str, path: str, metadata: Sequence[tuple[str, str | bytes]]
    ) -> Iterator[Metadata]:
        """A CLIENT span for one call; yields the metadata to send, carrying it."""
        carrier = {k: v for k, v in metadata if isinstance(v, str)}
        parent = propagate.extract(carrier)
        service, _, method = path.lstrip("/").partition("/")
        attributes = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": method,
            "twofold.gateway.protocol": protocol,
        }
        # Not made current: a stream's span outlives many yields to the relaying
        # code, whose context must not change under it.
        span = self.tracer.start_span(
            f"{service}/{method}", context=parent, kind=SpanKind.CLIENT, attributes=attributes
        )
        injected: dict[str, str] = {}
        propagate.inject(injected, context=trace.set_span_in_context(span, parent))
        out: Metadata = [(k, v) for k, v in metadata if k not in _PROPAGATED]
        out.extend(injected.items())
        try:
            yield out
        except Error as exc:
            span.set_attribute("rpc.grpc.status_code", exc.code.value)
            span.set_attribute("error.type", exc.code.wire_name)
            span.set_status(Status(StatusCode.ERROR))
            raise
        except BaseException:
            span.set_attribute("error.type", "canceled")
            span.set_status(Status(StatusCode.ERROR))
            raise
        else:
            span.set_attribute("rpc.grpc.status_code", 0)
        finally:
            span.end()
