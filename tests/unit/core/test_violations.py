"""Every violation of a refused message (twofold.core.violations), and Bounds.

The wires' side is tests/unit/wires/test_violations.py; here the walk
itself: paths into nested messages, lists, maps and tagged unions, what is
missing or unknown, and the cap on how many are listed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec
import pytest
from msgspec import Meta

from examples.catalog import app as catalog
from twofold import Bounds, Service
from twofold.contracts import openapi
from twofold.core import violations
from twofold.core.errors import validation_error
from twofold.core.numbers import Decoder
from twofold.protobuf import Schema
from twofold.protobuf import json as protojson


class Cat(msgspec.Struct, tag=True):
    lives: Annotated[int, Meta(le=9)]


class Dog(msgspec.Struct, tag=True):
    name: str


class Owner(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    pets: list[Cat | Dog] = []
    scores: dict[str, Annotated[int, Meta(ge=0)]] = {}
    prices: list[Annotated[Decimal, Bounds(ge=0, places=2)]] = []


def refused(body: bytes, prefix: str = "") -> list[tuple[str, str]]:
    with pytest.raises(msgspec.ValidationError) as caught:
        Decoder(Owner).decode(body)
    return [(v.field, v.description) for v in validation_error(caught.value, prefix).violations]


def test_nested_lists_maps_tagged_unions_in_document_order() -> None:
    body = (
        b'{"scores": {"a": 1, "b": -1}, "extra": 1,'
        b' "pets": [{"type": "Dog", "name": "rex"}, {"type": "Cat", "lives": 10}],'
        b' "prices": ["1.00", "1.005", -1]}'
    )
    assert refused(body, "owner") == [
        ("owner.scores.b", "Expected `int` >= 0"),
        ("owner.extra", "unknown field"),
        ("owner.pets[1].lives", "Expected `int` <= 9"),
        ("owner.prices[1]", r"Expected a decimal string matching ^[0-9]+(\.[0-9]{1,2})?$"),
        ("owner.prices[2]", 'Expected a decimal string such as "22.00", got a number'),
        ("owner.name", "required field is missing"),  # what was not sent comes last
    ]


def test_one_violation_reads_as_before() -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        Decoder(Owner).decode(b'{"name": 1}')
    assert str(caught.value) == "Expected `str`, got `int` - at `$.name`"
    error = validation_error(caught.value)
    assert error.message == "invalid name: Expected `str`, got `int`"
    assert refused(b'{"name": "n", "pets": [{"type": "Bird"}]}') == [
        ("pets[0].type", "Invalid value 'Bird'")
    ]


def test_a_whole_float_is_an_int_on_the_slow_path_too() -> None:
    assert refused(b'{"name": 2, "scores": {"a": 2.0, "b": 2.5}}') == [
        ("name", "Expected `str`, got `int`"),
        ("scores.b", "Expected `int`, got `float`"),
    ]


def test_the_list_is_capped() -> None:
    body = msgspec.json.encode({"name": "n", "scores": {str(i): -1 for i in range(500)}})
    found = refused(body)
    assert len(found) == violations.LIMIT
    assert found[-1] == (f"scores.{violations.LIMIT - 1}", "Expected `int` >= 0")


def test_proto3_json_names_every_violation() -> None:
    with pytest.raises(Exception) as caught:
        protojson.codec(Owner).decode(b'{"name": 1, "scores": {"a": -1}}')
    assert [v.field for v in caught.value.violations] == ["name", "scores.a"]  # type: ignore[attr-defined]


def test_bounds_publish_a_pattern_and_the_values() -> None:
    meta = Bounds(ge=0, le=Decimal("999999999.99"), places=2)
    assert meta.extra_json_schema == {
        "pattern": r"^[0-9]{1,9}(\.[0-9]{1,2})?$",
        "x-minimum": "0",
        "x-maximum": "999999999.99",
    }
    assert Bounds(gt=-5, lt="12.5").extra_json_schema == {
        "pattern": r"^-?[0-9]{1,2}(\.[0-9]+)?$",
        "x-exclusiveMinimum": "-5",
        "x-exclusiveMaximum": "12.5",
    }
    assert Bounds(places=0).extra_json_schema == {"pattern": r"^-?[0-9]+$"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ge": 0, "gt": 0},
        {"le": 1, "lt": 1},
        {"ge": 2, "le": 1},
        {"places": -1},
        {"ge": "NaN"},
        {"le": "x"},
        {"le": 0.1},
    ],
)
def test_impossible_bounds_are_refused_where_declared(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Bounds"):
        Bounds(**kwargs)  # type: ignore[arg-type]


def test_bounds_on_what_is_not_a_decimal_are_refused_at_start_up() -> None:
    service = Service("misbounded.v1")

    @service.procedure
    async def count(n: Annotated[int, Bounds(ge=0)]) -> None:
        return None

    with pytest.raises(ValueError, match="Bounds apply to a Decimal"):
        Decoder(service.methods["Count"].input_type)


def test_the_catalog_publishes_its_price_bounds_in_openapi_and_proto() -> None:
    doc = openapi.document(catalog.table, title="t", version="1")
    price = doc["components"]["schemas"]["NewProduct"]["properties"]["price"]
    assert price["pattern"] == r"^[0-9]{1,9}(\.[0-9]{1,2})?$"  # unchanged by Bounds
    assert (price["x-minimum"], price["x-maximum"]) == ("0", "999999999.99")
    text = Schema(catalog.table).text()
    proto = "\n".join(text.values())
    assert (
        r"// A decimal string matching ^[0-9]{1,9}(\.[0-9]{1,2})?$, >= 0, <= 999999999.99." in proto
    )


def test_bounds_in_a_service_are_enforced_before_the_handler() -> None:
    service = Service("bounded.v1")

    @service.procedure
    async def pay(amount: Annotated[Decimal, Bounds(gt=0, le=10)]) -> None:
        return None

    method = service.methods["Pay"]
    with pytest.raises(msgspec.ValidationError, match="Expected a decimal > 0"):
        Decoder(method.input_type).decode(b'{"amount": "0"}')
    assert Decoder(method.input_type).decode(b'{"amount": "10"}').amount == Decimal(10)
