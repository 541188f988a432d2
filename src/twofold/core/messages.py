"""Facts about message types that protocols need: fields, their kinds, sub-structs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import msgspec
from msgspec import inspect as mi

_NODEFAULT: Any = msgspec.NODEFAULT


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: Any
    default: Any = _NODEFAULT
    default_factory: Any = _NODEFAULT

    @property
    def required(self) -> bool:
        return self.default is _NODEFAULT and self.default_factory is _NODEFAULT

    def spec(self) -> tuple[Any, ...]:
        """The (name, type[, default]) tuple ``msgspec.defstruct`` takes."""
        if self.default_factory is not _NODEFAULT:
            return (self.name, self.type, msgspec.field(default_factory=self.default_factory))
        if self.default is not _NODEFAULT:
            return (self.name, self.type, self.default)
        return (self.name, self.type)


def fields(tp: type[Any]) -> list[Field]:
    """The fields of a Struct or dataclass message, with their annotated types."""
    if issubclass(tp, msgspec.Struct):
        return [
            Field(f.name, f.type, f.default, f.default_factory) for f in msgspec.structs.fields(tp)
        ]
    hints = _hints(tp)
    out = []
    for f in dataclasses.fields(tp):
        default = _NODEFAULT if f.default is dataclasses.MISSING else f.default
        factory = _NODEFAULT if f.default_factory is dataclasses.MISSING else f.default_factory
        out.append(Field(f.name, hints.get(f.name, f.type), default, factory))
    return out


def _hints(tp: type[Any]) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(tp, include_extras=True)


def subset(name: str, source: type[Any], names: Iterable[str], module: str) -> type[Any]:
    """A Struct with some of ``source``'s fields, same types, constraints and defaults.

    The same arguments give the same class, so the REST decoder and the
    OpenAPI schema describe one type.
    """
    key = (name, source, frozenset(names), module)
    cls = _SUBSETS.get(key)
    if cls is None:
        specs = [f.spec() for f in fields(source) if f.name in key[2]]
        cls = msgspec.defstruct(
            name, specs, kw_only=True, forbid_unknown_fields=True, module=module
        )
        cls.__qualname__ = f"{source.__qualname__}.{name}"
        _SUBSETS[key] = cls
    return cls


_SUBSETS: dict[tuple[str, type[Any], frozenset[str], str], type[Any]] = {}


def is_repeated(tp: Any) -> bool:
    """True for list/set/tuple-of-any-length fields: repeated query parameters."""
    info = mi.type_info(tp)
    if isinstance(info, mi.Metadata):
        info = info.type
    if isinstance(info, mi.UnionType):
        return any(
            isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType)
            for t in info.types
        )
    return isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType)


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def is_int32(tp: Any) -> bool:
    """True when an int's Meta bounds fit int32; a bare ``int`` is int64.

    This is the one int rule, shared by protobuf, proto3 JSON (int64 goes
    over JSON as a string) and the OpenAPI document, so all three agree.
    """
    info = mi.type_info(tp)
    if isinstance(info, mi.Metadata):
        info = info.type
    if not isinstance(info, mi.IntType):
        return False
    low = info.ge if info.ge is not None else (info.gt + 1 if info.gt is not None else None)
    high = info.le if info.le is not None else (info.lt - 1 if info.lt is not None else None)
    return low is not None and high is not None and low >= INT32_MIN and high <= INT32_MAX
