"""From the Python types to descriptors and .proto text: the mapping table, names, services."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec
import pytest
from google.api import annotations_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2

from examples.catalog import service as catalog
from examples.catalog.models import OrderStatus, Product
from twofold import DefinitionError, Service
from twofold.core.method import Empty, StreamKind
from twofold.protobuf import FieldNumber, Schema

F = descriptor_pb2.FieldDescriptorProto


def fields(schema: Schema, name: str) -> dict[str, F]:
    message = schema.pool.FindMessageTypeByName(name)
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    return {f.name: f for f in proto.field}


def test_catalog_file_layout_and_imports() -> None:
    schema = Schema(catalog, lock=None)
    (file,) = schema.descriptors
    assert file.name == "catalog/v1/catalog.proto" and file.package == "catalog.v1"
    assert list(file.dependency) == [
        "google/api/annotations.proto",
        "google/protobuf/empty.proto",
        "google/protobuf/timestamp.proto",  # WatchPrices' PriceChange.changed_at
    ]
    assert schema.full_name(Product) == "catalog.v1.Product"
    assert schema.full_name(Empty) == "google.protobuf.Empty"


def test_catalog_scalars_follow_the_mapping() -> None:
    schema = Schema(catalog, lock=None)
    product = fields(schema, "catalog.v1.Product")
    assert product["id"].type == F.TYPE_INT64 and product["price"].type == F.TYPE_STRING
    assert product["tags"].label == F.LABEL_REPEATED
    listing = fields(schema, "catalog.v1.ListProductsRequest")
    # PageSize is Meta(ge=1, le=100): int32; its default 20 is not zero: optional.
    assert listing["page_size"].type == F.TYPE_INT32 and listing["page_size"].proto3_optional
    assert not listing["page_token"].proto3_optional  # default "" is the zero value
    assert listing["category"].proto3_optional  # str | None
    patch = fields(schema, "catalog.v1.ProductPatch")
    assert patch["name"].proto3_optional  # Name | UnsetType
    order = fields(schema, "catalog.v1.Order")
    assert order["status"].type_name == ".catalog.v1.OrderStatus"


def test_enum_values_are_prefixed_with_an_unspecified_zero() -> None:
    schema = Schema(catalog, lock=None)
    values = schema.pool.FindEnumTypeByName("catalog.v1.OrderStatus").values
    assert [(v.name, v.number) for v in values] == [
        ("ORDER_STATUS_UNSPECIFIED", 0),
        ("ORDER_STATUS_OPEN", 1),
        ("ORDER_STATUS_CANCELLED", 2),
    ]
    assert [m.name for m in OrderStatus] == ["OPEN", "CANCELLED"]


def test_methods_carry_http_rules_and_idempotency() -> None:
    schema = Schema(catalog, lock=None)
    svc = schema.pool.FindServiceByName("catalog.v1.CatalogService")
    assert [m.name for m in svc.methods] == list(catalog.methods)

    def options(name: str) -> descriptor_pb2.MethodOptions:
        proto = descriptor_pb2.MethodDescriptorProto()
        svc.FindMethodByName(name).CopyToProto(proto)
        return proto.options

    get = options("GetProduct")
    assert get.idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    assert get.Extensions[annotations_pb2.http].get == "/products/{id}"
    create = options("CreateProduct").Extensions[annotations_pb2.http]
    assert (create.post, create.body) == ("/products", "product")
    assert options("DeleteProduct").idempotency_level == descriptor_pb2.MethodOptions.IDEMPOTENT
    assert not options("GenerateReport").HasExtension(annotations_pb2.http)
    assert svc.FindMethodByName("DeleteProduct").output_type.full_name == "google.protobuf.Empty"


class Tick(msgspec.Struct):
    """One tick."""

    n: Annotated[int, msgspec.Meta(description="How many so far.")]


def test_text_has_comments_options_and_streams() -> None:
    svc = Service("watch.v1")

    @svc.procedure
    async def watch(every: float) -> Tick:
        """Tick forever."""
        return Tick(1)

    svc.methods["Watch"].kind = StreamKind.SERVER
    text = Schema(svc, lock=None).text()["watch/v1/watch.proto"]
    assert "  // Tick forever.\n  rpc Watch(WatchRequest) returns (stream Tick);" in text
    assert "// One tick.\nmessage Tick {\n  // How many so far.\n  int64 n = 1;\n}" in text
    assert "package watch.v1;" in text and "import" not in text
    method = Schema(svc, lock=None).pool.FindMethodByName("watch.v1.WatchService.Watch")
    assert method.server_streaming and not method.client_streaming


class Circle(msgspec.Struct, tag=True):
    radius: float


class Square(msgspec.Struct, tag=True):
    side: float


class Drawing(msgspec.Struct):
    shape: Circle | Square
    labels: dict[str, list[str]] | None = None


class Shapes(msgspec.Struct):
    shape: Circle | Square | None = None
    z: int = 0


def test_tagged_unions_are_oneofs() -> None:
    svc = Service("draw.v1")

    @svc.procedure
    async def draw(shapes: Shapes, /) -> Empty:
        return Empty()

    text = Schema(svc, lock=None).text()["draw/v1/draw.proto"]
    assert "  oneof shape {\n    Circle circle = 1;\n    Square square = 2;\n  }" in text
    assert "int64 z = 3;" in text


def one_method(tp: Any, package: str = "t.v1") -> Service:
    svc = Service(package)

    async def fn(value: Any, /) -> Empty:
        return Empty()

    fn.__annotations__ = {"value": tp, "return": Empty}
    svc.procedure(fn)
    return svc


@pytest.mark.parametrize(
    ("tp", "message"),
    [
        (Drawing, "inside a list or dict"),  # dict[str, list[str]]
        (msgspec.defstruct("U", [("x", int | str)]), "only a union of tagged Structs"),
        (msgspec.defstruct("A", [("x", Any)]), "has no protobuf mapping"),
        (msgspec.defstruct("L", [("x", list[list[int]])]), "inside a list or dict"),
        (msgspec.defstruct("K", [("x", dict[float, int])]), "map keys"),
    ],
)
def test_types_without_a_protobuf_form_are_named(tp: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        Schema(one_method(tp), lock=None)


def test_two_types_with_one_name_are_reported_with_both_origins() -> None:
    first = msgspec.defstruct("Item", [("a", int)], module="shop.one")
    second = msgspec.defstruct("Item", [("b", int)], module="shop.two")
    pair = msgspec.defstruct("Pair", [("x", first), ("y", second)])
    with pytest.raises(DefinitionError) as info:
        Schema(one_method(pair), lock=None)
    assert "shop.one.Item" in str(info.value) and "shop.two.Item" in str(info.value)
    assert "t.v1.Item" in str(info.value)


def test_explicit_field_numbers() -> None:
    numbered = msgspec.defstruct(
        "Numbered",
        [
            ("a", int),
            ("b", Annotated[int, FieldNumber(1)]),
            ("c", Annotated[str | None, FieldNumber(9)], None),
        ],
    )
    schema = Schema(one_method(numbered), lock=None)
    got = {f.name: f.number for f in fields(schema, "t.v1.Numbered").values()}
    assert got == {"b": 1, "a": 2, "c": 9}
    with pytest.raises(ValueError):
        FieldNumber(19000)


def test_int_enums_keep_their_values_as_numbers() -> None:
    class Level(enum.IntEnum):
        OFF = 0
        HIGH = 10

    holder = msgspec.defstruct("Holder", [("level", Level)])
    schema = Schema(one_method(holder), lock=None)
    values = schema.pool.FindEnumTypeByName("t.v1.Level").values
    assert [(v.name, v.number) for v in values] == [("LEVEL_OFF", 0), ("LEVEL_HIGH", 10)]


def test_messages_shared_by_two_packages_live_in_the_first() -> None:
    point = msgspec.defstruct("Point", [("x", float)])
    first, second = one_method(point, "a.v1"), one_method(point, "b.v1")
    schema = Schema([first, second], lock=None)
    paths = [f.name for f in schema.descriptors]
    assert paths == ["a/v1/a.proto", "b/v1/b.proto"]
    assert "a/v1/a.proto" in schema.descriptors[1].dependency
