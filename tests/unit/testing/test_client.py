"""The test clients: lifespan around the calls, every wire in process, streams as they come."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import pytest

from tests.unit.testing.apps import State, broken_app, counting_app
from twofold import Client, Code, Error
from twofold.testing import AsyncTestClient, LifespanError, TestClient

WIRES = ["rest", "jsonrpc", "connect", "connect-proto", "grpc-web", "grpc"]
STREAMING = [w for w in WIRES if w != "jsonrpc"]
# Every test call has a deadline: a transport that waited for the end of an
# endless stream fails with DEADLINE_EXCEEDED instead of hanging the suite.
DEADLINE = 20.0


def test_the_lifespan_runs_around_the_calls() -> None:
    state = State()
    app = counting_app(state)
    with TestClient(app, timeout=DEADLINE) as client:
        assert (state.started, state.stopped) == (1, 0)
        assert client.echo(value=1) == client.rpc.echo(value=1)
        assert client.echo(value=1).value == 1001  # the handler read what startup opened
    assert (state.started, state.stopped) == (1, 1)


def test_without_the_lifespan_the_handler_sees_nothing_open() -> None:
    # What the test above relies on: a plain in-process client runs no lifespan.
    app = counting_app(State())
    with Client(app.services, app) as client, pytest.raises(Error) as raised:
        client.echo(value=1)
    assert raised.value.code is Code.FAILED_PRECONDITION


@pytest.mark.parametrize("protocol", WIRES)
def test_every_wire_sync(protocol: str) -> None:
    app = counting_app(State())
    with TestClient(app, protocol=protocol, timeout=DEADLINE) as client:
        assert client.protocol == protocol
        assert client.echo(value=2).value == 1002
        if protocol in STREAMING:
            assert [n.value for n in client.count(to=3)] == [1000, 1001, 1002]
        # Raw HTTP reaches the same started app, whatever the client's wire.
        response = client.http.get("/numbers/3")
        assert (response.status_code, response.json()) == (200, {"value": 1003})


@pytest.mark.parametrize("protocol", WIRES)
def test_every_wire_async(protocol: str) -> None:
    state = State()
    app = counting_app(state)

    async def scenario() -> None:
        async with AsyncTestClient(app, protocol=protocol, timeout=DEADLINE) as client:
            assert state.started == 1
            assert (await client.echo(value=2)).value == 1002
            if protocol in STREAMING:
                assert [n.value async for n in client.count(to=3)] == [1000, 1001, 1002]
            response = await client.http.get("/numbers/3")
            assert response.json() == {"value": 1003}
        assert state.stopped == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("protocol", STREAMING)
def test_an_endless_stream_is_read_and_left_sync(protocol: str) -> None:
    state = State()
    with TestClient(counting_app(state), protocol=protocol, timeout=DEADLINE) as client:
        numbers = client.forever()
        assert [n.value for n in itertools.islice(numbers, 5)] == [0, 1, 2, 3, 4]
        numbers.close()
        assert client.echo(value=0).value == 1000  # the app is still there
    assert state.streams_ended == 1


@pytest.mark.parametrize("protocol", STREAMING)
def test_an_endless_stream_is_read_and_left_async(protocol: str) -> None:
    state = State()

    async def scenario() -> None:
        app = counting_app(state)
        async with AsyncTestClient(app, protocol=protocol, timeout=DEADLINE) as client:
            numbers = client.ticks()
            async with contextlib.aclosing(numbers):
                assert [(await anext(numbers)).value for _ in range(5)] == [0, 1, 2, 3, 4]
            assert (await client.echo(value=0)).value == 1000

    asyncio.run(scenario())
    assert state.streams_ended == 1


def test_raw_http_streams_too() -> None:
    client = TestClient(counting_app(State()), protocol="rest")
    with client, client.http.stream("GET", "/numbers:forever") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = response.iter_lines()
        assert next(line for line in events if line.startswith("data:")) == ('data: {"value":0}')


@pytest.mark.parametrize("protocol", ["connect", "grpc"])
def test_a_failing_startup_raises_on_enter(protocol: str) -> None:
    client = TestClient(broken_app("startup"), protocol=protocol)
    with pytest.raises(LifespanError, match="the database is down"), client:
        raise AssertionError("the block must not run")
    with pytest.raises(AttributeError, match="enter the test client first"):
        client.ping()


def test_a_failing_startup_raises_on_enter_async() -> None:
    async def scenario() -> None:
        async with AsyncTestClient(broken_app("startup")):
            raise AssertionError("the block must not run")

    with pytest.raises(LifespanError, match="the database is down"):
        asyncio.run(scenario())


def test_a_failing_shutdown_raises_on_exit() -> None:
    client = TestClient(broken_app("shutdown"))
    with pytest.raises(LifespanError, match="the pool would not close"), client:
        assert client.ping().value == 1


def test_only_an_app_is_tested() -> None:
    async def asgi(scope: object, receive: object, send: object) -> None:
        raise NotImplementedError

    with pytest.raises(TypeError, match=r"twofold\.App"):
        TestClient(asgi)  # type: ignore[arg-type]
