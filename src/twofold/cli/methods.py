"""What ``twofold call`` knows of a server's methods, from one of three sources.

:class:`Documented` reads the server's ``/openapi.json`` (JSON wires only);
:class:`Declared` is the app's own definition (``--app MODULE:ATTR``), typed;
:class:`~twofold.cli.reflection.Reflected` is gRPC server reflection. Each
finds a method by name (naming the near ones when there is none), turns the
user's JSON into the message the client's calls send, and an answer back.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from twofold.client.codecs import Codecs
from twofold.client.rpc import Rpc
from twofold.core.code import Code
from twofold.core.definition import Service
from twofold.core.errors import Error
from twofold.core.method import HttpBinding, StreamKind
from twofold.protobuf import json as protojson

_CONNECT_PATH = re.compile(r"^/([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)/([A-Za-z_]\w*)$")
_SERVICE_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
EVENT_STREAM = "text/event-stream"
KIND_NAMES = {
    StreamKind.UNARY: "unary",
    StreamKind.SERVER: "server-stream",
    StreamKind.CLIENT: "client-stream",
    StreamKind.BIDI: "bidi-stream",
}


class UnknownMethod(LookupError):
    """The user named a method the server does not have: a usage error."""


def unknown(name: str, known: Iterable[str], hint: str = "") -> UnknownMethod:
    """The error for ``name``, naming the methods it was probably meant to be."""
    short = name.rpartition("/")[2]
    names = sorted(set(known))
    close = difflib.get_close_matches(short, names, n=5, cutoff=0.5)
    text = f"no method {name!r}"
    if close:
        text += f"; did you mean {', '.join(close)}?"
    else:
        text += "; leave METHOD out to list the methods"
    return UnknownMethod(text + hint)


def lookup(rpcs: Sequence[Rpc[Any, Any]], name: str, hint: str = "") -> Rpc[Any, Any]:
    """By ``GetProduct``, ``pkg.Service/GetProduct`` or ``pkg.Service.GetProduct``."""
    service, _, short = name.rpartition("/")
    if not service and name.count(".") >= 2:
        service, _, short = name.rpartition(".")
    found = [r for r in rpcs if r.name == short and service in ("", r.service)]
    if not found:
        raise unknown(name, [r.name for r in rpcs], hint)
    if len(found) > 1:
        choices = ", ".join(r.full_name for r in found)
        raise UnknownMethod(f"{name} is ambiguous: call one of {choices}")
    return found[0]


class Methods:
    """The methods of one source, and how their messages look on the command line."""

    rpcs: list[Rpc[Any, Any]]
    codecs: Codecs

    def find(self, name: str) -> Rpc[Any, Any]:
        return lookup(self.rpcs, name)

    def listing(self) -> list[str]:
        """One line per method: RPC name, streaming kind, service."""
        rows = [(r.name, KIND_NAMES[r.kind], r.service) for r in self.rpcs]
        return _table(sorted(rows))

    def bound(self, rpc: Rpc[Any, Any], protocol: str, message: Any) -> Rpc[Any, Any]:
        """The Rpc to call ``message`` with over ``protocol``."""
        return rpc

    def message(self, rpc: Rpc[Any, Any], value: Any) -> Any:
        """The user's JSON value as the message the calls send."""
        return value

    def output(self, rpc: Rpc[Any, Any], value: Any) -> Any:
        """An answer as JSON to print."""
        return value


def _table(rows: Sequence[tuple[str, str, str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in (0, 1)] if rows else [0, 0]
    return [f"{a.ljust(widths[0])}  {b.ljust(widths[1])}  {c}".rstrip() for a, b, c in rows]


class Declared(Methods):
    """The app's own methods (``--app MODULE:ATTR``): typed messages, every wire.

    The user's JSON is read with the proto3 JSON mapping (original or
    lowerCamelCase names, int64 as string or number), as Connect's server
    reads it, and an answer is printed that way whatever the wire.
    """

    def __init__(self, services: Sequence[Service]) -> None:
        self.rpcs = [Rpc.from_method(m) for s in services for m in s.methods.values()]
        self.codecs = Codecs(self.rpcs, list(services))

    def message(self, rpc: Rpc[Any, Any], value: Any) -> Any:
        return protojson.codec(rpc.input_type).decode(value)

    def output(self, rpc: Rpc[Any, Any], value: Any) -> Any:
        return msgspec.json.decode(protojson.codec(rpc.output_type).encode(value))


@dataclass
class _Method:
    """What the document says about one RPC."""

    name: str
    service: str = ""
    rest: HttpBinding | None = None
    operation: dict[str, Any] = field(default_factory=dict)
    kind: StreamKind = StreamKind.UNARY


# A method the document cannot show: client and bidi streams have neither a
# REST route nor a documented Connect path.
_UNDOCUMENTED = (
    " (client and bidi streams are not in /openapi.json:"
    " find them with --reflect HOST:PORT or --app MODULE:ATTR)"
)


class Documented(Methods):
    """The methods of a server's OpenAPI document, called with JSON as it is typed."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.catalog = Catalog(document)
        self.codecs = Codecs([], [])
        self.rpcs = [
            Rpc(m.service, m.name, dict, dict, http=m.rest, kind=m.kind)
            for m in self.catalog.methods
        ]

    def find(self, name: str) -> Rpc[Any, Any]:
        method = self.catalog.find(name)
        return Rpc(method.service, method.name, dict, dict, http=method.rest, kind=method.kind)

    def listing(self) -> list[str]:
        return self.catalog.listing()

    def bound(self, rpc: Rpc[Any, Any], protocol: str, message: Any) -> Rpc[Any, Any]:
        method = self.catalog.find(rpc.full_name if rpc.service else rpc.name)
        # JSON-RPC servers resolve a bare RPC name themselves: no service needed.
        service = rpc.service if protocol == "jsonrpc" else self.catalog.service_of(method)
        http = None
        if protocol == "rest":
            http = self.catalog.binding(method, message if isinstance(message, dict) else {})
        return Rpc(service, rpc.name, dict, dict, http=http, kind=rpc.kind)


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
        if _streams(operation):
            method.kind = StreamKind.SERVER  # served over REST as Server-Sent Events

    def find(self, name: str) -> _Method:
        """A method by RPC name or qualified name; UnknownMethod when the document has none."""
        service, _, short = name.rpartition("/")
        found = [m for m in self.methods if m.name == short and m.service in (service, "")]
        if not service:
            found = [m for m in self.methods if m.name == short]
        if not found:
            raise unknown(name, [m.name for m in self.methods], _UNDOCUMENTED)
        if len(found) > 1:
            choices = ", ".join(f"{m.service}/{m.name}" for m in found)
            raise UnknownMethod(f"{name} is ambiguous: call one of {choices}")
        method = found[0]
        if service:
            return _Method(method.name, service, method.rest, method.operation, method.kind)
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
        raise UnknownMethod(message)

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
        return _table(rows)


def _has_id(operation: object) -> bool:
    return isinstance(operation, dict) and isinstance(operation.get("operationId"), str)


def _streams(operation: dict[str, Any]) -> bool:
    responses = operation.get("responses")
    if not isinstance(responses, dict):
        return False
    for status, response in responses.items():
        content = response.get("content") if isinstance(response, dict) else None
        if str(status).startswith("2") and isinstance(content, dict) and EVENT_STREAM in content:
            return True
    return False
