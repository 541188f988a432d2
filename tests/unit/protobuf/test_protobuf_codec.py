"""The binary codec: upb's bytes exactly, upb's parser, msgspec's validation."""

from __future__ import annotations

import enum
import math
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any

import msgspec
import pytest
from google.protobuf import json_format

from twofold import Code, Error, Service
from twofold.core.method import Empty
from twofold.protobuf import Schema
from twofold.protobuf.binary import varint

Small = Annotated[int, msgspec.Meta(ge=-5, le=1000)]


class Color(enum.Enum):
    RED = "red"
    DARK_BLUE = "dark-blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 7


class Tier(enum.IntEnum):
    FREE = 0  # the zero value itself, and falsy
    PAID = 1


class Plan(msgspec.Struct):
    tier: Tier = Tier.FREE


class Point(msgspec.Struct):
    x: float
    y: float = 0.0


class Circle(msgspec.Struct, tag="circle"):
    radius: float


class Square(msgspec.Struct, tag="square"):
    side: float


class Everything(msgspec.Struct, kw_only=True):
    id: int
    small: Small = 0
    ratio: float = 0.0
    name: str = ""
    blob: bytes = b""
    flag: bool = False
    price: Decimal = Decimal("0")
    key: uuid.UUID | None = None
    day: date | None = None
    at: datetime | None = None
    color: Color = Color.RED
    level: Level | None = None
    tags: list[str] = []
    counts: list[int] = []
    levels: list[Level] = []
    ratios: list[float] = []
    points: list[Point] = []
    labels: dict[str, int] = {}
    by_id: dict[int, Point] = {}
    origin: Point | None = None
    shape: Circle | Square | None = None
    note: str | msgspec.UnsetType = msgspec.UNSET
    limit: int = 20


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    id: Annotated[int, msgspec.Meta(ge=1)]
    name: Annotated[str, msgspec.Meta(min_length=1)]
    where: Point
    items: Annotated[list[str], msgspec.Meta(max_length=2)] = []


class Node(msgspec.Struct):
    child: Node | None = None


service = Service("test.v1")


@service.procedure
async def echo(thing: Everything, strict: Strict | None = None) -> Everything:
    return thing


@service.procedure
async def check(value: Strict, /) -> Empty:
    return Empty()


@service.procedure
async def walk(node: Node, /) -> Node:
    return node


@service.procedure
async def choose(plan: Plan, /) -> Plan:
    return plan


SCHEMA = Schema(service, lock=None)
Upb = SCHEMA.message_class(Everything)


def to_upb(value: Everything) -> Any:
    """The same value as a upb message, set field by field (protojson's JSON would do
    too, but then a bug shared by both codecs could hide)."""
    m = Upb(id=value.id, small=value.small, ratio=value.ratio, name=value.name)
    # A Decimal goes out in fixed-point, as its published pattern has it
    # (-1.50E+3 is "-1500"), so that it reads back under that pattern.
    m.blob, m.flag, m.price = value.blob, value.flag, format(value.price, "f")
    if value.key is not None:
        m.key = str(value.key)
    if value.day is not None:
        m.day = value.day.isoformat()
    if value.at is not None:
        m.at.FromDatetime(value.at)
    m.color = {Color.RED: 1, Color.DARK_BLUE: 2}[value.color]
    if value.level is not None:
        m.level = value.level.value
    m.tags.extend(value.tags)
    m.counts.extend(value.counts)
    m.levels.extend(x.value for x in value.levels)
    m.ratios.extend(value.ratios)
    for p in value.points:
        m.points.add(x=p.x, y=p.y)
    for k, v in value.labels.items():
        m.labels[k] = v
    for i, p in value.by_id.items():
        m.by_id[i].x, m.by_id[i].y = p.x, p.y
    if value.origin is not None:
        m.origin.SetInParent()
        m.origin.x, m.origin.y = value.origin.x, value.origin.y
    if isinstance(value.shape, Circle):
        m.circle.radius = value.shape.radius
    elif isinstance(value.shape, Square):
        m.square.side = value.shape.side
    if value.note is not msgspec.UNSET:
        m.note = value.note
    m.limit = value.limit
    return m


VALUES = [
    Everything(id=0),
    Everything(id=1, limit=0, note=""),
    Everything(
        id=-(2**63),
        small=-5,
        ratio=-0.0,
        name="naïve ☃ 𝄞",
        blob=b"\x00\xff" * 100,
        flag=True,
        price=Decimal("-1.50E+3"),
        key=uuid.UUID(int=12345),
        day=date(2024, 2, 29),
        at=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        color=Color.DARK_BLUE,
        level=Level.HIGH,
        tags=["a", "", "c" * 300],
        counts=[0, 1, -1, 2**63 - 1, 300],
        levels=[Level.LOW, Level.HIGH],
        ratios=[1.5, math.inf, -0.0],
        points=[Point(1, 2), Point(0, 0)],
        labels={"a": 0},
        by_id={-3: Point(0)},
        origin=Point(0, 0),
        shape=Circle(2.5),
        note="n",
        limit=2**63 - 1,
    ),
    Everything(id=2**31, ratio=math.nan, shape=Square(0), at=datetime(9999, 12, 31, tzinfo=UTC)),
    Everything(id=16383, at=datetime(1, 1, 1, tzinfo=UTC), origin=Point(-1e300, 5e-324)),
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_bytes_are_upbs_and_round_trip(value: Everything) -> None:
    codec = SCHEMA.codec(Everything)
    data = codec.encode(value)
    assert data == to_upb(value).SerializeToString(deterministic=True)
    back = codec.decode(data)
    if value.ratio != value.ratio:  # NaN is not equal to itself
        assert math.isnan(back.ratio)
        back.ratio = value.ratio
    assert back == value


def test_map_entries_are_sorted_by_key() -> None:
    # upb's own order (hash order, or its "deterministic" one) is an
    # implementation detail; ours is ascending keys, as protobuf C++ and Java
    # write deterministically, so the bytes (and an ETag) are stable.
    value = Everything(id=1, labels={"b": 2, "a": 0, "": -1}, by_id={5: Point(1), -3: Point(0)})
    data = SCHEMA.codec(Everything).encode(value)
    assert Upb.FromString(data) == to_upb(value)
    assert data.index(b"\n\x00") < data.index(b"\n\x01a") < data.index(b"\n\x01b")
    assert data.index(varint(-3)) < data.index(b"\x08\x05")
    assert SCHEMA.codec(Everything).decode(data) == value


def test_absent_fields_read_as_defaults_or_zero() -> None:
    value = SCHEMA.codec(Everything).decode(b"")
    assert value == Everything(id=0)
    assert value.note is msgspec.UNSET and value.limit == 20 and value.shape is None


def test_an_explicit_zero_survives_where_the_default_is_not_zero() -> None:
    codec = SCHEMA.codec(Everything)
    assert codec.decode(codec.encode(Everything(id=1, limit=0))).limit == 0


def test_naive_and_offset_datetimes_are_utc_instants() -> None:
    codec = SCHEMA.codec(Everything)
    naive = Everything(id=1, at=datetime(2024, 5, 1, 12))
    assert codec.decode(codec.encode(naive)).at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    local = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert codec.decode(codec.encode(Everything(id=1, at=local))).at == local


def test_unknown_fields_are_skipped() -> None:
    extra = varint(999 << 3 | 2) + b"\x03abc" + varint(998 << 3) + b"\x05"
    assert SCHEMA.codec(Everything).decode(b"\x08\x07" + extra).id == 7


def test_packed_and_unpacked_repeated_numbers_both_read() -> None:
    number = SCHEMA.messages[Everything].fields
    counts = next(f.number for f in number if f.name == "counts")
    unpacked = b"".join(varint(counts << 3) + varint(v) for v in (1, 2))
    assert SCHEMA.codec(Everything).decode(unpacked).counts == [1, 2]


def violation(tp: type[Any], data: bytes) -> tuple[str, str]:
    with pytest.raises(Error) as info:
        SCHEMA.codec(tp).decode(data)
    assert info.value.code is Code.INVALID_ARGUMENT
    (v,) = info.value.violations
    return v.field, v.description


def strict_bytes(**fields: Any) -> bytes:
    message = SCHEMA.message_class(Strict)()
    json_format.ParseDict(fields, message)
    return message.SerializeToString()  # type: ignore[no-any-return]


def test_constraints_apply_with_field_paths() -> None:
    assert violation(Strict, strict_bytes(id=0, name="n", where={}))[0] == "id"
    assert violation(Strict, strict_bytes(id=1, name="", where={}))[0] == "name"
    assert violation(Strict, strict_bytes(id=1, name="n", where={}, items=["a"] * 3))[0] == "items"
    assert violation(Strict, strict_bytes(id=1, name="n")) == ("where", "required field is missing")
    ok = SCHEMA.codec(Strict).decode(strict_bytes(id=1, name="n", where={"x": 1}))
    assert ok == Strict(1, "n", Point(1.0))


def test_enum_zero_and_unknown_values_are_violations() -> None:
    color = next(f.number for f in SCHEMA.messages[Everything].fields if f.name == "color")
    field, description = violation(Everything, varint(color << 3) + b"\x00")
    assert field == "color" and "COLOR_UNSPECIFIED" in description
    assert violation(Everything, varint(color << 3) + b"\x09")[0] == "color"


def test_out_of_range_values_are_violations() -> None:
    small = next(f.number for f in SCHEMA.messages[Everything].fields if f.name == "small")
    assert violation(Everything, varint(small << 3) + varint(1001))[0] == "small"
    at = next(f.number for f in SCHEMA.messages[Everything].fields if f.name == "at")
    huge = b"\x08" + varint(2**40)
    assert violation(Everything, varint(at << 3 | 2) + bytes([len(huge)]) + huge)[0] == "at"


@pytest.mark.parametrize(
    "data",
    [
        b"\x08",  # truncated varint
        b"\x0a\x05ab",  # a length past the end
        b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # an 11-byte varint
        b"\x00\x01",  # field number 0
        b"\x0f",  # wire type 7
        b"\x22\x02\xc3\x28",  # invalid UTF-8 in a string (name is field 4)
    ],
)
def test_malformed_bytes_are_invalid_argument(data: bytes) -> None:
    with pytest.raises(Error) as info:
        SCHEMA.codec(Everything).decode(data)
    assert info.value.code is Code.INVALID_ARGUMENT


def test_deep_nesting_is_invalid_argument_not_a_crash() -> None:
    def nested(depth: int) -> bytes:
        data = b""
        for _ in range(depth):
            data = b"\x0a" + varint(len(data)) + data
        return data

    codec = SCHEMA.codec(Node)
    assert codec.decode(codec.encode(codec.decode(nested(50)))) == codec.decode(nested(50))
    with pytest.raises(Error) as info:
        codec.decode(nested(500))  # upb's recursion limit is 100
    assert info.value.code is Code.INVALID_ARGUMENT


def test_an_int_enum_member_equal_to_zero_reads_as_that_member() -> None:
    codec = SCHEMA.codec(Plan)
    assert codec.decode(b"") == Plan(Tier.FREE)
    assert codec.decode(b"\x08\x00") == Plan(Tier.FREE)
    assert codec.decode(codec.encode(Plan(Tier.PAID))) == Plan(Tier.PAID)


def test_empty_is_google_protobuf_empty() -> None:
    codec = SCHEMA.codec(Empty)
    assert codec.encode(Empty()) == b"" and codec.decode(b"\x08\x01") == Empty()
    with pytest.raises(Error):
        codec.decode(b"\x0a\x05")


def test_values_that_do_not_fit_fail_to_encode() -> None:
    with pytest.raises(ValueError):
        SCHEMA.codec(Everything).encode(Everything(id=2**63))


def test_a_type_outside_the_schema_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        SCHEMA.codec(Circle.__class__)  # type: ignore[arg-type]
