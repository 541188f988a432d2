"""Renaming a handler's parameter changes no wire.

The item of a create/update/replace is found by its type and is the request
field named after the resource (AIP-133), so the same service written with
``book`` or ``new_book`` serves byte-identical OpenAPI and ``.proto`` and
answers the same on every protocol. Path variables are named by the template:
renaming one is refused at definition time, never a silent wire change.
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any

import msgspec
import pytest

from tests.conftest import run
from twofold import App, DefinitionError, Service
from twofold.protobuf import Schema
from twofold.testing.parity import AsyncWires


class NewBook(msgspec.Struct, forbid_unknown_fields=True):
    title: str
    copies: int = 1


class Patch(msgspec.Struct):
    name: str = ""


class Book(msgspec.Struct):
    id: int
    title: str
    copies: int


def library(item: str) -> App:
    """The same API, its handlers calling the item parameter ``item``."""
    service = Service("library.v1", proto_lock="no-such.lock.json")
    books = service.resource("books")
    shelf: dict[int, Book] = {}

    async def create(**kwargs: Any) -> Book:
        new: NewBook = kwargs[item]
        book = Book(len(shelf) + 1, new.title, new.copies)
        shelf[book.id] = book
        return book

    async def replace(id: int, **kwargs: Any) -> Book:
        new: NewBook = kwargs[item]
        shelf[id] = Book(id, new.title, new.copies)
        return shelf[id]

    async def update(id: int, dry_run: bool = False, **kwargs: Any) -> Book:
        new: NewBook = kwargs[item]
        book = Book(id, new.title, new.copies)
        if not dry_run:
            shelf[id] = book
        return book

    # The signatures are built, not written out: the one thing that differs
    # between the two apps is the parameter's name.
    books.create(_named(create, [(item, NewBook)], Book))
    books.replace(_named(replace, [("id", int), (item, NewBook)], Book))
    books.update(_named(update, [("id", int), (item, NewBook), ("dry_run", bool, False)], Book))
    return App(service)


def _named(fn: Any, params: list[tuple[Any, ...]], output: type[Any]) -> Any:
    parameters = [
        inspect.Parameter(
            p[0],
            inspect.Parameter.KEYWORD_ONLY,
            annotation=p[1],
            default=p[2] if len(p) > 2 else inspect.Parameter.empty,
        )
        for p in params
    ]

    async def handler(**kwargs: Any) -> Any:
        return await fn(**kwargs)

    signature = inspect.Signature(parameters, return_annotation=output)
    handler.__signature__ = signature  # type: ignore[attr-defined]
    handler.__annotations__ = {p[0]: p[1] for p in params} | {"return": output}
    handler.__name__ = handler.__qualname__ = fn.__name__
    return handler


def test_renaming_the_item_keeps_openapi_and_proto_byte_identical() -> None:
    original, renamed = library("book"), library("new_book")
    assert json.dumps(renamed.openapi, sort_keys=True) == json.dumps(
        original.openapi, sort_keys=True
    )
    assert Schema(renamed.table, lock=None).text() == Schema(original.table, lock=None).text()
    # The lock is keyed by the wire name: the renamed handler keeps its numbers.
    lock = Schema(original.table, lock=None).lock
    assert Schema(renamed.table, lock=lock).problems == []
    bindings = {m.name: m.http.body if m.http else None for m in renamed.table}
    assert bindings == {"CreateBook": "book", "ReplaceBook": "book", "UpdateBook": "book"}


def book(output: Any) -> Book:
    # Proto3 JSON writes 64-bit integers as strings.
    return msgspec.convert(output, Book, strict=False)


@pytest.mark.parametrize("item", ["book", "new_book"])
def test_renamed_item_answers_alike_on_every_wire(protocol: str, item: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        created = await w.call(protocol, "CreateBook", {"book": {"title": "Dune"}}, {})
        assert (created.code, created.output["title"]) == (None, "Dune")
        replaced = await w.call(
            protocol, "ReplaceBook", {"id": 1, "book": {"title": "Emma", "copies": 2}}, {}
        )
        assert (replaced.code, book(replaced.output)) == (None, Book(1, "Emma", 2))
        updated = await w.call(
            protocol, "UpdateBook", {"id": 1, "book": {"title": "X"}, "dry_run": True}, {}
        )
        assert (updated.code, book(updated.output)) == (None, Book(1, "X", 1))

    run(library(item), scenario)


@pytest.mark.parametrize("item", ["book", "new_book"])
def test_rest_body_is_the_flat_item_whatever_the_parameter_name(item: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        answer = await w.http.post("/books", json={"title": "Dune"})
        assert (answer.status_code, answer.json()["title"]) == (201, "Dune")
        nested = await w.http.post("/books", json={item: {"title": "Dune"}})
        assert nested.status_code == 400, "the parameter's name is not part of the body"
        rpc = await w.http.post(
            "/library.v1.LibraryService/CreateBook",
            json={"book": {"title": "Emma"}},
            headers={"content-type": "application/json"},
        )
        assert (rpc.status_code, rpc.json()["title"]) == (200, "Emma")

    run(library(item), scenario)


def test_item_is_chosen_by_type_or_by_body() -> None:
    service = Service("shop.v1", proto_lock="no-such.lock.json")
    items = service.resource("items")

    @items.update(body="changes")
    async def update_item(id: int, changes: Patch, audit: NewBook) -> Book:
        raise NotImplementedError

    method = service.methods["UpdateItem"]
    assert method.http is not None and method.http.body == "item"
    assert [f.name for f in msgspec.structs.fields(method.input_type)] == ["id", "item", "audit"]

    @items.create
    async def create_item(draft: Annotated[Patch, msgspec.Meta(title="draft")]) -> Book:
        raise NotImplementedError

    created = service.methods["CreateItem"]
    assert created.http is not None and created.http.body == "item"

    with pytest.raises(DefinitionError, match=r"changes, audit are all messages .* body="):

        @items.replace
        async def replace_item(id: int, changes: Patch, audit: NewBook) -> Book:
            raise NotImplementedError

    with pytest.raises(DefinitionError, match=r"body='nothing' names no parameter"):

        @service.resource("others").create(body="nothing")
        async def create_other(new_item: Patch) -> Book:
            raise NotImplementedError

    with pytest.raises(DefinitionError, match=r"'patch' is the request field 'item'"):

        @Service("other.v1", proto_lock="no-such.lock.json").resource("items").create
        async def create_item_twice(patch: Patch, item: str) -> Book:
            raise NotImplementedError


def test_renaming_a_path_variable_is_refused_naming_the_template() -> None:
    books = Service("lib.v1", proto_lock="no-such.lock.json").resource("books")
    with pytest.raises(DefinitionError, match=r"GET /books/\{id\} needs a parameter 'id'"):

        @books.get
        async def get_book(book_id: int) -> Book:
            raise NotImplementedError
