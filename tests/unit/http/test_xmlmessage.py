"""The XML mapping (twofold.http.xmlmessage): every catalog message round-trips,
and every kind of field reads and writes as docs/xml.md says."""

from __future__ import annotations

import datetime
import enum
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from msgspec import inspect as mi

from examples.catalog.service import service as catalog_service
from twofold.core import violations
from twofold.core.table import MethodTable
from twofold.http import xmlmessage, xmlparse
from twofold.http.problem import problem_xml


def _sample(node: mi.Type, depth: int = 0) -> Any:
    """A valid builtin value for ``node``: what a JSON body could hold."""
    if isinstance(node, mi.Metadata):
        return _sample(node.type, depth)
    if isinstance(node, mi.StructType):
        return {f.encode_name: _sample(f.type, depth + 1) for f in node.fields}
    if isinstance(node, mi.ListType | mi.SetType | mi.VarTupleType):
        return [_sample(node.item_type, depth + 1) for _ in range(2)]
    if isinstance(node, mi.UnionType):
        return _sample(next(t for t in node.types if not isinstance(t, mi.NoneType)), depth)
    if isinstance(node, mi.EnumType):
        return next(iter(node.cls)).value
    if isinstance(node, mi.IntType):
        return 2**40 + 7 if node.le is None else node.le  # past 32 bits where allowed
    if isinstance(node, mi.DecimalType):
        return "12.50"
    if isinstance(node, mi.DateTimeType):
        return "2026-12-05T23:00:00.123456Z"
    if isinstance(node, mi.BoolType):
        return True
    if isinstance(node, mi.FloatType):
        return 0.5
    if isinstance(node, mi.BytesType):
        return "AAEC/w=="
    if isinstance(node, mi.StrType) and node.pattern and "@" in node.pattern:
        return "a.b@example.com"
    return "ok <&> é"


def _catalog_types() -> list[Any]:
    seen: dict[str, Any] = {}
    for method in MethodTable([catalog_service]):
        for tp in (method.input_type, method.output_type):
            if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
                seen[tp.__qualname__] = tp
    return list(seen.values())


@pytest.mark.parametrize("tp", _catalog_types(), ids=lambda tp: tp.__qualname__)
def test_every_catalog_message_round_trips(tp: Any) -> None:
    value = msgspec.convert(_sample(mi.type_info(tp)), tp)
    body = xmlmessage.encode(value, tp)
    assert xmlmessage.Reader(tp, tp.__name__).read(xmlparse.parse(body)) == value


class Colour(enum.Enum):
    RED = "red"


class Inner(msgspec.Struct):
    n: int


class Everything(msgspec.Struct, kw_only=True):
    flag: bool
    big: int
    ratio: float
    amount: Decimal
    when: datetime.datetime
    raw: bytes
    colour: Colour
    maybe: str | None
    inner: Inner
    inners: list[Inner]
    grid: list[list[int]]
    labels: dict[str, int]
    empty: list[str]


def test_every_kind_of_field() -> None:
    value = Everything(
        flag=False,
        big=-(2**63),
        ratio=float("inf"),
        amount=Decimal("0.10"),
        when=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        raw=b"\x00\xff",
        colour=Colour.RED,
        maybe=None,
        inner=Inner(1),
        inners=[Inner(2), Inner(3)],
        grid=[[1, 2], []],
        labels={"a b": 1},
        empty=[],
    )
    body = xmlmessage.encode(value, Everything)
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Everything><flag>false</flag>'
        b"<big>-9223372036854775808</big><ratio>INF</ratio><amount>0.10</amount>"
        b"<when>2026-01-02T03:04:05Z</when><raw>AP8=</raw><colour>red</colour>"
        b"<inner><n>1</n></inner><inners><n>2</n></inners><inners><n>3</n></inners>"
        b"<grid><item>1</item><item>2</item></grid><grid></grid>"
        b"<labels><entry><key>a b</key><value>1</value></entry></labels></Everything>"
    )
    assert xmlmessage.Reader(Everything, "Everything").read(xmlparse.parse(body)) == value


def test_carriage_returns_survive_end_of_line_handling() -> None:
    class S(msgspec.Struct):
        s: str

    body = xmlmessage.encode(S("a\r\nb\r"), S)
    assert b"a&#13;\nb&#13;" in body
    assert xmlmessage.Reader(S, "S").read(xmlparse.parse(body)) == S("a\r\nb\r")


def test_xml_cannot_carry_control_characters() -> None:
    assert not xmlmessage.representable({"a": ["ok", "\x01"]})
    assert xmlmessage.representable({"a": ["ok", "é\n\t"]})
    with pytest.raises(xmlmessage.Unrepresentable):
        xmlmessage.encode({"s": "\x01"}, dict[str, str])


def test_booleans_read_as_xs_boolean() -> None:
    class B(msgspec.Struct):
        b: bool

    reader = xmlmessage.Reader(B, "B")
    for text, expected in (("true", True), ("1", True), (" false ", False), ("0", False)):
        assert reader.read(xmlparse.parse(f"<B><b>{text}</b></B>".encode())).b is expected
    with pytest.raises(violations.Invalid) as caught:
        reader.read(xmlparse.parse(b"<B><b>yes</b></B>"))
    assert caught.value.violations == (("b", "Expected `bool`, got `str`"),)


def test_problem_documents_follow_rfc_9457_appendix_b() -> None:
    doc = {"type": "about:blank", "status": 400, "violations": [{"field": "a", "description": "<"}]}
    assert problem_xml(doc) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<problem xmlns="urn:ietf:rfc:7807">'
        b"<type>about:blank</type><status>400</status><violations><i><field>a</field>"
        b"<description>&lt;</description></i></violations></problem>"
    )
