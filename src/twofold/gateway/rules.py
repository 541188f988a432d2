"""The REST routes of the upstream's methods, read from their google.api.http options.

Each HttpRule and each of its ``additional_bindings`` is one :class:`Route`;
a request is matched against the routes of its verb in a fixed order
(custom verbs first, then more literal segments, ``**`` last), so that the
most specific template wins whatever order the .proto declared them in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor

from twofold.gateway.descriptors import Schema, SchemaError
from twofold.gateway.templates import PathTemplate, TemplateError

VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True, slots=True)
class Route:
    """One binding of one method: verb, template, and where the body goes."""

    method: MethodDescriptor
    verb: str  # upper case, as in the request line
    template: PathTemplate
    # None: no body; "*": the whole request message; else the request field it fills.
    body: str | None
    # "" : the whole response message; else the response field that is the body.
    response_body: str

    @property
    def streams(self) -> bool:
        return bool(self.method.server_streaming)


def rules(schema: Schema, method: MethodDescriptor) -> list[http_pb2.HttpRule]:
    options = schema.method_options(method)
    if not options.HasExtension(annotations_pb2.http):
        return []
    top = options.Extensions[annotations_pb2.http]
    return [top, *top.additional_bindings]


def routes(schema: Schema) -> list[Route]:
    """Every route of every fronted method, each checked against the messages."""
    out = []
    for method in schema.methods():
        for rule in rules(schema, method):
            out.append(_route(method, rule))
    return out


def _route(method: MethodDescriptor, rule: http_pb2.HttpRule) -> Route:
    where = f"{method.full_name}'s google.api.http"
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise SchemaError(f"{where} names no verb and path")
    if kind == "custom":
        verb, path = rule.custom.kind.upper(), rule.custom.path
    else:
        verb, path = kind.upper(), getattr(rule, kind)
    try:
        template = PathTemplate.parse(path)
    except TemplateError as exc:
        raise SchemaError(f"{where}: {exc}") from None
    if method.client_streaming:
        raise SchemaError(f"{where}: a client stream has no REST binding")
    request = method.input_type
    for var in template.variables:
        target = field_at(request, var.field)
        if target is None or (target.message_type is not None and not _scalar_wkt(target)):
            raise SchemaError(f"{where}: {path} binds {var.field}, no scalar field of the request")
        if _repeated(target):
            raise SchemaError(f"{where}: {path} binds {var.field}, a repeated field")
    body = rule.body or None
    if body not in (None, "*") and field_at(request, body) is None:
        raise SchemaError(f"{where}: body {body!r} is no field of {request.full_name}")
    response_body = rule.response_body
    if response_body and field_at(method.output_type, response_body) is None:
        raise SchemaError(f"{where}: response_body {response_body!r} is no field of the response")
    return Route(method, verb, template, body, response_body)


def _repeated(f: FieldDescriptor) -> bool:
    return f.is_repeated


def field_at(message: Descriptor, dotted: str) -> FieldDescriptor | None:
    """The field a dotted path names (``book.author.name``), or None."""
    found: FieldDescriptor | None = None
    current: Descriptor | None = message
    for part in dotted.split("."):
        if current is None:
            return None
        found = current.fields_by_name.get(part)
        if found is None:
            return None
        current = found.message_type
    return found


# Messages a path or query value may fill from one string, as their JSON form is a string or number.
SCALAR_WKT = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        *(
            f"google.protobuf.{n}Value"
            for n in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String")
        ),
        "google.protobuf.BytesValue",
    }
)


def _scalar_wkt(f: FieldDescriptor) -> bool:
    return f.message_type is not None and f.message_type.full_name in SCALAR_WKT


class Router:
    """Routes by verb, tried most specific first."""

    def __init__(self, found: Iterable[Route]) -> None:
        by_verb: dict[str, list[Route]] = defaultdict(list)
        for route in found:
            by_verb[route.verb].append(route)
        self.by_verb = {
            verb: sorted(
                rs,
                key=lambda r: (
                    r.template.verb is None,
                    r.template.deep,
                    -r.template.literals,
                    -len(r.template.variables),
                ),
            )
            for verb, rs in by_verb.items()
        }

    def match(self, verb: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.by_verb.get(verb, ()):
            values = route.template.match(raw_path)
            if values is not None:
                return route, values
        return None

    def allowed(self, raw_path: str) -> list[str]:
        """The verbs some route of this path answers (for 405's Allow)."""
        return sorted(
            verb
            for verb, rs in self.by_verb.items()
            if any(r.template.match(raw_path) is not None for r in rs)
        )
