"""``twofold call``: call a method of any running Twofold server, for humans.

The server's own ``/openapi.json`` is the method list, so no Python code of
the server is needed: REST operations give each method's route (their
``operationId`` is the RPC name), Connect paths (``/pkg.Service/Method``)
name the service. The message is JSON on the command line; the answer is
printed as indented JSON, and an error goes to stderr with an exit status
that says which code it was (:func:`exit_status`).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx
import msgspec

from twofold.client.errors import Failure
from twofold.client.rpc import Rpc
from twofold.client.stubs import Stub
from twofold.client.transports import HttpRequest, HttpTransport, base_url
from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.core.method import HttpBinding

USAGE_ERROR = 2
# An exit status per code: 10 + the gRPC number, so that no code is confused
# with Python's 1 (an uncaught exception) or argparse's 2 (bad arguments).
EXIT_OFFSET = 10
MAX_DOCUMENT_SIZE = 16 << 20
# The wires `twofold call` speaks: those whose messages are JSON, read with no types.
PROTOCOLS = ("connect", "rest", "jsonrpc")
_CONNECT_PATH = re.compile(r"^/([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)/([A-Za-z_]\w*)$")
_SERVICE_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")


def exit_status(code: Code) -> int:
    """The exit status of a call that failed with ``code``: 11 (CANCELED) to 26."""
    return EXIT_OFFSET + code.value


@dataclass
class _Method:
    """What the document says about one RPC."""

    name: str
    service: str = ""
    rest: HttpBinding | None = None
    operation: dict[str, Any] = field(default_factory=dict)


class Catalog:
    """The methods an OpenAPI document of a Twofold server describes."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.methods: list[_Method] = []
        self.services: list[str] = []
        paths = document.get("paths")
        paths = paths if isinstance(paths, dict) else {}
        for tag in document.get("tags") or []:
            if isinstance(tag, dict) and _SERVICE_NAME.match(str(tag.get("name", ""))):
                self._service(str(tag["name"]))
        rest = []
        for path, item in paths.items():
            match = _CONNECT_PATH.match(path) if isinstance(path, str) else None
            if match:
                self._service(match.group(1))
                self._add(match.group(2), match.group(1))
            elif isinstance(item, dict):
                rest += [(path, verb.upper(), op) for verb, op in item.items() if _has_id(op)]
        for path, verb, operation in rest:
            self._rest(path, verb, operation)

    def _service(self, name: str) -> None:
        if name not in self.services:
            self.services.append(name)

    def _add(self, name: str, service: str) -> _Method:
        # The same RPC may be documented twice (a REST route and its Connect
        # path); an operation that names no service joins the one it matches.
        same = [
            m
            for m in self.methods
            if m.name == name and (not service or m.service in (service, ""))
        ]
        if len(same) == 1:
            same[0].service = same[0].service or service
            return same[0]
        method = _Method(name, service)
        self.methods.append(method)
        return method

    def _rest(self, path: str, verb: str, operation: dict[str, Any]) -> None:
        name: str = operation["operationId"]
        service = ""
        # Two services' operations that share a name are qualified: pkg_v1_Service_Name.
        for candidate in self.services:
            prefix = candidate.replace(".", "_") + "_"
            if name.startswith(prefix):
                service, name = candidate, name.removeprefix(prefix)
        method = self._add(name, service)
        method.rest = HttpBinding(verb, path, body="*" if "requestBody" in operation else None)
        method.operation = operation

    def find(self, name: str) -> _Method:
        """A method by RPC name or qualified name; a coded error when the document has none."""
        service, _, short = name.rpartition("/")
        found = [m for m in self.methods if m.name == short and m.service in (service, "")]
        if not service:
            found = [m for m in self.methods if m.name == short]
        if not found:
            known = ", ".join(sorted({m.name for m in self.methods}))
            raise Error(Code.UNIMPLEMENTED, f"the server has no method {name!r}; it has: {known}")
        if len(found) > 1:
            choices = ", ".join(f"{m.service}/{m.name}" for m in found)
            raise Error(Code.INVALID_ARGUMENT, f"{name} is ambiguous: call one of {choices}")
        method = found[0]
        if service:
            return _Method(method.name, service, method.rest, method.operation)
        return method

    def service_of(self, method: _Method) -> str:
        if method.service:
            return method.service
        if len(self.services) == 1:
            return self.services[0]
        message = (
            f"the document does not say which service {method.name} belongs to; "
            f"call it as SERVICE/{method.name}"
        )
        if self.services:
            message += f" (one of {', '.join(self.services)})"
        raise Error(Code.INVALID_ARGUMENT, message)

    def binding(self, method: _Method, message: Mapping[str, Any]) -> HttpBinding:
        """The REST binding, with the body the message's keys imply.

        A document says which keys are path and query parameters; what is
        left is the body: the whole rest (``body="*"``) when those keys are
        properties of the body's schema, else the one remaining key's value
        (a create's ``product``).
        """
        if method.rest is None:
            raise Error(
                Code.UNIMPLEMENTED,
                f"{method.name} has no REST route: call it with --protocol connect or jsonrpc",
            )
        if method.rest.body is None:
            return method.rest
        parameters = {
            p.get("name")
            for p in method.operation.get("parameters") or []
            if isinstance(p, dict) and p.get("in") in ("path", "query")
        }
        rest = [k for k in message if k not in parameters]
        properties = self._properties(method.operation)
        if len(rest) == 1 and rest[0] not in properties:
            return HttpBinding(method.rest.verb, method.rest.path, body=rest[0])
        return method.rest

    def _properties(self, operation: dict[str, Any]) -> set[str]:
        try:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            while "$ref" in schema:
                schema = self.document["components"]["schemas"][schema["$ref"].split("/")[-1]]
        except (KeyError, TypeError, AttributeError):
            return set()
        properties = schema.get("properties") if isinstance(schema, dict) else None
        return set(properties) if isinstance(properties, dict) else set()

    def listing(self) -> list[str]:
        """One line per method: RPC name, REST route, service."""
        rows = []
        for method in sorted(self.methods, key=lambda m: (m.name, m.service)):
            route = f"{method.rest.verb} {method.rest.path}" if method.rest else "-"
            service = method.service or (self.services[0] if len(self.services) == 1 else "")
            rows.append((method.name, route, service))
        widths = [max(len(r[i]) for r in rows) for i in (0, 1)] if rows else [0, 0]
        return [f"{n.ljust(widths[0])}  {r.ljust(widths[1])}  {s}".rstrip() for n, r, s in rows]


def _has_id(operation: object) -> bool:
    return isinstance(operation, dict) and isinstance(operation.get("operationId"), str)


def run(
    url: str,
    method: str | None,
    message: str = "{}",
    *,
    protocol: str = "connect",
    headers: Sequence[str] = (),
    timeout: float | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``twofold call``; the exit status (0, 2 for bad arguments, or :func:`exit_status`)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        extra = _headers(headers)
        payload = _message(message)
        if protocol not in PROTOCOLS:  # refused before any network
            # The binary wires need the message types, which an OpenAPI document lacks.
            raise ValueError(f"unknown protocol {protocol!r}; use {', '.join(PROTOCOLS)}")
        base_url(url)
    except ValueError as exc:
        stderr.write(f"twofold call: error: {exc}\n")
        return USAGE_ERROR
    # One connection pool (and one TLS context) for the document and the call.
    shared = httpx.HTTPTransport()
    try:
        document = HttpTransport(url, max_response_size=MAX_DOCUMENT_SIZE, transport=shared)
        catalog = Catalog(_document(document, extra, timeout))
        if method is None:
            stdout.write("".join(f"{line}\n" for line in catalog.listing()))
            return 0
        found = catalog.find(method)
        # JSON-RPC servers resolve a bare RPC name themselves: no service needed.
        service = found.service if protocol == "jsonrpc" else catalog.service_of(found)
        http = catalog.binding(found, payload) if protocol == "rest" else None
        rpc: Rpc[dict[str, Any], dict[str, Any]] = Rpc(service, found.name, dict, dict, http=http)
        stub = Stub(
            [rpc],
            url,
            protocol=protocol,
            timeout=timeout,
            retry=None,
            headers=extra,
            transport=shared,
        )
        output = stub.invoke(rpc, payload)
    except Error as exc:
        stderr.write(_pretty(_error_document(exc)))
        return exit_status(exc.code)
    finally:
        shared.close()
    stdout.write(_pretty(output))
    return 0


def _headers(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"a header is 'Name: value', got {value!r}")
        out[name.strip().lower()] = text.strip()
    return out


def _message(text: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(text or "{}")
    except msgspec.DecodeError as exc:
        raise ValueError(f"the message is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("the message must be a JSON object")
    return value


def _document(
    transport: HttpTransport, headers: dict[str, str], timeout: float | None
) -> dict[str, Any]:
    deadline = None if timeout is None else time.monotonic() + timeout
    request = HttpRequest("GET", "/openapi.json", {"accept": "application/json", **headers})
    try:
        response = transport.send(request, deadline)
    except Failure as failure:
        raise failure.error from None
    if response.status != 200:
        raise Error(
            Code.UNIMPLEMENTED if response.status == 404 else Code.UNKNOWN,
            f"GET /openapi.json answered {response.status}: is this a Twofold server?",
        )
    try:
        document = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        document = None
    if not isinstance(document, dict):
        raise Error(Code.UNKNOWN, "/openapi.json is not a JSON object: is this a Twofold server?")
    return document


def _error_document(error: Error) -> dict[str, Any]:
    doc: dict[str, Any] = {"code": error.code.wire_name, "message": error.message}
    if error.details:
        doc["details"] = [{"type": d.TYPE_NAME, **d.to_json()} for d in error.details]
    return doc


def _pretty(value: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n"
