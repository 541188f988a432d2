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
from twofold.http import xmlmessage
from twofold.http.body import encode_headers, respond

JSON = b"application/json"
PROBLEM_JSON = b"application/problem+json"
_encode = msgspec.json.Encoder().encode


class UnsupportedMediaType(Error):
    """A body in a media type the route does not read: 415, naming those it does."""

    http_status = 415

    def __init__(self, accept_header: bytes, types: bytes = JSON) -> None:
        names = types.decode().replace(", ", " or ")
        super().__init__(
            Code.INVALID_ARGUMENT, f"unsupported media type: send Content-Type: {names}"
        )
        self.accept_header = accept_header
        self.types = types


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


def problem_xml(doc: dict[str, Any]) -> bytes:
    """A problem document in XML, as RFC 9457 Appendix B has it: ``<problem>`` in
    the urn:ietf:rfc:7807 namespace, an element per member, arrays as ``<i>``
    items, objects as elements of their members."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<problem xmlns="urn:ietf:rfc:7807">']
    for name, value in doc.items():
        _member(name, value, out)
    out.append("</problem>")
    return "".join(out).encode()


def _member(name: str, value: Any, out: list[str]) -> None:
    if isinstance(value, list):
        out.append(f"<{name}>")
        for item in value:
            _member("i", item, out)
        out.append(f"</{name}>")
    elif isinstance(value, dict):
        out.append(f"<{name}>")
        for k, v in value.items():
            _member(k, v, out)
        out.append(f"</{name}>")
    elif value is not None:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out.append(f"<{name}>{xmlmessage.text(text)}</{name}>")


async def send_problem(
    send: Send,
    error: Error,
    instance: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    xml: bool = False,
) -> None:
    """Answer with ``error``'s problem document, at the error's own status:
    problem+json, or problem+xml to a client that prefers XML."""
    if isinstance(error, UnsupportedMediaType):
        headers = [*(headers or []), (error.accept_header, error.types)]
    # An error is never to be reused: the next request may well succeed.
    raw = [*(headers or []), *encode_headers(error.headers), (b"cache-control", NO_STORE)]
    doc = problem(error, instance)
    if xml:
        await respond(send, error.status, problem_xml(doc), raw, xmlmessage.PROBLEM_XML)
    else:
        await respond(send, error.status, _encode(doc), raw, PROBLEM_JSON)
