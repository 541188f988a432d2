"""docs/observability.md: an OpenTelemetry span for every call (``pip install 'twofold[otel]'``)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from docs_src.observability.service import service
from twofold import AccessLog, App, Deadlines, Metrics, RequestIds, Tracing

# The application's choice of SDK, processor and exporter: in production a
# BatchSpanProcessor and an OTLP exporter, here spans kept in memory.
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))

app = App(
    service,
    interceptors=[
        Tracing(tracer_provider=provider),  # first: its span covers the others
        RequestIds(),
        Metrics(),
        AccessLog(),
        Deadlines(),  # enforces get_quote's @timeout
    ],
)
