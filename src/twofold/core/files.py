"""Files: the one message type that REST carries as raw bytes instead of JSON.

A request field typed :class:`File` is an upload (REST takes it as
``application/octet-stream``, any other non-JSON media type, or a
``multipart/form-data`` part); a method returning a :class:`File` is a
download (REST answers with its bytes, ``Range`` and ``ETag`` honoured). On
every RPC wire it is an ordinary message: ``data`` is ``bytes``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

# A bare name on every wire: no directory part, no NUL, not "." or "..".
FILENAME_PATTERN = r"^(?!\.\.?$)[^/\\\x00]*$"
Filename = Annotated[str, msgspec.Meta(pattern=FILENAME_PATTERN, max_length=255)]


class File(msgspec.Struct, kw_only=True):
    """Bytes with the media type and name they travel under.

    ``filename`` is a bare name (no directory): the REST wire refuses an
    upload whose name has a path in it, and a download sends it in
    ``Content-Disposition``. ``etag`` (optional) is the entity tag a download
    answers with; without one the server derives a strong one from the bytes.
    """

    data: bytes
    content_type: str = "application/octet-stream"
    filename: Filename = ""
    etag: str = ""


def is_file(tp: Any) -> bool:
    """Whether a message type is :class:`File` (or a subclass)."""
    return isinstance(tp, type) and issubclass(tp, File)
