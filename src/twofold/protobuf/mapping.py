"""From msgspec types to protobuf: the type mapping (docs/protobuf.md), one table."""

from __future__ import annotations

import enum
import re
import typing
from collections.abc import Iterable
from typing import Annotated, Any

import msgspec
from msgspec import inspect as mi

from twofold.core import decimals, messages
from twofold.core.definition import DefinitionError, Service
from twofold.core.method import Empty
from twofold.core.naming import snake
from twofold.protobuf import model
from twofold.protobuf.model import EnumKind, Field, Kind, Label, MessageKind, Scalar
from twofold.protobuf.numbering import FieldNumber, Numbering, Wanted

_SEQUENCE = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)
_BYTES = (mi.BytesType, mi.ByteArrayType, mi.MemoryViewType)
_MESSAGE = (mi.StructType, mi.DataclassType)
_Meta: Any = msgspec.Meta
_VERSION = re.compile(r"v\d+((alpha|beta)\d*)?(p\d+(alpha|beta)\d*)?")
_ZERO: dict[str, Any] = {"int64": 0, "int32": 0, "double": 0.0, "bool": False, "string": ""}
_ZERO["bytes"] = b""
_INT32 = (-(2**31), 2**31 - 1)


def file_path(package: str) -> str:
    """``catalog.v1`` -> ``catalog/v1/catalog.proto``, the layout buf lint expects."""
    parts = package.split(".")
    name = next((p for p in reversed(parts) if not _VERSION.fullmatch(p)), parts[-1])
    return "/".join([*parts, f"{snake(name)}.proto"])


def value_name(enum_name: str, member: str) -> str:
    """``OrderStatus``, ``OPEN`` -> ``ORDER_STATUS_OPEN``.

    buf lint wants every value prefixed with the enum's name in UPPER_SNAKE
    (C++ scopes enum values beside the enum, not inside it).
    """
    prefix = snake(enum_name).upper() + "_"
    upper = member if member.isupper() else snake(member).upper()
    return upper if upper.startswith(prefix) else prefix + upper


def enum_value_names(cls: type[enum.Enum]) -> tuple[str, dict[enum.Enum, str]]:
    """The ``..._UNSPECIFIED`` name and each member's proto name (``ORDER_STATUS_OPEN``)."""
    names = {member: value_name(cls.__name__, member.name) for member in cls}
    return value_name(cls.__name__, "UNSPECIFIED"), names


class Builder:
    """Walks the methods of some services and builds the :class:`model.File` s.

    | Python                               | protobuf                                  |
    |--------------------------------------|-------------------------------------------|
    | ``int``                              | ``int64``; ``int32`` when Meta bounds fit |
    | ``float`` / ``str`` / ``bytes`` / ``bool`` | ``double`` / ``string`` / ``bytes`` / ``bool`` |
    | ``Decimal``, ``UUID``                | ``string`` (as in JSON)                   |
    | ``date``, ``time``                   | ``string`` (ISO 8601, as in JSON)         |
    | ``datetime``                         | ``google.protobuf.Timestamp``             |
    | ``Enum``                             | ``enum``, values ``ORDER_STATUS_OPEN``     |
    | ``list``/``set``/``tuple[T, ...]``   | ``repeated``                              |
    | ``dict[K, V]``                       | ``map<K, V>``                             |
    | ``T | None``, ``T | UnsetType``      | proto3 ``optional``                       |
    | Struct / dataclass                   | ``message``                               |
    | tagged union of Structs              | ``oneof``                                 |
    | :class:`twofold.Empty`               | ``google.protobuf.Empty``                 |

    A scalar whose Python default is not the proto3 zero value
    (``page_size: int = 20``) is ``optional`` too: with implicit presence an
    explicit 0 would be indistinguishable from "not sent", and would read as 20.
    """

    def __init__(self, services: Iterable[Service], numbering: Numbering) -> None:
        self.numbering = numbering
        self.files: dict[str, model.File] = {}
        self.messages: dict[type[Any], model.Message] = {}
        self.enums: dict[type[enum.Enum], model.Enum] = {}
        self.names: dict[str, object] = {}  # full name -> class or service that has it
        self._services = list(services)

    def build(self) -> list[model.File]:
        for service in self._services:
            self._claim(f"{service.package}.{service.name}", service)
        for service in self._services:
            file = self._file(service.package)
            rpcs = [
                model.Rpc(
                    method,
                    self._message_name(method.input_type, service.package),
                    self._message_name(method.output_type, service.package),
                )
                for method in service.methods.values()
            ]
            file.services.append(model.ServiceModel(service.name, service.description, rpcs))
        for file in self.files.values():
            file.imports = _imports(file, self)
        return list(self.files.values())

    def _file(self, package: str) -> model.File:
        if package not in self.files:
            self.files[package] = model.File(package, file_path(package))
        return self.files[package]

    def _claim(self, full_name: str, owner: object) -> None:
        other = self.names.setdefault(full_name, owner)
        if other is not owner:
            raise DefinitionError(
                f"protobuf: {_describe(other)} and {_describe(owner)} would both be "
                f"{full_name}; rename one (names must be unique in a package)"
            )

    # -- messages --------------------------------------------------------------

    def _message_name(self, cls: type[Any], package: str) -> str:
        if cls is Empty:
            return model.EMPTY
        found = self.messages.get(cls)
        if found is not None:
            return found.full_name
        node = mi.type_info(cls)
        if not isinstance(node, _MESSAGE):
            raise DefinitionError(f"protobuf: {cls!r} is not a Struct or dataclass — make it one")
        where = f"{cls.__module__}.{cls.__qualname__}"
        if getattr(node, "array_like", False):
            raise DefinitionError(
                f"protobuf: {where} is array_like, which has no protobuf form — "
                "drop array_like=True"
            )
        doc = _doc(cls)
        msg = model.Message(cls, cls.__name__, package, [], doc)
        msg.tag_field, msg.tag = getattr(node, "tag_field", None), getattr(node, "tag", None)
        self._claim(msg.full_name, cls)
        self.messages[cls] = msg  # before the fields: recursive types terminate
        raw = {f.name: f for f in messages.fields(cls)}
        fields: list[Field] = []
        explicit: dict[str, int | None] = {}
        for f in node.fields:
            made = self._fields(f, raw[f.name], package, f"{where}.{f.name}")
            number = _explicit(raw[f.name].type)
            if number is not None and len(made) > 1:
                raise DefinitionError(
                    f"{where}.{f.name}: a oneof's members cannot share a number — "
                    "give each its own FieldNumber"
                )
            for field in made:
                explicit[field.name] = number
                if any(x.name == field.name for x in fields):
                    raise DefinitionError(
                        f"protobuf: {where} has two fields named {field.name} — rename one"
                    )
                fields.append(field)
        numbers, entry = self.numbering.message(
            msg.full_name, [Wanted(f.name, f.type_text, explicit[f.name]) for f in fields]
        )
        for field in fields:
            field.number = numbers[field.name]
        msg.fields = _in_file_order(fields)
        msg.reserved = entry.reserved
        self._file(package).messages.append(msg)
        return msg.full_name

    def _fields(self, f: Any, raw: messages.Field, package: str, where: str) -> list[Field]:
        node, doc = _unwrap(f.type)
        members: list[Any] = [node]
        if isinstance(node, mi.UnionType):
            members = [_unwrap(t)[0] for t in node.types]
        nullable = any(isinstance(t, mi.NoneType) for t in members)
        members = [t for t in members if not isinstance(t, mi.NoneType)]
        unset = _has_unset(raw.type)
        has_default = not raw.required
        json_name = f.encode_name if f.encode_name != f.name else None
        common = {"key": f.encode_name, "has_default": has_default, "json_name": json_name}
        if len(members) > 1:
            if not all(isinstance(t, mi.StructType) and t.tag_field for t in members):
                raise DefinitionError(
                    f"protobuf: {where}: only a union of tagged Structs (a oneof) "
                    "or T | None maps to protobuf"
                )
            return [
                Field(
                    snake(t.cls.__name__),
                    kind=MessageKind(self._message_name(t.cls, package), t.cls),
                    label=Label.OPTIONAL,
                    oneof=f.name,
                    variant=t.cls,
                    nullable=nullable,
                    doc=doc,
                    **common,
                )
                for t in members
            ]
        if not members:
            raise DefinitionError(
                f"protobuf: {where}: None alone has no protobuf form — "
                "give the field a type (T | None)"
            )
        node = members[0]
        if isinstance(node, _SEQUENCE):
            kind = self._leaf(node.item_type, package, where)
            return [Field(f.name, kind=kind, label=Label.REPEATED, doc=doc, **common)]
        if isinstance(node, mi.DictType):
            key = self._leaf(node.key_type, package, where)
            if not isinstance(key, Scalar) or key.text or key.type in ("double", "bytes"):
                raise DefinitionError(
                    f"protobuf: {where}: map keys must be str, int or bool — "
                    "change the dict's key type"
                )
            value = self._leaf(node.value_type, package, where)
            return [Field(f.name, kind=value, label=Label.MAP, map_key=key, doc=doc, **common)]
        kind = self._leaf(node, package, where)
        label = Label.SINGULAR
        explicit_presence = nullable or unset or (has_default and not _is_zero(kind, raw))
        if isinstance(kind, MessageKind) or explicit_presence:
            label = Label.OPTIONAL
        return [Field(f.name, kind=kind, label=label, nullable=nullable, doc=doc, **common)]

    def _leaf(self, node: mi.Type, package: str, where: str) -> Kind:
        node, _ = _unwrap(node)
        if isinstance(node, mi.IntType):
            return Scalar("int32" if _is_int32(node) else "int64")
        if isinstance(node, mi.LiteralType):
            if all(isinstance(v, str) for v in node.values):
                return Scalar("string")
            ints = [v for v in node.values if isinstance(v, int) and not isinstance(v, bool)]
            if len(ints) == len(node.values):
                low, high = min(ints), max(ints)
                return Scalar("int32" if low >= _INT32[0] and high <= _INT32[1] else "int64")
        simple = _SIMPLE.get(type(node))
        if simple is not None:
            return simple
        if isinstance(node, mi.DateTimeType):
            return MessageKind(model.TIMESTAMP)
        if isinstance(node, mi.EnumType):
            return EnumKind(self._enum(node.cls, package), node.cls)
        if isinstance(node, _MESSAGE):
            return MessageKind(self._message_name(node.cls, package), node.cls)
        if isinstance(node, (mi.UnionType, *_SEQUENCE, mi.DictType)):
            raise DefinitionError(
                f"protobuf: {where}: a list, dict or union inside a list or dict has no "
                "protobuf form; wrap the inner value in a Struct"
            )
        raise DefinitionError(f"protobuf: {where}: {node!r} has no protobuf mapping")

    # -- enums -----------------------------------------------------------------

    def _enum(self, cls: type[enum.Enum], package: str) -> str:
        found = self.enums.get(cls)
        if found is not None:
            return found.full_name
        where = f"{cls.__module__}.{cls.__qualname__}"
        unspecified, names = enum_value_names(cls)
        by_value = all(isinstance(m.value, int) and not isinstance(m.value, bool) for m in cls)
        if by_value and not all(_INT32[0] <= m.value <= _INT32[1] for m in cls):
            raise DefinitionError(
                f"protobuf: {where}: enum values must fit int32 — use values in -2**31..2**31-1"
            )
        item = model.Enum(cls, cls.__name__, package, [], _doc(cls))
        self._claim(item.full_name, cls)
        wanted = [Wanted(m.name, explicit=m.value if by_value else None) for m in cls]
        numbers, entry = self.numbering.enum(item.full_name, wanted)
        values = [model.EnumValue(names[m], numbers[m.name], m) for m in cls]
        if 0 not in numbers.values():
            if unspecified in names.values():
                raise DefinitionError(f"protobuf: {where}: {unspecified} needs the value 0")
            values.append(model.EnumValue(unspecified, 0, None))
        item.values = sorted(values, key=lambda v: v.number)
        item.reserved = entry.reserved
        self.enums[cls] = item
        self._file(package).enums.append(item)
        return item.full_name


_SIMPLE: dict[type, Scalar] = {
    mi.FloatType: Scalar("double"),
    mi.StrType: Scalar("string"),
    mi.BoolType: Scalar("bool"),
    mi.DecimalType: Scalar("string", "decimal"),
    mi.UUIDType: Scalar("string", "str"),
    mi.DateType: Scalar("string", "iso"),
    mi.TimeType: Scalar("string", "iso"),
    **{t: Scalar("bytes") for t in _BYTES},
}


def _in_file_order(fields: list[Field]) -> list[Field]:
    """By number, a oneof's members together where its first member is."""
    out: list[Field] = []
    for field in sorted(fields, key=lambda x: x.number):
        if field.oneof is None:
            out.append(field)
        elif field not in out:
            out.extend(x for x in sorted(fields, key=lambda x: x.number) if x.oneof == field.oneof)
    return out


def _unwrap(node: mi.Type) -> tuple[mi.Type, str]:
    doc = ""
    bounds = ""
    while isinstance(node, mi.Metadata):
        extra = node.extra_json_schema or {}
        doc = doc or extra.get("description", "")
        # A Decimal is a proto string: its Bounds go in the comment, as the
        # pattern and the x- bounds go in its JSON Schema.
        bounds = bounds or (
            f"A decimal string matching {extra['pattern']}, {decimals.describe(extra)}."
            if decimals.describe(extra) and "pattern" in extra
            else ""
        )
        node = node.type
    return node, "\n".join(part for part in (doc, bounds) if part)


def _is_int32(node: mi.IntType) -> bool:
    # The one int32/int64 rule, as protojson and the OpenAPI document apply it.
    bounds = _Meta(ge=node.ge, gt=node.gt, le=node.le, lt=node.lt)
    return messages.is_int32(Annotated[int, bounds])


def _annotations(tp: Any) -> Iterable[Any]:
    """The Annotated metadata on ``tp`` and on its union members."""
    if typing.get_origin(tp) is Annotated:
        yield from tp.__metadata__
        tp = typing.get_args(tp)[0]
    for arg in typing.get_args(tp) if _is_union(tp) else ():
        if typing.get_origin(arg) is Annotated:
            yield from arg.__metadata__


def _is_union(tp: Any) -> bool:
    import types

    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _explicit(tp: Any) -> int | None:
    numbers = [m.number for m in _annotations(tp) if isinstance(m, FieldNumber)]
    return numbers[-1] if numbers else None


def _has_unset(tp: Any) -> bool:
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return _is_union(tp) and any(
        (typing.get_args(a)[0] if typing.get_origin(a) is Annotated else a) is msgspec.UnsetType
        for a in typing.get_args(tp)
    )


def _is_zero(kind: Kind, raw: messages.Field) -> bool:
    default = raw.default_factory() if raw.default is msgspec.NODEFAULT else raw.default
    if isinstance(kind, EnumKind):
        return isinstance(default, enum.Enum) and default.value == 0
    if isinstance(kind, Scalar) and not kind.text:
        zero = _ZERO[kind.type]
        return type(default) is type(zero) and bool(default == zero)
    return False


def _doc(cls: type[Any]) -> str:
    import inspect

    doc = vars(cls).get("__doc__")
    # defstruct copies Struct's docstring; dataclasses invent a signature.
    if not doc or any(doc is vars(base).get("__doc__") for base in cls.__mro__[1:]):
        return ""
    if doc.startswith(f"{cls.__name__}("):
        return ""
    return inspect.cleandoc(doc)


def _describe(owner: object) -> str:
    if isinstance(owner, Service):
        return f"service {owner.full_name}"
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}"
    return repr(owner)


def _imports(file: model.File, builder: Builder) -> list[str]:
    used: set[str] = set()
    for msg in file.messages:
        for field in msg.fields:
            if isinstance(field.kind, MessageKind | EnumKind):
                used.add(field.kind.full_name)
    for service in file.services:
        for rpc in service.rpcs:
            used.update((rpc.input, rpc.output))
    paths = set()
    for name in used:
        if name in model.WELL_KNOWN_FILES:
            paths.add(model.WELL_KNOWN_FILES[name])
            continue
        owner = builder.names[name]
        found = builder.messages.get(owner) or builder.enums.get(owner)  # type: ignore[call-overload]
        if found is not None and found.package != file.package:
            paths.add(builder.files[found.package].path)
    if any(rpc.method.http for s in file.services for rpc in s.rpcs):
        paths.add("google/api/annotations.proto")
    return sorted(paths)
