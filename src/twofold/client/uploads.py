"""Uploads a client sends as they are produced (:meth:`twofold.Upload.of`).

Over REST the chunks are the request body itself (see
:class:`~twofold.client.protocols.Rest`); every other wire carries an
Upload as one message, so its chunks are gathered into ``data`` before the
call. Either way the chunks can be read once only: a call that sent them is
never retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

import msgspec

from twofold.core.files import Upload, upload_source


def streamed(message: Any) -> Upload | None:
    """The request's Upload whose chunks are still to be sent, if it has one."""
    if not isinstance(message, msgspec.Struct):
        return None
    for name in message.__struct_fields__:
        value = getattr(message, name)
        if isinstance(value, Upload) and upload_source(value) is not None:
            return value
    return None


def gather(upload: Upload) -> None:
    """Put a sync client's chunks into ``data``."""
    source = upload_source(upload)
    if isinstance(source, AsyncIterable):
        raise TypeError("twofold.Client sends an Upload from a sync iterable of bytes")
    assert source is not None
    upload.data = b"".join(_bytes(chunk) for chunk in source)
    upload.__dict__.pop("_source")


async def agather(upload: Upload) -> None:
    """Put an async client's chunks (sync or async) into ``data``."""
    source = upload_source(upload)
    assert source is not None
    if isinstance(source, AsyncIterable):
        parts = [_bytes(chunk) async for chunk in source]
    else:
        parts = [_bytes(chunk) for chunk in source]
    upload.data = b"".join(parts)
    upload.__dict__.pop("_source")


def prepare(message: Any, rest: bool) -> bool:
    """Ready a sync call's streamed Upload: gathered off REST, checked on it.

    True when the call streams it (it must then not be retried)."""
    upload = streamed(message)
    if upload is None:
        return False
    if not rest:
        gather(upload)
        return False
    if isinstance(upload_source(upload), AsyncIterable):
        raise TypeError("twofold.Client sends an Upload from a sync iterable of bytes")
    return True


async def aprepare(message: Any, rest: bool) -> bool:
    """Ready an async call's streamed Upload (httpx's AsyncClient wants an async body)."""
    upload = streamed(message)
    if upload is None:
        return False
    if not rest:
        await agather(upload)
        return False
    source = upload_source(upload)
    if not isinstance(source, AsyncIterable):
        assert source is not None
        upload.__dict__["_source"] = _async(source)
    return True


async def _async(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _bytes(chunk: Any) -> bytes:
    if not isinstance(chunk, bytes | bytearray | memoryview):
        raise TypeError(f"an Upload's chunks are bytes, not {type(chunk).__name__}")
    return bytes(chunk)
