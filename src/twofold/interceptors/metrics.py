"""Prometheus metrics for every call, and the ``/metrics`` endpoint that serves them.

:class:`Metrics` is an interceptor: put it first among an App's
interceptors so that it sees every refusal of the ones after it. The App
mounts its :meth:`endpoints` (``/metrics``, the Prometheus text format).
Each instance has its own registry, so two apps in one process do not clash.

- ``twofold_calls_total{protocol,method,code}``: finished calls; ``code`` is
  ``ok`` or the canonical code name.
- ``twofold_call_duration_seconds{protocol,method}``: a latency histogram.
- ``twofold_calls_in_flight{protocol,method}``: calls running now.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from twofold.core.asgi import ASGIApp, Receive, Scope, Send
from twofold.core.chain import CallNext
from twofold.core.context import Context
from twofold.core.errors import Error
from twofold.http.body import respond
from twofold.interceptors import outcome


class Metrics:
    """With ``twofold serve --workers N`` the supervisor sets
    ``PROMETHEUS_MULTIPROC_DIR`` (see :mod:`twofold.server.supervisor`), and
    prometheus-client's multiprocess mode keeps every worker's values in files
    there: ``/metrics`` on any worker then reads them all and reports the whole
    server. Counters and histograms are summed over the workers, live and dead
    (a total does not shrink when a worker is replaced); the in-flight gauge is
    a ``livesum``, the sum over live workers only, so the calls of a worker that
    died leave it. Without that variable each process reports its own, from the
    instance's registry.

    A stream is measured to its last message. A request a protocol refuses
    before the chain runs (a malformed or over-large body, an unsupported media
    type, an unknown method: ``method="_OTHER"``) is counted with its code too,
    through :meth:`refused`, but not timed. So is one refused by the
    header-only step of an interceptor after this one (credentials); one
    refused by an interceptor after this one in the chain (limits) is counted
    as an ordinary failed call.
    """

    def __init__(
        self, *, path: str = "/metrics", registry: CollectorRegistry | None = None
    ) -> None:
        self.path = path
        self.registry = registry or CollectorRegistry()
        # prometheus-client picks its mode when imported, from the environment
        # the process started with: read at the same time, not per scrape.
        self.multiprocess_dir = os.environ.get(MULTIPROC_DIR) or None
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
            multiprocess_mode="livesum",  # a dead worker's calls are not in flight
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
        body = generate_latest(self._source()) if scope["method"] == "GET" else b""
        await respond(send, 200, body, content_type=CONTENT_TYPE_LATEST.encode())

    def _source(self) -> CollectorRegistry:
        """What a scrape reads: every process's files in multiprocess mode, else ours."""
        directory = self.multiprocess_dir
        if directory is None:
            return self.registry
        # Read afresh at each scrape, as prometheus-client prescribes: the
        # files of workers started since the last one count too.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return registry


MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable
