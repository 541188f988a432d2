"""``FileDescriptorProto`` s and a ``DescriptorPool`` built from the model.

The descriptors are what ``protoc`` would produce from the exported
``.proto`` text (same field order, json names, synthetic oneofs for proto3
``optional``, map entry types), minus source comments. gRPC server
reflection serves them; the codec's upb message classes are built from the
pool.
"""

from __future__ import annotations

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    empty_pb2,
    timestamp_pb2,
)

from twofold.core.method import Idempotency
from twofold.core.naming import camel
from twofold.protobuf import model
from twofold.protobuf.mapping import value_name
from twofold.protobuf.model import EnumKind, Label, MessageKind, Scalar

_F = descriptor_pb2.FieldDescriptorProto
SCALAR_TYPES = {
    "int64": _F.TYPE_INT64,
    "int32": _F.TYPE_INT32,
    "double": _F.TYPE_DOUBLE,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
    "bool": _F.TYPE_BOOL,
}
_IDEMPOTENCY = {
    Idempotency.NO_SIDE_EFFECTS: descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
    Idempotency.IDEMPOTENT: descriptor_pb2.MethodOptions.IDEMPOTENT,
}
# What our files may import, in an order where each comes after its own imports.
DEPENDENCIES = (descriptor_pb2, http_pb2, annotations_pb2, timestamp_pb2, empty_pb2)


def file_descriptor(file: model.File) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name=file.path, package=file.package, syntax="proto3", dependency=file.imports
    )
    for msg in file.messages:
        proto.message_type.append(message_descriptor(msg))
    for item in file.enums:
        proto.enum_type.append(enum_descriptor(item))
    for service in file.services:
        proto.service.append(service_descriptor(service))
    return proto


def message_descriptor(msg: model.Message) -> descriptor_pb2.DescriptorProto:
    proto = descriptor_pb2.DescriptorProto(name=msg.name)
    oneofs = list(dict.fromkeys(f.oneof for f in msg.fields if f.oneof))
    proto.oneof_decl.extend(descriptor_pb2.OneofDescriptorProto(name=o) for o in oneofs)
    synthetic: list[str] = []
    for field in msg.fields:
        fp = proto.field.add(name=field.name, number=field.number)
        fp.json_name = field.json_name or camel(field.name)
        fp.label = _F.LABEL_OPTIONAL
        if field.label in (Label.REPEATED, Label.MAP):
            fp.label = _F.LABEL_REPEATED
        if field.label is Label.MAP:
            entry = _map_entry(field)
            proto.nested_type.append(entry)
            fp.type = _F.TYPE_MESSAGE
            fp.type_name = f".{msg.full_name}.{entry.name}"
        else:
            _set_type(fp, field.kind)
        if field.oneof:
            fp.oneof_index = oneofs.index(field.oneof)
        elif field.label is Label.OPTIONAL and not isinstance(field.kind, MessageKind):
            # proto3 `optional`: a synthetic oneof per field, after the real ones.
            fp.proto3_optional = True
            synthetic.append(field.name)
    for name in synthetic:
        index = len(proto.oneof_decl)
        proto.oneof_decl.add(name=_synthetic_name(name, proto))
        next(f for f in proto.field if f.name == name).oneof_index = index
    for number in sorted(msg.reserved.values()):
        proto.reserved_range.add(start=number, end=number + 1)
    proto.reserved_name.extend(sorted(msg.reserved))
    return proto


def _synthetic_name(field: str, proto: descriptor_pb2.DescriptorProto) -> str:
    # protoc's rule: "_" + name, with more "_" prefixed while it clashes.
    taken = {f.name for f in proto.field} | {o.name for o in proto.oneof_decl}
    name = "_" + field
    while name in taken:
        name = "_" + name
    return name


def map_entry_name(field: str) -> str:
    """protoc's name for a map field's entry type: ``tags_by_id`` -> ``TagsByIdEntry``."""
    out, upper = [], True
    for ch in field:
        if ch == "_":
            upper = True
        else:
            out.append(ch.upper() if upper else ch)
            upper = False
    return "".join(out) + "Entry"


def _map_entry(field: model.Field) -> descriptor_pb2.DescriptorProto:
    assert field.map_key is not None
    entry = descriptor_pb2.DescriptorProto(name=map_entry_name(field.name))
    entry.options.map_entry = True
    key = entry.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, json_name="key")
    _set_type(key, field.map_key)
    value = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL, json_name="value")
    _set_type(value, field.kind)
    return entry


def _set_type(fp: descriptor_pb2.FieldDescriptorProto, kind: model.Kind) -> None:
    if isinstance(kind, Scalar):
        fp.type = SCALAR_TYPES[kind.type]
    elif isinstance(kind, EnumKind):
        fp.type, fp.type_name = _F.TYPE_ENUM, f".{kind.full_name}"
    else:
        fp.type, fp.type_name = _F.TYPE_MESSAGE, f".{kind.full_name}"


def enum_descriptor(item: model.Enum) -> descriptor_pb2.EnumDescriptorProto:
    proto = descriptor_pb2.EnumDescriptorProto(name=item.name)
    for value in item.values:
        proto.value.add(name=value.name, number=value.number)
    for number in sorted(item.reserved.values()):
        # Enum reserved ranges are inclusive, unlike a message's.
        proto.reserved_range.add(start=number, end=number)
    proto.reserved_name.extend(sorted(reserved_value_names(item)))
    return proto


def reserved_value_names(item: model.Enum) -> list[str]:
    """The proto names of removed members (``ORDER_STATUS_SHIPPED``)."""
    return [value_name(item.name, member) for member in item.reserved]


def service_descriptor(service: model.ServiceModel) -> descriptor_pb2.ServiceDescriptorProto:
    proto = descriptor_pb2.ServiceDescriptorProto(name=service.name)
    for rpc in service.rpcs:
        method = rpc.method
        mp = proto.method.add(
            name=method.name, input_type=f".{rpc.input}", output_type=f".{rpc.output}"
        )
        kind = method.kind.value
        if kind in ("client", "bidi"):
            mp.client_streaming = True
        if kind in ("server", "bidi"):
            mp.server_streaming = True
        if method.idempotency in _IDEMPOTENCY:
            mp.options.idempotency_level = _IDEMPOTENCY[method.idempotency]
        rule = http_rule(rpc)
        if rule is not None:
            mp.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    return proto


def http_rule(rpc: model.Rpc) -> http_pb2.HttpRule | None:
    binding = rpc.method.http
    if binding is None:
        return None
    rule = http_pb2.HttpRule()
    verb = binding.verb.lower()
    if verb in ("get", "put", "post", "delete", "patch"):
        setattr(rule, verb, binding.path)
    else:
        rule.custom.kind, rule.custom.path = binding.verb, binding.path
    if binding.body is not None:
        rule.body = binding.body
    return rule


def pool(files: list[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """A fresh pool holding ``files`` and what they import: no clash with the default pool."""
    found = descriptor_pool.DescriptorPool()
    for module in DEPENDENCIES:
        dep = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(dep)
        found.Add(dep)
    for proto in files:
        found.Add(proto)
    return found
