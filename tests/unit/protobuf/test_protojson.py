"""The proto3 JSON codec: names, int64, unknown fields, nulls, bytes, times, errors."""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any

import msgspec
import pytest

from twofold import Code, Error
from twofold.core.method import Empty
from twofold.protobuf.json import codec

Int32 = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]


class Color(enum.Enum):
    RED = "red"
    DARK_BLUE = "dark-blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Dimensions(msgspec.Struct):
    width_mm: int
    height_mm: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0


class Product(msgspec.Struct, kw_only=True):
    id: int
    name: str
    unit_price: Decimal = Decimal("0")
    tags: list[str] = []
    dimensions: Dimensions | None = None
    variants: list[Dimensions] = []
    by_region: dict[str, Dimensions] = {}
    counts: dict[str, int] = {}
    related_ids: list[int] = []
    thumbnail: bytes = b""
    created_at: datetime | None = None
    color: Color = Color.RED
    level: Level = Level.LOW
    ratio: float = 0.0
    stock: Int32 = 0


class Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Shaped like the request types the definition layer builds."""

    product_id: int
    page_size: Int32 = 10


@dataclasses.dataclass
class Order:
    order_id: int
    lines: list[Dimensions] = dataclasses.field(default_factory=list)


class Node(msgspec.Struct):
    node_id: int
    children: list[Node] = []


class Card(msgspec.Struct, tag="card"):
    card_number: str


class Transfer(msgspec.Struct, tag="transfer"):
    account_id: int


class Payment(msgspec.Struct):
    method: Card | Transfer
    amount: int | str | None = None


class Sparse(msgspec.Struct, omit_defaults=True, tag=True):
    id: int
    count: int = 0
    tags: list[str] = []
    price: Decimal = Decimal("0")
    seen: datetime | None = None


def decode(tp: Any, data: Any) -> Any:
    return codec(tp).decode(data)


def encoded(value: Any) -> Any:
    return json.loads(codec(type(value)).encode(value))


def violation(tp: Any, data: Any) -> tuple[str, str]:
    with pytest.raises(Error) as info:
        decode(tp, data)
    assert info.value.code is Code.INVALID_ARGUMENT
    (v,) = info.value.violations
    return v.field, v.description


# --- names ------------------------------------------------------------------


def test_camel_case_and_original_names_at_every_level() -> None:
    camel = decode(
        Product,
        b'{"id": 1, "name": "n", "unitPrice": "2.50", "dimensions": {"widthMm": 3},'
        b' "variants": [{"widthMm": 4, "heightMm": 5}], "byRegion": {"eu": {"widthMm": 6}},'
        b' "relatedIds": ["7"], "createdAt": "2024-05-01T10:00:00Z"}',
    )
    snake = decode(
        Product,
        b'{"id": 1, "name": "n", "unit_price": "2.50", "dimensions": {"width_mm": 3},'
        b' "variants": [{"width_mm": 4, "height_mm": 5}], "by_region": {"eu": {"width_mm": 6}},'
        b' "related_ids": ["7"], "created_at": "2024-05-01T10:00:00Z"}',
    )
    assert camel == snake
    assert camel.unit_price == Decimal("2.50")
    assert camel.dimensions == Dimensions(3)
    assert camel.variants == [Dimensions(4, 5)]
    assert camel.by_region == {"eu": Dimensions(6)}
    assert camel.related_ids == [7]
    assert camel.created_at == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_mixed_names_and_request_types_that_forbid_unknown_fields() -> None:
    assert decode(Request, b'{"productId": "9", "page_size": 3}') == Request(
        product_id=9, page_size=3
    )
    assert decode(Request, b'{"product_id": 9}') == Request(product_id=9)


def test_a_camel_case_key_spelled_with_escapes_is_still_read() -> None:
    assert decode(Product, b'{"id": 1, "name": "n", "unit\\u0050rice": "3"}').unit_price == 3
    assert decode(Request, b'{"product\\u0049d": 4}') == Request(product_id=4)


def test_dataclass_recursive_and_tagged_union_messages() -> None:
    assert decode(Order, b'{"orderId": "5", "lines": [{"widthMm": 1}]}') == Order(
        5, [Dimensions(1)]
    )
    tree = decode(
        Node, b'{"nodeId": 1, "children": [{"nodeId": "2", "children": [{"node_id": 3}]}]}'
    )
    assert tree == Node(1, [Node(2, [Node(3)])])
    pay = decode(Payment, b'{"method": {"type": "transfer", "accountId": "12"}, "amount": "x"}')
    assert pay == Payment(Transfer(12), "x")
    pay = decode(Payment, b'{"method": {"type": "card", "cardNumber": "4242"}}')
    assert pay == Payment(Card("4242"))


def test_encoding_uses_the_original_names() -> None:
    out = encoded(
        Product(id=1, name="n", dimensions=Dimensions(2), by_region={"eu": Dimensions(3)})
    )
    assert "unit_price" in out and "unitPrice" not in out
    assert out["dimensions"] == {"width_mm": "2", "height_mm": 0}
    assert out["by_region"] == {"eu": {"width_mm": "3", "height_mm": 0}}


# --- numbers ----------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"42", b'"42"', b"42.0", b"4.2e1", b'"4.2e1"'])
def test_int64_accepts_numbers_and_decimal_strings(raw: bytes) -> None:
    assert decode(Product, b'{"id": ' + raw + b', "name": "n"}').id == 42


def test_int64_beyond_javascript_precision_travels_as_a_string() -> None:
    big = 2**53 + 1
    product = decode(Product, b'{"id": "%d", "name": "n", "relatedIds": [1, "%d"]}' % (big, big))
    assert product.id == big and product.related_ids == [1, big]
    out = encoded(product)
    assert out["id"] == str(big)
    assert out["related_ids"] == ["1", str(big)]


def test_int32_is_a_number_out_and_a_number_or_string_in() -> None:
    assert decode(Product, b'{"id": 1, "name": "n", "stock": "7"}').stock == 7
    out = encoded(Product(id=1, name="n", stock=7, counts={"a": 2}))
    assert out["stock"] == 7 and out["dimensions"] is None
    assert out["counts"] == {"a": "2"}  # map values follow the value type: int64
    assert encoded(Request(product_id=4)) == {"product_id": "4", "page_size": 10}


def test_constraints_are_enforced_with_original_paths() -> None:
    data = b'{"id": 1, "name": "n", "variants": [{"widthMm": 1, "heightMm": 100001}]}'
    assert violation(Product, data) == ("variants[0].height_mm", "Expected `int` <= 100000")
    assert violation(Request, b'{"productId": 1, "pageSize": -1}')[0] == "page_size"
    assert violation(Product, b'{"id": 1, "name": "n", "stock": 2147483648}')[0] == "stock"


def test_floats_take_and_give_the_proto3_spellings_of_non_finite_values() -> None:
    assert decode(Product, b'{"id": 1, "name": "n", "ratio": "Infinity"}').ratio == float("inf")
    assert decode(Product, b'{"id": 1, "name": "n", "ratio": "0.5"}').ratio == 0.5
    nan = decode(Product, b'{"id": 1, "name": "n", "ratio": "NaN"}').ratio
    assert nan != nan
    for value, text in [(float("nan"), "NaN"), (float("-inf"), "-Infinity"), (1.5, 1.5)]:
        assert encoded(Product(id=1, name="n", ratio=value))["ratio"] == text


def test_decimal_is_a_fixed_point_string_both_ways() -> None:
    given = b'{"id": 1, "name": "n", "unitPrice": "0.1"}'
    assert decode(Product, given).unit_price == Decimal("0.1")
    assert encoded(Product(id=1, name="n", unit_price=Decimal("9.90")))["unit_price"] == "9.90"
    # Out as its published pattern has it: no exponent.
    assert encoded(Product(id=1, name="n", unit_price=Decimal("1E+2")))["unit_price"] == "100"
    # In: a number, or a string the pattern refuses, is INVALID_ARGUMENT naming the field;
    # by the general path (a camelCase key) and the fast one alike.
    for key in (b"unitPrice", b"unit_price"):
        for value in (b"0.1", b'"1e2"', b'" 1"', b'"NaN"', b'"1_0"'):
            with pytest.raises(Error) as refused:
                decode(Product, b'{"id": 1, "name": "n", "' + key + b'": ' + value + b"}")
            assert [v.field for v in refused.value.violations] == ["unit_price"]


# --- unknown fields and nulls -----------------------------------------------


def test_unknown_fields_are_ignored_at_every_level() -> None:
    data = (
        b'{"id": 1, "name": "n", "newField": {"x": [1]}, "dimensions": {"widthMm": 1, "depth": 2},'
        b' "variants": [{"width_mm": 2, "future": null}]}'
    )
    product = decode(Product, data)
    assert product.dimensions == Dimensions(1) and product.variants == [Dimensions(2)]
    assert decode(Request, b'{"productId": 1, "added_later": true}') == Request(product_id=1)
    assert decode(Empty, b'{"anything": [1, 2]}') == Empty()


def test_null_means_the_default() -> None:
    data = b'{"id": 1, "name": "n", "tags": null, "stock": null, "dimensions": null, "color": null}'
    product = decode(Product, data)
    assert (product.tags, product.stock, product.dimensions, product.color) == (
        [],
        0,
        None,
        Color.RED,
    )
    assert violation(Product, b'{"id": null, "name": "n"}') == ("id", "required field is missing")


# --- bytes, times, enums ----------------------------------------------------


@pytest.mark.parametrize("text", ["+/8=", "+/8", "-_8=", "-_8"])
def test_bytes_accept_standard_and_url_safe_base64_padded_or_not(text: str) -> None:
    data = json.dumps({"id": 1, "name": "n", "thumbnail": text}).encode()
    assert decode(Product, data).thumbnail == b"\xfb\xff"


def test_bytes_out_and_invalid_base64() -> None:
    assert encoded(Product(id=1, name="n", thumbnail=b"\xfb\xff"))["thumbnail"] == "+/8="
    field, description = violation(Product, b'{"id": 1, "name": "n", "thumbnail": "!!"}')
    assert field == "thumbnail" and "base64" in description


def test_timestamps_are_rfc3339_and_z_normalized() -> None:
    data = b'{"id": 1, "name": "n", "createdAt": "2024-05-01T12:00:00.123456789+02:00"}'
    product = decode(Product, data)
    assert product.created_at == datetime(2024, 5, 1, 10, 0, 0, 123457, tzinfo=UTC)
    assert encoded(product)["created_at"] == "2024-05-01T10:00:00.123457Z"
    local = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert (
        encoded(Product(id=1, name="n", created_at=local))["created_at"] == "2024-05-01T10:00:00Z"
    )
    naive = datetime(2024, 5, 1, 12)  # taken as UTC: a Timestamp has no local time
    assert (
        encoded(Product(id=1, name="n", created_at=naive))["created_at"] == "2024-05-01T12:00:00Z"
    )


def test_enums_by_proto_name_value_or_member_name() -> None:
    assert decode(Product, b'{"id": 1, "name": "n", "color": "COLOR_DARK_BLUE"}').color is (
        Color.DARK_BLUE
    )
    assert decode(Product, b'{"id": 1, "name": "n", "level": "LEVEL_HIGH"}').level is Level.HIGH
    assert decode(Product, b'{"id": 1, "name": "n", "color": "dark-blue"}').color is Color.DARK_BLUE
    assert decode(Product, b'{"id": 1, "name": "n", "color": "DARK_BLUE"}').color is Color.DARK_BLUE
    assert decode(Product, b'{"id": 1, "name": "n", "level": "HIGH"}').level is Level.HIGH
    assert decode(Product, b'{"id": 1, "name": "n", "level": 2}').level is Level.HIGH
    # Out, an enum is its proto3 name, as twofold.protobuf declares it.
    assert encoded(Product(id=1, name="n", color=Color.DARK_BLUE))["color"] == "COLOR_DARK_BLUE"
    assert encoded(Product(id=1, name="n", level=Level.LOW))["level"] == "LEVEL_LOW"
    assert violation(Product, b'{"id": 1, "name": "n", "color": "PURPLE"}')[0] == "color"


# --- encoding shapes --------------------------------------------------------


def test_empty_tagged_unions_omit_defaults_and_recursion_encode() -> None:
    assert codec(Empty).encode(Empty()) == b"{}"
    assert encoded(Payment(Transfer(5), 7)) == {
        "method": {"type": "transfer", "account_id": "5"},
        "amount": "7",
    }
    assert encoded(Payment(Card("42"), "x"))["amount"] == "x"
    # omit_defaults leaves out what msgspec leaves out.
    assert encoded(Sparse(1)) == {"type": "Sparse", "id": "1"}
    full = Sparse(1, 2, ["a"], Decimal("0"), datetime(2024, 1, 1))
    assert encoded(full) == {
        "type": "Sparse",
        "id": "1",
        "count": "2",
        "tags": ["a"],
        "price": "0",
        "seen": "2024-01-01T00:00:00Z",
    }
    for value in (Sparse(1), full, Sparse(0, 0, [], Decimal("1"))):
        assert set(encoded(value)) == set(json.loads(msgspec.json.encode(value)))
    assert encoded(Node(1, [Node(2)])) == {
        "node_id": "1",
        "children": [{"node_id": "2", "children": []}],
    }
    assert encoded(Order(3)) == {"order_id": "3", "lines": []}


def test_round_trip_of_a_full_message() -> None:
    product = Product(
        id=2**60,
        name="Lamp",
        unit_price=Decimal("19.99"),
        tags=["a"],
        dimensions=Dimensions(1, 2),
        variants=[Dimensions(3)],
        by_region={"eu": Dimensions(4)},
        counts={"x": 5},
        related_ids=[6],
        thumbnail=b"\x00\x01",
        created_at=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        color=Color.DARK_BLUE,
        level=Level.HIGH,
        ratio=0.25,
        stock=9,
    )
    c = codec(Product)
    assert c.decode(c.encode(product)) == product


# --- inputs and failures ----------------------------------------------------


def test_text_and_already_parsed_inputs() -> None:
    assert decode(Request, '{"productId": "3"}') == Request(product_id=3)
    assert decode(Request, {"productId": "3", "unknown": 1}) == Request(product_id=3)
    assert decode(Request, bytearray(b'{"product_id": 3}')) == Request(product_id=3)
    assert codec(Request) is codec(Request)


@pytest.mark.parametrize(
    "data", [b'{"productId": ', b"", b"\xff\xfe", b'{"productId": 1}}', b"{'a': 1}"]
)
def test_malformed_json_is_invalid_argument(data: bytes) -> None:
    with pytest.raises(Error) as info:
        decode(Request, data)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.message.startswith("malformed JSON")


@pytest.mark.parametrize("data", [b"[]", b'"x"', b"null", b"42"])
def test_a_message_must_be_an_object(data: bytes) -> None:
    assert violation(Request, data)[1].startswith("Expected `object`")


def test_wrong_types_name_the_original_field_even_for_camel_input() -> None:
    assert violation(Product, b'{"id": 1, "name": "n", "dimensions": {"widthMm": "w"}}') == (
        "dimensions.width_mm",
        "Expected `int`, got `str`",
    )
    assert violation(Product, b'{"id": 1, "name": 5}')[0] == "name"
    assert violation(Request, b'{"pageSize": 1}') == ("product_id", "required field is missing")


def test_hostile_nesting_is_an_error_not_a_crash() -> None:
    deep = b'{"nodeId": 1, "children": [' * 2000 + b"{}" + b"]}" * 2000
    with pytest.raises(Error) as info:
        decode(Node, deep)
    assert info.value.code is Code.INVALID_ARGUMENT
    with pytest.raises(Error):
        decode(Request, b"[" * 100_000 + b"]" * 100_000)
