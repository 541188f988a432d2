"""What came back over one wire, read each wire's own way into one :class:`Outcome`.

Errors are read from each protocol's own error channel: a REST problem
document, a JSON-RPC error object, a Connect error body, gRPC(-Web) status
trailers. Field violations come from ``google.rpc.BadRequest`` details,
decoded by the protobuf runtime's own classes (not by Twofold), so a
mistake in Twofold's encoder shows. An answer that breaks its wire's rules
(a REST error that is not a problem document) fails the test.
"""

from __future__ import annotations

import base64
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import httpx
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from twofold.core.code import Code
from twofold.http import xmlparse, xmlrpcvalue

# JSON-RPC's protocol faults carry no canonical code of ours: named after the spec.
JSONRPC_CODES = {
    -32700: "parse_error",
    -32600: "invalid_request",
    -32601: "method_not_found",
    -32602: "invalid_params",
    -32603: "internal_error",
}
DETAILS = "grpc-status-details-bin"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


@dataclass
class Outcome:
    """One call over one wire, as the test sees it.

    ``code`` is the canonical code's wire name (``"not_found"``), None on
    success. ``data`` is the output decoded into the method's output type by
    the wire's own codec (a list of them for a stream), so answers compare
    equal across wires although int64s are strings in proto3 JSON.
    ``output`` is the same as plain JSON-like values, as the wire sent it.
    ``violations`` names the fields of a ``google.rpc.BadRequest`` detail;
    ``headers`` are the response headers (gRPC: the trailing metadata).
    """

    code: str | None
    output: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    data: Any = None
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code is None


class Unsupported(Exception):
    """The call cannot be expressed on this wire (the message is the reason).

    A method with no REST route, a Connect GET of a method with side
    effects, a value protobuf cannot hold: the kit reports such a case as
    skipped on that wire, never as passed.
    """


def fail(message: str) -> AssertionError:
    """A wire that broke its own rules: the test fails with what was seen."""
    return AssertionError(message)


def envelopes(body: bytes) -> list[tuple[int, bytes]]:
    """The (flags, payload) of each enveloped message (5-byte prefix) in a body."""
    out = []
    while body:
        if len(body) < 5:
            raise fail(f"a truncated envelope: {body!r}")
        flags, size = struct.unpack(">BI", body[:5])
        out.append((flags, body[5 : 5 + size]))
        body = body[5 + size :]
    return out


def grpc_web_answer(response: httpx.Response) -> tuple[list[bytes], dict[str, str]]:
    """A gRPC-Web answer's messages, and its trailers: the trailers envelope's
    header lines over the response headers (trailers-only puts them there)."""
    messages, trailers = [], dict(response.headers)
    for flags, data in envelopes(response.content):
        if flags & 0x80:
            for line in data.decode().split("\r\n"):
                key, _, value = line.partition(":")
                if key:
                    trailers[key.strip().lower()] = value.strip()
        else:
            messages.append(data)
    return messages, trailers


def b64decode(text: str) -> bytes:
    """Base64 with or without padding, as gRPC metadata and Connect details send it."""
    return base64.b64decode(text + "=" * (-len(text) % 4))


def bad_request_fields(details: list[Any]) -> list[str]:
    """The fields named by the ``google.rpc.BadRequest`` among status details (Any)."""
    fields: list[str] = []
    for detail in details:
        if detail.type_url == _BAD_REQUEST:
            bad = error_details_pb2.BadRequest.FromString(detail.value)
            fields += [v.field for v in bad.field_violations]
    return fields


def status_details(raw: bytes, code: int, message: str | None = None) -> list[str]:
    """The violations in a ``grpc-status-details-bin`` value, checked against the
    status it travels with (the same code, and the same message when known)."""
    return violations(_status(raw, code, message))


def _status(raw: bytes, code: int, message: str | None) -> Any:
    status = status_pb2.Status.FromString(raw)
    if status.code != code:
        raise fail(f"{DETAILS} says code {status.code}, the status line {code}")
    if message is not None and status.message != message:
        raise fail(f"{DETAILS} says {status.message!r}, the status line {message!r}")
    return status


def status_of(error: Any) -> Any:
    """The ``google.rpc.Status`` of a failed grpcio call (sync or asyncio), from
    its ``grpc-status-details-bin``, which must be there and agree with the
    status line."""
    metadata = dict(error.trailing_metadata() or ())
    if DETAILS not in metadata:
        raise fail(f"a gRPC error without {DETAILS}: {error.code()} {error.details()!r}")
    return _status(metadata[DETAILS], error.code().value[0], error.details())


def violations(status: Any) -> list[str]:
    """The fields named by a ``google.rpc.Status``'s BadRequest details."""
    return bad_request_fields(list(status.details))


def rest_error(response: httpx.Response) -> Outcome:
    """An RFC 9457 problem document, whose ``status`` is the response's."""
    headers = dict(response.headers)
    if headers.get("content-type") != "application/problem+json":
        raise fail(f"REST error {response.status_code} is not a problem: {response.text[:200]}")
    problem = response.json()
    if problem.get("status") != response.status_code:
        raise fail(f"problem status {problem.get('status')} on a {response.status_code}")
    fields = [v["field"] for v in problem.get("violations", [])]
    return Outcome(problem["code"], None, headers, response.status_code, violations=fields)


def rest_xml_error(response: httpx.Response) -> Outcome:
    """An RFC 9457 problem document in XML (Appendix B), read with ElementTree."""
    headers = dict(response.headers)
    if headers.get("content-type") != "application/problem+xml":
        raise fail(f"REST XML error {response.status_code} is not a problem: {response.text[:200]}")
    ns = "{urn:ietf:rfc:7807}"
    problem = ET.fromstring(response.content)
    if problem.tag != f"{ns}problem":
        raise fail(f"not an RFC 9457 XML problem: <{problem.tag}>")
    if problem.findtext(f"{ns}status") != str(response.status_code):
        raise fail(f"problem status {problem.findtext(f'{ns}status')} on a {response.status_code}")
    fields = [i.findtext(f"{ns}field") or "" for i in problem.iterfind(f"{ns}violations/{ns}i")]
    code = problem.findtext(f"{ns}code")
    return Outcome(code, None, headers, response.status_code, violations=fields)


def jsonrpc_error(response: httpx.Response, error: dict[str, Any]) -> Outcome:
    data = error.get("data") or {}
    code = data.get("code") or JSONRPC_CODES.get(error["code"], str(error["code"]))
    fields = [v["field"] for v in data.get("violations", [])]
    return Outcome(code, None, dict(response.headers), response.status_code, violations=fields)


def xmlrpc_fault(response: httpx.Response) -> Outcome:
    """A fault of Twofold's XML-RPC wire: its ``code`` member, else the number's code.

    ``xmlrpc.client.Fault`` drops members past the standard two, so the fault
    struct is read again here for ``code`` and ``violations``.
    """
    fault = xmlrpcvalue.read(xmlparse.parse(response.content).find("fault/value"))  # type: ignore[arg-type]
    code = fault.get("code") or Code(fault["faultCode"]).wire_name
    fields = [v["field"] for v in fault.get("violations", [])]
    return Outcome(code, None, dict(response.headers), response.status_code, violations=fields)


def connect_error(response: httpx.Response) -> Outcome:
    """A Connect error body; each detail's binary value is decoded, and its
    ``debug`` JSON form, when sent, must say the same."""
    headers = dict(response.headers)
    if not headers.get("content-type", "").startswith("application/json"):
        raise fail(f"Connect error {response.status_code} is not JSON: {response.text[:200]}")
    error = response.json()
    fields: list[str] = []
    for detail in error.get("details", []):
        if detail["type"] != "google.rpc.BadRequest":
            continue
        bad = error_details_pb2.BadRequest.FromString(b64decode(detail["value"]))
        found = [v.field for v in bad.field_violations]
        debug = detail.get("debug")
        if debug is not None:
            said = [v["field"] for v in debug.get("fieldViolations", [])]
            if said != found:
                raise fail(f"Connect detail's debug names {said}, its value {found}")
        fields += found
    return Outcome(error["code"], None, headers, response.status_code, violations=fields)


def grpc_web_status(trailers: dict[str, str]) -> tuple[str | None, list[str]]:
    """The code and violations of gRPC-Web trailers."""
    if "grpc-status" not in trailers:
        raise fail(f"a gRPC-Web answer without grpc-status: {trailers}")
    status = int(trailers["grpc-status"])
    if status == 0:
        return None, []
    details = trailers.get(DETAILS)
    fields = status_details(b64decode(details), status) if details else []
    return Code(status).wire_name, fields
