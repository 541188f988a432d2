"""Method options take effect in any decorator order, or the definition is refused.

Every option decorator (``@requires``, ``@public``, ``@timeout``, and
``@lifetime`` on the streams it is for) against every
registration decorator (the six standard resource methods, an action, and a
procedure of each streaming kind), written above it and under it.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from twofold import (
    ApiKeys,
    App,
    Authentication,
    Deadlines,
    DefinitionError,
    Resource,
    Service,
    StoredApiKey,
    lifetime,
    public,
    requires,
    timeout,
)
from twofold.core.policy import PUBLIC, Requirement


class Thing(msgspec.Struct):
    id: int
    name: str = ""


class Things(msgspec.Struct):
    things: list[Thing]


async def get(id: int) -> Thing:
    return Thing(id)


async def list_(page_size: int = 10) -> Things:
    return Things([])


async def create(thing: Thing) -> Thing:
    return thing


async def update(id: int, thing: Thing) -> Thing:
    return thing


async def delete(id: int) -> None:
    return None


async def unary(name: str) -> Thing:
    return Thing(1, name)


async def server(name: str) -> AsyncIterator[Thing]:
    yield Thing(1, name)


async def client(things: AsyncIterator[Thing]) -> Thing:
    return Thing(0)


async def bidi(things: AsyncIterator[Thing]) -> AsyncIterator[Thing]:
    async for thing in things:
        yield thing


Register = Callable[[Service, Resource], Callable[[Any], Any]]
# name -> (the registration decorator, the handler it takes, the RPC it makes)
REGISTRATIONS: dict[str, tuple[Register, Callable[..., Any], str]] = {
    "get": (lambda s, r: r.get, get, "GetThing"),
    "get(cache)": (lambda s, r: r.get(cache=None), get, "GetThing"),
    "list": (lambda s, r: r.list, list_, "ListThings"),
    "create": (lambda s, r: r.create, create, "CreateThing"),
    "update": (lambda s, r: r.update, update, "UpdateThing"),
    "replace": (lambda s, r: r.replace, update, "ReplaceThing"),
    "delete": (lambda s, r: r.delete, delete, "DeleteThing"),
    "action": (lambda s, r: r.action("archive"), get, "ArchiveThing"),
    "procedure": (lambda s, r: s.procedure, unary, "Unary"),
    "procedure(http)": (lambda s, r: s.procedure(http=("POST", "/u")), unary, "Unary"),
    "server stream": (lambda s, r: s.procedure, server, "Server"),
    "client stream": (lambda s, r: s.procedure, client, "Client"),
    "bidi stream": (lambda s, r: s.procedure, bidi, "Bidi"),
}

WRITE = Requirement(scopes=("things:write",))
# name -> (the option decorator, the Method attribute it sets, the value)
OPTIONS: dict[str, tuple[Callable[[Any], Any], str, Any]] = {
    "requires": (requires("things:write"), "security", WRITE),
    "public": (public, "security", PUBLIC),
    "timeout": (timeout(2.5), "timeout", 2.5),
}


def copy(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A fresh function with ``fn``'s code: options mark the function itself."""
    new = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    new.__annotations__ = dict(fn.__annotations__)
    new.__qualname__ = fn.__qualname__
    return new


def app_for(service: Service) -> App:
    keys = ApiKeys([StoredApiKey.of("k", "someone")])
    return App(service, interceptors=[Authentication(keys), Deadlines()])


@pytest.mark.parametrize("above", [True, False], ids=["option above", "option under"])
@pytest.mark.parametrize("registration", sorted(REGISTRATIONS))
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_an_option_takes_effect_in_either_order(
    option: str, registration: str, above: bool
) -> None:
    decorate, attribute, value = OPTIONS[option]
    make, handler, rpc = REGISTRATIONS[registration]
    # security=PUBLIC: a default the option must override (or agree with).
    service = Service("things.v1", security=PUBLIC if option == "timeout" else None)
    register = make(service, service.resource("things"))
    fn = copy(handler)
    if above:
        decorate(register(fn))
    else:
        register(decorate(fn))
    assert getattr(service.methods[rpc], attribute) == value
    # And the App serves it so: its copy of the method has the option too.
    [served] = [m for m in app_for(service).table if m.name == rpc]
    assert getattr(served, attribute) == value


@pytest.mark.parametrize("above", [True, False], ids=["option above", "option under"])
@pytest.mark.parametrize("registration", ["server stream", "bidi stream"])
def test_a_lifetime_takes_effect_in_either_order(registration: str, above: bool) -> None:
    make, handler, rpc = REGISTRATIONS[registration]
    service = Service("things.v1", security=PUBLIC)
    register = make(service, service.resource("things"))
    fn = copy(handler)
    if above:
        lifetime(60)(register(fn))
    else:
        register(lifetime(60)(fn))
    [served] = [m for m in app_for(service).table if m.name == rpc]
    assert service.methods[rpc].lifetime == served.lifetime == 60.0


@pytest.mark.parametrize("above", [True, False], ids=["option above", "option under"])
@pytest.mark.parametrize("registration", ["procedure", "client stream", "get"])
def test_a_lifetime_on_a_call_that_ends_by_itself_is_refused(
    registration: str, above: bool
) -> None:
    make, handler, _ = REGISTRATIONS[registration]
    service = Service("things.v1", security=PUBLIC)
    register = make(service, service.resource("things"))
    fn = copy(handler)
    if above:
        lifetime(60)(register(fn))
    else:
        register(lifetime(60)(fn))
    with pytest.raises(DefinitionError, match="@lifetime is for server and bidi streams"):
        app_for(service)


@pytest.mark.parametrize("above", [True, False], ids=["option above", "option under"])
def test_an_option_overrides_the_service_default_in_either_order(above: bool) -> None:
    service = Service("things.v1", security=PUBLIC)
    fn = copy(create)
    things = service.resource("things")
    if above:
        requires("things:write")(things.create(fn))
    else:
        things.create(requires("things:write")(fn))
    assert service.methods["CreateThing"].security == WRITE


@pytest.mark.parametrize(
    "options",
    [
        (public, requires("things:write")),
        (requires("things:write"), public),
        (requires("things:write"), requires("things:admin")),
        (timeout(1), timeout(2)),
    ],
    ids=["public+requires", "requires+public", "two requires", "two timeouts"],
)
@pytest.mark.parametrize("where", ["both above", "both under", "around"])
def test_conflicting_options_are_refused(options: tuple[Any, Any], where: str) -> None:
    first, second = options
    service = Service("things.v1")
    things = service.resource("things")
    fn = copy(create)
    with pytest.raises(DefinitionError, match="keep one"):
        if where == "both above":
            second(first(things.create(fn)))
        elif where == "both under":
            things.create(second(first(fn)))
        else:
            second(things.create(first(fn)))


def test_the_same_option_twice_is_one_option() -> None:
    service = Service("things.v1")
    fn = copy(create)
    public(service.resource("things").create(public(fn)))
    assert service.methods["CreateThing"].security == PUBLIC


@pytest.mark.parametrize("where", ["above both", "between", "under both", "after both"])
def test_options_on_a_function_registered_twice_are_refused(where: str) -> None:
    one, two = Service("one.v1"), Service("two.v1")
    fn = copy(unary)
    with pytest.raises(DefinitionError, match=r"registered as .*one\.v1.*two\.v1|two\.v1.*one\.v1"):
        if where == "above both":
            public(one.procedure(two.procedure(fn)))
        elif where == "between":
            one.procedure(public(two.procedure(fn)))
        elif where == "under both":
            one.procedure(two.procedure(public(fn)))
        else:
            two.procedure(fn)
            one.procedure(fn)
            public(fn)


def test_a_function_registered_twice_without_options_is_fine() -> None:
    one, two = Service("one.v1", security=PUBLIC), Service("two.v1")
    fn = copy(unary)
    one.procedure(two.procedure(fn))
    assert one.methods["Unary"].security == PUBLIC and two.methods["Unary"].security is None


def test_an_option_on_a_function_never_registered_is_not_our_business() -> None:
    fn = copy(unary)
    assert requires("x")(timeout(1)(fn)) is fn


def test_an_option_after_the_app_was_built_is_refused() -> None:
    service = Service("things.v1", security=PUBLIC)
    fn = copy(unary)
    service.procedure(fn)
    app_for(service)
    with pytest.raises(DefinitionError, match=r"after App\('things.v1.ThingsService'\) was built"):
        requires("things:write")(fn)
    assert service.methods["Unary"].security == PUBLIC


def test_a_method_after_the_app_was_built_is_refused() -> None:
    service = Service("things.v1", security=PUBLIC)
    service.procedure(copy(unary))
    app_for(service)
    with pytest.raises(DefinitionError, match="declare every method and option before"):
        service.procedure(copy(server))
    assert list(service.methods) == ["Unary"]
    # A second App from the same, unchanged, service is fine.
    app_for(service)
