"""docs/files.md: a document store, files up and down over REST and every RPC wire."""

from __future__ import annotations

import msgspec

from twofold import App, Code, Error, File, Idempotency, Options, Service

service = Service("docs.v1")
documents: dict[str, File] = {}


class Stored(msgspec.Struct):
    name: str
    size: int
    content_type: str
    filename: str


@service.procedure(http=("PUT", "/documents/{name}"), idempotency=Idempotency.IDEMPOTENT)
async def put_document(name: str, file: File) -> Stored:
    """Store a document: its bytes, media type and file name."""
    documents[name] = file
    return Stored(name, len(file.data), file.content_type, file.filename)


@service.procedure(http=("GET", "/documents/{name}"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def get_document(name: str) -> File:
    """A stored document, with Range, ETag and Content-Disposition on REST."""
    file = documents.get(name)
    if file is None:
        raise Error(Code.NOT_FOUND, f"no document {name!r}")
    return file


# Uploads have their own limit; JSON bodies keep max_body_size (1 MiB).
app = App(service, options=Options(max_upload_size=4 << 20))
