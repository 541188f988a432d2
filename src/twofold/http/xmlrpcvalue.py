"""XML-RPC values to and from the builtins msgspec converts (docs/xmlrpc.md has the table).

Reading: ``<int>``/``<i4>``/``<i8>`` are ints, ``<double>`` a float,
``<boolean>`` 0/1, ``<string>`` or bare text a str, ``<dateTime.iso8601>``
a UTC datetime, ``<base64>`` bytes, ``<struct>`` a dict, ``<array>`` a list,
``<nil/>`` None. Writing: an int outside i4 is ``<i8>``, a Decimal and a
datetime are strings as in JSON (RFC 3339 keeps the zone and the
microseconds that ``dateTime.iso8601`` cannot), None in a struct is left out.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

I4 = range(-(2**31), 2**31)
I8 = range(-(2**63), 2**63)
# Characters XML 1.0 cannot carry, escaped or not (its Char production).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_DATETIME_FORMATS = ("%Y%m%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%dT%H%M%S")


class NotXml(ValueError):
    """A string holds a character XML 1.0 cannot carry (U+0000, most C0 controls)."""


class BadValue(ValueError):
    """A ``<value>`` that is not one of XML-RPC's types, or whose text is not of its type."""


def read(value: Element) -> Any:
    """The builtin a ``<value>`` element carries (the tree is depth-bounded already)."""
    children = list(value)
    if not children:
        return value.text or ""  # a bare value is a string (spec)
    if len(children) > 1:
        raise BadValue("a <value> holds one typed element")
    node = children[0]
    tag = node.tag
    text = (node.text or "").strip()
    try:
        if tag in ("int", "i4", "i8"):
            return int(text, 10)
        if tag == "string":
            return node.text or ""
        if tag == "boolean":
            if text not in ("0", "1"):
                raise BadValue("a <boolean> is 0 or 1")
            return text == "1"
        if tag == "double":
            return float(text)
        if tag == "dateTime.iso8601":
            return _datetime(text)
        if tag == "base64":
            return base64.b64decode(text, validate=False)
        if tag == "struct":
            return _struct(node)
        if tag == "array":
            data = node.find("data")
            if data is None:
                raise BadValue("an <array> holds a <data>")
            return [read(item) for item in data.findall("value")]
        if tag == "nil":
            return None
    except (ValueError, binascii.Error) as exc:
        if isinstance(exc, BadValue):
            raise
        raise BadValue(f"<{tag}> {text[:40]!r} is not a valid {tag}") from None
    raise BadValue(f"<{tag}> is not an XML-RPC type")


def _struct(node: Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for member in node.findall("member"):
        name, value = member.find("name"), member.find("value")
        if name is None or value is None:
            raise BadValue("a struct <member> holds a <name> and a <value>")
        out[name.text or ""] = read(value)
    return out


def _datetime(text: str) -> datetime:
    # XML-RPC's dateTime has no zone; we read it as UTC, the zone we document.
    for layout in _DATETIME_FORMATS:
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(text)


def _text(value: str) -> str:
    if NOT_XML.search(value):
        raise NotXml("a string holds a character XML 1.0 cannot carry")
    return escape(value)


def write(value: Any) -> str:
    """A ``<value>`` element for a builtin (what ``msgspec.to_builtins`` gives, bytes kept)."""
    return "<value>" + _typed(value) + "</value>"


def _typed(value: Any) -> str:
    if value is None:
        return "<nil/>"  # only in arrays: struct members that are None are left out
    if isinstance(value, bool):
        return f"<boolean>{int(value)}</boolean>"
    if isinstance(value, int):
        if value in I4:
            return f"<int>{value}</int>"
        # Past int64 no XML-RPC client has a type: the digits as a string.
        return f"<i8>{value}</i8>" if value in I8 else f"<string>{value}</string>"
    if isinstance(value, float):
        return f"<double>{value!r}</double>"
    if isinstance(value, str):
        return f"<string>{_text(value)}</string>"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<base64>{base64.b64encode(bytes(value)).decode()}</base64>"
    if isinstance(value, dict):
        members = "".join(
            f"<member><name>{_text(str(k))}</name>{write(v)}</member>"
            for k, v in value.items()
            if v is not None
        )
        return f"<struct>{members}</struct>"
    if isinstance(value, list | tuple):
        return "<array><data>" + "".join(write(v) for v in value) + "</data></array>"
    raise TypeError(f"no XML-RPC type for {type(value).__name__}")
