"""The proto3 JSON mapping for message types: Connect's JSON codec, later gRPC-Web's.

Plain msgspec JSON (what REST speaks) and proto3 JSON differ where official
Connect, gRPC-Web and protobuf clients notice:

* parsers must accept the lowerCamelCase ``json_name`` and the original
  field name, at every level;
* int64 is a decimal string on the wire (a JavaScript number loses
  precision past 2**53) and is accepted as a string or a number;
* unknown fields are ignored, so that an older server accepts a newer
  client's message; ``null`` means "the field's default";
* bytes are base64, standard or URL-safe, padded or not; non-finite floats
  are ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

:func:`codec` builds a :class:`Codec` once per type and caches it. Encoding
is a generated function per message class that only touches the fields
needing a change (int64, timestamps, floats) and hands the rest to msgspec
as is; a type with none of them is encoded by msgspec directly. Decoding
tries msgspec's typed decoder first when its answer is known to be the
proto3 one, and otherwise renames keys by a precomputed table and lets
``msgspec.convert`` validate, so constraints and error paths are msgspec's.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from msgspec import inspect as mi

from twofold import messages
from twofold.code import Code
from twofold.errors import Error, validation_error
from twofold.naming import camel

T = TypeVar("T")
Normalize = Callable[[Any], Any]

_UTC = dt.UTC
_decode_any = msgspec.json.decode
_convert = msgspec.convert
_encode = msgspec.json.Encoder().encode
_MESSAGE = (mi.StructType, mi.DataclassType)
_SEQUENCE = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)
_BYTES = (mi.BytesType, mi.ByteArrayType, mi.MemoryViewType)
_URLSAFE = str.maketrans("-_", "+/")
_Meta: Any = msgspec.Meta  # its overloads refuse an int | None for every bound


class Codec(Generic[T]):
    """The proto3 JSON codec of one message type; get one with :func:`codec`.

    ``decode`` takes JSON text (bytes or str) or an already parsed object and
    raises :class:`~twofold.errors.Error` (INVALID_ARGUMENT) with violations
    named by the original field names. ``encode`` returns JSON bytes.
    """

    __slots__ = ("decode", "encode", "type")

    def __init__(self, tp: type[T]) -> None:
        node = mi.type_info(tp)
        self.type = tp
        self.encode: Callable[[T], bytes] = _ENCODERS.encoder(node)
        self.decode: Callable[[Any], T] = _decoder(tp, node)


_CODECS: dict[Any, Codec[Any]] = {}


def codec(tp: type[T]) -> Codec[T]:
    """The cached codec of a Struct or dataclass type."""
    found = _CODECS.get(tp)
    if found is None:
        found = _CODECS[tp] = Codec(tp)
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
    reachable = _reachable(node)
    # msgspec's own typed decoder (lax, so "42" is an int) gives the proto3
    # answer whenever it succeeds, except where it would silently drop a
    # lowerCamelCase key as unknown: types that forbid unknown fields turn
    # that into a failure, so only the others' camelCase names need a guard.
    aliases = {
        camel(f.encode_name)
        for m in reachable.values()
        if not getattr(m, "forbid_unknown_fields", False)
        for f in m.fields
        if camel(f.encode_name) != f.encode_name
    }
    guard = None
    if aliases:
        names = "|".join(re.escape(a) for a in sorted(aliases))
        guard = re.compile(f'\\\\u|"(?:{names})"'.encode())
    fast = msgspec.json.Decoder(tp, strict=False).decode

    def decode(data: Any) -> T:
        try:
            if isinstance(data, str):
                data = data.encode()
            if isinstance(data, bytes | bytearray | memoryview):
                if guard is None or guard.search(data) is None:
                    try:
                        return fast(data)
                    except msgspec.ValidationError:
                        pass  # the general path decides, and names the field if wrong
                data = _decode_any(data)
            return _convert(normalize(data), tp, strict=False)
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
        values = {m.value for m in node.cls}
        names = {m.name: m.value for m in node.cls if m.name not in values}
        if names:
            # Proto3 JSON names enum values; Python's member name is the closest.
            return lambda v: names.get(v, v) if v.__class__ is str else v
    return None


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
    entries = [
        (f.encode_name, (f.encode_name, _normalizer(f.type), _nullable(f.type)))
        for f in node.fields
    ]
    for key, entry in entries:
        lookup[camel(key)] = entry
    for key, entry in entries:
        lookup[key] = entry  # an original name wins over another field's camelCase
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
        if norm is not None:
            json_type = (
                str
                if isinstance(member, (*_BYTES, mi.EnumType))
                else (list if isinstance(member, _SEQUENCE) else dict)
            )
            by_json.setdefault(json_type, norm)
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


def _base64(value: Any) -> Any:
    if value.__class__ is not str:
        return value
    text = value.translate(_URLSAFE)
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
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
    """Generated per-class functions that turn a message into a proto3 JSON tree.

    Generated source rather than a loop over fields because it runs on every
    response: ``{"id": str(o.id), "name": o.name}`` costs a few hundred ns.
    """

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {
            "_json": _encode,
            "_ts": _timestamp,
            "_nf": _nonfinite,
            "_dt": dt.datetime,
        }
        self.names: dict[type, str | None] = {}  # None: msgspec's encoding is right

    def encoder(self, node: mi.Type) -> Callable[[Any], bytes]:
        self._prepare(_reachable(node))
        expr = self._expr(node, "o", 0)
        if expr is None:
            return _encode
        return self._compile("o", f"return _json({expr})")

    def _prepare(self, reachable: dict[type, Any]) -> None:
        new = {cls: m for cls, m in reachable.items() if cls not in self.names}
        direct = {
            cls: getattr(m, "array_like", False)
            or any(_changes(leaf) for f in m.fields for leaf in _shallow(f.type))
            for cls, m in new.items()
        }
        refs = {
            cls: {
                leaf.cls
                for f in m.fields
                for leaf in _shallow(f.type)
                if isinstance(leaf, _MESSAGE)
            }
            for cls, m in new.items()
        }
        needs = dict(direct)

        def need(cls: type) -> bool:
            return needs[cls] if cls in needs else self.names.get(cls) is not None

        changed = True
        while changed:  # a message needs a function if anything it reaches does
            changed = False
            for cls in new:
                if not needs[cls] and any(need(r) for r in refs[cls]):
                    needs[cls] = changed = True
        for cls in new:
            self.names[cls] = f"_e{len(self.names)}" if needs[cls] else None
        for cls, m in new.items():
            name = self.names[cls]
            if name is not None:
                self.ns[name] = self._message(m)

    def _message(self, m: Any) -> Callable[[Any], Any]:
        omit = getattr(getattr(m.cls, "__struct_config__", None), "omit_defaults", False)
        lines, items = [], []
        if getattr(m, "tag_field", None) is not None:
            items.append(f"{m.tag_field!r}: {m.tag!r}")
        for i, f in enumerate(m.fields):
            expr = self._expr(f.type, f"v{i}", 1)
            value = f"o.{f.name}" if expr is None else expr
            if expr is not None or omit:
                lines.append(f"v{i} = o.{f.name}")
                value = expr or f"v{i}"
            if omit and not f.required:
                default = (
                    f.default if f.default_factory is msgspec.NODEFAULT else f.default_factory()
                )
                self.ns[f"_d{id(default)}"] = default
                lines.append(f"if v{i} != _d{id(default)}: d[{f.encode_name!r}] = {value}")
            elif omit:
                lines.append(f"d[{f.encode_name!r}] = {value}")
            else:
                items.append(f"{f.encode_name!r}: {value}")
        body = "\n".join(lines)
        if omit:
            return self._compile("o", f"d = {{{', '.join(items)}}}\n{body}\nreturn d")
        return self._compile("o", f"{body}\nreturn {{{', '.join(items)}}}")

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
        # Several kinds of value: dispatch on the runtime type.
        lines = []
        for t, expr in changed:
            check = _CHECKS.get(type(t))
            if isinstance(t, _MESSAGE):
                self.ns[f"_c{id(t.cls)}"] = t.cls
                check = f"isinstance(v, _c{id(t.cls)})"
            lines.append(f"if {check}: return {expr}")
        name = f"_u{len(self.ns)}"
        self.ns[name] = self._compile("v", "\n".join([*lines, "return v"]))
        return f"{name}({var})"

    def _compile(self, arg: str, body: str) -> Callable[[Any], Any]:
        indented = "\n".join(f"    {line}" for line in body.splitlines() if line)
        exec(f"def f({arg}):\n{indented}\n", self.ns)
        fn: Callable[[Any], Any] = self.ns.pop("f")
        return fn


def _changes(leaf: mi.Type) -> bool:
    return _is_int64(leaf) or isinstance(leaf, mi.FloatType | mi.DateTimeType)


_CHECKS = {
    mi.IntType: "v.__class__ is int",
    mi.FloatType: "v.__class__ is float",
    mi.DateTimeType: "isinstance(v, _dt)",
    mi.ListType: "isinstance(v, list)",
    mi.SetType: "isinstance(v, set)",
    mi.FrozenSetType: "isinstance(v, frozenset)",
    mi.VarTupleType: "isinstance(v, tuple)",
    mi.DictType: "isinstance(v, dict)",
}
_ENCODERS = _Encoders()
