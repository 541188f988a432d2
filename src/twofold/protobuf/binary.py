"""The protobuf binary codec of a message type: gRPC's, Connect's ``application/proto``.

Decoding is upb's parser (the C one google.protobuf ships) into a message
class built from our descriptors, then a generated function that reads its
fields into a dict, and ``msgspec.convert``: so every wire subtlety (packed
or not, merged repeats, unknown fields, bad UTF-8, truncation) is upb's, and
every constraint and error path is msgspec's, exactly as for JSON input.

Encoding is generated pure Python that writes the wire format straight from
the msgspec value, field by field in number order as upb does; for the small
messages an RPC carries it is faster than building a upb message first
(``python -m bench.protobuf`` measures both), and it produces the same bytes
(tests/unit/protobuf/test_protobuf_codec.py compares them with upb's).
"""

from __future__ import annotations

import datetime as dt
import keyword
import struct
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

import msgspec
from google.protobuf.message import DecodeError

from twofold.core import decimals, violations
from twofold.core.code import Code
from twofold.core.errors import Error, validation_error
from twofold.protobuf import model
from twofold.protobuf.model import EnumKind, Label, MessageKind, Scalar

T = TypeVar("T")

_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_WIRE = {"int64": 0, "int32": 0, "bool": 0, "double": 1, "string": 2, "bytes": 2}
_PACKED = ("int64", "int32", "bool", "double")


class Codec(NamedTuple, Generic[T]):
    """The binary codec of one message type; get one with ``Schema.codec``.

    Proto3 has no "missing" for a scalar: a field not sent reads as its zero
    value, unless the Python field has a default, which then applies (such a
    field is ``optional`` in the ``.proto`` when the default is not zero). A
    message field not sent is missing, as in JSON.

    ``decode`` raises :class:`~twofold.Error` (INVALID_ARGUMENT) for
    malformed bytes and for values that fail validation, with the field path.
    """

    type: type[T]
    decode: Callable[[bytes], T]
    encode: Callable[[T], bytes]


def varint(value: int) -> bytes:
    """A base-128 varint; a negative value as its 64-bit two's complement (10 bytes)."""
    if value < 0:
        if value < -(2**63):
            raise ValueError(f"{value} does not fit int64")
        value += 1 << 64
    elif value >= 1 << 63:
        raise ValueError(f"{value} does not fit int64")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint32(value: int) -> bytes:
    if not -(2**31) <= value < 2**31:
        raise ValueError(f"{value} does not fit int32")
    return varint(value)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def _timestamp(value: dt.datetime) -> bytes:
    # As protojson does: a naive datetime is UTC, the only reading a Timestamp allows.
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    delta = value - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    nanos = delta.microseconds * 1000
    return (b"\x08" + varint(seconds) if seconds else b"") + (
        b"\x10" + varint(nanos) if nanos else b""
    )


def _from_timestamp(ts: Any) -> Any:
    seconds, nanos = ts.seconds, ts.nanos
    if 0 <= nanos < 1_000_000_000:
        try:
            return _EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
        except OverflowError:
            pass
    # Out of range: a string msgspec rejects as a datetime, naming the field.
    return f"Timestamp(seconds={seconds}, nanos={nanos})"


def _signbit(value: float) -> bool:
    return struct.pack("<d", value) != b"\0" * 8


_SMALL = [bytes([n]) for n in range(128)]  # a varint's last byte
_HIGH = [bytes([n | 0x80]) for n in range(128)]  # any other byte


class Compiler:
    """Generates the per-message encode and extract functions of one schema."""

    def __init__(
        self,
        messages: dict[type[Any], model.Message],
        enums: dict[Any, model.Enum],
        classes: dict[str, Any],
    ) -> None:
        self.messages = messages
        self.enums = enums
        self.classes = classes  # full name -> upb message class
        self.ns: dict[str, Any] = {
            "_V": _SMALL,
            "_H": _HIGH,
            "_v64": varint,
            "_v32": _varint32,
            "_pd": struct.Struct("<d").pack,
            "struct_pack": struct.pack,
            "_ts": _timestamp,
            "_dt": decimals.text,
            "_from_ts": _from_timestamp,
            "_sign": _signbit,
            "_UNSET": msgspec.UNSET,
        }
        self.sources: dict[str, str] = {}  # generated function name -> its source
        self.encoders: dict[type[Any], str] = {}
        self.extractors: dict[type[Any], str] = {}

    def codec(self, cls: type[T]) -> Codec[T]:
        upb = self.classes[self.messages[cls].full_name]
        encode = self.ns[self._encoder(cls)]
        extract = self.ns[self._extractor(cls)]
        parse = upb.FromString
        convert = msgspec.convert
        # A Decimal is a proto string: held to the rule its JSON Schema publishes.
        check = decimals.checker(cls)

        def decode(data: bytes) -> T:
            try:
                message = parse(data)
            except DecodeError:
                raise Error(Code.INVALID_ARGUMENT, "malformed protobuf message") from None
            except RecursionError:
                raise Error(Code.INVALID_ARGUMENT, "message is nested too deeply") from None
            try:
                tree = extract(message)
            except msgspec.ValidationError as exc:
                raise validation_error(exc) from None
            try:
                value = convert(tree, cls)
                if check is not None:
                    check(tree)
                return value
            except msgspec.ValidationError as exc:
                # Refused: name every violation, not only msgspec's first.
                raise validation_error(violations.every(cls, tree, exc)) from None

        return Codec(cls, decode, encode)

    def _name(self, prefix: str, cls: type[Any], table: dict[type[Any], str]) -> tuple[str, bool]:
        name = table.get(cls)
        if name is not None:
            return name, False
        name = table[cls] = f"{prefix}{len(table)}"
        return name, True

    def _compile(self, name: str, arg: str, lines: list[str]) -> None:
        body = "\n".join(f"    {line}" for line in lines)
        self.sources[name] = source = f"def {name}({arg}):\n{body}\n"
        exec(source, self.ns)

    def _const(self, value: Any) -> str:
        name = f"_k{len(self.ns)}"
        self.ns[name] = value
        return name

    # -- encoding --------------------------------------------------------------

    def _encoder(self, cls: type[Any]) -> str:
        name, new = self._name("_w", cls, self.encoders)
        if not new:
            return name
        msg = self.messages[cls]
        lines = ["out = bytearray()"]
        for field in sorted(msg.fields, key=lambda f: f.number):
            lines += self._encode_field(field)
        lines.append("return bytes(out)")
        self._compile(name, "o", lines)
        return name

    def _encode_field(self, field: model.Field) -> list[str]:
        get = f"v = o.{field.name}" if not field.oneof else f"v = o.{field.oneof}"
        if not field.name.isidentifier() or keyword.iskeyword(field.name):
            get = f"v = getattr(o, {field.name!r})"
        if field.label is Label.REPEATED:
            return [get, "if v:", *_indent(self._repeated(field))]
        if field.label is Label.MAP:
            return [get, "if v:", *_indent(self._map(field))]
        write = self._write(field.kind, "v", field.number)
        if field.oneof:
            cls = self._const(field.variant)
            return [get, f"if v.__class__ is {cls}:", *_indent(write)]
        if field.label is Label.OPTIONAL:
            if isinstance(field.kind, MessageKind) or field.nullable:
                return [get, "if v is not None and v is not _UNSET:", *_indent(write)]
            return [get, "if v is not _UNSET:", *_indent(write)]
        # Implicit presence: the zero value is not written.
        kind = field.kind
        if isinstance(kind, EnumKind):
            numbers = self._const(self._enum_numbers(kind))
            return [
                get,
                f"v = {numbers}[v]",
                "if v:",
                *_indent(self._write(_INT32, "v", field.number)),
            ]
        if isinstance(kind, Scalar) and kind.type == "double":
            # -0.0 is not the default (its bits differ), so upb writes it; so do we.
            return [get, "if v or _sign(v):", *_indent(write)]
        if isinstance(kind, Scalar) and kind.text:
            return [get, *write]  # a Decimal, UUID or date is never the empty string
        return [get, "if v:", *_indent(write)]

    def _write(self, kind: model.Kind, var: str, number: int) -> list[str]:
        """Lines appending field ``number`` holding ``var`` to ``out``."""
        if isinstance(kind, EnumKind):
            numbers = self._const(self._enum_numbers(kind))
            return [f"x = {numbers}[{var}]", *self._write(_INT32, "x", number)]
        if isinstance(kind, Scalar):
            t = repr(tag(number, _WIRE[kind.type]))
            if kind.type in ("int64", "int32"):
                fn = "_v64" if kind.type == "int64" else "_v32"
                return [f"out += {t}", *_varint_lines(var, fn)]
            if kind.type == "bool":
                return [f"out += {t}", f"out += b'\\x01' if {var} else b'\\x00'"]
            if kind.type == "double":
                return [f"out += {t}", f"out += _pd({var})"]
            if kind.text == "decimal":
                data = f"_dt({var}).encode()"
            elif kind.text == "str":
                data = f"str({var}).encode()"
            elif kind.text == "iso":
                data = f"{var}.isoformat().encode()"
            elif kind.type == "string":
                data = f"{var}.encode()"
            else:
                data = var
            return [f"b = {data}", *self._length_delimited(t, "b")]
        t = repr(tag(number, 2))
        if kind.full_name == model.TIMESTAMP:
            return [f"b = _ts({var})", *self._length_delimited(t, "b")]
        assert kind.cls is not None
        return [f"b = {self._encoder(kind.cls)}({var})", *self._length_delimited(t, "b")]

    @staticmethod
    def _length_delimited(t: str, var: str) -> list[str]:
        return [f"out += {t}", f"n = len({var})", *_varint_lines("n", "_v64"), f"out += {var}"]

    def _repeated(self, field: model.Field) -> list[str]:
        kind = field.kind
        if isinstance(kind, EnumKind) or (isinstance(kind, Scalar) and kind.type in _PACKED):
            # proto3 packs repeated numbers: one length-delimited run of values.
            t = repr(tag(field.number, 2))
            if isinstance(kind, Scalar) and kind.type == "double":
                return ["p = struct_pack(f'<{len(v)}d', *v)", *self._length_delimited(t, "p")]
            item = _INT32 if isinstance(kind, EnumKind) else kind
            write = self._write(item, "x", 1)[1:]  # the value without its tag
            if isinstance(kind, EnumKind):
                numbers = self._const(self._enum_numbers(kind))
                write = [f"x = {numbers}[x]", *write]
            body = [line.replace("out +=", "p +=") for line in write]
            return [
                "p = bytearray()",
                "for x in v:",
                *_indent(body),
                *self._length_delimited(t, "p"),
            ]
        return ["for x in v:", *_indent(self._write(kind, "x", field.number))]

    def _map(self, field: model.Field) -> list[str]:
        assert field.map_key is not None
        # Keys sorted: the bytes are then upb's deterministic serialization,
        # and a response's bytes (and ETag) do not depend on insertion order.
        entry = [
            "e = out",
            "out = bytearray()",
            *self._write(field.map_key, "k", 1),
            *self._write(field.kind, "x", 2),
            "b = out",
            "out = e",
            *self._length_delimited(repr(tag(field.number, 2)), "b"),
        ]
        return ["for k in sorted(v):", "    x = v[k]", *_indent(entry)]

    def _enum_numbers(self, kind: EnumKind) -> dict[Any, int]:
        return {v.member: v.number for v in self.enums[kind.cls].values if v.member is not None}

    # -- decoding --------------------------------------------------------------

    def _extractor(self, cls: type[Any]) -> str:
        name, new = self._name("_x", cls, self.extractors)
        if not new:
            return name
        msg = self.messages[cls]
        # Singular fields in one dict display, the cheapest way to build it.
        items = [] if msg.tag_field is None else [f"{msg.tag_field!r}: {msg.tag!r}"]
        lines: list[str] = []
        oneofs: dict[str, list[model.Field]] = {}
        for field in msg.fields:
            if field.oneof:
                oneofs.setdefault(field.oneof, []).append(field)
            elif field.label is Label.SINGULAR:
                items.append(f"{field.key!r}: {self._value(field.kind, _attr('m', field.name))}")
            else:
                lines += self._extract_field(field)
        lines.insert(0, f"d = {{{', '.join(items)}}}")
        for members in oneofs.values():
            lines += self._extract_oneof(members)
        lines.append("return d")
        self._compile(name, "m", lines)
        return name

    def _extract_field(self, field: model.Field) -> list[str]:
        key, attr = repr(field.key), _attr("m", field.name)
        absent = self._absent(field)
        if field.label is Label.REPEATED:
            item = self._value(field.kind, "x")
            value = "v[:]" if item == "x" else f"[{item} for x in v]"  # v[:] is a list
            return [f"v = {attr}", "if v:", f"    d[{key}] = {value}", *absent]
        if field.label is Label.MAP:
            item = self._value(field.kind, "x")
            value = "dict(v)" if item == "x" else f"{{k: {item} for k, x in v.items()}}"
            return [f"v = {attr}", "if v:", f"    d[{key}] = {value}", *absent]
        value = self._value(field.kind, attr)
        if field.label is Label.SINGULAR:
            return [f"d[{key}] = {value}"]
        return [f"if m.HasField({field.name!r}):", f"    d[{key}] = {value}", *absent]

    def _extract_oneof(self, members: list[model.Field]) -> list[str]:
        first = members[0]
        lines = [f"w = m.WhichOneof({first.oneof!r})"]
        for i, field in enumerate(members):
            value = self._value(field.kind, _attr("m", field.name))
            lines += [
                f"{'if' if i == 0 else 'elif'} w == {field.name!r}:",
                f"    d[{first.key!r}] = {value}",
            ]
        return lines + self._absent(first)

    @staticmethod
    def _absent(field: model.Field) -> list[str]:
        """What a field not on the wire becomes, when its Python default does not apply."""
        if field.has_default:
            return []  # left out of the dict: msgspec fills in the default
        if field.label is Label.REPEATED:
            return ["else:", f"    d[{field.key!r}] = []"]
        if field.label is Label.MAP:
            return ["else:", f"    d[{field.key!r}] = {{}}"]
        if field.nullable:
            return ["else:", f"    d[{field.key!r}] = None"]
        return []  # a required message: msgspec reports it missing

    def _value(self, kind: model.Kind, expr: str) -> str:
        if isinstance(kind, Scalar):
            return expr
        if isinstance(kind, EnumKind):
            item = self.enums[kind.cls]
            # Unknown numbers (an open enum) and 0 when no member has it stay
            # as they are, or as the _UNSPECIFIED name: msgspec rejects both
            # with the field's path.
            table = {
                v.number: v.member.value if v.member is not None else v.name for v in item.values
            }
            return f"{self._const(table)}.get({expr}, {expr})"
        if kind.full_name == model.TIMESTAMP:
            return f"_from_ts({expr})"
        assert kind.cls is not None
        return f"{self._extractor(kind.cls)}({expr})"


_INT32 = Scalar("int32")


def _varint_lines(var: str, slow: str) -> list[str]:
    # Inline for one and two bytes (ids, lengths: nearly every value); a
    # call for the rest.
    return [
        f"if 0 <= {var} < 128:",
        f"    out += _V[{var}]",
        f"elif 0 < {var} < 16384:",
        f"    out += _H[{var} & 127]",
        f"    out += _V[{var} >> 7]",
        "else:",
        f"    out += {slow}({var})",
    ]


def _indent(lines: list[str]) -> list[str]:
    return [f"    {line}" for line in lines]


def _attr(obj: str, name: str) -> str:
    if keyword.iskeyword(name):
        return f"getattr({obj}, {name!r})"
    return f"{obj}.{name}"
