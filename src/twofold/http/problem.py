"""RFC 9457 problem documents: how every HTTP answer that is an error looks on REST.

The status is the error's own (:attr:`~twofold.Error.status`):
its code's entry in the one table, or the HTTP status a few errors have of
their own (413, 412, 406, 415, 422, 405).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec

from twofold.core.asgi import Send
from twofold.core.code import Code
from twofold.core.details import BadRequest
from twofold.core.errors import Error
from twofold.core.policy import NO_STORE
from twofold.http.body import encode_headers, respond

JSON = b"application/json"
PROBLEM_JSON = b"application/problem+json"
_encode = msgspec.json.Encoder().encode


class UnsupportedMediaType(Error):
    http_status = 415

    def __init__(self, accept_header: bytes) -> None:
        super().__init__(
            Code.INVALID_ARGUMENT, "unsupported media type: send Content-Type: application/json"
        )
        self.accept_header = accept_header


def problem(error: Error, instance: str) -> dict[str, Any]:
    """The RFC 9457 document for an error: standard members plus ``code`` and
    ``violations``. ``type`` is about:blank, so ``title`` is the status phrase
    as the RFC asks; ``code`` tells apart errors sharing a status."""
    status = error.status
    doc: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase
        if status in HTTPStatus._value2member_map_
        else ("Client Closed Request"),
        "status": status,
        "detail": error.message or error.code.wire_name,
        "instance": instance,
        "code": error.code.wire_name,
    }
    violations = error.violations
    if violations:
        doc["violations"] = [{"field": v.field, "description": v.description} for v in violations]
    others = [d for d in error.details if not isinstance(d, BadRequest)]
    if others:
        doc["details"] = [{"type": d.TYPE_NAME, **d.to_json()} for d in others]
    return doc


async def send_problem(
    send: Send, error: Error, instance: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer with ``error``'s problem document, at the error's own status."""
    if isinstance(error, UnsupportedMediaType):
        headers = [*(headers or []), (error.accept_header, JSON)]
    # An error is never to be reused: the next request may well succeed.
    raw = [*(headers or []), *encode_headers(error.headers), (b"cache-control", NO_STORE)]
    await respond(send, error.status, _encode(problem(error, instance)), raw, PROBLEM_JSON)
