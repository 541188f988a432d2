"""Dependencies in process: what the definition leaves out of the message, what an App
refuses to build, each kind of provider, overrides, and the app scope's life."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import msgspec
import pytest

from tests.asgi import ASGI
from twofold import (
    App,
    Code,
    Context,
    DefinitionError,
    Error,
    Provide,
    Provided,
    Service,
)
from twofold.testing import LifespanError, TestClient


class Db:
    def __init__(self, name: str) -> None:
        self.name = name


class Repo:
    def __init__(self, db: Db) -> None:
        self.db = db


class Out(msgspec.Struct):
    text: str


class In(msgspec.Struct):
    x: int


def served(*provides: Provide, **app: object) -> tuple[App, list[str]]:
    """An App of one method ``Name`` answering with its Db's name, and a log."""
    service = Service("deps.v1")
    log: list[str] = []

    @service.procedure
    async def name(x: int, db: Provided[Db], ctx: Context) -> Out:
        log.append(f"call {ctx.protocol}")
        if x < 0:
            raise Error(Code.NOT_FOUND, "none")
        return Out(db.name)

    return App(service, dependencies=provides, **app), log  # type: ignore[arg-type]


def test_a_provided_parameter_is_not_part_of_the_message() -> None:
    service = Service("shape.v1")

    @service.procedure
    async def fields(x: int, db: Provided[Db], y: str = "") -> Out:
        return Out("")

    @service.procedure
    async def whole(message: In, /, db: Provided[Db], ctx: Context) -> Out:
        return Out("")

    method = service.methods["Fields"]
    assert method.input_type.__struct_fields__ == ("x", "y")
    assert method.dependencies == (Db,)
    assert service.methods["Whole"].input_type is In
    assert service.methods["Whole"].dependencies == (Db,)


def test_an_app_refuses_a_dependency_nobody_provides() -> None:
    with pytest.raises(DefinitionError, match=r"Provided\[Db\].*add Provide\(Db"):
        served()


@pytest.mark.parametrize(
    ("provides", "message"),
    [
        (lambda: [Provide(Db, lambda ctx: Db("x"), scope="app")], "has no type"),
        (lambda: [Provide(Db, lambda: Db("a")), Provide(Db, lambda: Db("b"))], "provided twice"),
        (lambda: [Provide(Db, lambda: Db("a"), scope="forever")], "scope='forever'"),  # type: ignore[arg-type]
        (lambda: [Provide(Db, "not callable")], "not callable"),  # type: ignore[arg-type]
    ],
)
def test_an_app_refuses_providers_that_cannot_work(
    provides: Callable[[], list[Provide]], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message):
        served(*provides())


def test_an_app_scoped_provider_cannot_take_a_call() -> None:
    def per_call(ctx: Context) -> Db:
        return Db("x")

    def repo(db: Db) -> Repo:
        return Repo(db)

    with pytest.raises(DefinitionError, match="takes a Context"):
        served(Provide(Db, per_call, scope="app"))
    with pytest.raises(DefinitionError, match="app-scoped Repo takes the call-scoped Db"):
        served(Provide(Db, lambda: Db("x")), Provide(Repo, repo, scope="app"))


def test_providers_that_need_each_other_are_refused() -> None:
    def db(repo: Repo) -> Db:
        return repo.db

    def repo(db: Db) -> Repo:
        return Repo(db)

    with pytest.raises(DefinitionError, match="need each other"):
        served(Provide(Db, db), Provide(Repo, repo))


class Entered:
    """An async context manager, as a class: entered per call, exited after it."""

    log: list[str] = []

    async def __aenter__(self) -> Db:
        self.log.append("enter")
        return Db("entered")

    async def __aexit__(self, *exc: object) -> None:
        self.log.append(f"exit {exc[0].__name__ if exc[0] else None}")  # type: ignore[attr-defined]


async def made_async() -> Db:
    return Db("awaited")


@contextlib.asynccontextmanager
async def managed() -> AsyncIterator[Db]:
    yield Db("managed")


@pytest.mark.parametrize(
    ("provider", "name"),
    [
        (lambda: Db("plain"), "plain"),
        (made_async, "awaited"),
        (managed, "managed"),
        (Entered, "entered"),
    ],
)
def test_every_kind_of_provider(provider: object, name: str) -> None:
    app, _ = served(Provide(Db, provider))  # type: ignore[arg-type]
    Entered.log.clear()
    with TestClient(app) as client:
        assert client.name(x=1).text == name
        with pytest.raises(Error):
            client.name(x=-1)
    if provider is Entered:
        assert Entered.log == ["enter", "exit None", "enter", "exit Error"]


def test_providers_take_other_dependencies_and_the_app() -> None:
    service = Service("repo.v1")

    @service.procedure
    async def where(x: int, repo: Provided[Repo]) -> Out:
        return Out(repo.db.name)

    def open_db(app: App) -> Db:
        return Db(app.title)

    app = App(
        service,
        title="the app",
        dependencies=[Provide(Db, open_db, scope="app"), Provide(Repo, Repo)],
    )
    with TestClient(app) as client:
        assert client.where(x=1).text == "the app"
        assert app.provided(Db).name == "the app"
    with pytest.raises(Error) as closed:
        app.provided(Db)
    assert closed.value.code is Code.UNAVAILABLE


def test_a_cleanup_that_fails_is_the_calls_error() -> None:
    async def committing() -> AsyncIterator[Db]:
        yield Db("x")
        raise Error(Code.UNAVAILABLE, "the database is busy; retry")

    app, log = served(Provide(Db, committing))
    with TestClient(app, protocol="jsonrpc", retry=None) as client, pytest.raises(Error) as busy:
        client.name(x=1)
    assert busy.value.code is Code.UNAVAILABLE
    assert log == ["call jsonrpc"]


def test_a_provider_that_yields_twice_or_never_is_internal() -> None:
    async def twice() -> AsyncIterator[Db]:
        yield Db("x")
        yield Db("y")

    async def never() -> AsyncIterator[Db]:
        return
        yield Db("x")

    for provider in (twice, never):
        app, _ = served(Provide(Db, provider))
        with TestClient(app) as client, pytest.raises(Error) as bug:
            client.name(x=1)
        assert bug.value.code is Code.INTERNAL


def test_overrides_stand_in_until_the_block_ends() -> None:
    app, _ = served(Provide(Db, lambda: Db("real")))
    with TestClient(app, overrides=[Provide(Db, lambda: Db("fake"))]) as client:
        assert client.name(x=1).text == "fake"
    with TestClient(app) as client:
        assert client.name(x=1).text == "real"
        with app.override(Provide(Db, lambda: Db("for a moment"))):
            assert client.name(x=1).text == "for a moment"
        assert client.name(x=1).text == "real"


def test_an_app_scoped_dependency_is_overridden_before_the_app_starts() -> None:
    opened: list[str] = []

    async def real() -> AsyncIterator[Db]:
        opened.append("real")
        yield Db("real")

    app, _ = served(Provide(Db, real, scope="app"))
    with TestClient(app, overrides=[Provide(Db, lambda: Db("fake"), scope="app")]) as client:
        assert client.name(x=1).text == "fake"
        late = app.override(Provide(Db, lambda: Db("late")))
        with pytest.raises(RuntimeError, match="before the App starts"), late:
            pass
    assert opened == []


def test_an_app_scoped_value_before_startup_is_unavailable(
    asgi: Callable[[App], ASGI],
) -> None:
    app, _ = served(Provide(Db, lambda: Db("x"), scope="app"))
    r = asgi(app).request("POST", "/deps.v1.DepsService/Name", json={"x": 1})
    assert r.status_code == 503
    assert r.json()["code"] == "unavailable"


def test_an_app_scoped_provider_that_fails_refuses_to_start_and_closes_the_lifespan() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("lifespan open")
        yield
        events.append("lifespan closed")

    async def unreachable() -> AsyncIterator[Db]:
        raise Error(Code.FAILED_PRECONDITION, "the database cannot be reached")
        yield Db("x")

    app, _ = served(Provide(Db, unreachable, scope="app"), lifespan=lifespan)
    with pytest.raises(LifespanError, match="cannot be reached"), TestClient(app):
        pass
    assert events == ["lifespan open", "lifespan closed"]
