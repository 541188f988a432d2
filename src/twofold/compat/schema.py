"""Compare two JSON Schemas (OpenAPI 3.1) as a client sees them, in one direction.

A schema is a set of values. In a **request** the client writes and the
server reads: the new schema must accept every value the old one did, so
narrowing it breaks clients (a type gone, an enum value removed, a bound
raised, a property newly required). In a **response** the server writes and
the client reads: the new schema must produce only values the old one
allowed, so widening it breaks clients (a type or null added, an enum value
or a union variant added, a bound removed, a property removed or made
optional). A regular expression cannot be proven to accept what another
accepts, so a changed ``pattern`` counts as narrowing in a request and as
widening in a response.
"""

from __future__ import annotations

import enum
import json
import math
from typing import Any, TypeGuard

from twofold.compat.report import OPENAPI, ContractError, Finding

Node = dict[str, Any]


class Direction(enum.Enum):
    REQUEST = "request"
    RESPONSE = "response"


class Document:
    """An OpenAPI document, with its local ``$ref`` s resolved on demand."""

    def __init__(self, data: object, label: str) -> None:
        if not isinstance(data, dict):
            raise ContractError(f"{label}: an OpenAPI document is a JSON object")
        version = data.get("openapi")
        if not isinstance(version, str) or not version.startswith("3."):
            raise ContractError(f"{label}: not an OpenAPI 3 document (no 'openapi': '3.x')")
        self.data: Node = data
        self.label = label

    def resolve(self, node: object, where: str) -> tuple[Any, str | None]:
        """``node`` with its ``$ref`` (chain) followed, and the last reference followed."""
        ref = None
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                raise ContractError(f"{self.label}: {where}: $ref {ref!r} refers to itself")
            seen.add(ref)
            node = self._pointer(ref, where)
        return node, ref

    def _pointer(self, ref: str, where: str) -> object:
        if not ref.startswith("#/"):
            raise ContractError(f"{self.label}: {where}: only local $refs are read, not {ref!r}")
        node: object = self.data
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise ContractError(f"{self.label}: {where}: $ref {ref!r} points at nothing")
        return node


# A widening of a format: old -> new accepts every old value.
WIDER_FORMAT = {("int32", "int64"), ("float", "double"), ("int32", "double"), ("int64", "double")}
# Lower and upper bounds: (keyword, exclusive keyword) for numbers, then the counts.
NUMBER_BOUNDS = (("minimum", "exclusiveMinimum", "min"), ("maximum", "exclusiveMaximum", "max"))
COUNT_BOUNDS = (
    ("minLength", "min"),
    ("maxLength", "max"),
    ("minItems", "min"),
    ("maxItems", "max"),
    ("minProperties", "min"),
    ("maxProperties", "max"),
)
UNIONS = ("oneOf", "anyOf")


class SchemaDiff:
    """Compares schemas of two documents and appends a :class:`Finding` per breaking change.

    ``readOnly`` properties never appear in a request and ``writeOnly`` ones
    never in a response: changes to them are not judged in that direction.
    """

    def __init__(self, old: Document, new: Document, out: list[Finding]) -> None:
        self.old = old
        self.new = new
        self.out = out
        self._active: set[tuple[str, str, Direction]] = set()
        # What comparing two referenced schemas found, relative to where they were
        # reached: a component used by many operations (or many times in one
        # schema) is compared once, so a document cannot make the walk exponential.
        self._cache: dict[tuple[str, str, Direction], list[tuple[str, str, str]]] = {}
        self._cuts = 0
        # (where, key) already reported: a component reached by several paths of one
        # body is reported at the first, or a document could make the report itself
        # exponential (each level of a schema referring twice to the next doubles it).
        self._reported: set[tuple[str, tuple[str, str, Direction]]] = set()

    def compare(self, old: object, new: object, d: Direction, where: str, path: str = "") -> None:
        old, old_ref = self.old.resolve(old, where)
        new, new_ref = self.new.resolve(new, where)
        if not (old_ref and new_ref):
            self._compare(_schema(old, where), _schema(new, where), d, where, path)
            return
        key = (old_ref, new_ref, d)
        found = self._cache.get(key)
        if found is None:
            if key in self._active:
                # A recursive type (a tree of categories): its changes were or will be
                # reported where the walk first reached it.
                self._cuts += 1
                return
            found = self._walk(key, _schema(old, where), _schema(new, where), where)
        if (where, key) in self._reported:
            return
        self._reported.add((where, key))
        for rule, rel, message in found:
            at = _extend(path, rel)
            self.out.append(Finding(OPENAPI, rule, f"{where} {at}" if at else where, message))

    def _walk(
        self, key: tuple[str, str, Direction], old: Node, new: Node, where: str
    ) -> list[tuple[str, str, str]]:
        saved, self.out = self.out, []
        cuts = self._cuts
        self._active.add(key)
        try:
            self._compare(old, new, key[2], where, "")
            found = [(f.rule, f.location[len(where) :].strip(), f.message) for f in self.out]
        finally:
            self.out = saved
            self._active.discard(key)
        if self._cuts == cuts:  # not cut short by a cycle: the same wherever it is reached
            self._cache[key] = found
        return found

    def accepts(self, old: object, new: object, d: Direction, where: str) -> bool:
        """Whether comparing ``old`` with ``new`` finds nothing (used to match union variants)."""
        trial = SchemaDiff(self.old, self.new, [])
        trial._active = set(self._active)
        trial._cache = self._cache
        trial._reported = set(self._reported)
        trial.compare(old, new, d, where)
        self._cuts += trial._cuts
        return not trial.out

    def _add(self, rule: str, d: Direction, where: str, path: str, message: str) -> None:
        at = f"{where} {path}" if path else where
        self.out.append(Finding(OPENAPI, f"{d.name}_{rule}", at, message))

    def _compare(self, old: Node, new: Node, d: Direction, where: str, path: str) -> None:
        old, old_null = self._unwrap_null(self.old, old, where)
        new, new_null = self._unwrap_null(self.new, new, where)
        if d is Direction.REQUEST and old_null and not new_null:
            self._add("NULL_REMOVED", d, where, path, "null is no longer accepted")
        if d is Direction.RESPONSE and new_null and not old_null:
            self._add("NULL_ADDED", d, where, path, "may now be null")
        old = self._flatten(self.old, old, where)
        new = self._flatten(self.new, new, where)
        if self._unions(old, new, d, where, path):
            return
        if not self._types(old, new, d, where, path):
            return
        self._format(old, new, d, where, path)
        self._enum(old, new, d, where, path)
        self._bounds(old, new, d, where, path)
        self._pattern(old, new, d, where, path)
        self._object(old, new, d, where, path)
        self._array(old, new, d, where, path)

    # -- null, allOf, unions ---------------------------------------------------

    def _unwrap_null(self, doc: Document, node: Node, where: str) -> tuple[Node, bool]:
        """``T | None`` spelled ``anyOf: [T, {type: null}]`` (or oneOf), ``type: [.., null]``
        or 3.0's ``nullable``: T, and whether null is allowed."""
        nullable = node.get("nullable") is True
        types = node.get("type")
        if isinstance(types, list) and "null" in types:
            rest = [t for t in types if t != "null"]
            node = {**node, "type": rest[0] if len(rest) == 1 else rest}
            nullable = True
        for keyword in UNIONS:
            members = node.get(keyword)
            if not isinstance(members, list):
                continue
            resolved = [doc.resolve(m, where)[0] for m in members]
            others = [m for m, r in zip(members, resolved, strict=True) if not _is_null(r)]
            if len(others) < len(members):
                nullable = True
                rest_node = {k: v for k, v in node.items() if k != keyword}
                if len(others) == 1:
                    inner, _ = doc.resolve(others[0], where)
                    node = {**rest_node, **_schema(inner, where)}
                else:
                    node = {**rest_node, keyword: others}
        return node, nullable

    def _flatten(
        self, doc: Document, node: Node, where: str, seen: frozenset[str] = frozenset()
    ) -> Node:
        """``allOf`` merged into one schema: every property and requirement of each part."""
        parts = node.get("allOf")
        if not isinstance(parts, list):
            return node
        merged: Node = {k: v for k, v in node.items() if k != "allOf"}
        properties = dict(_dict(merged.get("properties"), where))
        required = list(_list(merged.get("required"), where))
        for part in parts:
            target, ref = doc.resolve(part, where)
            if ref in seen:
                raise ContractError(f"{doc.label}: {where}: {ref} is one of its own allOf parts")
            inner = seen | {ref} if ref else seen
            resolved = self._flatten(doc, _schema(target, where), where, inner)
            properties.update(_dict(resolved.get("properties"), where))
            required += [r for r in _list(resolved.get("required"), where) if r not in required]
            for key, value in resolved.items():
                merged.setdefault(key, value)
        if properties:
            merged["properties"] = properties
        if required:
            merged["required"] = required
        return merged

    def _unions(self, old: Node, new: Node, d: Direction, where: str, path: str) -> bool:
        """Compare oneOf/anyOf variants; True when the schemas were unions (and are done)."""
        old_kw = next((k for k in UNIONS if isinstance(old.get(k), list)), None)
        new_kw = next((k for k in UNIONS if isinstance(new.get(k), list)), None)
        if old_kw is None and new_kw is None:
            return False
        old_disc = _discriminator(old)
        new_disc = _discriminator(new)
        if old_disc and new_disc and old_disc != new_disc:
            self._add(
                "DISCRIMINATOR_CHANGED",
                d,
                where,
                path,
                f"the discriminator property changed from {old_disc!r} to {new_disc!r}",
            )
        old_variants = self._variants(self.old, old, old_kw, where)
        new_variants = self._variants(self.new, new, new_kw, where)
        if d is Direction.REQUEST:
            # Every value the old schema accepted must still match some new variant.
            for key, variant in old_variants.items():
                if key in new_variants:
                    self.compare(variant, new_variants[key], d, where, _join(path, f"<{key}>"))
                elif not any(self.accepts(variant, v, d, where) for v in new_variants.values()):
                    self._add(
                        "VARIANT_REMOVED",
                        d,
                        where,
                        path,
                        f"the variant {key} is no longer accepted",
                    )
        else:
            # Every value the new schema produces must match some old variant.
            for key, variant in new_variants.items():
                if key in old_variants:
                    self.compare(old_variants[key], variant, d, where, _join(path, f"<{key}>"))
                elif not any(self.accepts(v, variant, d, where) for v in old_variants.values()):
                    self._add(
                        "VARIANT_ADDED",
                        d,
                        where,
                        path,
                        f"the new variant {key} is one old clients do not know",
                    )
        return True

    def _variants(
        self, doc: Document, node: Node, keyword: str | None, where: str
    ) -> dict[str, Any]:
        """A union's members by a name that survives reordering: the discriminator value
        or referenced schema's name, else the title, else the position. A plain schema is
        a union of itself."""
        if keyword is None:
            return {_variant_name(node, None, 0): node}
        by_ref = {}
        mapping = _dict(_dict(node.get("discriminator"), where).get("mapping"), where)
        names = {ref: value for value, ref in mapping.items() if isinstance(ref, str)}
        for index, member in enumerate(_list(node[keyword], where)):
            ref = member.get("$ref") if isinstance(member, dict) else None
            resolved = doc.resolve(member, where)[0]
            name = names.get(ref) if ref else None
            by_ref[name or _variant_name(resolved, ref, index)] = member
        return by_ref

    # -- scalar keywords -------------------------------------------------------

    def _types(self, old: Node, new: Node, d: Direction, where: str, path: str) -> bool:
        """False when the types have nothing in common (nothing further to compare)."""
        old_types, new_types = _types(old), _types(new)
        if d is Direction.REQUEST:
            lost = _not_within(old_types, new_types)
        else:
            lost = _not_within(new_types, old_types)
        if lost:
            before = "any type" if old_types is None else " or ".join(sorted(old_types))
            after = "any type" if new_types is None else " or ".join(sorted(new_types))
            self._add("TYPE_CHANGED", d, where, path, f"type changed from {before} to {after}")
        if old_types is None or new_types is None:
            return True
        return bool(_widen(old_types) & _widen(new_types))

    def _format(self, old: Node, new: Node, d: Direction, where: str, path: str) -> None:
        before, after = old.get("format"), new.get("format")
        if before == after:
            return
        if d is Direction.REQUEST:
            broken = after is not None and (before, after) not in WIDER_FORMAT
        else:
            broken = before is not None and (after, before) not in WIDER_FORMAT
        if broken:
            self._add(
                "FORMAT_CHANGED",
                d,
                where,
                path,
                f"format changed from {before or 'none'} to {after or 'none'}",
            )

    def _enum(self, old: Node, new: Node, d: Direction, where: str, path: str) -> None:
        before, after = _enum(old, where), _enum(new, where)
        if before == after:
            return
        if d is Direction.REQUEST:
            if after is None:
                return
            if before is None:
                values = ", ".join(sorted(after.values()))
                self._add("ENUM_ADDED", d, where, path, f"only {values} are accepted now")
                return
            for key in sorted(before.keys() - after.keys()):
                self._add("ENUM_VALUE_REMOVED", d, where, path, f"{before[key]} is not accepted")
        else:
            if before is None:
                return
            if after is None:
                self._add("ENUM_REMOVED", d, where, path, "no longer limited to a list of values")
                return
            for key in sorted(after.keys() - before.keys()):
                self._add(
                    "ENUM_VALUE_ADDED",
                    d,
                    where,
                    path,
                    f"{after[key]} may be returned, which old clients do not know",
                )

    def _bounds(self, old: Node, new: Node, d: Direction, where: str, path: str) -> None:
        for keyword, exclusive, side in NUMBER_BOUNDS:
            b0 = _number_bound(old, keyword, exclusive, side)
            b1 = _number_bound(new, keyword, exclusive, side)
            self._bound(keyword, side, b0, b1, d, where, path)
        for keyword, side in COUNT_BOUNDS:
            v0, v1 = old.get(keyword), new.get(keyword)
            b0 = (float(v0), False) if _is_number(v0) else None
            b1 = (float(v1), False) if _is_number(v1) else None
            self._bound(keyword, side, b0, b1, d, where, path)
        m0, m1 = old.get("multipleOf"), new.get("multipleOf")
        if m0 != m1:
            # A new multipleOf narrows unless every old multiple is a new multiple too.
            narrower = _is_number(m1) and not (_is_number(m0) and _divides(m1, m0))
            wider = _is_number(m0) and not (_is_number(m1) and _divides(m0, m1))
            if (narrower and d is Direction.REQUEST) or (wider and d is Direction.RESPONSE):
                self._add("MULTIPLE_OF_CHANGED", d, where, path, f"multipleOf {m0} became {m1}")
        u0, u1 = old.get("uniqueItems") is True, new.get("uniqueItems") is True
        if d is Direction.REQUEST and u1 and not u0:
            self._add("UNIQUE_ITEMS_ADDED", d, where, path, "items must now be unique")
        if d is Direction.RESPONSE and u0 and not u1:
            self._add("UNIQUE_ITEMS_REMOVED", d, where, path, "items may now repeat")

    def _bound(
        self,
        keyword: str,
        side: str,
        old: tuple[float, bool] | None,
        new: tuple[float, bool] | None,
        d: Direction,
        where: str,
        path: str,
    ) -> None:
        if old == new:
            return
        narrower = _narrower(old, new, side)
        if d is Direction.REQUEST and narrower:
            self._add(
                "BOUND_NARROWED",
                d,
                where,
                path,
                f"{keyword} {_bound_text(old)} became {_bound_text(new)}",
            )
        elif d is Direction.RESPONSE and _narrower(new, old, side):
            self._add(
                "BOUND_WIDENED",
                d,
                where,
                path,
                f"{keyword} {_bound_text(old)} became {_bound_text(new)}",
            )

    def _pattern(self, old: Node, new: Node, d: Direction, where: str, path: str) -> None:
        before, after = old.get("pattern"), new.get("pattern")
        if before == after:
            return
        if (d is Direction.REQUEST and after is not None) or (
            d is Direction.RESPONSE and before is not None
        ):
            self._add(
                "PATTERN_CHANGED",
                d,
                where,
                path,
                f"pattern {before!r} became {after!r}"
                if before and after
                else f"pattern {after!r} added"
                if after
                else f"pattern {before!r} removed",
            )

    # -- objects and arrays ----------------------------------------------------

    def _object(self, old: Node, new: Node, d: Direction, where: str, path: str) -> None:
        old_props = _dict(old.get("properties"), where)
        new_props = _dict(new.get("properties"), where)
        old_required = _names(old.get("required"), where)
        new_required = _names(new.get("required"), where)
        hidden = "readOnly" if d is Direction.REQUEST else "writeOnly"

        def unseen(name: str) -> bool:
            return any(
                _schema(doc.resolve(props.get(name, {}), where)[0], where).get(hidden) is True
                for doc, props in ((self.old, old_props), (self.new, new_props))
            )

        if d is Direction.REQUEST:
            for name in sorted(new_required - old_required):
                if unseen(name):
                    continue
                if name in old_props:
                    self._add(
                        "PROPERTY_BECAME_REQUIRED", d, where, _join(path, name), "now required"
                    )
                else:
                    self._add(
                        "NEW_REQUIRED_PROPERTY",
                        d,
                        where,
                        _join(path, name),
                        "a new property every request must now carry",
                    )
            extra = new.get("additionalProperties", new.get("unevaluatedProperties"))
            for name in sorted(old_props.keys() - new_props.keys()):
                if unseen(name):
                    continue
                if extra is False:
                    self._add(
                        "PROPERTY_REMOVED",
                        d,
                        where,
                        _join(path, name),
                        "removed, and the schema refuses unknown properties: requests "
                        "that send it are now rejected",
                    )
                elif isinstance(extra, dict):
                    self.compare(old_props[name], extra, d, where, _join(path, name))
            old_extra = old.get("additionalProperties", old.get("unevaluatedProperties"))
            if extra is False and old_extra is not False:
                self._add(
                    "ADDITIONAL_PROPERTIES_REFUSED",
                    d,
                    where,
                    path,
                    "properties beyond the listed ones are now rejected",
                )
        else:
            for name in sorted(old_props.keys() - new_props.keys()):
                if unseen(name):
                    continue
                what = "required" if name in old_required else "optional"
                self._add(
                    "PROPERTY_REMOVED",
                    d,
                    where,
                    _join(path, name),
                    f"removed (it was {what}): clients that read it break",
                )
            for name in sorted((old_required - new_required) & new_props.keys()):
                if not unseen(name):
                    self._add(
                        "PROPERTY_BECAME_OPTIONAL",
                        d,
                        where,
                        _join(path, name),
                        "no longer always present",
                    )
        for name in sorted(old_props.keys() & new_props.keys()):
            if not unseen(name):
                self.compare(old_props[name], new_props[name], d, where, _join(path, name))
        old_map, new_map = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_map, dict) and isinstance(new_map, dict):
            self.compare(old_map, new_map, d, where, _join(path, "*"))

    def _array(self, old: Node, new: Node, d: Direction, where: str, path: str) -> None:
        old_items, new_items = old.get("items"), new.get("items")
        if isinstance(old_items, dict) and isinstance(new_items, dict):
            self.compare(old_items, new_items, d, where, path + "[]")
        old_prefix = _list(old.get("prefixItems"), where)
        new_prefix = _list(new.get("prefixItems"), where)
        for index, (a, b) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.compare(a, b, d, where, f"{path}[{index}]")


# -- helpers ---------------------------------------------------------------------


def _schema(node: object, where: str) -> Node:
    """A schema as a dict: ``true`` is ``{}``; ``false`` accepts nothing."""
    if node is True:
        return {}
    if node is False:
        return {"not": {}}
    if not isinstance(node, dict):
        raise ContractError(f"{where}: a schema is an object, not {type(node).__name__}")
    return node


def _dict(node: object, where: str) -> Node:
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ContractError(f"{where}: expected an object, found {type(node).__name__}")
    return node


def _list(node: object, where: str) -> list[Any]:
    if node is None:
        return []
    if not isinstance(node, list):
        raise ContractError(f"{where}: expected an array, found {type(node).__name__}")
    return node


def _names(node: object, where: str) -> set[str]:
    return {name for name in _list(node, where) if isinstance(name, str)}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _extend(path: str, rel: str) -> str:
    """``rel``, a path found below a schema, from where ``path`` reached that schema."""
    if not rel or not path:
        return path or rel
    return path + rel if rel.startswith("[") else f"{path}.{rel}"


def _is_null(node: object) -> bool:
    return isinstance(node, dict) and (node.get("type") == "null" or node.get("const", 0) is None)


def _discriminator(node: Node) -> str | None:
    disc = node.get("discriminator")
    name = disc.get("propertyName") if isinstance(disc, dict) else None
    return name if isinstance(name, str) else None


def _variant_name(node: object, ref: str | None, index: int) -> str:
    if ref:
        return ref.rsplit("/", 1)[-1]
    if isinstance(node, dict) and isinstance(node.get("title"), str):
        return str(node["title"])
    if isinstance(node, dict) and isinstance(node.get("type"), str):
        return str(node["type"])
    return f"#{index}"


def _types(node: Node) -> set[str] | None:
    """The JSON types a schema allows (null aside); None when it does not say."""
    kinds = node.get("type")
    if isinstance(kinds, str):
        return {kinds}
    if isinstance(kinds, list):
        return {k for k in kinds if isinstance(k, str) and k != "null"}
    if "properties" in node or "additionalProperties" in node:
        return {"object"}
    if "items" in node or "prefixItems" in node:
        return {"array"}
    return None


def _widen(kinds: set[str]) -> set[str]:
    # Every integer is a number: {"integer"} and {"number"} overlap.
    return kinds | ({"number"} if "integer" in kinds else set())


def _not_within(inner: set[str] | None, outer: set[str] | None) -> set[str]:
    """The types of ``inner`` that ``outer`` does not allow (an integer is a number)."""
    if outer is None:
        return set()
    if inner is None:
        return {"any"}
    return {t for t in inner if t not in outer and not (t == "integer" and "number" in outer)}


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _enum(node: Node, where: str) -> dict[str, str] | None:
    if "const" in node:
        values = [node["const"]]
    elif "enum" in node:
        values = _list(node["enum"], where)
    else:
        return None
    return {_canonical(v): _canonical(v) for v in values}


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_bound(node: Node, keyword: str, exclusive: str, side: str) -> tuple[float, bool] | None:
    """The tightest of ``minimum`` and ``exclusiveMinimum`` (3.1 numbers, or 3.0's boolean)."""
    bounds = []
    value, strict = node.get(keyword), node.get(exclusive)
    if _is_number(value):
        bounds.append((float(value), strict is True))
    if _is_number(strict):
        bounds.append((float(strict), True))
    if not bounds:
        return None
    if side == "min":
        return max(bounds, key=lambda b: (b[0], b[1]))
    return min(bounds, key=lambda b: (b[0], not b[1]))


def _narrower(old: tuple[float, bool] | None, new: tuple[float, bool] | None, side: str) -> bool:
    """Whether bound ``new`` lets through less than ``old`` (None: unbounded)."""
    if new is None:
        return False
    if old is None:
        return True
    if side == "min":
        return new[0] > old[0] or (new[0] == old[0] and new[1] and not old[1])
    return new[0] < old[0] or (new[0] == old[0] and new[1] and not old[1])


def _bound_text(bound: tuple[float, bool] | None) -> str:
    if bound is None:
        return "none"
    value = int(bound[0]) if bound[0].is_integer() else bound[0]
    return f"{value} (exclusive)" if bound[1] else str(value)


def _divides(divisor: float, value: float) -> bool:
    if divisor == 0:
        return False
    ratio = value / divisor
    if not math.isfinite(ratio) or (ratio == 0 and value != 0):
        return False  # NaN, an overflow or an underflow: nothing can be proven
    return math.isclose(ratio, round(ratio), rel_tol=0, abs_tol=1e-9)
