"""The proto3 JSON mapping: Connect's JSON codec, and the client's.

It differs from plain msgspec JSON (what REST speaks) where protobuf clients
notice: lowerCamelCase ``json_name`` keys are accepted beside the original
names; int64 is a decimal string out (a JavaScript number loses precision
past 2**53) and a string or number in; unknown fields are ignored and
``null`` means "the default"; bytes are base64 of either alphabet, padded or
not; non-finite floats are "NaN", "Infinity", "-Infinity".

:func:`codec` builds a :class:`Codec` once per type. Encoding is a generated
function per message class, or msgspec itself when nothing needs changing.
Decoding tries msgspec's typed decoder where its answer is the proto3 one,
else renames keys by a precomputed table and lets ``msgspec.convert``
validate, so constraints and error paths are msgspec's.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Annotated, Any, Generic, NamedTuple, TypeVar

import msgspec
from msgspec import inspect as mi

from twofold.core import decimals, messages
from twofold.core.code import Code
from twofold.core.errors import Error, validation_error
from twofold.core.naming import camel

T = TypeVar("T")
Normalize = Callable[[Any], Any]

_UTC = dt.UTC
_decode_any = msgspec.json.decode
_convert = msgspec.convert
_encode = msgspec.json.Encoder().encode
_MESSAGE = (mi.StructType, mi.DataclassType)
_SEQUENCE = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)
_BYTES = (mi.BytesType, mi.ByteArrayType, mi.MemoryViewType)
_BUFFERS = (bytes, bytearray, memoryview)
_URLSAFE = str.maketrans("-_", "+/")
_Meta: Any = msgspec.Meta  # its overloads refuse an int | None for every bound
_JSON_TYPES: dict[type, type] = {t: list for t in _SEQUENCE} | {t: str for t in _BYTES}
_JSON_TYPES[mi.EnumType] = str


class Codec(NamedTuple, Generic[T]):
    """The proto3 JSON codec of one message type; get one with :func:`codec`.

    ``decode`` takes JSON text (bytes or str) or an already parsed object and
    raises :class:`~twofold.Error` (INVALID_ARGUMENT) with violations
    named by the original field names. ``encode`` returns JSON bytes.
    """

    type: type[T]
    decode: Callable[[Any], T]
    encode: Callable[[T], bytes]


_CODECS: dict[Any, Codec[Any]] = {}


def codec(tp: type[T]) -> Codec[T]:
    """The cached codec of a Struct or dataclass type."""
    found = _CODECS.get(tp)
    if found is None:
        node = mi.type_info(tp)
        found = _CODECS[tp] = Codec(tp, _decoder(tp, node), _ENCODERS.encoder(node))
    return found


# -- walking msgspec's type tree ------------------------------------------------


def _shallow(node: mi.Type) -> Iterator[mi.Type]:
    """The leaves under ``node``, stopping at (and yielding) nested messages."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, mi.Metadata):
            stack.append(n.type)
        elif isinstance(n, _SEQUENCE):
            stack.append(n.item_type)
        elif isinstance(n, mi.DictType):
            stack.append(n.value_type)  # map keys are strings in JSON either way
        elif isinstance(n, mi.UnionType):
            stack.extend(n.types)
        else:
            yield n


def _reachable(node: mi.Type) -> dict[type, Any]:
    """Every message type reachable from ``node`` (itself included), by class."""
    found: dict[type, Any] = {}
    stack = [node]
    while stack:
        for leaf in _shallow(stack.pop()):
            if isinstance(leaf, _MESSAGE) and leaf.cls not in found:
                found[leaf.cls] = leaf
                stack.extend(f.type for f in leaf.fields)
    return found


def _unwrap(node: mi.Type) -> mi.Type:
    return node.type if isinstance(node, mi.Metadata) else node


def _is_int64(node: mi.Type) -> bool:
    if not isinstance(node, mi.IntType):
        return False
    # Rebuild the annotation so that the one int32/int64 rule decides, as it
    # does for .proto and OpenAPI.
    bounds = _Meta(ge=node.ge, gt=node.gt, le=node.le, lt=node.lt)
    return not messages.is_int32(Annotated[int, bounds])


def _nullable(node: mi.Type) -> bool:
    node = _unwrap(node)
    if isinstance(node, mi.UnionType):
        return any(isinstance(_unwrap(t), mi.NoneType) for t in node.types)
    return isinstance(node, mi.NoneType | mi.AnyType)


# -- decoding -------------------------------------------------------------------


def _decoder(tp: type[T], node: mi.Type) -> Callable[[Any], T]:
    normalize = _normalizer(node) or _identity
    # msgspec's typed decoder (lax, so "42" is an int) gives the proto3 answer
    # whenever it succeeds, except where it would drop a camelCase key as
    # unknown: a body holding one (or a \u escape, which could spell one) goes
    # the general way. Where unknown fields are forbidden the guard only spares
    # a failed attempt, which costs more than the search.
    aliases, lenient = set(), False
    for m in _reachable(node).values():
        for f in m.fields:
            if camel(f.encode_name) != f.encode_name:
                aliases.add(re.escape(camel(f.encode_name)))
                lenient |= not getattr(m, "forbid_unknown_fields", False)
            for leaf in _shallow(f.type):
                if isinstance(leaf, mi.EnumType):  # a proto name is no value of msgspec's
                    aliases.update(re.escape(n) for n in _enum_names(leaf.cls).values())
    pattern = f'"(?:{"|".join(sorted(aliases))})"'
    guard = re.compile((f"\\\\u|{pattern}" if lenient else pattern).encode()) if aliases else None
    fast = msgspec.json.Decoder(tp, strict=False).decode
    # Lenient decoding reads "1e2" or a number as a Decimal: held to its rule.
    check = decimals.checker(tp)

    def decode(data: Any) -> T:
        try:
            if data.__class__ is str:
                data = data.encode()
            if isinstance(data, _BUFFERS):
                if guard is None or guard.search(data) is None:
                    try:
                        value = fast(data)
                    except msgspec.ValidationError:
                        pass  # the general path decides, and names the field if wrong
                    else:
                        if check is not None:
                            # No alias in the body: its keys are the checker's.
                            check(_decode_any(data))
                        return value
                data = _decode_any(data)
            tree = normalize(data)
            value = _convert(tree, tp, strict=False)
            if check is not None:
                check(tree)
            return value
        except msgspec.ValidationError as exc:
            raise validation_error(exc) from None
        except msgspec.DecodeError as exc:
            raise Error(Code.INVALID_ARGUMENT, f"malformed JSON: {exc}") from None
        except RecursionError:
            raise Error(Code.INVALID_ARGUMENT, "message is nested too deeply") from None

    return decode


def _identity(value: Any) -> Any:
    return value


# Every normalizer passes through values of an unexpected JSON type untouched,
# so that msgspec.convert reports them with their path.
_NORMALIZERS: dict[type, Normalize] = {}


def _normalizer(node: mi.Type) -> Normalize | None:
    """A function that renames keys and rewrites values into what convert takes."""
    node = _unwrap(node)
    if isinstance(node, _MESSAGE):
        return _message_normalizer(node)
    if isinstance(node, _SEQUENCE):
        item = _normalizer(node.item_type)
        if item is None:
            return None
        return lambda v: [item(x) for x in v] if v.__class__ is list else v
    if isinstance(node, mi.DictType):
        value = _normalizer(node.value_type)
        if value is None:
            return None
        return lambda v: {k: value(x) for k, x in v.items()} if v.__class__ is dict else v
    if isinstance(node, mi.UnionType):
        return _union_normalizer(node)
    if isinstance(node, _BYTES):
        return _base64
    if isinstance(node, mi.EnumType):
        # Proto3 JSON names enum values (ORDER_STATUS_OPEN); the Python member
        # name and value are accepted too, and an int enum's number is its value.
        names = _enum_names(node.cls)
        values = {m.value for m in node.cls}
        table = {m.name: m.value for m in node.cls if m.name not in values}
        table.update({name: m.value for m, name in names.items() if name not in values})
        return lambda v: table.get(v, v) if v.__class__ is str else v
    return None


def _enum_names(cls: Any) -> dict[Any, str]:
    """Each member's proto3 name, as ``twofold.protobuf`` declares it."""
    from twofold.protobuf.mapping import enum_value_names

    return enum_value_names(cls)[1]


def _message_normalizer(node: Any) -> Normalize:
    found = _NORMALIZERS.get(node.cls)
    if found is not None:
        return found
    lookup: dict[str, tuple[str, Normalize | None, bool]] = {}

    def norm(obj: Any) -> Any:
        if obj.__class__ is not dict:
            return obj
        out: dict[str, Any] = {}
        for key, value in obj.items():
            entry = lookup.get(key)
            if entry is None:
                continue  # unknown: ignored, for forward compatibility
            name, sub, nullable = entry
            if value is None:
                # null means "not set": the default, or None where None is allowed.
                if nullable:
                    out[name] = None
                continue
            out[name] = value if sub is None else sub(value)
        return out

    # Registered before the fields are walked, so recursive types terminate.
    _NORMALIZERS[node.cls] = norm
    tag_field = getattr(node, "tag_field", None)
    if tag_field is not None:
        lookup[camel(tag_field)] = lookup[tag_field] = (tag_field, None, False)
    for f in node.fields:
        lookup[f.encode_name] = (f.encode_name, _normalizer(f.type), _nullable(f.type))
    for f in node.fields:  # an original name wins over another field's camelCase
        lookup.setdefault(camel(f.encode_name), lookup[f.encode_name])
    return norm


def _union_normalizer(node: mi.UnionType) -> Normalize | None:
    by_json: dict[type, Normalize] = {}
    tagged: dict[Any, Normalize] = {}
    tag_field = ""
    for member in map(_unwrap, node.types):
        if isinstance(member, mi.StructType) and member.tag_field is not None:
            tagged[member.tag] = _message_normalizer(member)
            tag_field = member.tag_field
            continue
        norm = _normalizer(member)
        if norm is not None:  # bytes and enums read strings; the rest, what they are
            by_json.setdefault(_JSON_TYPES.get(type(member), dict), norm)
    if tagged:

        def variant(obj: dict[str, Any]) -> Any:
            tag = obj.get(tag_field)
            pick = tagged.get(tag) if tag.__class__ in (str, int) else None
            return obj if pick is None else pick(obj)

        by_json[dict] = variant
    if not by_json:
        return None
    if len(by_json) == 1:
        return next(iter(by_json.values()))
    return lambda v: by_json.get(v.__class__, _identity)(v)


def b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not, as proto3 JSON reads bytes.

    Raises ValueError (binascii.Error) when ``text`` is not base64.
    """
    text = text.translate(_URLSAFE)
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _base64(value: Any) -> Any:
    if value.__class__ is not str:
        return value
    try:
        return b64decode(value)
    except ValueError:
        return value  # msgspec names the field: "Invalid base64 encoded string"


# -- encoding -------------------------------------------------------------------


def _timestamp(value: dt.datetime) -> dt.datetime:
    # Proto3 JSON timestamps are Z-normalized; a naive datetime is taken as UTC,
    # the only reading a Timestamp (which has no local time) allows.
    tz = value.tzinfo
    if tz is _UTC:
        return value
    return value.replace(tzinfo=_UTC) if tz is None else value.astimezone(_UTC)


def _nonfinite(value: float) -> str:
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


class _Encoders:
    """Generated per-class functions that build a message's wire form.

    Generated source rather than a loop over fields because it runs on every
    response. The wire form is a "mirror" Struct with the same keys whose
    values are already proto3 JSON (``str(o.id)``), built positionally: about
    half the cost of building a dict, and msgspec encodes it at full speed.
    """

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {
            "_json": _encode,
            "_ts": _timestamp,
            "_nf": _nonfinite,
            "_dt": decimals.text,
        }
        self.names: dict[type, str | None] = {}  # None: msgspec's encoding is right
        self.sources: dict[type, tuple[list[str], str]] = {}

    def encoder(self, node: mi.Type) -> Callable[[Any], bytes]:
        self._prepare(_reachable(node))
        node = _unwrap(node)
        if isinstance(node, _MESSAGE) and self.names[node.cls] is not None:
            lines, value = self.sources[node.cls]  # inlined: one call fewer
            return self._compile("o", "\n".join([*lines, f"return _json({value})"]))
        expr = self._expr(node, "o", 0)
        return _encode if expr is None else self._compile("o", f"return _json({expr})")

    def _prepare(self, reachable: dict[type, Any]) -> None:
        new = {cls: m for cls, m in reachable.items() if cls not in self.names}
        own = {  # what a message's own fields need; known ones, what they concluded
            cls: self.names[cls] is not None
            if cls in self.names
            else getattr(m, "array_like", False)
            or any(_changes(leaf) for f in m.fields for leaf in _shallow(f.type))
            for cls, m in reachable.items()
        }
        for cls, m in new.items():  # a message needs a function if anything it reaches does
            self.names[cls] = f"_e{len(self.names)}" if any(map(own.get, _reachable(m))) else None
        for cls, m in new.items():
            name = self.names[cls]
            if name is not None:
                lines, value = self.sources[cls] = self._message(m)
                self.ns[name] = self._compile("o", "\n".join([*lines, f"return {value}"]))

    def _message(self, m: Any) -> tuple[list[str], str]:
        """Source lines, and the expression that builds the mirror of ``o``.

        Keys are the original field names, protojson's UseProtoNames form:
        every conformant parser accepts them, and they are REST's names, so
        one OpenAPI schema describes both wires.
        """
        omit = getattr(getattr(m.cls, "__struct_config__", None), "omit_defaults", False)
        lines: list[str] = []
        args: list[str] = []
        specs: list[tuple[Any, ...]] = []
        for i, f in enumerate(m.fields):
            expr = self._expr(f.type, f"v{i}", 1)
            if expr is not None:
                lines.append(f"v{i} = o.{f.name}")
                if omit and f.default is not msgspec.NODEFAULT:
                    # The default object itself goes to the mirror, whose
                    # omit_defaults then leaves it out as msgspec would.
                    self.ns[f"_d{id(f.default)}"] = f.default
                    expr = f"(v{i} if v{i} is _d{id(f.default)} else {expr})"
            args.append(expr or f"o.{f.name}")
            if not omit:
                specs.append((f"f{i}", Any))
            elif f.default_factory is not msgspec.NODEFAULT:
                specs.append((f"f{i}", Any, msgspec.field(default_factory=f.default_factory)))
            else:
                specs.append((f"f{i}", Any, _NEVER if f.required else f.default))
        mirror = msgspec.defstruct(
            f"{m.cls.__name__}Wire",
            specs,
            rename={f"f{i}": f.encode_name for i, f in enumerate(m.fields)},
            omit_defaults=omit,
            tag=getattr(m, "tag", None),
            tag_field=getattr(m, "tag_field", None),
        )
        name = f"_m{len(self.ns)}"
        self.ns[name] = mirror
        return lines, f"{name}({', '.join(args)})"

    def _expr(self, node: mi.Type, var: str, depth: int) -> str | None:
        """Source for ``var``'s proto3 JSON tree, or None when it is already right."""
        node = _unwrap(node)
        if isinstance(node, _MESSAGE):
            name = self.names[node.cls]
            return f"{name}({var})" if name else None
        if _is_int64(node):
            return f"str({var})"
        if isinstance(node, mi.FloatType):
            return f"({var} if {var} - {var} == 0 else _nf({var}))"
        if isinstance(node, mi.DateTimeType):
            return f"_ts({var})"
        if isinstance(node, mi.DecimalType):
            return f"_dt({var})"
        if isinstance(node, mi.EnumType):
            table = f"_n{id(node.cls)}"
            self.ns[table] = _enum_names(node.cls)
            return f"{table}[{var}]"
        x = f"x{depth}"
        if isinstance(node, _SEQUENCE):
            inner = self._expr(node.item_type, x, depth + 1)
            return None if inner is None else f"[{inner} for {x} in {var}]"
        if isinstance(node, mi.DictType):
            inner = self._expr(node.value_type, x, depth + 1)
            return None if inner is None else f"{{k: {inner} for k, {x} in {var}.items()}}"
        if isinstance(node, mi.UnionType):
            return self._union(node, var, depth)
        return None

    def _union(self, node: mi.UnionType, var: str, depth: int) -> str | None:
        members = [(t, self._expr(t, "v", depth + 1)) for t in map(_unwrap, node.types)]
        changed = [(t, e) for t, e in members if e is not None]
        if not changed:
            return None
        if len(members) == 2 and any(isinstance(t, mi.NoneType) for t, _ in members):
            inner = self._expr(changed[0][0], var, depth)
            return f"(None if {var} is None else {inner})"
        # Several kinds of value: dispatch on the runtime class.
        lines = []
        for t, expr in changed:
            cls = t.cls if isinstance(t, (*_MESSAGE, mi.EnumType)) else _CLASSES[type(t)]
            self.ns[f"_c{id(cls)}"] = cls
            lines.append(f"if v.__class__ is _c{id(cls)}: return {expr}")
        name = f"_u{len(self.ns)}"
        self.ns[name] = self._compile("v", "\n".join([*lines, "return v"]))
        return f"{name}({var})"

    def _compile(self, arg: str, body: str) -> Callable[[Any], Any]:
        indented = "\n".join(f"    {line}" for line in body.splitlines() if line)
        exec(f"def f({arg}):\n{indented}\n", self.ns)
        fn: Callable[[Any], Any] = self.ns.pop("f")
        return fn


def _changes(leaf: mi.Type) -> bool:
    kinds = mi.FloatType | mi.DateTimeType | mi.DecimalType | mi.EnumType
    return _is_int64(leaf) or isinstance(leaf, kinds)


_CLASSES = {mi.IntType: int, mi.FloatType: float, mi.DateTimeType: dt.datetime, mi.DictType: dict}
_CLASSES[mi.DecimalType] = Decimal
_CLASSES |= {
    mi.ListType: list,
    mi.SetType: set,
    mi.FrozenSetType: frozenset,
    mi.VarTupleType: tuple,
}
_NEVER = object()  # a default no value is: required fields are never omitted
_ENCODERS = _Encoders()
