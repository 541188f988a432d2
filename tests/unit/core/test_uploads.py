"""twofold.Upload and File.stream as a handler and the definition see them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest

from twofold import Error, File, Service, Upload, upload_limit
from twofold.core.files import UploadTooLarge


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_an_upload_is_read_once_in_its_chunks() -> None:
    async def run() -> None:
        upload = Upload.of(_chunks(b"ab", b"cd"), filename="x.bin")
        assert [c async for c in upload] == [b"ab", b"cd"]
        with pytest.raises(Error, match="already read"):
            await upload.read()
        # A sync iterable reads the same way; read(limit) stops past the limit.
        assert await Upload.of([b"a", b"b"]).read() == b"ab"
        with pytest.raises(UploadTooLarge) as caught:
            await Upload.of(_chunks(b"abc", b"def")).read(4)
        assert caught.value.http_status == 413

    asyncio.run(run())


def test_an_upload_decoded_from_a_message_reads_its_data() -> None:
    upload = msgspec.json.decode(b'{"data":"aGk=","filename":"h.txt"}', type=Upload)
    assert asyncio.run(upload.read()) == b"hi" and upload.filename == "h.txt"
    # The stream is no field: the message encodes as File's fields, in File's order.
    assert msgspec.json.encode(Upload.of([b"x"])) == (
        b'{"data":"","content_type":"application/octet-stream","filename":""}'
    )


def test_a_streamed_file_gathers_and_checks_its_size() -> None:
    async def run() -> None:
        file = File.stream(_chunks(b"ab", b"c"), size=3)
        assert file.streamed and file.size == 3
        assert (await file.gather()).data == b"abc" and not file.streamed
        with pytest.raises(Error, match="not its size 5"):
            await File.stream(_chunks(b"ab"), size=5).gather()
        assert File(data=b"xyz").size == 3

    asyncio.run(run())


def test_upload_limit_reaches_the_method_in_either_order() -> None:
    service = Service("limits.v1")

    @upload_limit(1 << 20)
    @service.procedure(http=("PUT", "/a/{name}"))
    async def put_a(name: str, upload: Upload) -> File:
        return File(data=b"")

    @service.procedure(http=("PUT", "/b/{name}"))
    @upload_limit(2 << 20)
    async def put_b(name: str, upload: Upload) -> File:
        return File(data=b"")

    assert service.methods["PutA"].upload_limit == 1 << 20
    assert service.methods["PutB"].upload_limit == 2 << 20
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="positive number of bytes"):
            upload_limit(bad)  # type: ignore[arg-type]
