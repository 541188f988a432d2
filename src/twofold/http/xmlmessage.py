"""Messages as XML on REST: the one mapping between msgspec types and elements.

The root element is the message's name; each field with a value is an
element of its name (None is absent); a list is its element repeated; a
nested message nests; a map holds ``<entry><key/><value/></entry>``; a
scalar is its JSON text unquoted (Decimals, int64, RFC 3339 datetimes,
base64 bytes, ``true``/``false``). docs/xml.md is the full statement.

Reading builds the tree of builtins a JSON body would parse to, guided by
the type, so that one lenient conversion (every scalar arrives as text) and
one walk for every violation (:mod:`twofold.core.violations`) serve both
representations; a shape the type cannot take (an element repeated where
one is expected) stays in the tree for that walk to report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import msgspec
from msgspec import inspect as mi

from twofold.core import decimals, violations
from twofold.http.xmlrpcvalue import NOT_XML

XML = b"application/xml"
PROBLEM_XML = b"application/problem+xml"
# RFC 9457 Appendix B: the problem document's XML namespace.
PROBLEM_NS = "urn:ietf:rfc:7807"

_SEQUENCES = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)


class Unrepresentable(ValueError):
    """A value XML 1.0 cannot carry (a control character in a string)."""


@dataclass(slots=True)
class Plan:
    """How one type is read from and written to elements, worked out once per type."""

    kind: str  # "struct", "list", "map", "union", "bool", "float", "text", "str"
    fields: dict[str, Plan] = field(default_factory=dict)  # struct: encode name -> plan
    required_empty: dict[str, Any] = field(default_factory=dict)  # absent -> this value
    item: Plan | None = None  # list items, map values, the one member of an Optional
    tag_field: str | None = None  # a tagged union: the field naming the variant
    variants: dict[str, Plan] = field(default_factory=dict)


_PLANS: dict[Any, Plan] = {}


def plan(tp: Any) -> Plan:
    """The plan of ``tp`` (cached: the REST operation builds it once)."""
    found = _PLANS.get(tp)
    if found is None:
        found = _PLANS[tp] = _Planner().node(mi.type_info(tp))
    return found


class _Planner:
    def __init__(self) -> None:
        self.structs: dict[Any, Plan] = {}

    def node(self, node: mi.Type) -> Plan:
        if isinstance(node, mi.Metadata):
            return self.node(node.type)
        if isinstance(node, mi.StructType | mi.DataclassType):
            return self.struct(node)
        if isinstance(node, _SEQUENCES):
            return Plan("list", item=self.node(node.item_type))
        if isinstance(node, mi.DictType):
            return Plan("map", item=self.node(node.value_type))
        if isinstance(node, mi.UnionType):
            members = [t for t in node.types if not isinstance(t, mi.NoneType)]
            if len(members) == 1:
                return self.node(members[0])
            structs = [t for t in members if isinstance(t, mi.StructType)]
            if structs and len(structs) == len(members) and structs[0].tag_field is not None:
                return Plan(
                    "union",
                    tag_field=structs[0].tag_field,
                    variants={str(t.tag): self.struct(t) for t in structs},
                )
            return Plan("text")
        if isinstance(node, mi.BoolType):
            return Plan("bool")
        if isinstance(node, mi.FloatType):
            return Plan("float")
        if isinstance(node, mi.StrType):
            return Plan("str")
        return Plan("text")

    def struct(self, node: mi.StructType | mi.DataclassType) -> Plan:
        known = self.structs.get(node.cls)
        if known is not None:  # a recursive message: the same plan, filled below
            return known
        out = self.structs[node.cls] = Plan("struct")
        for f in node.fields:
            sub = self.node(f.type)
            out.fields[f.encode_name] = sub
            if f.required:
                if sub.kind == "list":
                    out.required_empty[f.encode_name] = []
                elif _admits_none(f.type):
                    out.required_empty[f.encode_name] = None
        return out


def _admits_none(node: mi.Type) -> bool:
    if isinstance(node, mi.Metadata):
        return _admits_none(node.type)
    if isinstance(node, mi.NoneType):
        return True
    return isinstance(node, mi.UnionType) and any(isinstance(t, mi.NoneType) for t in node.types)


def root_name(tp: Any) -> str:
    """The root element of a message of type ``tp``: its name."""
    return getattr(tp, "__name__", "value")


# Writing -------------------------------------------------------------------


def encode(value: Any, tp: Any, root: str | None = None) -> bytes:
    """``value`` (of type ``tp``) as an XML document; raises :class:`Unrepresentable`."""
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _write(msgspec.to_builtins(value), plan(tp), root or root_name(tp), out)
    return "".join(out).encode()


def document(tree: Any, root: str) -> bytes:
    """A JSON-like tree (dicts, lists, scalars) as an XML document, with no type
    to guide it: dicts are messages. Raises :class:`Unrepresentable`."""
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _write(tree, _TEXT, root, out)
    return "".join(out).encode()


def _write(value: Any, p: Plan, name: str, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, list):
        item = p.item if p.kind == "list" and p.item is not None else Plan("text")
        for v in value:
            if isinstance(v, list):  # a list in a list: an element of <item>s
                out.append(f"<{name}>")
                _write(v, item, "item", out)
                out.append(f"</{name}>")
            elif v is None:
                out.append(f"<{name}/>")
            else:
                _write(v, item, name, out)
        return
    out.append(f"<{name}>")
    if isinstance(value, dict):
        if p.kind == "map":
            sub = p.item or Plan("text")
            for k, v in value.items():
                out.append(f"<entry><key>{_text(str(k))}</key>")
                _write(v, sub, "value", out)
                out.append("</entry>")
        else:
            if p.kind == "union" and p.tag_field is not None:
                p = p.variants.get(str(value.get(p.tag_field)), p)
            for k, v in value.items():
                _write(v, p.fields.get(k, _TEXT), k, out)
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_text(value))
    elif isinstance(value, float):
        out.append(_double(value))
    else:
        out.append(str(value))
    out.append(f"</{name}>")


_TEXT = Plan("text")


# A CR would reach the reader as LF (XML's end-of-line handling): sent as a reference.
_ENTITIES = {"\r": "&#13;"}


def _text(value: str) -> str:
    if NOT_XML.search(value):
        raise Unrepresentable("a string holds a character XML 1.0 cannot carry")
    return escape(value, _ENTITIES)


def representable(value: Any) -> bool:
    """False when a string anywhere in ``value`` holds a character XML 1.0 cannot
    carry: a request echoing it could not be answered in XML, so it is refused
    before it runs rather than after it has written."""
    pending = [msgspec.to_builtins(value)]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if NOT_XML.search(item):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _double(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(value)


def text(value: str) -> str:
    """``value`` escaped for element text, what XML 1.0 cannot carry replaced by U+FFFD
    (for error documents, which must be sent whatever they quote)."""
    return escape(NOT_XML.sub("\ufffd", value), _ENTITIES)


# Reading -------------------------------------------------------------------


def tree(element: Element, p: Plan) -> Any:
    """The builtins a JSON body would parse to for the message ``element`` holds."""
    if p.kind == "struct":
        return _struct(element, p)
    if p.kind == "union":
        return _union(element, p)
    if p.kind == "map":
        return _map(element, p)
    if p.kind == "list":
        # A list in a list: its items are <item> elements.
        item = p.item or _TEXT
        return [tree(child, item) for child in element]
    if len(element):
        return _loose(element)
    raw = element.text or ""
    if p.kind == "str":
        return raw
    raw = raw.strip()
    if p.kind == "bool":
        return _BOOLS.get(raw, raw)
    if p.kind == "float":
        return _DOUBLES.get(raw, raw)
    return raw


_BOOLS = {"true": True, "false": False, "1": True, "0": False}
_DOUBLES = {"INF": math.inf, "-INF": -math.inf, "NaN": math.nan}


def _struct(element: Element, p: Plan) -> Any:
    if len(element) == 0 and (element.text or "").strip():
        return element.text  # text where a message belongs: the walk reports it
    out: dict[str, Any] = {}
    for child in element:
        name = child.tag
        sub = p.fields.get(name)
        if sub is None:
            # Unknown: kept, so that a message that forbids unknown fields
            # refuses it as its JSON decoder would, and one that does not ignores it.
            out[name] = _loose(child)
        elif sub.kind == "list":
            out.setdefault(name, []).extend(_items(child, sub))
        elif name in out:
            # An element repeated where one value is expected: every value, a
            # list the walk reports as the wrong type.
            before = out[name]
            values = before if isinstance(before, _Many) else _Many([before])
            values.append(tree(child, sub))
            out[name] = values
        else:
            out[name] = tree(child, sub)
    for name, empty in p.required_empty.items():
        if name not in out:
            out[name] = [] if isinstance(empty, list) else empty
    return {k: (list(v) if isinstance(v, _Many) else v) for k, v in out.items()}


class _Many(list[Any]):
    """The values of an element repeated where one was expected."""


def _items(element: Element, p: Plan) -> list[Any]:
    assert p.item is not None
    if p.item.kind == "list":
        return [[tree(child, p.item.item or _TEXT) for child in element]]
    return [tree(element, p.item)]


def _union(element: Element, p: Plan) -> Any:
    assert p.tag_field is not None
    tag = element.find(p.tag_field)
    variant = p.variants.get((tag.text or "").strip()) if tag is not None else None
    return _loose(element) if variant is None else _struct(element, variant)


def _map(element: Element, p: Plan) -> Any:
    out: dict[str, Any] = {}
    for entry in element:
        key, value = entry.find("key"), entry.find("value")
        if entry.tag != "entry" or key is None:
            return _loose(element)
        out[key.text or ""] = tree(value, p.item or _TEXT) if value is not None else None
    return out


def _loose(element: Element) -> Any:
    """An element read without a type: text, or a dict of its children."""
    if len(element) == 0:
        return element.text or ""
    out: dict[str, Any] = {}
    for child in element:
        out[child.tag] = _loose(child)
    return out


class Reader:
    """Reads a message of ``tp`` from its root element, as ``numbers.Decoder`` does JSON."""

    def __init__(self, tp: Any, root: str) -> None:
        self.type = tp
        self.root = root
        self.plan = plan(tp)
        self.decimals: Callable[[Any], None] | None = decimals.checker(tp)

    def read(self, element: Element) -> Any:
        if element.tag != self.root:
            raise violations.Invalid([("", f"expected the root element <{self.root}>")])
        found = tree(element, self.plan)
        try:
            value = msgspec.convert(found, self.type, strict=False)
        except msgspec.ValidationError as exc:
            raise violations.every(self.type, found, exc, strict=False) from None
        if self.decimals is not None:
            try:
                self.decimals(found)
            except msgspec.ValidationError as exc:
                raise violations.every(self.type, found, exc, strict=False) from None
        return value
