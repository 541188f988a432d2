"""Uploads and downloads on plain HTTP: raw and multipart bodies in, ranges out.

An upload is read as it arrives, under its own size limit, and parsed by
python-multipart (Starlette's parser); whatever is wrong with it is refused
before the handler runs, so a refused upload writes nothing. A streamed
:class:`~twofold.Upload` is opened here (everything up to the file's first
byte checked before the handler runs) and then read by the handler, chunk by
chunk, from the ASGI receive channel; what is wrong after that point (the
limit passed, a malformed rest of the form) raises in the handler's loop. A download
answers ``If-None-Match`` (304) and ``Range`` (206; 416 when unsatisfiable).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, unquote

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from twofold.core.asgi import Receive, Scope, Send
from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.core.files import File, Upload, streamed
from twofold.http import caching
from twofold.http.body import BodyTooLarge, ClientDisconnected, header, media_type, read_body

MULTIPART = b"multipart/form-data"
OCTET_STREAM = "application/octet-stream"
# More parts than a form with an upload has any need of: a flood of tiny parts
# costs the parser, not the client.
MAX_PARTS = 16
# Most header bytes one part may carry (its Content-Disposition and Content-Type).
MAX_PART_HEADER = 8192
# More ranges than this in one request is a denial-of-service pattern (CVE-2011-3192).
MAX_RANGES = 16


class RangeNotSatisfiable(Error):
    """No byte of the requested ranges exists: 416 with ``Content-Range: bytes */size``."""

    http_status = 416

    def __init__(self, size: int, message: str = "") -> None:
        super().__init__(
            Code.OUT_OF_RANGE,
            message or f"the range is outside the {size} bytes of the file",
            headers={"Content-Range": f"bytes */{size}"},
        )
        self.size = size


class BrokenStream(RuntimeError):
    """A streamed download failed after its headers went out.

    No error can be answered any more: raised to the ASGI server, which drops
    the connection (so the client sees an incomplete body, not a whole file)
    and logs this, the handler's stream being at fault.
    """


def safe_filename(name: str) -> str:
    """A client-given file name, refused if it names a directory (``../``, ``/``, ``\\``)."""
    if not name:
        return ""
    if "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise Error.invalid("filename", f"a file name may not contain a path: {name!r}")
    return name


# RFC 8187's extended value, which python-multipart's header parser leaves out.
_EXTENDED = re.compile(rb"""filename\*\s*=\s*([\w!#$%&+^`{}~-]*)'[\w-]*'([^\s;]+)""", re.I)


def disposition_filename(value: bytes | None) -> str:
    """The filename of a Content-Disposition header (``filename*`` first, RFC 6266)."""
    if not value:
        return ""
    extended = _EXTENDED.search(value)
    if extended is not None:
        charset = extended.group(1).decode("ascii") or "utf-8"
        try:
            return unquote(extended.group(2).decode("ascii"), encoding=charset, errors="strict")
        except (LookupError, UnicodeDecodeError):
            raise Error.invalid(
                "filename", "undecodable filename* in Content-Disposition"
            ) from None
    _, options = parse_options_header(value)
    return options.get(b"filename", b"").decode("utf-8", "replace")


async def read_upload(scope: Scope, receive: Receive, field: str, limit: int) -> File:
    """The uploaded file a request carries, for the request field ``field``.

    ``multipart/form-data``: the part named ``field`` (every part must have a
    name; at most :data:`MAX_PARTS` parts; none bigger than ``limit``). Any
    other non-JSON body is the file itself, its media type the header's.
    """
    content_type = header(scope, b"content-type")
    if media_type(content_type) != MULTIPART:
        data = await read_body(scope, receive, limit)
        name = safe_filename(disposition_filename(header(scope, b"content-disposition")))
        given = content_type.decode("latin-1").strip() if content_type else OCTET_STREAM
        return File(data=data, content_type=given or OCTET_STREAM, filename=name)
    assert content_type is not None
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise Error.invalid("Content-Type", "multipart/form-data without a boundary")
    declared = header(scope, b"content-length")
    # The whole form may carry a little more than the file: its boundaries and headers.
    total_limit = limit + MAX_PARTS * (MAX_PART_HEADER + 256)
    if declared is not None and declared.isdigit() and int(declared) > total_limit:
        raise BodyTooLarge(limit, f"the upload is larger than {limit} bytes")
    form = _Form(field, limit)
    parser = MultipartParser(boundary, form.callbacks())
    size = 0
    more = True
    try:
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk: bytes = message.get("body", b"")
            more = message.get("more_body", False)
            size += len(chunk)
            if size > total_limit:
                raise BodyTooLarge(limit, f"the upload is larger than {limit} bytes")
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise Error.invalid("body", f"malformed multipart/form-data: {exc}") from None
    if not form.ended:
        raise Error.invalid("body", "the multipart/form-data body ends before its last boundary")
    if form.file is None:
        raise Error.invalid(field, f"the form has no part named {field!r}")
    return form.file


class _Form:
    """The state of one multipart parse: the parts so far and the one wanted."""

    def __init__(self, field: str, limit: int, stream: bool = False) -> None:
        self.field = field
        # Streamed: the file part's bytes wait in pending only until the handler
        # takes them (kept apart from _chunks, which the next part's start resets).
        self.stream = stream
        self.pending: list[bytes] = []
        self.limit = limit
        self.parts = 0
        self.file: File | None = None
        self.ended = False
        self._headers: dict[bytes, bytes] = {}
        self._name = b""
        self._value = b""
        self._header_size = 0
        self._chunks: list[bytes] | None = None
        self._size = 0

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise BodyTooLarge(self.limit, f"a form may have at most {MAX_PARTS} parts")
        self._headers = {}
        self._name = self._value = b""
        self._header_size = 0
        self._chunks = None
        self._size = 0

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._grow(end - start)
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._grow(end - start)
        self._value += data[start:end]

    def _grow(self, n: int) -> None:
        self._header_size += n
        if self._header_size > MAX_PART_HEADER:
            raise BodyTooLarge(self.limit, f"a part's headers are over {MAX_PART_HEADER} bytes")

    def _header_end(self) -> None:
        self._headers[self._name.lower()] = self._value
        self._name = self._value = b""

    def _headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition")
        if disposition is None:
            raise Error.invalid("body", "a multipart part has no Content-Disposition")
        kind, options = parse_options_header(disposition)
        name = options.get(b"name")
        if kind != b"form-data" or not name:
            raise Error.invalid("body", "every multipart part must be form-data with a name")
        if name.decode("utf-8", "replace") != self.field:
            return  # another field of the form: skipped, unbuffered
        if self.file is not None:
            raise Error.invalid(self.field, f"the form has more than one part named {self.field!r}")
        filename = safe_filename(disposition_filename(disposition))
        given = self._headers.get(b"content-type", b"").decode("latin-1").strip()
        self.file = File(data=b"", content_type=given or OCTET_STREAM, filename=filename)
        self._chunks = []

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._chunks is None:
            return
        self._size += end - start
        if self._size > self.limit:
            raise BodyTooLarge(self.limit, f"the upload is larger than {self.limit} bytes")
        (self.pending if self.stream else self._chunks).append(data[start:end])

    def take(self) -> list[bytes]:
        """The streamed file bytes parsed since the last call."""
        chunks = self.pending
        self.pending = []
        return chunks

    def _part_end(self) -> None:
        if self.stream:
            self._chunks = None
            return
        if self._chunks is not None and self.file is not None:
            self.file.data = b"".join(self._chunks)
            self._chunks = None

    def _end(self) -> None:
        self.ended = True


class UploadBody:
    """The request body behind one streamed :class:`~twofold.Upload`.

    ``failure`` keeps what ended the stream early (the limit, a malformed
    form, a disconnect), so the REST wire answers with it even when the
    handler caught it and returned as if the file were whole.
    """

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.failure: BaseException | None = None
        self.size = 0
        self.more = True

    def _gone(self) -> Error:
        """What the handler's loop raises when the client went away mid-upload:
        an Error (CANCELED), so that no handler mistakes it for a bug, while
        ``failure`` tells the wire there is no one to answer."""
        self.failure = ClientDisconnected()
        return Error(Code.CANCELED, "the client went away during the upload")

    async def next_chunk(self, total_limit: int) -> bytes:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        self.more = message.get("more_body", False)
        self.size += len(chunk)
        if self.size > total_limit:
            raise BodyTooLarge(self.limit, f"the upload is larger than {self.limit} bytes")
        return chunk

    async def raw(self) -> AsyncIterator[bytes]:
        """The whole body is the file."""
        try:
            while self.more:
                chunk = await self.next_chunk(self.limit)
                if chunk:
                    yield chunk
        except Error as exc:
            self.failure = exc
            raise
        except ClientDisconnected:
            raise self._gone() from None

    async def form(
        self, parser: MultipartParser, form: _Form, total_limit: int
    ) -> AsyncIterator[bytes]:
        """One part of the form: its bytes as they are parsed. The loop ends
        only once the whole form has been read and found well formed."""
        try:
            while True:
                for chunk in form.take():
                    yield chunk
                if not self.more:
                    break
                await self.feed(parser, total_limit)
            _form_checked(form)
        except Error as exc:
            self.failure = exc
            raise
        except ClientDisconnected:
            raise self._gone() from None

    async def feed(self, parser: MultipartParser, total_limit: int) -> None:
        chunk = await self.next_chunk(total_limit)
        try:
            if chunk:
                parser.write(chunk)
            if not self.more:
                parser.finalize()
        except MultipartParseError as exc:
            raise Error.invalid("body", f"malformed multipart/form-data: {exc}") from None


def _form_checked(form: _Form) -> None:
    if not form.ended:
        raise Error.invalid("body", "the multipart/form-data body ends before its last boundary")
    if form.file is None:
        raise Error.invalid(form.field, f"the form has no part named {form.field!r}")


async def open_upload(
    scope: Scope, receive: Receive, field: str, limit: int
) -> tuple[Upload, UploadBody]:
    """A streamed upload for the request field ``field``, and the body behind it.

    Read here, before the handler runs: a declared size over the limit (413),
    the boundary, and a form's parts up to the file part's headers (its name
    and file name checked). The file's bytes are left to the handler.
    """
    body = UploadBody(receive, limit)
    content_type = header(scope, b"content-type")
    declared = header(scope, b"content-length")
    if media_type(content_type) != MULTIPART:
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit, f"the upload is larger than {limit} bytes")
        name = safe_filename(disposition_filename(header(scope, b"content-disposition")))
        given = content_type.decode("latin-1").strip() if content_type else OCTET_STREAM
        return streamed(given or OCTET_STREAM, name, body.raw()), body
    assert content_type is not None
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise Error.invalid("Content-Type", "multipart/form-data without a boundary")
    total_limit = limit + MAX_PARTS * (MAX_PART_HEADER + 256)
    if declared is not None and declared.isdigit() and int(declared) > total_limit:
        raise BodyTooLarge(limit, f"the upload is larger than {limit} bytes")
    form = _Form(field, limit, stream=True)
    parser = MultipartParser(boundary, form.callbacks())
    while form.file is None and body.more:
        await body.feed(parser, total_limit)
    if form.file is None:
        _form_checked(form)
    assert form.file is not None
    file = form.file
    return streamed(file.content_type, file.filename, body.form(parser, form, total_limit)), body


def file_etag(file: File) -> bytes:
    """The file's entity tag: its own, else a strong one from its bytes."""
    if file.etag:
        tag = file.etag
        return (tag if tag.startswith(('"', 'W/"')) else f'"{tag}"').encode("latin-1")
    return b'"%s"' % hashlib.sha256(file.data).hexdigest()[:32].encode()


def byte_range(value: bytes, size: int) -> tuple[int, int] | None:
    """The one span (first, last inclusive) a ``Range`` header asks for, or None to send all.

    Several ranges are answered as one, the smallest span that covers them
    all (RFC 9110 §14.2 lets a server coalesce), so no multipart/byteranges
    is ever built; more than :data:`MAX_RANGES` of them is refused (416).
    A unit other than bytes, or a header that does not parse, is ignored
    (§14.2: the server then sends the whole representation).
    """
    unit, _, spec = value.decode("latin-1").partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    specs = spec.split(",")
    if len(specs) > MAX_RANGES:
        raise RangeNotSatisfiable(size, f"more than {MAX_RANGES} ranges in one request")
    spans: list[tuple[int, int]] = []
    for item in specs:
        first_text, dash, last_text = item.strip().partition("-")
        first_text, last_text = first_text.strip(), last_text.strip()
        if not dash or not (first_text.isdigit() or first_text == ""):
            return None
        if last_text and not last_text.isdigit():
            return None
        if first_text == "":
            if not last_text:
                return None
            suffix = int(last_text)  # the last N bytes
            if suffix == 0:
                continue
            spans.append((max(size - suffix, 0), size - 1))
            continue
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
        if last_text and last < first:
            return None  # invalid, not unsatisfiable: the header is ignored
        if first >= size:
            continue  # this one is unsatisfiable; another may not be
        spans.append((first, min(last, size - 1)))
    if not spans:
        raise RangeNotSatisfiable(size)
    return min(s[0] for s in spans), max(s[1] for s in spans)


def disposition(filename: str) -> bytes:
    """``attachment; filename="a.png"; filename*=UTF-8''a.png`` (RFC 6266, RFC 8187)."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value.encode("latin-1")


async def send_file(
    scope: Scope,
    send: Send,
    file: File,
    headers: list[tuple[bytes, bytes]],
    head: bool,
    read: bool = True,
) -> None:
    """Answer with the file's bytes: 200, 206 for a satisfiable Range, 304, or 416.

    Only a read (GET, HEAD) is conditional or ranged: RFC 9110 defines Range
    for GET alone, and a write that returns a file has already written.
    """
    if file.streamed:
        await send_stream(scope, send, file, headers, head, read)
        return
    data = file.data
    size = len(data)
    tag = file_etag(file)
    headers.append((b"etag", tag))
    headers.append((b"accept-ranges", b"bytes"))
    if file.filename:
        headers.append((b"content-disposition", disposition(file.filename)))
    if_none_match = header(scope, b"if-none-match")
    if read and if_none_match is not None and caching.none_match(if_none_match, tag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    status = 200
    requested = header(scope, b"range")
    if_range = header(scope, b"if-range")
    # If-Range (RFC 9110 §13.1.5): the range only if the client's copy is this one.
    if read and requested is not None and (if_range is None or if_range.strip() == tag):
        span = byte_range(requested, size)
        if span is not None:
            first, last = span
            status = 206
            headers.append((b"content-range", b"bytes %d-%d/%d" % (first, last, size)))
            data = data[first : last + 1]
    headers.append((b"content-type", file.content_type.encode("latin-1") or OCTET_STREAM.encode()))
    headers.append((b"content-length", b"%d" % len(data)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else data})


async def send_stream(
    scope: Scope,
    send: Send,
    file: File,
    headers: list[tuple[bytes, bytes]],
    head: bool,
    read: bool,
) -> None:
    """Answer with a streamed file's chunks as they come, never holding the file.

    Without a size the answer is chunked and whole (a range needs the size to
    be answered, RFC 9110 §14.2 lets a server ignore one); without an etag
    there is nothing to compare If-None-Match or If-Range with. A stream that
    gives more or fewer bytes than its size has broken its promise after the
    headers went out: the connection is dropped (the error raised) rather than
    a different file answered under that Content-Length.
    """
    size = file.size  # before chunks(), which takes the stream (and its size) out
    chunks = file.chunks()
    try:
        tag = file_etag(file) if file.etag else None
        if tag is not None:
            headers.append((b"etag", tag))
        if size is not None:
            headers.append((b"accept-ranges", b"bytes"))
        if file.filename:
            headers.append((b"content-disposition", disposition(file.filename)))
        if_none_match = header(scope, b"if-none-match")
        if (
            read
            and tag is not None
            and if_none_match is not None
            and caching.none_match(if_none_match, tag)
        ):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        status = 200
        first, last = 0, (size - 1 if size is not None else -1)
        requested = header(scope, b"range")
        if_range = header(scope, b"if-range")
        if (
            read
            and size is not None
            and requested is not None
            and (if_range is None or (tag is not None and if_range.strip() == tag))
        ):
            span = byte_range(requested, size)
            if span is not None:
                first, last = span
                status = 206
                headers.append((b"content-range", b"bytes %d-%d/%d" % (first, last, size)))
        media = file.content_type.encode("latin-1") or OCTET_STREAM.encode()
        headers.append((b"content-type", media))
        if size is not None:
            headers.append((b"content-length", b"%d" % (last - first + 1 if size else 0)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if head:
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            await _send_chunks(send, chunks, size, status, first, last)
        except BrokenStream:
            raise
        except Exception as exc:
            raise BrokenStream(f"the file's stream failed after its headers: {exc!r}") from exc
        await send({"type": "http.response.body", "body": b""})
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def _send_chunks(
    send: Send,
    chunks: AsyncIterator[bytes],
    size: int | None,
    status: int,
    first: int,
    last: int,
) -> None:
    """The body of a streamed download: the chunks, cut to the range if there is one."""
    offset = 0  # of the chunk's first byte in the file
    async for chunk in chunks:
        end = offset + len(chunk)
        if size is not None and end > size:
            raise BrokenStream(f"the file's stream gave more than its {size} bytes")
        if size is None:
            piece = chunk
        elif end <= first or offset > last:
            piece = b""
        else:
            piece = chunk[max(first - offset, 0) : last + 1 - offset]
        offset = end
        if piece:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        if status == 206 and offset > last:
            break  # the rest is not wanted: the stream is closed unread
    else:
        if size is not None and offset != size:
            raise BrokenStream(f"the file's stream gave {offset} bytes, not its {size}")
