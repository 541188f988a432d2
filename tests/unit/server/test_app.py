"""The ASGI app itself: lifespan, dispatch of RPC paths, websockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from twofold import App, Code, Error, Service


class Out(msgspec.Struct):
    ok: bool


service = Service("life.v1")


@service.procedure
async def ping() -> Out:
    return Out(True)


async def drive_lifespan(app: App) -> list[dict[str, Any]]:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app({"type": "lifespan"}, receive, send)
    return sent


def test_lifespan_runs_around_the_server() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("start")
        yield
        events.append("stop")

    sent = asyncio.run(drive_lifespan(App(service, lifespan=lifespan)))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["start", "stop"]


@pytest.mark.parametrize("fail_at", ["startup", "shutdown"])
def test_lifespan_failures_are_reported(fail_at: str, caplog: pytest.LogCaptureFixture) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        if fail_at == "startup":
            raise RuntimeError("no database")
        yield
        raise RuntimeError("cannot flush")

    sent = asyncio.run(drive_lifespan(App(service, lifespan=lifespan)))
    assert sent[-1]["type"] == f"lifespan.{fail_at}.failed"
    assert sent[-1]["message"] in ("no database", "cannot flush")
    assert f"{fail_at} failed" in caplog.text


def test_a_lifespan_error_refuses_to_start_with_its_message_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        raise Error(Code.FAILED_PRECONDITION, "the database is behind: run `migrate`")
        yield

    sent = asyncio.run(drive_lifespan(App(service, lifespan=lifespan)))
    assert sent == [
        {"type": "lifespan.startup.failed", "message": "the database is behind: run `migrate`"}
    ]
    assert "Traceback" not in caplog.text and "startup failed" not in caplog.text


def test_websockets_are_closed() -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(App(service)({"type": "websocket", "path": "/"}, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]
