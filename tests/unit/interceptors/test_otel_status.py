"""A REST span's status is what the client got: the wire's on success, the error's own else."""

from __future__ import annotations

import asyncio

import httpx
import msgspec
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from twofold import App, Code, Error, Service, Tracing


class Note(msgspec.Struct):
    id: str
    text: str = ""


service = Service("notes.v1")
notes = service.resource("notes")


@notes.create
async def create_note(note: Note) -> Note:
    return note


@notes.delete
async def delete_note(id: str) -> None:
    if id == "locked":
        error = Error(Code.FAILED_PRECONDITION, "locked")
        error.http_status = 412  # a status of its own, as PreconditionFailed has
        raise error


def test_span_status_is_what_rest_answered() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = App(service, interceptors=[Tracing(tracer_provider=provider)])

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            created = await client.post("/notes", json={"id": "n1", "text": "hi"})
            deleted = await client.delete("/notes/n1")
            refused = await client.delete("/notes/locked")
        return [created.status_code, deleted.status_code, refused.status_code]

    answered = asyncio.run(main())
    assert answered == [201, 204, 412]
    recorded = [
        (span.attributes or {})["http.response.status_code"]
        for span in exporter.get_finished_spans()
    ]
    assert recorded == answered
