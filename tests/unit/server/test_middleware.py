"""App(middleware=...): the entries it takes, their order, what it refuses; and
finding the App inside an app wrapped by hand."""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Any

import msgspec
import pytest
from starlette.middleware import Middleware as StarletteMiddleware

from tests.asgi import ASGI
from twofold import App, DefinitionError, Middleware, Service
from twofold.core.asgi import ASGIApp, Message, Receive, Scope, Send
from twofold.server.loader import LoadError, load_served
from twofold.server.middleware import find_app

SEEN: list[tuple[str, str]] = []


class Echo(msgspec.Struct):
    text: str


def make_app(middleware: list[Any]) -> App:
    service = Service("mw.v1")

    @service.procedure(http=("POST", "/echo"))
    async def echo(text: str) -> Echo:
        return Echo(text)

    return App(service, middleware=middleware)


class Tag:
    """Records the scopes it sees and adds ``x-tag`` to answers (its tags in order)."""

    def __init__(self, app: ASGIApp, name: str = "tag") -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        SEEN.append((self.name, scope["type"]))

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-tag", self.name.encode())]
            await send(message)

        await self.app(scope, receive, tagged)


def tags(app: App) -> list[str]:
    answer = ASGI(app).request("POST", "/echo", json={"text": "hi"})
    assert answer.json() == {"text": "hi"}
    return answer.headers.get_list("x-tag")


def test_every_kind_of_entry_wraps_the_app_first_one_outermost() -> None:
    app = make_app(
        [
            Middleware(Tag, name="ours"),
            StarletteMiddleware(Tag, name="starlette"),
            functools.partial(Tag, name="partial"),
            lambda inner: Tag(inner, "lambda"),
            Tag,
        ]
    )
    # The innermost adds its header first: headers read inside out.
    assert tags(app) == ["tag", "lambda", "partial", "starlette", "ours"]
    assert repr(Middleware(Tag, name="ours")) == "Middleware(Tag, name='ours')"


def test_the_middleware_sees_the_lifespan_and_the_app_still_runs_it() -> None:
    SEEN.clear()
    app = make_app([Tag])
    assert app.readiness.started is False

    async def lifespan() -> None:
        sent: list[Message] = []
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> Message:
            return next(messages)

        async def send(message: Message) -> None:
            sent.append(message)

        await app({"type": "lifespan"}, receive, send)
        assert [m["type"] for m in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]

    asyncio.run(lifespan())
    assert SEEN == [("tag", "lifespan")]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (42, "middleware entry 42 is neither Middleware(cls, **options) nor a callable"),
        (lambda app: None, "returned None, not an ASGI app"),
    ],
)
def test_a_bad_entry_is_refused_when_the_app_is_built(entry: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=re.escape(message)):
        make_app([entry])


def test_the_app_is_found_inside_attributes_and_closures() -> None:
    app = make_app([])

    def function_middleware(inner: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            await inner(scope, receive, send)

        return middleware

    assert find_app(Tag(Tag(app)), App) is app
    assert find_app(function_middleware(Tag(app)), App) is app
    assert find_app(functools.wraps(app)(lambda *a: None), App) is app  # __wrapped__
    assert find_app(Tag(lambda *a: None), App) is None
    cyclic = Tag(app)
    cyclic.app = cyclic
    assert find_app(cyclic, App) is None


def test_load_served_gives_the_wrapper_to_serve_and_the_app_inside() -> None:
    from tests.e2e import wrapped_app

    served, app = load_served("tests.e2e.wrapped_app:app")
    assert served is wrapped_app.app and app is wrapped_app.edge
    with pytest.raises(LoadError, match=r"no twofold App that can be found inside"):
        load_served("tests.e2e.wrapped_app:opaque")
    with pytest.raises(LoadError, match=r"is a str, not a twofold App or Service"):
        load_served("tests.e2e.edge_app:KEY")
