"""The one exception type user code raises, and the translation of anything else.

Every protocol renders an :class:`Error` from its own table; no other
exception ever reaches a wire. :func:`as_error` is the translator each
protocol calls at its boundary.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import msgspec

from twofold.core.code import HTTP_STATUS, Code
from twofold.core.details import BadRequest, Detail, FieldViolation

logger = logging.getLogger("twofold")


class Error(Exception):
    """An error with a canonical code, a message safe for clients, and details.

    ``headers`` go out with the error: as HTTP response headers on REST,
    Connect, JSON-RPC and gRPC-Web, as trailing metadata on gRPC
    (``WWW-Authenticate`` on a 401, ``Retry-After`` on a 429); on a Connect
    stream as its end-of-stream metadata, on a gRPC-Web stream as trailers.
    """

    def __init__(
        self,
        code: Code,
        message: str = "",
        details: Sequence[Detail] = (),
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message or code.wire_name)
        self.code = code
        self.message = message
        self.details = tuple(details)
        self.headers: dict[str, str] = dict(headers or {})

    # The status REST answers with, where a subclass has one of HTTP's own
    # rather than its code's usual status (413, 412, 415): what REST sends
    # and what a trace records agree.
    http_status: int | None = None

    def __repr__(self) -> str:
        return f"Error({self.code.name}, {self.message!r})"

    @property
    def status(self) -> int:
        """The HTTP status of this error on REST: its own, else its code's."""
        return self.http_status or HTTP_STATUS[self.code]

    @property
    def violations(self) -> tuple[FieldViolation, ...]:
        """The field violations of every BadRequest detail, in order."""
        return tuple(
            v for d in self.details if isinstance(d, BadRequest) for v in d.field_violations
        )

    @classmethod
    def invalid(cls, field: str, description: str, message: str = "") -> Error:
        """An INVALID_ARGUMENT error about one field."""
        violation = FieldViolation(field, description)
        return cls(
            Code.INVALID_ARGUMENT,
            message or (f"invalid {field}: {description}" if field else description),
            [BadRequest((violation,))],
        )


def validation_error(exc: msgspec.ValidationError, prefix: str = "") -> Error:
    """Turn msgspec's message ("Expected `int`, got `str` - at `$.id`") into violations.

    ``prefix`` names the request field a body was decoded into, so that a
    violation's path is always relative to the request message, whichever
    protocol decoded it.
    """
    text = str(exc)
    description, _, where = text.partition(" - at `")
    path = where.rstrip("`").removeprefix("$").lstrip(".") if where else ""
    if description.startswith("Object missing required field `"):
        missing = description.split("`")[1]
        path = f"{path}.{missing}" if path else missing
        description = "required field is missing"
    elif description.startswith("Object contains unknown field `"):
        unknown = description.split("`")[1]
        path = f"{path}.{unknown}" if path else unknown
        description = "unknown field"
    if prefix:
        path = f"{prefix}.{path}" if path else prefix
    return Error(
        Code.INVALID_ARGUMENT,
        f"invalid {path}: {description}" if path else description,
        [BadRequest((FieldViolation(path, description),))],
    )


def as_error(exc: BaseException) -> Error:
    """The translator every protocol calls: only coded errors reach the wire.

    Anything that is not an :class:`Error` is logged with its traceback and
    becomes INTERNAL with a fixed message, so no stack trace, SQL or path
    ever leaks to a client.
    """
    if isinstance(exc, Error):
        return exc
    logger.error("unhandled exception in handler", exc_info=exc)
    return Error(Code.INTERNAL, "internal error")
