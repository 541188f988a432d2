"""``twofold client``: the generated module describes the same wire as the server.

A service with awkward types (tagged unions, renames, enums of several kinds,
recursive Structs, dataclasses, TypedDicts, defaults of every sort) is
written out, imported from a temporary directory, and compared with the
server's own types: same JSON Schema, same bytes both ways, and calls through
the generated client to the real app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import importlib.util
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Literal, TypedDict

import msgspec
import pytest

from twofold import App, Code, Error, Idempotency, Service
from twofold.client.generator import GeneratorError, generate, run
from twofold.protobuf import FieldNumber


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Color(str, enum.Enum):  # noqa: UP042 - the str mixin is what is tested
    """A colour, by name."""

    RED = "red"
    BLUE = "blue"


class Cat(msgspec.Struct, tag=True, tag_field="kind"):
    name: str


class Dog(msgspec.Struct, tag="dog", tag_field="kind"):
    name: str
    good: bool = True


class Tree(msgspec.Struct, rename="camel", omit_defaults=True):
    """A node of a tree.

    With "quotes" and a backslash \\ in it."""

    node_name: str
    children: list[Tree] = []
    level: Level = Level.LOW
    color: Color | None = Color.RED


class Note(TypedDict, total=False):
    text: str


@dataclasses.dataclass
class Query:
    text: str
    limit: int = 10
    when: datetime.datetime | None = None


class Everything(msgspec.Struct, frozen=True):
    at: datetime.datetime
    day: datetime.date
    span: datetime.timedelta
    id: uuid.UUID
    blob: bytes
    price: Decimal
    mode: Literal["a", "b"]
    pair: tuple[int, str]
    many: tuple[int, ...]
    scores: dict[str, float]
    unique: frozenset[int]
    pet: Cat | Dog | None = None
    tree: Tree | None = None
    note: Note | None = None
    default_day: datetime.date = datetime.date(2024, 1, 2)
    default_price: Decimal = Decimal("1.50")
    default_tree: Tree = msgspec.field(default_factory=lambda: Tree("root"))


tricky = Service("tricky.v1", description='Tricky "types".')
other = Service("other.v1", "TrickyService")


@tricky.procedure(idempotency=Idempotency.IDEMPOTENT)
async def echo(value: Everything, timeout: int = 5) -> Everything:  # noqa: ASYNC109
    return value


@tricky.procedure
async def search(q: Query, /) -> Tree:
    return Tree(q.text, children=[Tree(f"limit {q.limit}")])


@tricky.procedure
async def call(tags: list[str] = [], level: Level = Level.HIGH) -> None:  # noqa: B006
    return None


@other.procedure(name="Search")
async def search_other(q: Query, /) -> Tree:
    return Tree(f"other {q.text}")


VALUE = Everything(
    at=datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.UTC),
    day=datetime.date(2024, 5, 1),
    span=datetime.timedelta(seconds=90),
    id=uuid.UUID(int=42),
    blob=b"\x00\xff",
    price=Decimal("2.50"),
    mode="b",
    pair=(1, "x"),
    many=(1, 2, 3),
    scores={"a": 1.5},
    unique=frozenset({3}),
    pet=Dog("rex"),
    tree=Tree("t", [Tree("u", level=Level.HIGH, color=None)]),
    note={"text": "hi"},
)


def load(source: str, directory: Path, name: str) -> ModuleType:
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # msgspec resolves annotations through the module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    source = generate([tricky, other], command="twofold client tests:tricky")
    yield load(source, tmp_path_factory.mktemp("generated"), "tricky_client")
    sys.modules.pop("tricky_client", None)


@pytest.mark.parametrize("name", ["Everything", "Tree", "Cat", "Dog", "Color", "Level"])
def test_types_have_the_same_schema(client: ModuleType, name: str) -> None:
    ours = globals()[name]
    assert msgspec.json.schema(getattr(client, name)) == msgspec.json.schema(ours)


def test_a_dataclass_becomes_a_struct_with_the_same_wire(client: ModuleType) -> None:
    query = Query("q", when=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
    raw = msgspec.json.encode(query)
    assert msgspec.json.encode(msgspec.json.decode(raw, type=client.Query)) == raw


def test_values_cross_both_ways_unchanged(client: ModuleType) -> None:
    raw = msgspec.json.encode(VALUE)
    theirs = msgspec.json.decode(raw, type=client.Everything)
    assert msgspec.json.encode(theirs) == raw
    assert theirs.default_tree == client.Tree(node_name="root")
    assert msgspec.json.decode(msgspec.json.encode(theirs), type=Everything) == VALUE


def test_names_and_signatures(client: ModuleType) -> None:
    source = Path(client.__file__).read_text()
    assert client.__doc__.startswith("A typed client of tricky.v1.TrickyService, other.v1")
    # Two services named alike: the second is qualified by its package.
    assert client.TrickyServiceClient and client.OtherV1TrickyServiceClient
    assert client.AsyncOtherV1TrickyServiceClient
    # "call" is a client method already; a field named timeout keeps its name.
    assert "def call_(" in source and "def call(" not in source
    assert "value: Everything,\n        timeout: int = 5,\n    ) -> Everything:" in source
    # A list default is made fresh on each call, not shared between calls.
    assert "tags: list[str] | None = None" in source and "tags = []" in source
    assert 'tag_field="kind"' in source.replace("'", '"')
    for banned in ("tests", "twofold.core.definition", "sqlalchemy", "uvicorn"):
        assert f"import {banned}" not in source and f"from {banned}" not in source


@pytest.mark.parametrize("protocol", ["jsonrpc", "connect"])
def test_the_generated_client_calls_the_app(client: ModuleType, protocol: str) -> None:
    app = App([tricky, other])
    value = msgspec.json.decode(msgspec.json.encode(VALUE), type=client.Everything)

    async def main() -> list[Any]:
        async with client.AsyncTrickyServiceClient(app, protocol=protocol) as c:
            results = [await c.echo(value=value), await c.search(text="a"), await c.call_()]
        async with client.AsyncOtherV1TrickyServiceClient(app, protocol=protocol) as o:
            results.append(await o.search_other(text="b", limit=1))
        return results

    echoed, tree, empty, other_tree = asyncio.run(main())
    assert echoed == value
    assert tree == client.Tree(node_name="a", children=[client.Tree(node_name="limit 10")])
    assert empty == client.Empty()
    assert other_tree.node_name == "other b"
    with client.TrickyServiceClient(app, protocol=protocol) as sync:
        assert sync.search(text="s", limit=2).children[0].node_name == "limit 2"


def test_the_binary_wires_refuse_types_protobuf_cannot_carry(client: ModuleType) -> None:
    app = App([tricky, other])
    with (
        client.TrickyServiceClient(app, protocol="connect-proto") as c,
        pytest.raises(Error) as info,
    ):
        c.search(text="a")
    assert info.value.code is Code.UNIMPLEMENTED and "protobuf" in info.value.message


class Pinned(msgspec.Struct, kw_only=True):
    a: int
    b: Annotated[str, FieldNumber(7)]


pinned = Service("pinned.v1")


@pinned.procedure
async def mirror(value: Pinned) -> Pinned:
    return value


@pytest.mark.parametrize("protocol", ["connect-proto", "grpc-web"])
def test_pinned_field_numbers_are_kept(tmp_path: Path, protocol: str) -> None:
    source = generate([pinned])
    assert "b: Annotated[str, FieldNumber(7)]" in source
    module = load(source, tmp_path, "pinned_client")
    try:
        with module.PinnedServiceClient(App(pinned), protocol=protocol) as c:
            sent = module.Pinned(a=1, b="seven")
            assert c.mirror(value=sent) == sent  # b crossed as field 7 both ways
    finally:
        sys.modules.pop("pinned_client", None)


def test_a_type_without_a_wire_form_is_refused() -> None:
    odd = Service("odd.v1")

    @odd.procedure
    async def square(z: complex) -> Tree:
        return Tree("z")

    with pytest.raises(GeneratorError, match="no wire form"):
        generate([odd])


def test_the_command_writes_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "client.py"
    assert run([tricky], "tests:tricky", str(out)) == 0
    assert "Generated by `twofold client tests:tricky`" in out.read_text()
    assert run([tricky], "tests:tricky", None) == 0
    assert capsys.readouterr().out == out.read_text()
