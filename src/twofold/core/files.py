"""Files: the one message type that REST carries as raw bytes instead of JSON.

A request field typed :class:`File` is an upload (REST takes it as
``application/octet-stream``, any other non-JSON media type, or a
``multipart/form-data`` part); a method returning a :class:`File` is a
download (REST answers with its bytes, ``Range`` and ``ETag`` honoured). On
every RPC wire it is an ordinary message: ``data`` is ``bytes``.

A request field typed :class:`Upload` is a streamed upload: the handler
reads its chunks as they arrive instead of the whole file.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import msgspec

from twofold.core.code import Code
from twofold.core.errors import Error

# A bare name on every wire: no directory part, no NUL, not "." or "..".
FILENAME_PATTERN = r"^(?!\.\.?$)[^/\\\x00]*$"
Filename = Annotated[str, msgspec.Meta(pattern=FILENAME_PATTERN, max_length=255)]


class File(msgspec.Struct, kw_only=True, dict=True):
    """Bytes with the media type and name they travel under.

    ``filename`` is a bare name (no directory): the REST wire refuses an
    upload whose name has a path in it, and a download sends it in
    ``Content-Disposition``. ``etag`` (optional) is the entity tag a download
    answers with; without one the server derives a strong one from the bytes.

    A download may also be a stream (:meth:`stream`): REST sends its chunks
    as they come, without holding the file.
    """

    data: bytes
    content_type: str = "application/octet-stream"
    filename: Filename = ""
    etag: str = ""

    @classmethod
    def stream(
        cls,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        filename: str = "",
        size: int | None = None,
        etag: str = "",
    ) -> File:
        """A download whose bytes come from ``chunks`` as REST sends them.

        ``size``, when known, is sent as ``Content-Length`` and makes
        ``Range`` possible (else the answer is chunked and whole); ``etag``,
        when given, is the ``ETag`` and answers ``If-None-Match`` (there are
        no bytes to hash before sending). The RPC wires gather the chunks
        into ``data``: one message, so only what fits in one.
        """
        file = cls(data=b"", content_type=content_type, filename=filename, etag=etag)
        if size is not None and size < 0:
            raise ValueError("a file's size is not negative")
        file.__dict__["_chunks"] = chunks
        file.__dict__["_size"] = size
        return file

    @property
    def streamed(self) -> bool:
        """Whether the bytes are still to come from a stream (:meth:`stream`)."""
        return "_chunks" in self.__dict__

    @property
    def size(self) -> int | None:
        """The number of bytes: ``len(data)``, or a stream's declared size (None if unknown)."""
        if "_chunks" in self.__dict__:
            size: int | None = self.__dict__["_size"]
            return size
        return len(self.data)

    def chunks(self) -> AsyncIterator[bytes]:
        """The bytes, from the stream or ``data``; a stream is read once."""
        source: AsyncIterable[bytes] | None = self.__dict__.pop("_chunks", None)
        self.__dict__.pop("_size", None)
        return _once(self.data) if source is None else aiter(source)

    async def gather(self) -> File:
        """This file with a stream's bytes in ``data`` (itself if it has no stream)."""
        if not self.streamed:
            return self
        size = self.size
        parts = [chunk async for chunk in self.chunks()]
        self.data = b"".join(parts)
        if size is not None and len(self.data) != size:
            raise Error(
                Code.INTERNAL, f"the file's stream gave {len(self.data)} bytes, not its size {size}"
            )
        return self


def is_file(tp: Any) -> bool:
    """Whether a message type is :class:`File` (or a subclass)."""
    return isinstance(tp, type) and issubclass(tp, File)


class UploadTooLarge(Error):
    """The streamed upload passed its limit: RESOURCE_EXHAUSTED, 413 on REST."""

    http_status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(Code.RESOURCE_EXHAUSTED, f"the upload is larger than {limit} bytes")
        self.limit = limit


class Upload(msgspec.Struct, kw_only=True, dict=True):
    """A file the handler reads as it arrives, in chunks, instead of whole.

    On REST the chunks come straight from the request body (raw or one
    ``multipart/form-data`` part), under ``Options.max_upload_size``: memory
    stays flat however large the file. ``async for chunk in upload`` reads
    them; ``await upload.read(limit)`` gathers them. Past the limit, or when
    the form turns out malformed after the file part, the loop raises an
    :class:`~twofold.Error` (413 or 400) instead of ending: a handler that
    commits only after its loop ends never keeps a truncated file.

    On the RPC wires it is an ordinary message (``content_type``,
    ``filename``, ``data`` bytes) under ``max_body_size``, read through the
    same interface in one chunk (docs/files.md).
    """

    # File's field order, so that a message's File field may become an Upload
    # with its protobuf numbers (data 1, content_type 2, filename 3) unchanged.
    data: bytes = b""
    content_type: str = "application/octet-stream"
    filename: Filename = ""

    def _stream(self) -> AsyncIterator[bytes]:
        source: Iterable[bytes] | AsyncIterable[bytes] | None = self.__dict__.pop("_source", None)
        if source is None:
            if self.__dict__.get("_consumed"):
                raise Error(Code.FAILED_PRECONDITION, "the upload was already read")
            self.__dict__["_consumed"] = True
            return _once(self.data)
        self.__dict__["_consumed"] = True
        if isinstance(source, AsyncIterable):
            return aiter(source)
        return _of(source)

    @classmethod
    def of(
        cls,
        chunks: Iterable[bytes] | AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        filename: str = "",
    ) -> Upload:
        """An upload a client sends as ``chunks`` come (twofold.Client and AsyncClient).

        Over REST the chunks are the request body, sent as they are produced
        (a sync iterable for ``Client``; either for ``AsyncClient``); on the
        other wires they are gathered into ``data`` first (one message).
        """
        upload = cls(content_type=content_type, filename=filename)
        upload.__dict__["_source"] = chunks
        return upload

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        content_type: str | None = None,
        filename: str | None = None,
        chunk_size: int = 1 << 16,
    ) -> Upload:
        """An upload of the file at ``path``, read ``chunk_size`` bytes at a time
        as it is sent (``Upload.of`` over the file's chunks).

        ``content_type`` defaults to the one its name suggests
        (:func:`mimetypes.guess_type`), else ``application/octet-stream``;
        ``filename`` to the file's name. A file that is not there fails here,
        before any request is made. The file is opened when the first chunk is
        wanted and closed after the last (or when the call gives up).
        """
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"no file to upload at {file}")
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if content_type is None:
            content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return cls.of(
            _read(file, chunk_size),
            content_type=content_type,
            filename=file.name if filename is None else filename,
        )

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The file's bytes in the chunks they arrived in; once only."""
        return self._stream()

    async def read(self, limit: int | None = None) -> bytes:
        """The whole file; :class:`UploadTooLarge` (413) if over ``limit`` bytes."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in self._stream():
            size += len(chunk)
            if limit is not None and size > limit:
                raise UploadTooLarge(limit)
            chunks.append(chunk)
        return b"".join(chunks)


def streamed(content_type: str, filename: str, source: AsyncIterator[bytes]) -> Upload:
    """An :class:`Upload` whose chunks come from ``source`` (a request body)."""
    return Upload.of(source, content_type=content_type, filename=filename)


def upload_source(upload: Upload) -> Iterable[bytes] | AsyncIterable[bytes] | None:
    """The chunks an upload is still to read (None when they are in ``data``)."""
    source: Iterable[bytes] | AsyncIterable[bytes] | None = upload.__dict__.get("_source")
    return source


async def _of(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _once(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


def is_upload(tp: Any) -> bool:
    """Whether a message type is :class:`Upload` (or a subclass)."""
    return isinstance(tp, type) and issubclass(tp, Upload)


def _read(path: Path, size: int) -> Iterator[bytes]:
    # A plain file read: sync, so that Client and AsyncClient both take it (as
    # httpx reads a file body); a 64 KiB read from the page cache is no stall.
    with path.open("rb") as file:
        while chunk := file.read(size):
            yield chunk
