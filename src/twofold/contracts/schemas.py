"""JSON Schema for message types, as shared OpenAPI 3.1 components.

msgspec derives the schemas; this module adds the three things it cannot know.
First, a Decimal's ``pattern``: the rule every decoder holds it to
(:mod:`twofold.core.decimals`). Second, an integer's protobuf width: ``format:
int32`` or ``int64`` by the same rule as :func:`twofold.core.messages.is_int32`,
so OpenAPI, ``.proto`` and proto3 JSON agree. Third, the proto3 JSON variant
(``Product.ProtoJSON``) of every component that holds an int64, directly or
through a reference: Connect's JSON is proto3 JSON, which writes an int64 as
a *string* (a JavaScript number loses precision past 2**53) and reads a
string or a number. A document that said ``integer`` there would make a
response validator reject what the server really sends.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec
from msgspec import inspect as mi

from twofold.core import decimals
from twofold.core.messages import INT32_MAX, INT32_MIN

Schema = dict[str, Any]

REF_PREFIX = "#/components/schemas/"
PROTO_JSON = ".ProtoJSON"
# What proto3 JSON writes for an int64: optional minus, decimal digits.
INT64_PATTERN = "^-?[0-9]+$"

# JSON Schema 2020-12 keywords whose values are subschemas; every other
# keyword (enum, const, default, examples...) holds data and is left alone.
_ONE = (
    "items", "additionalProperties", "not", "contains", "propertyNames",
    "if", "then", "else", "unevaluatedItems", "unevaluatedProperties",
)  # fmt: skip
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_NAMED = ("properties", "patternProperties", "$defs", "dependentSchemas")


def ref(name: str) -> Schema:
    return {"$ref": REF_PREFIX + name}


def transform(schema: Any, fn: Callable[[Schema], Schema]) -> Any:
    """A copy of ``schema`` with ``fn`` applied to every subschema, innermost first."""
    if not isinstance(schema, dict):
        return schema  # a boolean schema
    out = dict(schema)
    for key in _ONE:
        if key in out:
            out[key] = transform(out[key], fn)
    for key in _MANY:
        if key in out:
            out[key] = [transform(s, fn) for s in out[key]]
    for key in _NAMED:
        if key in out:
            out[key] = {name: transform(s, fn) for name, s in out[key].items()}
    return fn(out)


def walk(schema: Any) -> Iterator[Schema]:
    """``schema`` and every subschema in it."""
    found: list[Schema] = []

    def collect(node: Schema) -> Schema:
        found.append(node)
        return node

    transform(schema, collect)
    return iter(found)


def integer_width(node: Schema) -> int | None:
    """32 or 64 for an integer schema, None for any other.

    The schema-side twin of :func:`twofold.core.messages.is_int32`: int32 exactly
    when both bounds are present and fit int32 (msgspec writes ``ge``/``gt``/
    ``le``/``lt`` as ``minimum``/``exclusiveMinimum``/``maximum``/
    ``exclusiveMaximum``).
    """
    kind = node.get("type")
    if kind != "integer" and not (isinstance(kind, list) and "integer" in kind):
        return None
    low = node.get("minimum")
    if low is None and node.get("exclusiveMinimum") is not None:
        low = node["exclusiveMinimum"] + 1
    high = node.get("maximum")
    if high is None and node.get("exclusiveMaximum") is not None:
        high = node["exclusiveMaximum"] - 1
    if low is not None and high is not None and low >= INT32_MIN and high <= INT32_MAX:
        return 32
    return 64


def _with_format(node: Schema) -> Schema:
    width = integer_width(node)
    if width is not None and "format" not in node:
        return {**node, "format": f"int{width}"}
    if node.get("format") == "decimal" and node.get("type") == "string" and "pattern" not in node:
        # What the server holds a Decimal to (twofold.core.decimals), where its
        # type gives no pattern of its own.
        return {**node, "pattern": decimals.PATTERN}
    return node


def _tidy(schema: Schema) -> Schema:
    # msgspec copies a Struct's docstring verbatim, indentation included.
    if isinstance(schema.get("description"), str):
        schema = {**schema, "description": inspect.cleandoc(schema["description"])}
    return schema


def references(obj: Any) -> Iterator[str]:
    """The component names ``obj`` (any part of a document) refers to, by
    ``$ref`` or by a discriminator's mapping."""
    if isinstance(obj, dict):
        target = obj.get("$ref")
        if isinstance(target, str) and target.startswith(REF_PREFIX):
            yield target.removeprefix(REF_PREFIX)
        discriminator = obj.get("discriminator")
        mapping = discriminator.get("mapping") if isinstance(discriminator, dict) else None
        for target in mapping.values() if isinstance(mapping, dict) else ():
            if isinstance(target, str) and target.startswith(REF_PREFIX):
                yield target.removeprefix(REF_PREFIX)
        for value in obj.values():
            yield from references(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from references(value)


def used(root: Any, components: dict[str, Schema]) -> dict[str, Schema]:
    """The components ``root`` needs, directly or through others, sorted by name."""
    names: set[str] = set()
    todo = list(references(root))
    while todo:
        name = todo.pop()
        if name not in names and name in components:
            names.add(name)
            todo.extend(references(components[name]))
    return {name: components[name] for name in sorted(names)}


def _retarget(target: str, variants: set[str]) -> str:
    name = target.removeprefix(REF_PREFIX)
    return target + PROTO_JSON if target.startswith(REF_PREFIX) and name in variants else target


def _proto_json_node(node: Schema, variants: set[str]) -> Schema:
    if "$ref" in node:
        node = {**node, "$ref": _retarget(node["$ref"], variants)}
    if "discriminator" in node and "mapping" in node["discriminator"]:
        mapping = {k: _retarget(v, variants) for k, v in node["discriminator"]["mapping"].items()}
        node = {**node, "discriminator": {**node["discriminator"], "mapping": mapping}}
    if integer_width(node) == 64:
        kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
        node = {**node, "type": [*kinds, "string"], "pattern": INT64_PATTERN}
    if node.get("additionalProperties") is False:
        # Connect ignores unknown fields (as connect-go does), for clients newer
        # than the server; REST refuses them.
        node = {k: v for k, v in node.items() if k != "additionalProperties"}
    return node


def _closed(schema: Schema) -> bool:
    return any(node.get("additionalProperties") is False for node in walk(schema))


def _int64(schema: Schema) -> bool:
    return any(integer_width(node) == 64 for node in walk(schema))


def _needing_variants(components: dict[str, Schema], enums: set[str]) -> set[str]:
    """Components holding an int64, an enum or a closed object (no unknown
    fields), directly or through the components they reference."""
    found = enums | {
        name for name, schema in components.items() if _int64(schema) or _closed(schema)
    }
    refs = {name: set(references(schema)) for name, schema in components.items()}
    grew = True
    while grew:
        grew = False
        for name in components:
            if name not in found and refs[name] & found:
                found.add(name)
                grew = True
    return found


def _enum_names(cls: Any) -> dict[Any, str]:
    from twofold.protobuf.mapping import enum_value_names

    return enum_value_names(cls)[1]


def _enum_classes(types: list[Any]) -> dict[str, Any]:
    """The enum classes reachable from ``types``, by class name (their component's)."""
    found: dict[str, Any] = {}
    seen: set[Any] = set()
    stack: list[Any] = list(mi.multi_type_info(types))
    while stack:
        node = stack.pop()
        if isinstance(node, mi.Metadata):
            stack.append(node.type)
        elif isinstance(node, mi.StructType | mi.DataclassType):
            if node.cls not in seen:
                seen.add(node.cls)
                stack.extend(f.type for f in node.fields)
        elif isinstance(node, mi.EnumType):
            found[node.cls.__name__] = node.cls
        elif isinstance(node, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
            stack.append(node.item_type)
        elif isinstance(node, mi.DictType):
            stack.extend((node.key_type, node.value_type))
        elif isinstance(node, mi.UnionType):
            stack.extend(node.types)
        elif isinstance(node, mi.TupleType):
            stack.extend(node.item_types)
    return found


def _check_names(types: list[Any]) -> None:
    # msgspec names a component after its class, or its module and qualified
    # name when two classes share a name; two with the same qualified name
    # would be one component, so say which.
    seen: dict[str, Any] = {}
    for tp in types:
        if isinstance(tp, type):
            name = f"{tp.__module__}.{tp.__qualname__}"
            if seen.setdefault(name, tp) is not tp:
                raise ValueError(f"two message types are both named {name}: rename one")


class Schemas:
    """The schemas of a set of types, sharing one set of components."""

    def __init__(self, types: Iterable[Any]) -> None:
        # Types are compared by equality, not hashed: an Annotated Meta may
        # hold an unhashable ``extra`` dict.
        self._types: list[Any] = []
        for tp in types:
            if tp not in self._types:
                self._types.append(tp)
        _check_names(self._types)
        found, components = msgspec.json.schema_components(
            self._types, ref_template=REF_PREFIX + "{name}"
        )
        self._schemas = [transform(s, _with_format) for s in found]
        self.components: dict[str, Schema] = {
            name: _tidy(transform(s, _with_format)) for name, s in components.items()
        }
        # Enums: proto3 JSON names their values (ORDER_STATUS_OPEN).
        self.enums = {
            name: cls
            for name, cls in _enum_classes(self._types).items()
            if "enum" in self.components.get(name, {})
        }
        self.variants = _needing_variants(self.components, set(self.enums))

    def schema(self, tp: Any) -> Schema:
        """The schema of ``tp`` as msgspec's JSON (REST) writes it: often a ``$ref``."""
        return copy.deepcopy(self._schemas[self._types.index(tp)])

    def proto_json(self, tp: Any) -> Schema:
        """The schema of ``tp`` as proto3 JSON (Connect) writes it."""
        out: Schema = transform(self.schema(tp), self._proto_json_node)
        return out

    def _proto_json_node(self, node: Schema) -> Schema:
        return _proto_json_node(node, self.variants)

    def all(self) -> dict[str, Schema]:
        """Every component and proto3 JSON variant, sorted by name."""
        out = dict(self.components)
        for name in self.variants:
            variant = transform(self.components[name], self._proto_json_node)
            note = "As proto3 JSON (Connect) writes it: an int64 may be a string."
            if _closed(self.components[name]) and not _int64(self.components[name]):
                note = "As proto3 JSON (Connect) reads it: unknown fields are ignored."
            if name in self.enums:
                # Written as the proto name; the Python value is read too.
                names = list(_enum_names(self.enums[name]).values())
                variant["enum"] = names + [v for v in variant["enum"] if v not in names]
                if variant.get("type") != "string":
                    variant["type"] = ["string", "integer"]
                note = "As proto3 JSON (Connect) writes it: by its proto name."
            out[name + PROTO_JSON] = {
                # Viewers show titles as names: the two must not read the same.
                "title": name + PROTO_JSON,
                "description": f"{variant.pop('description', '')}\n\n{note}".lstrip(),
                **{k: v for k, v in variant.items() if k != "title"},
            }
        return dict(sorted(out.items()))
