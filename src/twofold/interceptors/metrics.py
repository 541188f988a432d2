"""Prometheus metrics for every call, and the ``/metrics`` endpoint that serves them.

:class:`Metrics` is an interceptor: put it first among an App's
interceptors so that it sees every refusal of the ones after it. The App
mounts its :meth:`endpoints` (``/metrics``, the Prometheus text format).
Each instance has its own registry, so two apps in one process do not clash.

- ``twofold_calls_total{protocol,method,code}``: finished calls; ``code`` is
  ``ok`` or the canonical code name.
- ``twofold_call_duration_seconds{protocol,method}``: a latency histogram.
- ``twofold_calls_in_flight{protocol,method}``: calls running now.

A stream is measured to its last message. A request a protocol refuses
before the chain runs (a malformed or over-large body, an unsupported media
type, an unknown method: ``method="_OTHER"``) is counted with its code too,
through :meth:`refused`, but not timed. So is one refused by the
header-only step of an interceptor after this one (credentials); one
refused by an interceptor after this one in the chain (limits) is counted
as an ordinary failed call.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from twofold.core.asgi import ASGIApp, Receive, Scope, Send
from twofold.core.chain import CallNext
from twofold.core.context import Context
from twofold.core.errors import Error
from twofold.http.body import respond
from twofold.interceptors import outcome


class Metrics:
    def __init__(
        self, *, path: str = "/metrics", registry: CollectorRegistry | None = None
    ) -> None:
        self.path = path
        self.registry = registry or CollectorRegistry()
        self.calls = Counter(
            "twofold_calls",
            "Calls finished, by protocol, method and canonical code.",
            ["protocol", "method", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "twofold_call_duration_seconds",
            "How long calls took, in seconds.",
            ["protocol", "method"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "twofold_calls_in_flight",
            "Calls running now.",
            ["protocol", "method"],
            registry=self.registry,
        )

    async def __call__(self, ctx: Context, request: Any, call_next: CallNext) -> Any:
        labels = (ctx.protocol, ctx.method.full_name)
        gauge = self.in_flight.labels(*labels)
        gauge.inc()
        start = time.perf_counter()

        def end(exc: BaseException | None) -> None:
            gauge.dec()
            self.duration.labels(*labels).observe(time.perf_counter() - start)
            self.calls.labels(*labels, outcome.name(ctx, exc)).inc()

        return await outcome.observe(ctx, request, call_next, end)

    async def refused(self, ctx: Context, error: Error) -> None:
        """Count a call refused before the chain (not timed: it never ran)."""
        self.calls.labels(ctx.protocol, ctx.method.full_name, error.code.wire_name).inc()

    def endpoints(self) -> dict[str, ASGIApp]:
        """What the App mounts: the exposition endpoint at ``path``."""
        return {self.path: self._serve}

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await respond(send, 405, headers=[(b"allow", b"GET, HEAD")])
            return
        body = generate_latest(self.registry) if scope["method"] == "GET" else b""
        await respond(send, 200, body, content_type=CONTENT_TYPE_LATEST.encode())
