"""A Decimal is accepted exactly when the pattern the server publishes for it matches.

The property is checked with hypothesis for every Decimal field of the
catalog and for generic ones, on the three decoders every wire uses: REST's
and JSON-RPC's JSON (:mod:`twofold.core.numbers`), proto3 JSON (Connect's) and
protobuf binary (Connect's, gRPC-Web's, gRPC's). The published pattern is
read from the OpenAPI document and compiled here on its own, not with the
server's :func:`twofold.core.decimals.compile_pattern`; node's own RegExp checks
that both read the patterns as ECMA-262 does.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Annotated, Any

import httpx
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import Meta

from examples.catalog import app as catalog
from twofold import App, Error, Service
from twofold.contracts import openapi
from twofold.core import decimals
from twofold.core.numbers import Decoder
from twofold.protobuf import Schema
from twofold.protobuf import json as protojson

NARROW = r"^-?[0-9]{1,3}(\.[0-9]{2})?$"


class Generic(msgspec.Struct, kw_only=True):
    plain: Decimal = Decimal(0)
    described: Annotated[Decimal, Meta(description="Any amount.", examples=["1.50"])] = Decimal(0)
    narrow: Annotated[Decimal, Meta(extra_json_schema={"pattern": NARROW})] = Decimal(0)
    maybe: Annotated[Decimal | None, Meta(extra_json_schema={"pattern": NARROW})] = None
    many: list[Decimal] = []
    by_name: dict[str, Decimal] = {}


generic = Service("generic.v1")


@generic.procedure
async def echo(value: Generic) -> Generic:
    return value


@generic.procedure(http=("GET", "/prices/{low}"))
async def prices(
    low: Decimal, high: Decimal | None = None, each: list[Decimal] | None = None
) -> Generic:
    return Generic(plain=high or low, many=each or [])


GENERIC_APP = App(generic)
# A valid message of each catalog type that holds a Decimal, but for the Decimal.
CATALOG_BASES: dict[str, dict[str, Any]] = {
    "NewProduct": {"name": "n", "category": "c"},
    "ProductPatch": {},
    "Product": {
        "id": 1,
        "name": "n",
        "category": "c",
        "tags": [],
        "updated_at": "2026-01-01T00:00:00Z",
    },
    "Order": {"id": 1, "user_id": 1, "product_id": 1, "quantity": 1, "status": "open"},
    "CategorySummary": {"category": "c", "product_count": 1},
    "PriceChange": {
        "product_id": 1,
        "name": "n",
        "category": "c",
        "old_price": "1",
        "new_price": "1",
        "changed_at": "2026-01-01T00:00:00Z",
    },
}


def ecma(pattern: str) -> re.Pattern[str]:
    """The published ``pattern`` as Python reads it the ECMA-262 way.

    Published patterns are kept simple: ASCII digits, classes, groups,
    quantifiers, ``\\.``, and ``^``/``$`` at the ends. For those Python and
    ECMA-262 agree once ``$`` is ``\\Z`` (Python's ``$`` also matches before
    a final newline) and ``re.ASCII`` is on.
    """
    assert re.fullmatch(r"\^[-\[\]0-9{},()?+*|\\.]*\$", pattern), pattern
    assert "." not in pattern.replace("\\.", ""), pattern
    return re.compile(pattern[:-1] + r"\Z", re.ASCII)


def patterns(node: Any) -> list[str]:
    """Every pattern in a property's schema: all must match a string."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            found.append(node["pattern"])
        for value in node.values():
            found += patterns(value)
    elif isinstance(node, list):
        for value in node:
            found += patterns(value)
    return found


class Field:
    """One Decimal field: its published patterns, and the server's three readings."""

    def __init__(self, app: App, tp: type[Any], name: str, base: dict[str, Any]) -> None:
        self.name = name
        components, schema = _published(app)
        # A type only an RPC procedure uses has only its proto3 JSON component.
        connect = components.get(tp.__name__ + ".ProtoJSON") or components[tp.__name__]
        rest = components.get(tp.__name__, connect)
        self.rest = [ecma(p) for p in patterns(rest["properties"][name])]
        self.connect = [ecma(p) for p in patterns(connect["properties"][name])]
        assert self.rest and self.connect, (tp, name)
        self.json = Decoder(tp).decode
        self.protojson = protojson.codec(tp).decode
        codec = schema.codec(tp)
        self.binary = codec.decode
        self.upb = schema.message_class(tp).FromString(
            codec.encode(msgspec.convert({**base, name: "1"}, tp))
        )
        self.base = base

    def published(self, text: str, connect: bool = False) -> bool:
        return all(p.search(text) for p in (self.connect if connect else self.rest))

    def accepted(self, text: str) -> tuple[bool, bool, bool]:
        body = json.dumps({**self.base, self.name: text})
        message = type(self.upb)()
        message.CopyFrom(self.upb)
        setattr(message, self.name, text)
        return (
            _accepts(self.json, body),
            _accepts(self.protojson, body),
            _accepts(self.binary, message.SerializeToString()),
        )


_PUBLISHED: dict[int, tuple[dict[str, Any], Schema]] = {}


def _published(app: App) -> tuple[dict[str, Any], Schema]:
    """The app's component schemas and protobuf schema, built once per app."""
    if id(app) not in _PUBLISHED:
        doc = openapi.document(app.table, title="t", version="1")
        _PUBLISHED[id(app)] = (doc["components"]["schemas"], Schema(app.table))
    return _PUBLISHED[id(app)]


def _accepts(decode: Callable[[Any], Any], data: Any) -> bool:
    try:
        decode(data)
    except (msgspec.ValidationError, Error):
        return False
    return True


def catalog_fields() -> Iterator[Any]:
    doc = openapi.document(catalog.table, title="t", version="1")["components"]["schemas"]
    types = {tp.__name__: tp for tp in _message_types(catalog)}
    found = {
        (component.removesuffix(".ProtoJSON"), name)
        for component, schema in doc.items()
        for name, prop in schema.get("properties", {}).items()
        if "decimal" in json.dumps(prop)
    }
    for component, name in sorted(found):
        yield pytest.param(types[component], name, id=f"{component}.{name}")


def _message_types(app: App) -> Iterator[type[Any]]:
    seen: set[Any] = set()
    stack = [
        msgspec.inspect.type_info(tp) for m in app.table for tp in (m.input_type, m.output_type)
    ]
    while stack:
        node = stack.pop()
        if isinstance(node, msgspec.inspect.Metadata):
            stack.append(node.type)
        elif isinstance(node, msgspec.inspect.StructType):
            if node.cls not in seen:
                seen.add(node.cls)
                yield node.cls
                stack.extend(f.type for f in node.fields)
        elif isinstance(node, msgspec.inspect.ListType):
            stack.append(node.item_type)
        elif isinstance(node, msgspec.inspect.UnionType):
            stack.extend(node.types)


# Strings near the rule: digits of several scripts, signs, exponents, spaces,
# underscores, separators, NaN and Infinity; and the rule's own language.
NEAR = st.text(alphabet="0123456789-+.eE_ \n\t\u0660\u0661\u06f3\uff11\u00a0NaIfity", max_size=16)
CANDIDATES = st.one_of(
    st.from_regex(r"-?[0-9]{1,12}(\.[0-9]{1,4})?", fullmatch=True), NEAR, st.text(max_size=6)
)
PROPERTY = settings(max_examples=150, deadline=None, database=None)


def test_every_decimal_field_of_the_catalog_is_covered() -> None:
    names = {p.id.split(".")[0] for p in catalog_fields()}
    assert names == set(CATALOG_BASES)


@pytest.mark.parametrize(("tp", "name"), list(catalog_fields()))
def test_catalog_decimals_are_accepted_exactly_as_published(tp: type[Any], name: str) -> None:
    field = Field(catalog, tp, name, CATALOG_BASES[tp.__name__])

    @PROPERTY
    @given(CANDIDATES)
    def check(text: str) -> None:
        json_ok, protojson_ok, binary_ok = field.accepted(text)
        assert json_ok == field.published(text), text
        assert protojson_ok == binary_ok == field.published(text, connect=True), text

    check()


@pytest.mark.parametrize("name", ["plain", "described", "narrow", "maybe"])
def test_generic_decimals_are_accepted_exactly_as_published(name: str) -> None:
    field = Field(GENERIC_APP, Generic, name, {})

    @PROPERTY
    @given(CANDIDATES)
    def check(text: str) -> None:
        json_ok, protojson_ok, binary_ok = field.accepted(text)
        assert json_ok == field.published(text), text
        assert protojson_ok == binary_ok == field.published(text, connect=True), text

    check()


def test_a_pattern_on_an_optional_decimal_applies_with_the_plain_rule() -> None:
    field = Field(GENERIC_APP, Generic, "maybe", {})
    assert [p.pattern for p in field.rest] == [NARROW[:-1] + r"\Z", decimals.PATTERN[:-1] + r"\Z"]
    assert Decoder(Generic).decode(b'{"maybe": null}').maybe is None


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"many": ["1", "1e2"]}', "$.many[1]"),
        (b'{"many": [1]}', "$.many[0]"),
        (b'{"by_name": {"a": "1", "b": " 1"}}', "$.by_name.b"),
        (b'{"narrow": "1.5"}', "$.narrow"),
        (b'{"plain": 1.5}', "$.plain"),
    ],
)
def test_decimals_in_lists_and_maps_are_held_to_the_rule(body: bytes, where: str) -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        Decoder(Generic).decode(body)
    assert str(refused.value).endswith(f"at `{where}`")
    with pytest.raises(Error) as error:
        protojson.codec(Generic).decode(body)
    assert [v.field for v in error.value.violations] == [where.removeprefix("$.")]


class Node(msgspec.Struct):
    amount: Decimal
    children: list[Node] = []


class Circle(msgspec.Struct, tag=True):
    radius: Decimal


class Label(msgspec.Struct, tag=True):
    radius: str  # the same name, not a Decimal: never held to the rule


class Shapes(msgspec.Struct):
    shapes: list[Circle | Label]
    either: Decimal | int = 0


def test_recursive_and_tagged_types() -> None:
    check = decimals.checker(Node)
    assert check is not None
    check({"amount": "1", "children": [{"amount": "2", "children": [{"amount": "3"}]}]})
    with pytest.raises(msgspec.ValidationError, match=r"\$\.children\[0\]\.children\[0\]\.amount"):
        check({"amount": "1", "children": [{"amount": "2", "children": [{"amount": "3e0"}]}]})
    deep = {"amount": "1"}
    for _ in range(1500):  # past Python's recursion limit
        deep = {"amount": "1", "children": [deep]}
    with pytest.raises(msgspec.ValidationError, match="nested too deeply"):
        check(deep)  # not a RecursionError, which would be a 500
    shapes = decimals.checker(Shapes)
    assert shapes is not None
    shapes({"shapes": [{"type": "Label", "radius": "wide"}, {"type": "Circle", "radius": "2"}]})
    shapes({"shapes": [], "either": 5})  # a number is the int's
    with pytest.raises(msgspec.ValidationError, match=r"\$\.shapes\[1\]\.radius"):
        shapes({"shapes": [{"type": "Label", "radius": "x"}, {"type": "Circle", "radius": "x"}]})
    assert decimals.checker(msgspec.defstruct("Plain", [("n", int), ("s", str)])) is None


@pytest.mark.parametrize(
    "pattern",
    [
        r"^\s*[0-9]+$",
        r"^[0-9]{,3}$",
        r"^(?P<n>[0-9])$",
        r"^(?i)e$",
        "^[0-9\u0660]+$",
        r"^[0-9]\Z",
        r"^[]0-9]+$",
        r"^[0-9",
    ],
)
def test_patterns_python_reads_otherwise_are_refused_at_start_up(pattern: str) -> None:
    bad = Annotated[Decimal, Meta(extra_json_schema={"pattern": pattern})]
    with pytest.raises(ValueError, match="pattern"):
        decimals.checker(msgspec.defstruct("Bad", [("amount", bad)]))


def test_fixed_point_text() -> None:
    assert decimals.text(Decimal("1E+2")) == "100"
    assert decimals.text(Decimal("-1.50E+3")) == "-1500"
    assert decimals.text(Decimal("1E-7")) == "0.0000001"
    assert decimals.text(Decimal("22.00")) == "22.00"
    assert decimals.text(Decimal("NaN")) == "NaN"
    assert decimals.text(Decimal("1E+5000")) == "1E+5000"  # not five thousand digits


# Patterns and strings where Python's and ECMA-262's regexes could part ways.
ECMA_PATTERNS = [
    decimals.PATTERN,
    r"^[0-9]{1,9}(\.[0-9]{1,2})?$",
    NARROW,
    r"^a.b$",
    r"^[$.]+$",
    r"x$|^y",
    r"^\d+\w*$",
]
ECMA_STRINGS = [
    "1", "1\n", "-1.5", "1.", ".5", "\u0661", "\uff11", "1 ", "a\nb", "a\rb", "a\u2028b",
    "axb", "$.", "x", "x\n", "y1", "1_0", "12\u00b2", "1e2", "", "a\u00e9",
]  # fmt: skip


def test_patterns_are_read_as_ecma_262_reads_them() -> None:
    script = (
        "const [ps, ss] = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(ps.map(p => ss.map(s => new RegExp(p).test(s)))));"
    )
    arg = json.dumps([ECMA_PATTERNS, ECMA_STRINGS])
    done = subprocess.run(
        ["node", "-e", script, arg], capture_output=True, text=True, check=True, timeout=60
    )
    expected = json.loads(done.stdout)
    for i, (pattern, answers) in enumerate(zip(ECMA_PATTERNS, expected, strict=True)):
        ours = decimals.compile_pattern(pattern)
        assert [bool(ours.search(s)) for s in ECMA_STRINGS] == answers, pattern
        if i < 3:  # the published ones: this test's own reading agrees too
            assert [bool(ecma(pattern).search(s)) for s in ECMA_STRINGS] == answers, pattern


def test_path_and_query_values_are_held_to_the_rule() -> None:
    async def get(url: str) -> httpx.Response:
        transport = httpx.ASGITransport(App(generic))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(url)

    ok = asyncio.run(get("/prices/1.5?high=2&each=3&each=-4.25"))
    assert ok.status_code == 200 and ok.json()["many"] == ["3", "-4.25"], ok.text
    for url, field in [
        ("/prices/1e2", "low"),
        ("/prices/1?high=%201", "high"),
        ("/prices/1?each=1&each=1_0", "each[1]"),
        ("/prices/NaN", "low"),
    ]:
        r = asyncio.run(get(url))
        assert r.status_code == 400, (url, r.text)
        assert [v["field"] for v in r.json()["violations"]] == [field], url
