"""Every violation in a message, where msgspec reports only the first.

msgspec's typed decoders stop at the first field they cannot accept, and
that stays the fast path: valid input never comes here. Once a decoder has
refused a message, :func:`every` walks the message's type against the tree
the decoder parsed (dicts keyed by encode names, lists, strings, numbers)
and lists what is wrong with each field, in document order: a missing
required field, an unknown field where unknown fields are forbidden, a
value of the wrong type or outside its constraints, into nested messages,
lists and maps (``product.tags[2]``) and tagged unions.

Each leaf is judged by ``msgspec.convert`` on that value alone, so that a
violation says what the fast path would have said about it, and by the
Decimal rule of :mod:`twofold.core.decimals`, which every wire applies.
"""

from __future__ import annotations

import dataclasses
import typing
import weakref
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple, Union

import msgspec
from msgspec import inspect as mi

from twofold.core import decimals

# A request listing more than this is answered with the first ones: the
# answer stays proportionate to the request, whatever a client sends.
LIMIT = 100

Found = list[tuple[str, str]]
_NO_CHECK: Any = object()
_CHECKS: dict[Any, Any] = {}
_SEQUENCES = (list, set, frozenset, tuple)
_UNION_TYPES: tuple[Any, ...] = (Union, type(int | None))


class Invalid(msgspec.ValidationError):
    """A ``msgspec.ValidationError`` that holds every violation of a message.

    Its text is msgspec's for the first violation, so that code reading
    one message reads the same as before; ``violations`` holds them all as
    (path, description) pairs, paths relative to the decoded message.
    """

    def __init__(self, violations: Found) -> None:
        path, description = violations[0]
        super().__init__(f"{description} - at `$.{path}`" if path else description)
        self.violations = tuple(violations)


def split(text: str) -> tuple[str, str]:
    """msgspec's message ("Expected `int`, got `str` - at `$.id`") as (path, description)."""
    description, _, where = text.partition(" - at `")
    path = where.rstrip("`").removeprefix("$").lstrip(".") if where else ""
    if description.startswith("Object missing required field `"):
        path = _join(path, description.split("`")[1])
        description = "required field is missing"
    elif description.startswith("Object contains unknown field `"):
        path = _join(path, description.split("`")[1])
        description = "unknown field"
    return path, description


def every(tp: Any, tree: Any, first: msgspec.ValidationError, *, strict: bool = True) -> Invalid:
    """Every violation of ``tree`` (a parsed message) against ``tp``.

    ``first`` is what the decoder raised; it stands alone if the walk finds
    nothing more precise. ``strict`` is the decoder's: False where a wire
    reads ``"42"`` as an int (proto3 JSON).
    """
    found: Found = []
    try:
        _Walk(strict).node(tp, tree, "", found)
    except RecursionError:
        found.append(("", "message is nested too deeply"))
    except _Full:
        pass
    if not found:
        found.append(split(str(first)))
    return Invalid(found[:LIMIT])


class _Full(Exception):
    """Raised once LIMIT violations are found: the walk stops there."""


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _decimal_check(tp: Any) -> Callable[[Any], None] | None:
    try:
        found = _CHECKS.get(tp, _NO_CHECK)
    except TypeError:  # an unhashable annotation: built each time
        return _build_check(tp)
    if found is _NO_CHECK:
        found = _CHECKS[tp] = _build_check(tp)
    return found  # type: ignore[no-any-return]


def _build_check(tp: Any) -> Callable[[Any], None] | None:
    try:
        return decimals.checker(tp)
    except (TypeError, ValueError):  # a type msgspec cannot inspect alone
        return None


class _Walk:
    def __init__(self, strict: bool) -> None:
        self.strict = strict

    def node(self, tp: Any, value: Any, path: str, out: Found) -> None:
        error = self.judge(tp, value)
        if error is None:
            return
        before = len(out)
        self.inside(tp, value, path, out)
        if len(out) == before:  # nothing more precise inside: the value itself is wrong
            where, description = split(str(error))
            self.add(out, _join(path, where) if where else path, description)

    def add(self, out: Found, path: str, description: str) -> None:
        out.append((path, description))
        if len(out) >= LIMIT:
            raise _Full

    def judge(self, tp: Any, value: Any) -> msgspec.ValidationError | None:
        """What the decoders say about ``value`` as a ``tp``, or None if it is one."""
        # Each error is returned for its message alone, without its traceback:
        # that would hold this frame, and through it the callers' frames that
        # keep the error, in a cycle per violation for the garbage collector.
        try:
            msgspec.convert(value, tp, strict=self.strict)
        except msgspec.ValidationError as exc:
            # A JSON number with no fraction is an integer (numbers.Decoder).
            if not (isinstance(value, float) and value.is_integer()):
                return exc.with_traceback(None)
            try:
                msgspec.convert(int(value), tp, strict=self.strict)
            except msgspec.ValidationError:
                return exc.with_traceback(None)
        except (TypeError, ValueError):  # a type convert cannot take alone
            return None
        check = _decimal_check(tp)
        if check is not None:
            try:
                check(value)
            except msgspec.ValidationError as exc:
                return exc.with_traceback(None)
        return None

    def inside(self, tp: Any, value: Any, path: str, out: Found) -> None:
        """The violations inside a container ``value``, if ``tp`` is one."""
        base = _bare(tp)
        origin = typing.get_origin(base)
        if origin in _UNION_TYPES:
            self.union(typing.get_args(base), value, path, out)
        elif isinstance(value, dict) and _is_message(base):
            self.message(base, value, path, out)
        elif isinstance(value, list) and origin in _SEQUENCES:
            args = typing.get_args(base)
            if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
                return  # a fixed tuple: judged whole
            for i, item in enumerate(value):
                self.node(args[0] if args else Any, item, f"{path}[{i}]", out)
        elif isinstance(value, dict) and origin is dict:
            args = typing.get_args(base)
            for key, item in value.items():
                self.node(args[1] if args else Any, item, _join(path, str(key)), out)

    def union(self, members: tuple[Any, ...], value: Any, path: str, out: Found) -> None:
        if value is None:
            return
        wanted = [m for m in members if _bare(m) not in (type(None), msgspec.UnsetType)]
        if isinstance(value, dict):
            messages = [m for m in wanted if _is_message(_bare(m))]
            tagged = [m for m in messages if _tag(_bare(m)) is not None]
            if tagged:
                field = _tag(_bare(tagged[0]))
                for m in tagged:
                    info = mi.type_info(_bare(m))
                    if isinstance(info, mi.StructType) and value.get(field) == info.tag:
                        self.inside(m, value, path, out)
                return
            wanted = messages or wanted
        if len(wanted) == 1:
            self.inside(wanted[0], value, path, out)

    def message(self, cls: Any, value: dict[str, Any], path: str, out: Found) -> None:
        fields, hints, tag_field, forbid = _shape(cls)
        for key, item in value.items():
            field = fields.get(key)
            if field is None:
                if forbid and key != tag_field:
                    self.add(out, _join(path, key), "unknown field")
                continue
            self.node(hints.get(field.name, Any), item, _join(path, key), out)
        for name, field in fields.items():
            if field.required and name not in value:
                self.add(out, _join(path, name), "required field is missing")


def _bare(tp: Any) -> Any:
    """``tp`` without ``Annotated``: its constraints are the judge's, not the walk's."""
    while typing.get_origin(tp) is Annotated:
        tp = tp.__origin__
    return tp


class _Shape(NamedTuple):
    fields: dict[str, Any]  # by name on the wire
    hints: dict[str, Any]  # field types by Python name
    tag_field: str | None
    forbid: bool  # unknown fields are violations


# A message class's shape, worked out once: msgspec's type_info walks the
# whole type, and its field listing leaves a reference cycle per call, on
# every invalid request. Weak keys: a class let go is not kept for it.
_SHAPES: weakref.WeakKeyDictionary[Any, _Shape] = weakref.WeakKeyDictionary()


def _shape(cls: Any) -> _Shape:
    found = _SHAPES.get(cls)
    if found is None:
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType | mi.DataclassType | mi.TypedDictType)
        found = _SHAPES[cls] = _Shape(
            {f.encode_name: f for f in info.fields},
            _hints(cls),
            getattr(info, "tag_field", None),
            getattr(info, "forbid_unknown_fields", False),
        )
    return found


def _hints(cls: Any) -> dict[str, Any]:
    """The field types of a message class, by Python name (Any where unknown)."""
    if issubclass(cls, msgspec.Struct):  # as msgspec resolved them
        return {f.name: f.type for f in msgspec.structs.fields(cls)}
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:  # a name its module cannot resolve: judged as a whole
        return {}


def _is_message(tp: Any) -> bool:
    return isinstance(tp, type) and (
        issubclass(tp, msgspec.Struct) or dataclasses.is_dataclass(tp) or typing.is_typeddict(tp)
    )


def _tag(tp: Any) -> str | None:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        info = mi.type_info(tp)
        if isinstance(info, mi.StructType):
            return info.tag_field
    return None
