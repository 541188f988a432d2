"""/healthz and /readyz in process: answers, readiness states, options, clashes."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from tests.asgi import ASGI
from twofold import ApiKeys, App, Authentication, Options, Service, requires
from twofold.core.definition import DefinitionError


class Out(msgspec.Struct):
    ok: bool


def service() -> Service:
    svc = Service("probe.v1")

    @requires("admin")
    @svc.procedure(http=("GET", "/things/{id}"))
    async def get_thing(id: str) -> Out:
        return Out(True)

    return svc


def guarded(**options: Any) -> App:
    return App(service(), interceptors=[Authentication(ApiKeys([]))], options=Options(**options))


async def start(app: App) -> None:
    """Run the lifespan's startup half, as a server does before serving."""
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await incoming.put({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def send(message: Any) -> None:
        started.set()

    asyncio.get_running_loop().create_task(app({"type": "lifespan"}, incoming.get, send))
    await started.wait()


def test_healthz_answers_without_credentials_and_is_never_cached() -> None:
    app = guarded()
    answer = ASGI(app).request("GET", "/healthz")
    assert (answer.status_code, answer.text) == (200, "ok\n")
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-type"].startswith("text/plain")
    assert ASGI(app).request("GET", "/things/1").status_code == 401  # the guard is on


def test_readyz_is_503_until_the_lifespan_has_started_then_200() -> None:
    app = guarded()
    answer = ASGI(app).request("GET", "/readyz")
    assert (answer.status_code, answer.text) == (503, "not ready: starting\n")
    assert answer.headers["cache-control"] == "no-store"

    async def test(client: Any) -> None:
        await start(app)
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.text) == (200, "ready\n")
        head = await client.head("/readyz")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(b"ready\n"))

    ASGI(app).run(test)


def test_readiness_parts_and_draining() -> None:
    app = guarded()
    readiness = app.readiness
    readiness.started = True
    readiness.require("grpc")
    assert ASGI(app).request("GET", "/readyz").text == "not ready: grpc not serving\n"
    readiness.set("grpc", True)
    assert ASGI(app).request("GET", "/readyz").status_code == 200
    readiness.drain()
    answer = ASGI(app).request("GET", "/readyz")
    assert (answer.status_code, answer.text) == (503, "not ready: draining\n")
    assert ASGI(app).request("GET", "/healthz").status_code == 200  # alive while draining


def test_other_verbs_are_405() -> None:
    answer = ASGI(guarded()).request("POST", "/healthz")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD"


def test_paths_are_options_and_none_serves_none() -> None:
    app = guarded(health_path="/-/alive", ready_path=None)
    assert ASGI(app).request("GET", "/-/alive").status_code == 200
    assert ASGI(app).request("GET", "/healthz").status_code == 404
    assert ASGI(app).request("GET", "/readyz").status_code == 404


def test_not_in_openapi_unless_asked() -> None:
    assert not {"/healthz", "/readyz"} & set(guarded().openapi["paths"])
    paths = guarded(health_in_openapi=True).openapi["paths"]
    assert paths["/healthz"]["get"]["security"] == []
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_a_health_path_that_hides_a_route_is_refused() -> None:
    svc = Service("clash.v1")

    @svc.procedure(http=("GET", "/status"))
    async def status() -> Out:
        return Out(True)

    with pytest.raises(DefinitionError, match="/status is both a health path"):
        App(svc, options=Options(health_path="/status"))
    with pytest.raises(DefinitionError, match="/jsonrpc is both a health path"):
        App(Service("clash2.v1"), options=Options(ready_path="/jsonrpc"))
