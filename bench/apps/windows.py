"""The workloads of bench/windows.py: a body read as it comes, and a stream of large messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from twofold import App, Idempotency, Options, Service, Upload

service = Service("windows.v1")


class Size(msgspec.Struct):
    size: int


class Chunk(msgspec.Struct):
    data: bytes


@service.procedure(http=("PUT", "/bodies/{name}"), idempotency=Idempotency.IDEMPOTENT)
async def put_body(name: str, upload: Upload) -> Size:
    size = 0
    async for chunk in upload:
        size += len(chunk)
    return Size(size)


@service.procedure
async def chunks(size: int, count: int) -> AsyncIterator[Chunk]:
    data = b"x" * size
    for _ in range(count):
        yield Chunk(data)


app = App(service, options=Options(max_upload_size=1 << 30))
