"""docs/files.md: a document store, files up and down over REST and every RPC wire."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec

from twofold import (
    App,
    Code,
    Error,
    File,
    Idempotency,
    Options,
    Service,
    Upload,
    upload_limit,
)

service = Service("docs.v1")
documents: dict[str, File] = {}


class Archived(msgspec.Struct):
    name: str
    size: int
    sha256: str
    content_type: str
    filename: str


# Where streamed uploads land (ARCHIVE_DIR, else a fresh temporary directory).
archive = Path(os.environ.get("ARCHIVE_DIR") or tempfile.mkdtemp(prefix="archive-"))


@upload_limit(8 << 20)  # this method's own limit; the App's is 4 MiB
@service.procedure(http=("PUT", "/archives/{name}"), idempotency=Idempotency.IDEMPOTENT)
async def put_archive(name: str, upload: Upload) -> Archived:
    """Store a file of any size: its chunks go to disk as they arrive."""
    if not name.isidentifier():
        raise Error.invalid("name", "an archive name is letters, digits and _")
    digest = hashlib.sha256()
    size = 0
    partial = archive / f".{name}.part"
    try:
        with partial.open("wb") as out:
            # Past max_upload_size, or a malformed form, this loop raises
            # (413, 400): the partial file is removed, never kept.
            async for chunk in upload:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        partial.replace(archive / name)  # only a whole file gets its name
    finally:
        partial.unlink(missing_ok=True)
    return Archived(name, size, digest.hexdigest(), upload.content_type, upload.filename)


@service.procedure(http=("GET", "/archives/{name}"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def get_archive(name: str) -> File:
    """A stored file, sent from disk as it is read (REST: Range, HEAD, ETag)."""
    path = archive / name
    if not name.isidentifier() or not path.is_file():
        raise Error(Code.NOT_FOUND, f"no archive {name!r}")
    stat = path.stat()
    return File.stream(
        read_chunks(path),
        size=stat.st_size,
        etag=f"{stat.st_mtime_ns:x}-{stat.st_size:x}",
        filename=f"{name}.bin",
    )


async def read_chunks(path: Path, size: int = 1 << 16) -> AsyncIterator[bytes]:
    """The file's bytes, 64 KiB at a time, read off the event loop."""
    with path.open("rb") as f:
        while chunk := await asyncio.to_thread(f.read, size):
            yield chunk


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
