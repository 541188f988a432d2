"""Server-Sent Events: a server-streaming method on its REST route."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

from twofold import App, Code, Error, Service
from twofold.wires import sse

service = Service("sse.v1")
EVENTS: list[str] = []


class Tick(msgspec.Struct):
    n: int


@service.procedure(http=("GET", "/ticks:count"))
async def count(to: int, fail_at: int = -1, pause: float = 0.0) -> AsyncIterator[Tick]:
    if to < 0:
        raise Error.invalid("to", "must not be negative")
    try:
        for n in range(to):
            if n == fail_at:
                raise Error(Code.FAILED_PRECONDITION, "unlucky")
            if pause:
                await asyncio.sleep(pause)
            yield Tick(n)
    finally:
        EVENTS.append(f"count({to}) ended")


@service.procedure(http=("POST", "/ticks:echo"))
async def echo(n: int) -> AsyncIterator[Tick]:
    yield Tick(n)
    raise RuntimeError("password=hunter2")


@service.procedure(http=("GET", "/ticks:timed"))
async def timed(n: int) -> AsyncIterator[Tick]:
    # A timeout spanning yields only works if the generator runs in one task.
    try:
        async with asyncio.timeout(0.1):
            for i in range(n):
                await asyncio.sleep(0.04)
                yield Tick(i)
    except TimeoutError:
        raise Error(Code.DEADLINE_EXCEEDED, "budget spent") from None


app = App(service)


def get(path: str, **params: Any) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path, params=params)

    return asyncio.run(run())


def events(text: str) -> list[tuple[str, Any]]:
    out = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        out.append((fields.get("event", "message"), json.loads(fields["data"])))
    return out


def test_each_message_is_one_event() -> None:
    r = get("/ticks:count", to=3)
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    assert r.headers["cache-control"] == "no-store"
    assert events(r.text) == [("message", {"n": 0}), ("message", {"n": 1}), ("message", {"n": 2})]


def test_an_empty_stream_is_an_empty_200() -> None:
    r = get("/ticks:count", to=0)
    assert r.status_code == 200 and events(r.text) == []


def test_an_error_after_messages_is_an_error_event_with_the_problem() -> None:
    r = get("/ticks:count", to=5, fail_at=2)
    got = events(r.text)
    assert [e for e, _ in got] == ["message", "message", "error"]
    problem = got[-1][1]
    assert problem["code"] == "failed_precondition" and problem["status"] == 400
    assert problem["instance"] == "/ticks:count" and problem["detail"] == "unlucky"


def test_an_error_before_the_first_message_is_a_plain_problem() -> None:
    r = get("/ticks:count", to=-1)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["violations"] == [{"field": "to", "description": "must not be negative"}]
    r = get("/ticks:count", to="many")
    assert r.status_code == 400 and r.json()["violations"][0]["field"] == "to"


def test_an_unexpected_exception_is_internal_without_the_text() -> None:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/ticks:echo", json={"n": 1})

    r = asyncio.run(run())
    got = events(r.text)
    assert got[0] == ("message", {"n": 1})
    assert got[1][0] == "error" and got[1][1]["code"] == "internal"
    assert "hunter2" not in r.text


def test_a_slow_first_message_opens_the_stream_first(monkeypatch: Any) -> None:
    monkeypatch.setattr(sse, "GRACE", 0.01)
    monkeypatch.setattr(sse, "KEEPALIVE", 0.01)
    r = get("/ticks:count", to=2, pause=0.05)
    assert r.status_code == 200 and ": keepalive" in r.text
    assert [d for _, d in events(r.text)] == [{"n": 0}, {"n": 1}]


def test_disconnect_cancels_the_handler() -> None:
    EVENTS.clear()
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        gone = asyncio.Event()
        first = True

        async def receive() -> dict[str, Any]:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if len(sent) == 3:
                gone.set()

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/ticks:count",
            "query_string": b"to=1000000&pause=0.001",
            "headers": [],
        }
        await asyncio.wait_for(app(scope, receive, send), 5)

    asyncio.run(run())
    assert EVENTS == ["count(1000000) ended"]
    assert len(sent) < 20


def test_a_generator_runs_in_one_task_while_the_stream_is_kept_alive(monkeypatch: Any) -> None:
    monkeypatch.setattr(sse, "GRACE", 0.001)
    monkeypatch.setattr(sse, "KEEPALIVE", 0.001)
    got = events(get("/ticks:timed", n=10).text)
    assert len(got) < 10 and [e for e, _ in got[:-1]] == ["message"] * (len(got) - 1)
    assert got[-1][0] == "error" and got[-1][1]["code"] == "deadline_exceeded"


def test_a_stream_the_server_cancels_ends_with_unavailable() -> None:
    """What uvicorn does to a request still running past its graceful-shutdown timeout."""

    async def scenario() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        first = asyncio.Event()
        never = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await never.wait()  # the client stays
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if b"\ndata:" in message.get("body", b""):
                first.set()

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/ticks:count",
            "raw_path": b"/ticks:count",
            "query_string": b"to=1000&pause=0.05",
            "headers": [(b"accept", b"text/event-stream")],
            "client": ("127.0.0.1", 1234),
            "server": ("127.0.0.1", 80),
            "scheme": "http",
            "root_path": "",
            "http_version": "1.1",
        }
        request = asyncio.ensure_future(app(scope, receive, send))
        await first.wait()
        request.cancel()
        await request  # the stream ends: no CancelledError left to the server
        return sent

    sent = asyncio.run(scenario())
    last = sent[-1]
    assert last["type"] == "http.response.body" and not last.get("more_body", False)
    error = next(
        m["body"] for m in reversed(sent) if m.get("body", b"").startswith(b"event: error")
    )
    assert json.loads(error.split(b"data: ", 1)[1])["code"] == "unavailable"
