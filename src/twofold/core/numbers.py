"""JSON numbers as the published schema reads them, where msgspec reads them otherwise.

JSON has one number type, and JSON Schema (hence OpenAPI) says an ``integer``
is any number with no fractional part, so ``2.0`` is the integer 2; proto3
JSON parsers agree. msgspec's strict decoding refuses ``2.0`` for an ``int``.
The other way round, a ``Decimal`` is documented as a string matching a
pattern (``"22.00"``: a JSON number would pass through a client's float
first), yet msgspec accepts a number for it, and strings such as ``"1e2"``
or ``"1_000"``. :class:`Decoder` is msgspec's typed JSON decoder with both
edges made to match the schema: an integral number is taken for an ``int``,
and a Decimal is held to its published rule (:mod:`twofold.core.decimals`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import msgspec
from msgspec import inspect as mi

from twofold.core import decimals, violations

T = TypeVar("T")
Path = tuple[str, ...]
# A path step that stands for every item of a list or value of a map.
EACH = "*"
_SEQUENCES = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)
_decode_any = msgspec.json.Decoder().decode


class Decoder(Generic[T]):
    """``msgspec.json.Decoder(tp)``, reading numbers as the JSON Schema of ``tp`` does.

    The fast path is unchanged: the typed decoder runs first, and a type with no
    ``int`` or ``Decimal`` anywhere pays nothing more. A body it refuses is
    walked for every violation (:mod:`twofold.core.violations`). A whole float is only
    looked for after msgspec has refused the body; checking Decimals costs one
    untyped parse of bodies whose type has a ``Decimal``.
    """

    def __init__(self, tp: type[T]) -> None:
        self.type = tp
        self._typed = msgspec.json.Decoder(tp)
        self.ints: list[Path] = []
        _collect(mi.type_info(tp), (), self, set())
        self.decimals = decimals.checker(tp)

    def decode(self, raw: bytes | bytearray | memoryview | str) -> T:
        try:
            value = self._typed.decode(raw)
        except msgspec.ValidationError as exc:
            tree = _decode_any(raw)
            # Every whole float made an int (``any`` would stop at the first).
            if self.ints and any([_whole_floats(tree, path) for path in self.ints]):
                try:
                    value = msgspec.convert(tree, self.type)
                except msgspec.ValidationError:
                    pass  # more than whole floats is wrong: every violation below
                else:
                    return self._checked(value, tree)
            # Refused: the slow path names every violation, not only the first.
            raise violations.every(self.type, tree, exc) from None
        if self.decimals is not None:
            tree = _decode_any(raw)
            try:
                self.decimals(tree)
            except msgspec.ValidationError as exc:
                raise violations.every(self.type, tree, exc) from None
        return value

    def _checked(self, value: T, tree: Any) -> T:
        if self.decimals is not None:
            try:
                self.decimals(tree)
            except msgspec.ValidationError as exc:
                raise violations.every(self.type, tree, exc) from None
        return value


def _collect(node: mi.Type, path: Path, into: Decoder[Any], seen: set[Any]) -> None:
    """Record where ints sit in the type ``node``."""
    if isinstance(node, mi.Metadata):
        _collect(node.type, path, into, seen)
    elif isinstance(node, mi.IntType):
        into.ints.append(path)
    elif isinstance(node, (mi.StructType, mi.DataclassType, mi.TypedDictType)):
        if node.cls in seen:  # a recursive message: its fields are recorded once
            return
        seen = seen | {node.cls}
        for field in node.fields:
            _collect(field.type, (*path, field.encode_name), into, seen)
    elif isinstance(node, _SEQUENCES):
        _collect(node.item_type, (*path, EACH), into, seen)
    elif isinstance(node, mi.DictType):
        _collect(node.value_type, (*path, EACH), into, seen)
    elif isinstance(node, mi.UnionType):
        for member in node.types:
            _collect(member, path, into, seen)


def _children(value: Any, step: str) -> Iterator[tuple[Any, Any]]:
    """(container, key) of what ``step`` names in a parsed JSON ``value``."""
    if step == EACH:
        if isinstance(value, list):
            yield from ((value, i) for i in range(len(value)))
        elif isinstance(value, dict):
            yield from ((value, k) for k in value)
    elif isinstance(value, dict) and step in value:
        yield value, step


def _whole_floats(tree: Any, path: Path) -> bool:
    """Make every whole float at ``path`` an int; True if there was one."""
    if not path:
        return False  # the top level of a message is an object
    changed = False
    *parents, last = path
    holders: list[Any] = [tree]
    for step in parents:
        holders = [container[key] for h in holders for container, key in _children(h, step)]
    for holder in holders:
        for container, key in _children(holder, last):
            item = container[key]
            if isinstance(item, float) and item.is_integer():
                container[key] = int(item)
                changed = True
    return changed
