"""The upload workloads of bench/uploads.py: the same 200 MiB body, hashed.

``PUT /stream/{name}`` takes a :class:`~twofold.Upload` (read chunk by
chunk), ``PUT /whole/{name}`` a :class:`~twofold.File` (read whole), and
``starlette_app`` is the floor: a bare Starlette endpoint iterating
``request.stream()``. Each answers with the size and SHA-256 it saw.
"""

from __future__ import annotations

import hashlib

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from twofold import App, File, Idempotency, Options, Service, Upload

LIMIT = 512 << 20

service = Service("uploads.v1")


class Digest(msgspec.Struct):
    size: int
    sha256: str


@service.procedure(http=("PUT", "/stream/{name}"), idempotency=Idempotency.IDEMPOTENT)
async def put_stream(name: str, upload: Upload) -> Digest:
    digest = hashlib.sha256()
    size = 0
    async for chunk in upload:
        digest.update(chunk)
        size += len(chunk)
    return Digest(size, digest.hexdigest())


@service.procedure(http=("PUT", "/whole/{name}"), idempotency=Idempotency.IDEMPOTENT)
async def put_whole(name: str, file: File) -> Digest:
    return Digest(len(file.data), hashlib.sha256(file.data).hexdigest())


app = App(service, options=Options(max_upload_size=LIMIT))


async def starlette_stream(request: Request) -> JSONResponse:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse({"size": size, "sha256": digest.hexdigest()})


starlette_app = Starlette(routes=[Route("/stream/{name}", starlette_stream, methods=["PUT"])])
