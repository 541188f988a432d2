"""Prometheus metrics for every call, and the ``/metrics`` endpoint that serves them.

:class:`Metrics` is an interceptor: put it first among an App's
interceptors so that it sees every refusal of the ones after it. The App
mounts its :meth:`endpoints` (``/metrics``, the Prometheus text format).
Each instance has its own registry, so two apps in one process do not clash.

- ``twofold_calls_total{protocol,method,code}``: finished calls; ``code`` is
  ``ok`` or the canonical code name.
- ``twofold_call_duration_seconds{protocol,method}``: a latency histogram.
- ``twofold_calls_in_flight{protocol,method}``: calls running now.

A stream is measured until its handler returns the stream, not to its end.
Requests a protocol refuses before any handler runs (a malformed body, an
unknown path) are not calls and are not counted.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from twofold.asgi import ASGIApp, Receive, Scope, Send
from twofold.context import Context
from twofold.errors import Error
from twofold.http import respond
from twofold.interceptors import CallNext

OK = "ok"


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
        code = OK
        try:
            return await call_next(request, ctx)
        except Error as exc:
            code = exc.code.wire_name
            raise
        except BaseException:
            code = "internal"
            raise
        finally:
            gauge.dec()
            self.duration.labels(*labels).observe(time.perf_counter() - start)
            self.calls.labels(*labels, code).inc()

    def endpoints(self) -> dict[str, ASGIApp]:
        """What the App mounts: the exposition endpoint at ``path``."""
        return {self.path: self._serve}

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await respond(send, 405, headers=[(b"allow", b"GET, HEAD")])
            return
        body = generate_latest(self.registry) if scope["method"] == "GET" else b""
        await respond(send, 200, body, content_type=CONTENT_TYPE_LATEST.encode())
