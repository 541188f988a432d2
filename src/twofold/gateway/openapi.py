"""OpenAPI 3.1 from the upstream's descriptors: every route, every message as a schema.

Schemas follow the proto3 JSON mapping (lowerCamelCase names, 64-bit
integers as strings, enums by name, the well-known types as their JSON
forms). Proto comments become descriptions; google.api.field_behavior
REQUIRED and OUTPUT_ONLY become ``required`` and ``readOnly``. Methods with
no HTTP rule appear at their Connect path, as a POST of JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from google.api import field_behavior_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from twofold.gateway.descriptors import Schema
from twofold.gateway.rules import Route, field_at

if TYPE_CHECKING:
    from twofold.gateway.app import GatewayOptions

F = FieldDescriptor
_INT32 = {F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32, F.TYPE_UINT32, F.TYPE_FIXED32}
_INT64 = {F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64, F.TYPE_UINT64, F.TYPE_FIXED64}
_WKT: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string", "description": "field paths, comma-separated"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "contentEncoding": "base64"},
    "google.protobuf.DoubleValue": {"type": ["number", "null"]},
    "google.protobuf.FloatValue": {"type": ["number", "null"]},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.Int64Value": {"type": ["string", "null"], "format": "int64"},
    "google.protobuf.UInt64Value": {"type": ["string", "null"], "format": "int64"},
}
PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {"type": "string"},
        "violations": {"type": "array", "items": {"type": "object"}},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}


class _Builder:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.components: dict[str, Any] = {}
        self.comments: dict[tuple[str, str], str] = {}
        for proto in schema.files.values():
            self._index(proto)

    def _index(self, proto: descriptor_pb2.FileDescriptorProto) -> None:
        """Comments by (kind, full name), from source_code_info's paths."""
        where: dict[tuple[int, ...], tuple[str, str]] = {}
        prefix = f"{proto.package}." if proto.package else ""

        def messages(items: Iterable[Any], path: tuple[int, ...], scope: str) -> None:
            for i, m in enumerate(items):
                name = f"{scope}{m.name}"
                where[(*path, i)] = ("message", name)
                for j, f in enumerate(m.field):
                    where[(*path, i, 2, j)] = ("field", f"{name}.{f.name}")
                messages(m.nested_type, (*path, i, 3), f"{name}.")

        messages(proto.message_type, (4,), prefix)
        for i, s in enumerate(proto.service):
            for j, m in enumerate(s.method):
                where[(6, i, 2, j)] = ("method", f"{prefix}{s.name}.{m.name}")
        for loc in proto.source_code_info.location:
            key = where.get(tuple(loc.path))
            text = loc.leading_comments or loc.trailing_comments
            if key and text.strip():
                self.comments[key] = "\n".join(line.strip() for line in text.strip().splitlines())

    def ref(self, message: Descriptor) -> dict[str, Any]:
        if message.full_name in _WKT:
            return dict(_WKT[message.full_name])
        name = message.full_name
        if name not in self.components:
            self.components[name] = {}  # placed first: recursive messages end here
            self.components[name] = self._message(message)
        return {"$ref": f"#/components/schemas/{name}"}

    def _message(self, message: Descriptor) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        for f in message.fields:
            schema = self.field(f)
            behaviour = self._behaviour(message, f)
            if field_behavior_pb2.OUTPUT_ONLY in behaviour:
                schema["readOnly"] = True
            if field_behavior_pb2.REQUIRED in behaviour:
                required.append(f.json_name)
            props[f.json_name] = schema
        out: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        text = self.comments.get(("message", message.full_name))
        if text:
            out["description"] = text
        return out

    def _behaviour(self, message: Descriptor, f: FieldDescriptor) -> list[int]:
        proto = self.schema.files.get(message.file.name)
        if proto is None:
            return []
        names = (
            message.full_name.removeprefix(f"{proto.package}.").split(".")
            if proto.package
            else message.full_name.split(".")
        )
        items: Any = proto.message_type
        found: Any = None
        for n in names:
            found = next((m for m in items if m.name == n), None)
            if found is None:
                return []
            items = found.nested_type
        for fp in found.field:
            if fp.name == f.name:
                return list(fp.options.Extensions[field_behavior_pb2.field_behavior])
        return []

    def field(self, f: FieldDescriptor) -> dict[str, Any]:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value = f.message_type.fields_by_name["value"]
            out: dict[str, Any] = {"type": "object", "additionalProperties": self._single(value)}
        elif f.is_repeated:
            out = {"type": "array", "items": self._single(f)}
        else:
            out = self._single(f)
        owner = f.containing_type.full_name if f.containing_type is not None else ""
        text = self.comments.get(("field", f"{owner}.{f.name}"))
        if text:
            out["description"] = text
        return out

    def _single(self, f: FieldDescriptor) -> dict[str, Any]:
        if f.message_type is not None:
            return self.ref(f.message_type)
        if f.enum_type is not None:
            return _enum(f.enum_type)
        if f.type in _INT32:
            return {"type": "integer", "format": "int32"}
        if f.type in _INT64:
            # proto3 JSON writes 64-bit integers as strings; readers accept both.
            return {"type": ["string", "integer"], "format": "int64"}
        if f.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
            return {"type": "number"}
        if f.type == F.TYPE_BOOL:
            return {"type": "boolean"}
        if f.type == F.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        return {"type": "string"}


def _enum(enum: EnumDescriptor) -> dict[str, Any]:
    return {"type": "string", "enum": [v.name for v in enum.values]}


def document(schema: Schema, routes: list[Route], options: GatewayOptions) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway's routes."""
    b = _Builder(schema)
    paths: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for route in routes:
        m = route.method
        n = counts[m.full_name] = counts.get(m.full_name, 0) + 1
        op: dict[str, Any] = {
            "operationId": m.name if n == 1 else f"{m.name}{n}",
            "tags": [m.containing_service.full_name],
        }
        text = b.comments.get(("method", m.full_name))
        if text:
            op["summary"] = text.splitlines()[0]
            op["description"] = text
        params = [
            {
                "name": v.field,
                "in": "path",
                "required": True,
                "schema": b.field(_field(m.input_type, v.field)),
            }
            for v in route.template.variables
        ]
        bound = {v.field for v in route.template.variables}
        if route.body is None:
            for f in m.input_type.fields:
                if f.name in bound or (
                    f.message_type is not None and f.message_type.full_name not in _WKT
                ):
                    continue
                params.append({"name": f.json_name, "in": "query", "schema": b.field(f)})
        elif route.body != "*":
            target = field_at(m.input_type, route.body)
            assert target is not None
            op["requestBody"] = _json_body(b.field(target))
        else:
            op["requestBody"] = _json_body(b.ref(m.input_type))
        if params:
            op["parameters"] = params
        out_schema = (
            b.field(_field(m.output_type, route.response_body))
            if route.response_body
            else b.ref(m.output_type)
        )
        media = "text/event-stream" if route.streams else "application/json"
        op["responses"] = {
            "200": {"description": "OK", "content": {media: {"schema": out_schema}}},
            "default": {
                "description": "An error (RFC 9457)",
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            },
        }
        path = _openapi_path(route)
        paths.setdefault(path, {})[route.verb.lower()] = op
    routed = {r.method.full_name for r in routes}
    for m in schema.methods():
        if m.full_name in routed or m.client_streaming or m.server_streaming:
            continue
        paths[f"/{m.containing_service.full_name}/{m.name}"] = {
            "post": {
                "operationId": m.name,
                "tags": [m.containing_service.full_name],
                "description": "Connect unary call (application/json).",
                "requestBody": _json_body(b.ref(m.input_type)),
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": b.ref(m.output_type)}},
                    }
                },
            }
        }
    b.components["Problem"] = PROBLEM
    return {
        "openapi": "3.1.0",
        "info": {"title": options.title, "version": "0"},
        "paths": paths,
        "components": {"schemas": b.components},
    }


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _openapi_path(route: Route) -> str:
    """``/v1/{name=shelves/*}:get`` -> ``/v1/{name}:get``: OpenAPI has no patterns in paths."""
    return re.sub(r"\{([^=}]+)=[^}]*\}", r"{\1}", route.template.text)


def _field(message: Descriptor, dotted: str) -> FieldDescriptor:
    found = field_at(message, dotted)
    assert found is not None  # the route was checked when it was built
    return found
