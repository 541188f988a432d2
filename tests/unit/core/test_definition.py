from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import pytest

from twofold import Context, DefinitionError, Idempotency, Service
from twofold.core.method import Empty


class Item(msgspec.Struct):
    id: int
    name: str


def run(method: Any, **fields: Any) -> Any:
    return asyncio.run(method.handler(method.input_type(**fields), None))


def test_resource_methods_follow_aip_names_and_bindings() -> None:
    s = Service("shop.v1")
    assert s.full_name == "shop.v1.ShopService"
    items = s.resource("items")

    @items.get
    async def get_item(id: int) -> Item:
        return Item(id, "x")

    @items.list
    async def list_items(page_size: int = 10) -> Item:
        return Item(0, "x")

    @items.create
    async def create_item(item: Item) -> Item:
        return item

    @items.update
    async def update_item(id: int, item: Item) -> Item:
        return item

    @items.replace
    async def replace_item(id: int, item: Item) -> Item:
        return item

    @items.delete
    async def delete_item(id: int) -> None:
        pass

    parts = items.resource("parts")

    @parts.action("polish")
    async def polish_part(item_id: int, part_id: int, shine: int = 1) -> Empty:
        return Empty()

    got = {
        m.name: (m.http.verb, m.http.path, m.http.body, m.idempotency)
        for m in s.methods.values()
        if m.http
    }
    assert got == {
        "GetItem": ("GET", "/items/{id}", None, Idempotency.NO_SIDE_EFFECTS),
        "ListItems": ("GET", "/items", None, Idempotency.NO_SIDE_EFFECTS),
        "CreateItem": ("POST", "/items", "item", Idempotency.UNKNOWN),
        "UpdateItem": ("PATCH", "/items/{id}", "item", Idempotency.UNKNOWN),
        "ReplaceItem": ("PUT", "/items/{id}", "item", Idempotency.IDEMPOTENT),
        "DeleteItem": ("DELETE", "/items/{id}", None, Idempotency.IDEMPOTENT),
        "PolishPart": ("POST", "/items/{item_id}/parts/{part_id}:polish", "*", Idempotency.UNKNOWN),
    }
    assert s.methods["CreateItem"].http.status == 201
    assert s.methods["CreateItem"].http.location == "/items/{id}"
    assert s.methods["DeleteItem"].returns_empty
    assert s.methods["GetItem"].resource == "/items"
    assert run(s.methods["GetItem"], id=3) == Item(3, "x")
    assert run(s.methods["DeleteItem"], id=3) == Empty()


def test_procedure_names_docs_and_request_message() -> None:
    s = Service("shop.v1", "Reports")

    @s.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
    async def generate_report(
        ctx: Context,
        limit: Annotated[int, msgspec.Meta(ge=1)] = 5,
        tags: list[str] = [],  # noqa: B006
    ) -> Item:
        """Make a report.

        It counts things.
        """
        return Item(limit, ",".join(tags))

    m = s.methods["GenerateReport"]
    assert m.full_name == "shop.v1.Reports/GenerateReport"
    assert m.path == "/shop.v1.Reports/GenerateReport"
    assert m.summary == "Make a report."
    assert "It counts things." in m.description
    assert m.http is None and m.resource == ""
    assert m.input_type.__name__ == "GenerateReportRequest"
    assert [f.name for f in msgspec.structs.fields(m.input_type)] == ["limit", "tags"]
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"limit": 0}, m.input_type)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"nope": 0}, m.input_type)
    assert run(m, limit=2, tags=["a", "b"]) == Item(2, "a,b")


@dataclass
class Query:
    text: str


def test_whole_message_and_sync_handlers() -> None:
    s = Service("shop.v1")
    seen: list[str] = []

    @s.procedure(http=("POST", "/search"))
    def search(query: Query, /) -> Item:
        seen.append(threading.current_thread().name)
        return Item(1, query.text)

    m = s.methods["Search"]
    assert m.input_type is Query
    assert m.http.body == "*"
    assert asyncio.run(m.handler(Query("hi"), None)) == Item(1, "hi")
    assert seen and seen[0] != threading.main_thread().name  # ran off the event loop


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("async def f(x) -> Item: ...", "needs a type annotation"),
        ("async def f(x: int): ...", "annotate the return type"),
        ("async def f(*xs: int) -> Item: ...", "cannot become message fields"),
        ("async def f(x: int) -> int: ...", "must be a msgspec Struct or dataclass"),
        ("async def f(x: int, /) -> Item: ...", "only a message type may be positional-only"),
        ("async def f(x: int) -> Item:\n    yield Item(1, 'a')", "-> AsyncIterator\\[Message\\]"),
    ],
)
def test_bad_definitions_fail_at_import_time(source: str, message: str) -> None:
    namespace: dict[str, Any] = {"Item": Item}
    exec(source, namespace)
    s = Service("shop.v1")
    with pytest.raises(DefinitionError, match=message):
        s.procedure(namespace["f"])


def test_binding_must_name_fields_and_names_are_unique() -> None:
    s = Service("shop.v1")
    items = s.resource("items")
    with pytest.raises(DefinitionError, match="needs a parameter 'id'"):

        @items.get
        async def get_item(item_id: int) -> Item: ...

    @s.procedure
    async def ping() -> None: ...

    with pytest.raises(DefinitionError, match="defined twice"):
        s.procedure(name="Ping")(ping)


def test_service_names_are_checked() -> None:
    with pytest.raises(DefinitionError):
        Service("not a package")
    with pytest.raises(DefinitionError):
        Service("shop.v1", "Bad Name")
