"""Streamed uploads under a large limit, for the memory and credentials tests.

``PUT /blobs/{name}`` hashes an :class:`~twofold.Upload` as it arrives and
keeps nothing but the digest; writes need the writer's API key, so a test
can see that a refused caller's body is never read. ``/swallowed`` catches
the upload's error and returns as if the file were whole. ``/generated``
streams a download made up as it is sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import msgspec

from twofold import (
    ApiKeys,
    App,
    Authentication,
    Error,
    File,
    Idempotency,
    Options,
    Service,
    StoredApiKey,
    Upload,
    public,
    requires,
)

WRITER_KEY = "writer-key"
LIMIT = 256 << 20

service = Service("blobs.v1")
# Names whose handler ran: a refused caller's upload never reaches one.
SEEN: list[str] = []


class Digest(msgspec.Struct):
    name: str
    size: int
    sha256: str
    chunks: int
    content_type: str = ""
    filename: str = ""


@requires("blobs:write")
@service.procedure(http=("PUT", "/blobs/{name}"), idempotency=Idempotency.IDEMPOTENT)
async def put_blob(name: str, upload: Upload) -> Digest:
    SEEN.append(name)
    digest = hashlib.sha256()
    size = chunks = 0
    async for chunk in upload:
        digest.update(chunk)
        size += len(chunk)
        chunks += 1
    return Digest(name, size, digest.hexdigest(), chunks, upload.content_type, upload.filename)


@requires("blobs:write")
@service.procedure(http=("PUT", "/swallowed/{name}"), idempotency=Idempotency.IDEMPOTENT)
async def put_swallowed(name: str, upload: Upload) -> Digest:
    try:
        data = await upload.read()
    except Error:
        data = b""  # a careless handler: the wire still answers with the error
    return Digest(name, len(data), hashlib.sha256(data).hexdigest(), 1)


async def generated(mib: int) -> AsyncIterator[bytes]:
    block = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(mib):
        yield block


@public
@service.procedure(http=("GET", "/generated/{mib}"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def get_generated(mib: int, declared: bool = False, lie: int = 0) -> File:
    """``mib`` MiB made up as they are sent: chunked, or with its size
    declared; a ``lie`` declares that many bytes more (or, negative, fewer)."""
    size = (mib << 20) + lie if declared else None
    return File.stream(generated(mib), size=size, filename="generated.bin")


class Seen(msgspec.Struct):
    names: list[str]


@requires("blobs:write")
@service.procedure(http=("GET", "/seen"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def seen() -> Seen:
    return Seen(list(SEEN))


keys = ApiKeys([StoredApiKey.of(WRITER_KEY, "writer", ["blobs:write"])])
app = App(service, interceptors=[Authentication(keys)], options=Options(max_upload_size=LIMIT))
