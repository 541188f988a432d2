"""HTTP request -> request message -> HTTP response, per google.api.http (AIP-127).

The request message is built in three layers, later ones winning: the body
(the whole message for ``body: "*"``, one field for ``body: "field"``),
then the query string (only fields neither the path nor the body bind),
then the path variables. Every value goes through protobuf's own proto3 JSON
parser, so int64 as strings, enums by name or number, Timestamp, Duration,
FieldMask and wrappers read exactly as they do in a JSON body; a value that
does not parse, or a query parameter naming no field, is INVALID_ARGUMENT
with the field named in a violation.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast
from urllib.parse import parse_qsl

import msgspec
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from twofold.core.errors import Error
from twofold.gateway.descriptors import Schema
from twofold.gateway.rules import SCALAR_WKT, Route, field_at

_encode = msgspec.json.Encoder().encode
# json.loads raises RecursionError past Python's recursion limit: hostile nesting
# is the client's 400, never an INTERNAL of ours.
TOO_DEEP = "malformed JSON: nested too deeply"
_MAP_KEY = re.compile(r"([A-Za-z_][\w.]*)\[([^\]]*)\]").fullmatch
_T = FieldDescriptor
_SIGNED = frozenset({_T.TYPE_INT32, _T.TYPE_INT64, _T.TYPE_SINT32, _T.TYPE_SINT64,
                     _T.TYPE_SFIXED32, _T.TYPE_SFIXED64})  # fmt: skip
_UNSIGNED = frozenset({_T.TYPE_UINT32, _T.TYPE_UINT64, _T.TYPE_FIXED32, _T.TYPE_FIXED64})
_FLOATS = {_T.TYPE_FLOAT: 3.4028234663852886e38, _T.TYPE_DOUBLE: 1.7976931348623157e308}
_WKT_SIGNED = frozenset({"google.protobuf.Int32Value", "google.protobuf.Int64Value"})
_WKT_UNSIGNED = frozenset({"google.protobuf.UInt32Value", "google.protobuf.UInt64Value"})
_WKT_FLOATS = {
    "google.protobuf.FloatValue": _FLOATS[_T.TYPE_FLOAT],
    "google.protobuf.DoubleValue": _FLOATS[_T.TYPE_DOUBLE],
}
_INTEGER = re.compile(r"-?[0-9]+").fullmatch
_NATURAL = re.compile(r"[0-9]+").fullmatch
_NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})
# proto3 JSON's Duration: seconds with up to nine fractional digits, then "s".
# protobuf's Python parser also takes "1.5 s" and "+1s" and cuts a tenth digit
# off silently, so the text is checked before it is parsed.
_DURATION = re.compile(r"-?[0-9]+(\.[0-9]{1,9})?s").fullmatch
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})


def parse_json(schema: Schema, descriptor: Descriptor, raw: bytes | str, prefix: str = "") -> Any:
    """A message from proto3 JSON; unknown fields and wrong types are INVALID_ARGUMENT."""
    message = schema.message_class(descriptor)()
    try:
        value = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise Error.invalid(prefix, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise Error.invalid(prefix, TOO_DEEP) from None
    merge_dict(schema, message, value, prefix)
    return message


def merge_dict(schema: Schema, message: Message, value: Any, prefix: str = "") -> None:
    _object(_descriptor(message), value, "")
    try:
        json_format.ParseDict(value, message, descriptor_pool=schema.pool)
    except json_format.ParseError as exc:
        raise Error.invalid(prefix, str(exc)) from None
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:  # unwrapped oddities
        raise Error.invalid(prefix, f"cannot read the message: {exc}") from None


def _object(descriptor: Descriptor, value: Any, path: str) -> None:
    """Refuse a JSON value that is not an object where a message is expected.

    protobuf's Python parser reads a message by iterating over its JSON value,
    so an empty array or string passes as an empty message (``"author": []``
    reached the upstream as ``author {}``); proto3 JSON allows only an object
    (or null). The well-known types have JSON of their own and are left to it.
    """
    if descriptor.full_name == "google.protobuf.Duration" and isinstance(value, str):
        _duration(value, path)
    if descriptor.full_name.startswith("google.protobuf.") or value is None:
        return
    if not isinstance(value, dict):
        raise Error.invalid(path, f"expected a JSON object for {descriptor.full_name}")
    for key, item in value.items():
        field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key)
        nested = field.message_type if field is not None else None
        if field is None or nested is None or item is None:
            continue  # an unknown name or a scalar: the parser's to refuse
        inner = f"{path}.{key}" if path else key
        if nested.GetOptions().map_entry:
            values = nested.fields_by_name["value"].message_type
            if values is not None and isinstance(item, dict):
                for k, v in item.items():
                    _object(values, v, f"{inner}.{k}")
        elif field.is_repeated:
            for i, v in enumerate(item) if isinstance(item, list) else ():
                _object(nested, v, f"{inner}[{i}]")
        else:
            _object(nested, item, inner)


def _duration(text: str, name: str) -> None:
    if not _DURATION(text):
        raise Error.invalid(name, f"not a Duration (seconds, up to 9 decimals, then s): {text!r}")


def request_message(
    schema: Schema, route: Route, values: dict[str, str], query: bytes, body: bytes
) -> Message:
    """The upstream request for one REST call matched to ``route``."""
    descriptor = route.method.input_type
    message: Message = schema.message_class(descriptor)()
    patched: dict[str, Any] | None = None
    if route.body == "*":
        message = parse_json(schema, descriptor, body)
    elif route.body is not None and body.strip():
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Error.invalid(route.body, f"malformed JSON: {exc}") from None
        except RecursionError:
            raise Error.invalid(route.body, TOO_DEEP) from None
        merge_dict(schema, message, _nest(route.body, value), route.body)
        if route.verb == "PATCH" and isinstance(value, dict):
            patched = value
    bound = set(values)
    if route.body not in (None, "*"):
        bound.add(route.body)
    if query:
        if route.body == "*":
            # Every field comes from the body, so a parameter can name none.
            pairs = parse_qsl(query.decode("latin-1"))
            name = pairs[0][0] if pairs else ""
            raise Error.invalid(
                name, "every field of this method comes from the body, none from the query"
            )
        spelled: dict[str, str] = {}
        from_query = _query(descriptor, query.decode("latin-1"), bound, spelled)
        _merge(schema, message, from_query, spelled)
    if patched is not None and route.body is not None:
        _default_mask(message, route.body, patched)
    if values:
        layer: dict[str, Any] = {}
        for name, text in values.items():
            target = field_at(descriptor, name)
            assert target is not None  # checked when the route was built
            _set(layer, name, _scalar(target, text, name))
        _merge(schema, message, layer)
    return message


def _default_mask(message: Message, body: str, value: dict[str, Any]) -> None:
    """A PATCH with no ``update_mask`` updates the fields its body names, as
    grpc-gateway does: the mask is the body's field paths."""
    mask_field = _descriptor(message).fields_by_name.get("update_mask")
    target = field_at(_descriptor(message), body)
    if (
        mask_field is None
        or mask_field.message_type is None
        or mask_field.message_type.full_name != "google.protobuf.FieldMask"
        or target is None
        or target.message_type is None
        or cast(Any, message).update_mask.paths
    ):
        return
    cast(Any, message).update_mask.paths.extend(_paths(target.message_type, value, ""))


def _paths(descriptor: Descriptor, value: dict[str, Any], prefix: str) -> list[str]:
    out = []
    for key, item in value.items():
        f = descriptor.fields_by_name.get(key) or descriptor.fields_by_camelcase_name.get(key)
        if f is None:
            continue
        path = f"{prefix}{f.name}"
        nested = f.message_type
        if (
            isinstance(item, dict)
            and nested is not None
            and not nested.GetOptions().map_entry
            and not nested.full_name.startswith("google.protobuf.")
        ):
            out.extend(_paths(nested, item, f"{path}."))
        else:
            out.append(path)
    return out


def _merge(
    schema: Schema, message: Message, layer: dict[str, Any], spelled: dict[str, str] | None = None
) -> None:
    """Parse one layer on its own, then merge it: set fields overwrite, repeated ones append."""
    part = schema.message_class(_descriptor(message))()
    for name in layer:
        # Parse per top-level field, so the violation names the field at fault.
        try:
            json_format.ParseDict({name: layer[name]}, part, descriptor_pool=schema.pool)
        except json_format.ParseError as exc:
            path = _first_path(name, layer[name])
            raise Error.invalid(_as_spelled(path, spelled or {}), str(exc)) from None
    message.MergeFrom(part)


def _as_spelled(path: str, spelled: dict[str, str]) -> str:
    """A field path as the client named it (the longest named prefix, then the rest)."""
    head, rest = path, ""
    while head:
        if head in spelled:
            return spelled[head] + rest
        head, dot, tail = head.rpartition(".")
        rest = f"{dot}{tail}{rest}"
    return path


def _first_path(name: str, value: Any) -> str:
    while isinstance(value, dict) and len(value) == 1:
        key, value = next(iter(value.items()))
        name = f"{name}.{key}"
    return name


def _query(
    descriptor: Descriptor, text: str, bound: set[str], spelled: dict[str, str]
) -> dict[str, Any]:
    """The query's fields as a JSON layer; ``spelled`` learns each field path's
    name as the client wrote it, for violations."""
    layer: dict[str, Any] = {}
    seen: set[str] = set()
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        raise Error.invalid("", "the query string is not UTF-8") from None
    for key, text_value in pairs:
        name, map_key = key, None
        found = _MAP_KEY(key)
        if found is not None:
            # grpc-gateway's form for a map entry: ?labels[colour]=red
            name, map_key = found.group(1), found.group(2)
        path = _proto_path(descriptor, name)
        target = field_at(descriptor, path) if path else None
        if target is None or path in bound or any(path.startswith(b + ".") for b in bound):
            raise Error.invalid(key, "no field of the request is bound to this query parameter")
        nested = target.message_type
        entry = nested if nested is not None and nested.GetOptions().map_entry else None
        if entry is not None:
            value_field = entry.fields_by_name["value"]
            if map_key is None or (
                value_field.message_type is not None
                and value_field.message_type.full_name not in SCALAR_WKT
            ):
                raise Error.invalid(key, "a map of scalars is set as name[key]=value")
            entries = _container(layer, path)
            if map_key in entries:
                raise Error.invalid(key, "given more than once, for one key of a map")
            entries[map_key] = _scalar(value_field, text_value, f"{name}.{map_key}")
            spelled[path] = name
            continue
        if map_key is not None:
            raise Error.invalid(key, "name[key]=value sets a map field; this is none")
        if nested is not None and nested.full_name not in SCALAR_WKT:
            raise Error.invalid(key, "a message field cannot be set from the query")
        value = _scalar(target, text_value, key)
        spelled[path] = key
        if target.is_repeated:
            _append(layer, path, value)
        else:
            if path in seen:
                raise Error.invalid(key, "given more than once, for a field that is not repeated")
            seen.add(path)
            _set(layer, path, value)
    return layer


def _container(layer: dict[str, Any], path: str) -> dict[str, Any]:
    for part in path.split("."):
        layer = layer.setdefault(part, {})
    return layer


def _proto_path(descriptor: Descriptor, key: str) -> str:
    """Each part of a parameter name by its proto name or its JSON (lowerCamel) name."""
    parts = []
    current: Descriptor | None = descriptor
    for part in key.split("."):
        if current is None:
            return ""
        found = current.fields_by_name.get(part) or current.fields_by_camelcase_name.get(part)
        if found is None:
            return ""
        parts.append(found.name)
        current = found.message_type
    return ".".join(parts)


def _scalar(target: FieldDescriptor, text: str, name: str) -> Any:
    """A path or query string as the JSON value the field's parser expects."""
    wkt = target.message_type.full_name if target.message_type is not None else ""
    if target.type == FieldDescriptor.TYPE_BOOL or wkt == "google.protobuf.BoolValue":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise Error.invalid(name, f"not a boolean: {text!r}")
    # Numbers stay strings: proto3 JSON reads int64 (and every number) from a
    # string. But its parser also takes "1e2" and "1.0" for an integer and
    # rounds "1e40" to a float's infinity, which a JSON body may say and a URL
    # should not: /v1/shelves/1.0 is no second name for shelf 1. As
    # grpc-gateway and Envoy read URLs: integers in decimal digits, and a float
    # that does not fit its type is out of range.
    if wkt == "google.protobuf.Duration":
        _duration(text, name)
    elif target.type in _SIGNED or wkt in _WKT_SIGNED:
        if not _INTEGER(text):
            raise Error.invalid(name, f"not an integer: {text!r}")
    elif target.type in _UNSIGNED or wkt in _WKT_UNSIGNED:
        if not _NATURAL(text):
            raise Error.invalid(name, f"not an unsigned integer: {text!r}")
    else:
        limit = _FLOATS.get(target.type) or _WKT_FLOATS.get(wkt)
        if limit is not None and text not in _NON_FINITE:
            try:
                number = float(text)
            except ValueError:
                raise Error.invalid(name, f"not a number: {text!r}") from None
            if abs(number) > limit:
                raise Error.invalid(name, f"out of range: {text!r}")
    return text


def _nest(path: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _set(out, path, value)
    return out


def _set(layer: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        layer = layer.setdefault(p, {})
    layer[last] = value


def _append(layer: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        layer = layer.setdefault(p, {})
    layer.setdefault(last, []).append(value)


def response_json(schema: Schema, route: Route | None, message: Message, emit: bool) -> bytes:
    """The response body: the whole message, or its ``response_body`` field, as proto3 JSON."""
    field = route.response_body if route is not None else ""
    doc = json_format.MessageToDict(
        message,
        descriptor_pool=schema.pool,
        always_print_fields_with_no_presence=emit or bool(field),
    )
    if field:
        target = field_at(_descriptor(message), field)
        assert target is not None
        value: Any = doc.get(target.json_name)
        if value is None:
            value = [] if target.is_repeated else {}
        return _encode(value)
    return _encode(doc)


def _descriptor(message: Message) -> Descriptor:
    # The stubs type DESCRIPTOR as the union of the pure-Python and upb classes.
    return cast(Descriptor, message.DESCRIPTOR)
