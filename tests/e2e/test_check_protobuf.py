"""The protobuf side of ``twofold check``: a corpus of service changes, each with its verdict.

Each case is a pair of Twofold services, old and new. The old one is exported
to ``.proto`` with a fresh lock, the new one with the lock the old export
left (as a team that commits ``twofold.lock.json`` would), and ``buf
breaking`` (FILE and WIRE_JSON) judges the pair. A breaking case names rules
buf must report; a compatible one must report nothing.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest

from tests.e2e.server import ROOT
from twofold import Idempotency, Service
from twofold.compat import protobuf
from twofold.protobuf import FieldNumber, Schema

BUF = ROOT / "node_modules" / ".bin" / "buf"

Fields = list[tuple[str, Any] | tuple[str, Any, Any]]


def _struct(name: str, fields: Fields, doc: str = "") -> type:
    return msgspec.defstruct(name, fields, kw_only=True, namespace={"__doc__": doc})


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class ColourMore(enum.Enum):
    RED = "red"
    BLUE = "blue"
    GREEN = "green"


class ColourLess(enum.Enum):
    RED = "red"


ColourMore.__name__ = ColourLess.__name__ = "Colour"
ColourMore.__qualname__ = ColourLess.__qualname__ = "Colour"


class Book(msgspec.Struct, tag="book"):
    pages: int


class Film(msgspec.Struct, tag="film"):
    minutes: int


class Game(msgspec.Struct, tag="game"):
    players: int


BASE: Fields = [("id", int), ("name", str), ("count", int, 0)]


def _service(
    item: type | Fields = BASE,
    *,
    package: str = "shop.v1",
    stream: bool = False,
    count_items: bool = True,
    idempotency: Idempotency = Idempotency.NO_SIDE_EFFECTS,
    result: str = "Summary",
) -> Service:
    """A service of items: GetItem (a resource's get), and a CountItems procedure."""
    item_type = item if isinstance(item, type) else _struct("Item", item, "An item.")
    service = Service(package)
    items = service.resource("items")

    async def get_item(id: int) -> Any:
        """Get an item."""
        raise NotImplementedError

    get_item.__annotations__ = {"id": int, "return": item_type}
    items.get(get_item)
    if count_items:
        summary = _struct(result, [("total", int)])

        async def count_items_(category: str = "") -> Any:
            """Count items."""
            raise NotImplementedError

        async def count_items_stream(category: str = "") -> AsyncIterator[Any]:
            """Count items, again and again."""
            yield summary()

        method = count_items_stream if stream else count_items_
        method.__name__ = "count_items"
        method.__annotations__ = {
            "category": str,
            "return": AsyncIterator[summary] if stream else summary,  # type: ignore[valid-type]
        }
        service.procedure(idempotency=idempotency)(method)
    return service


def _with(*extra: tuple[str, Any] | tuple[str, Any, Any]) -> Fields:
    return [*BASE, *extra]


def _without(name: str) -> Fields:
    return [f for f in BASE if f[0] != name]


def _replace(name: str, new: tuple[str, Any] | tuple[str, Any, Any]) -> Fields:
    return [new if f[0] == name else f for f in BASE]


Small = Annotated[int, msgspec.Meta(ge=0, le=1000)]
Case = tuple[str, Callable[[], Service], Callable[[], Service], set[str]]

BREAKING: list[Case] = [
    ("field removed", _service, lambda: _service(_without("count")), {"FIELD_NO_DELETE"}),
    (
        "field type changed",
        _service,
        lambda: _service(_replace("count", ("count", str, ""))),
        {"FIELD_SAME_TYPE", "FIELD_WIRE_JSON_COMPATIBLE_TYPE"},
    ),
    (
        "field renamed (the lock gives the new name a new number)",
        _service,
        lambda: _service(_replace("count", ("quantity", int, 0))),
        {"FIELD_NO_DELETE"},
    ),
    (
        "field number moved",
        _service,
        lambda: _service(_replace("count", ("count", Annotated[int, FieldNumber(9)], 0))),
        {"FIELD_NO_DELETE"},
    ),
    (
        "singular field became repeated",
        _service,
        lambda: _service(_replace("count", ("count", list[int], []))),
        {"FIELD_SAME_CARDINALITY"},
    ),
    (
        "int became float",
        _service,
        lambda: _service(_replace("count", ("count", float, 0.0))),
        {"FIELD_SAME_TYPE"},
    ),
    (
        "int32 became int64",
        lambda: _service(_replace("count", ("count", Small, 0))),
        _service,
        {"FIELD_SAME_TYPE"},
    ),
    (
        "map value type changed",
        lambda: _service(_with(("labels", dict[str, int], {}))),
        lambda: _service(_with(("labels", dict[str, str], {}))),
        {"FIELD_SAME_TYPE"},
    ),
    (
        "enum value removed",
        lambda: _service(_with(("colour", Colour, Colour.RED))),
        lambda: _service(_with(("colour", ColourLess, ColourLess.RED))),
        {"ENUM_VALUE_NO_DELETE"},
    ),
    (
        "nested message field type changed",
        lambda: _service(_with(("size", _struct("Size", [("width", int)])))),
        lambda: _service(_with(("size", _struct("Size", [("width", str)])))),
        {"FIELD_SAME_TYPE"},
    ),
    (
        "oneof variant removed",
        lambda: _service(_with(("media", Book | Film))),
        lambda: _service(_with(("media", Book))),
        {"FIELD_NO_DELETE"},
    ),
    (
        "field became proto3 optional",
        _service,
        lambda: _service(_replace("count", ("count", int | None, None))),
        {"FIELD_SAME_CARDINALITY"},
    ),
    ("method removed", _service, lambda: _service(count_items=False), {"RPC_NO_DELETE"}),
    (
        "method became a server stream",
        _service,
        lambda: _service(stream=True),
        {"RPC_SAME_SERVER_STREAMING"},
    ),
    (
        "method's response type changed",
        _service,
        lambda: _service(result="Tally"),
        {"RPC_SAME_RESPONSE_TYPE", "MESSAGE_NO_DELETE"},
    ),
    (
        "idempotency level changed",
        _service,
        lambda: _service(idempotency=Idempotency.IDEMPOTENT),
        {"RPC_SAME_IDEMPOTENCY_LEVEL"},
    ),
    (
        "message renamed",
        _service,
        lambda: _service(_struct("Product", BASE)),
        {"MESSAGE_NO_DELETE", "RPC_SAME_RESPONSE_TYPE"},
    ),
    ("package renamed", _service, lambda: _service(package="shop.v2"), {"FILE_NO_DELETE"}),
    (
        "string became bytes",
        _service,
        lambda: _service(_replace("name", ("name", bytes))),
        {"FIELD_SAME_TYPE", "FIELD_WIRE_JSON_COMPATIBLE_TYPE"},
    ),
    (
        "a message field became a union (a oneof replaces the field)",
        lambda: _service(_with(("media", Book))),
        lambda: _service(_with(("media", Book | Film))),
        {"FIELD_NO_DELETE"},
    ),
    (
        "a default became non-zero (the field gains presence)",
        _service,
        lambda: _service(_replace("count", ("count", int, 5))),
        {"FIELD_SAME_CARDINALITY"},
    ),
    (
        "message field became a scalar",
        lambda: _service(_with(("size", _struct("Size", [("width", int)])))),
        lambda: _service(_with(("size", int, 0))),
        {"FIELD_SAME_TYPE"},
    ),
]

COMPATIBLE: list[Case] = [
    ("identical", _service, _service, set()),
    ("field added", _service, lambda: _service(_with(("colour", str, ""))), set()),
    ("optional field added", _service, lambda: _service(_with(("note", str | None, None))), set()),
    (
        "enum value added",
        lambda: _service(_with(("colour", Colour, Colour.RED))),
        lambda: _service(_with(("colour", ColourMore, ColourMore.RED))),
        set(),
    ),
    (
        "oneof variant added",
        lambda: _service(_with(("media", Book | Film))),
        lambda: _service(_with(("media", Book | Film | Game))),
        set(),
    ),
    ("method added", lambda: _service(count_items=False), _service, set()),
    (
        "fields declared in another order (the lock keeps their numbers)",
        _service,
        lambda: _service([BASE[2], BASE[0], BASE[1]]),
        set(),
    ),
    (
        "documentation changed",
        _service,
        lambda: _service(_struct("Item", BASE, "Something for sale.")),
        set(),
    ),
    (
        "a constraint changed (protobuf does not carry it)",
        lambda: _service(_with(("code", Annotated[str, msgspec.Meta(max_length=10)], ""))),
        lambda: _service(_with(("code", Annotated[str, msgspec.Meta(max_length=5)], ""))),
        set(),
    ),
    (
        "a non-zero default changed (proto3 carries no defaults)",
        lambda: _service(_replace("count", ("count", int, 5))),
        lambda: _service(_replace("count", ("count", int, 7))),
        set(),
    ),
    (
        "nested message gained a field",
        lambda: _service(_with(("size", _struct("Size", [("width", int)])))),
        lambda: _service(_with(("size", _struct("Size", [("width", int), ("depth", int, 0)])))),
        set(),
    ),
    (
        "map gained as a new field",
        _service,
        lambda: _service(_with(("labels", dict[str, str], {}))),
        set(),
    ),
]


def _export(service: Service, out: Path, schema_lock: Any) -> tuple[Path, Any]:
    schema = Schema(service, lock=schema_lock)
    for path, text in schema.text().items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(text)
    return protobuf.module(out, out.with_name(out.name + "-module")), schema.lock


@pytest.fixture(scope="module")
def buf() -> str:
    if not BUF.exists():
        pytest.fail(f"{BUF} is missing: run `npm ci` (part of `make test`)", pytrace=False)
    return str(BUF)


@pytest.mark.parametrize(
    ("old", "new", "rules"),
    [pytest.param(old, new, rules, id=name) for name, old, new, rules in BREAKING + COMPATIBLE],
)
def test_corpus(
    old: Callable[[], Service],
    new: Callable[[], Service],
    rules: set[str],
    buf: str,
    tmp_path: Path,
) -> None:
    old_module, lock = _export(old(), tmp_path / "old", None)
    new_module, _ = _export(new(), tmp_path / "new", lock)
    found = {f.rule for f in protobuf.breaking(old_module, new_module, buf)}
    if rules:
        assert rules <= found
    else:
        assert found == set()


def test_corpus_has_twenty_cases_and_both_verdicts() -> None:
    assert len(BREAKING) >= 20 and len(COMPATIBLE) >= 10
