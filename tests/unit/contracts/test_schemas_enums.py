"""Proto3 JSON names enum values, so the OpenAPI ``.ProtoJSON`` variants list the names."""

from __future__ import annotations

import enum

import msgspec

from twofold.contracts.schemas import Schemas
from twofold.protobuf import json as protojson


class OrderStatus(enum.Enum):
    OPEN = "open"
    CANCELLED = "cancelled"


class Order(msgspec.Struct):
    status: OrderStatus
    note: str = ""


def test_enum_variant_lists_proto_names_then_values() -> None:
    schemas = Schemas([Order]).all()
    variant = schemas["OrderStatus.ProtoJSON"]
    assert variant["enum"][:2] == ["ORDER_STATUS_OPEN", "ORDER_STATUS_CANCELLED"]
    assert sorted(variant["enum"][2:]) == ["cancelled", "open"]
    ref = schemas["Order.ProtoJSON"]["properties"]["status"]["$ref"]
    assert ref.endswith("OrderStatus.ProtoJSON")
    assert sorted(schemas["OrderStatus"]["enum"]) == ["cancelled", "open"]  # REST is unchanged


def test_the_codec_writes_what_the_variant_says() -> None:
    codec = protojson.codec(Order)
    assert (
        codec.encode(Order(OrderStatus.CANCELLED))
        == b'{"status":"ORDER_STATUS_CANCELLED","note":""}'
    )
    for spelled in ("ORDER_STATUS_CANCELLED", "cancelled", "CANCELLED"):
        got = codec.decode(b'{"status": "%s"}' % spelled.encode())
        assert got.status is OrderStatus.CANCELLED
