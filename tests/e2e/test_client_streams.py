"""Streams through twofold.Client and AsyncClient, over every wire that carries them.

The service is tests/e2e/grpc_app.py (every streaming kind, handlers that
record their ``finally``), served in this process by uvicorn for Connect and
gRPC-Web and by the grpcio server for gRPC; REST's Server-Sent Events have a
service of their own here, since a stream needs a REST route to be one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.e2e import grpc_app
from tests.e2e.grpc_app import EVENTS, Number
from tests.e2e.threaded import serve, serve_grpc
from twofold import App, AsyncClient, Client, Code, Error, Idempotency, Service
from twofold.client import ApiKey

# "grpc-h2" is protocol="grpc" with transport="h2": the client's own HTTP/2, no grpcio.
STREAMING = ["connect", "connect-proto", "grpc-web", "grpc", "grpc-h2"]
GRPC = ["grpc", "grpc-h2"]
events = Service("events.v1")


@events.procedure(http=("GET", "/count"), idempotency=Idempotency.NO_SIDE_EFFECTS)
async def count(n: int, interval: float = 0.0) -> AsyncIterator[Number]:
    """0, 1, ... |n|-1 as Server-Sent Events; fails after them when n is negative."""
    try:
        for i in range(abs(n)):
            yield Number(i)
            await asyncio.sleep(interval)
        if n < 0:
            raise Error(Code.OUT_OF_RANGE, "negative count")
    finally:
        EVENTS.append("events finally")


@pytest.fixture(scope="module")
def targets() -> Iterator[dict[str, str]]:
    with serve(grpc_app.app) as url, serve_grpc(grpc_app.app) as address:
        yield {"http": url, "grpc": address}


def _options(targets: dict[str, str], protocol: str, options: dict[str, Any]) -> dict[str, Any]:
    if protocol == "grpc-h2":
        return {**options, "protocol": "grpc", "transport": "h2"}
    return {**options, "protocol": protocol}


def client(targets: dict[str, str], protocol: str, **options: Any) -> Client:
    target = targets["grpc" if protocol in GRPC else "http"]
    return Client(grpc_app.service, target, **_options(targets, protocol, options))


def async_client(targets: dict[str, str], protocol: str, **options: Any) -> AsyncClient:
    target = targets["grpc" if protocol in GRPC else "http"]
    return AsyncClient(grpc_app.service, target, **_options(targets, protocol, options))


def ns(outputs: Any) -> list[int]:
    return [n.n for n in outputs]


def wait_for(event: str) -> bool:
    """True once a handler recorded ``event`` (bounded: the test fails, never hangs)."""
    deadline = time.monotonic() + 5
    while event not in EVENTS:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    EVENTS.remove(event)
    return True


@pytest.mark.parametrize("protocol", STREAMING)
def test_server_stream_client_stream_and_an_error_mid_stream(
    targets: dict[str, str], protocol: str
) -> None:
    with client(targets, protocol) as c:
        assert ns(c.count(n=3)) == [0, 1, 2]
        assert c.total([Number(1), {"n": 2}, Number(39)]) == Number(42)
        received = []
        with pytest.raises(Error) as info:
            for number in c.count(n=-2):  # two numbers, then the handler raises
                received.append(number.n)
        assert received == [0, 1]
        assert info.value.code is Code.OUT_OF_RANGE
        assert info.value.message == "negative count"


@pytest.mark.parametrize("protocol", STREAMING)
def test_async_streams(targets: dict[str, str], protocol: str) -> None:
    async def numbers() -> AsyncIterator[Number]:
        for n in (5, 6):
            yield Number(n)

    async def main() -> None:
        async with async_client(targets, protocol) as c:
            assert [n.n async for n in c.count(n=2)] == [0, 1]
            assert await c.total(numbers()) == Number(11)
            assert await c.call("Total", [{"n": 1}]) == Number(1)
            with pytest.raises(Error) as info:
                async for _ in c.call_stream("Count", n=-1):
                    pass
            assert info.value.code is Code.OUT_OF_RANGE

    asyncio.run(main())


@pytest.mark.parametrize("protocol", STREAMING)
def test_leaving_a_stream_early_ends_the_call_on_the_server(
    targets: dict[str, str], protocol: str
) -> None:
    EVENTS.clear()
    with client(targets, protocol) as c:
        with contextlib.closing(c.ticks(interval=0.01)) as ticks:
            assert [next(ticks).n for _ in range(3)] == [0, 1, 2]
        assert wait_for("ticks finally")


@pytest.mark.parametrize("protocol", STREAMING)
def test_leaving_an_async_stream_early_ends_the_call(
    targets: dict[str, str], protocol: str
) -> None:
    EVENTS.clear()

    async def main() -> list[int]:
        async with async_client(targets, protocol) as c:
            ticks = c.ticks(interval=0.01)
            async with contextlib.aclosing(ticks):
                return [(await anext(ticks)).n for _ in range(2)]

    assert asyncio.run(main()) == [0, 1]
    assert wait_for("ticks finally")


@pytest.mark.parametrize("protocol", STREAMING)
def test_a_deadline_ends_a_stream(targets: dict[str, str], protocol: str) -> None:
    EVENTS.clear()
    received = []
    with client(targets, protocol, timeout=0.5) as c, pytest.raises(Error) as info:
        for tick in c.ticks(interval=0.05):
            received.append(tick.n)
    assert info.value.code is Code.DEADLINE_EXCEEDED
    assert received[:2] == [0, 1]
    assert wait_for("ticks finally")


@pytest.mark.parametrize("protocol", GRPC)
def test_bidi_over_grpc(targets: dict[str, str], protocol: str) -> None:
    with client(targets, protocol) as c:
        assert ns(c.double([Number(1), Number(2)])) == [2, 4]
        with pytest.raises(Error) as info:
            list(c.double([Number(1), Number(-1)]))
        assert info.value.code is Code.INVALID_ARGUMENT
        assert [v.field for v in info.value.violations] == ["n"]

    async def main() -> list[int]:
        async with async_client(targets, protocol) as a:
            return [n.n async for n in a.double([Number(3)])]

    assert asyncio.run(main()) == [6]


@pytest.mark.parametrize("protocol", GRPC)
def test_a_bidi_stream_answers_while_requests_are_still_coming(
    targets: dict[str, str], protocol: str
) -> None:
    """Full duplex: each answer arrives before the next request is made."""
    answers: list[int] = []

    def requests() -> Iterator[Number]:
        for n in (1, 2, 3):
            yield Number(n)
            deadline = time.monotonic() + 5
            while len(answers) < n and time.monotonic() < deadline:
                time.sleep(0.01)

    with client(targets, protocol) as c:
        for number in c.double(requests()):
            answers.append(number.n)
    assert answers == [2, 4, 6]


@pytest.mark.parametrize("protocol", ["connect", "grpc-web", "rest", "jsonrpc"])
def test_what_a_wire_cannot_carry_is_unimplemented(targets: dict[str, str], protocol: str) -> None:
    with client(targets, protocol) as c:
        with pytest.raises(Error) as info:
            list(c.double([Number(1)]))
        assert info.value.code is Code.UNIMPLEMENTED
        if protocol in ("rest", "jsonrpc"):
            with pytest.raises(Error) as info:
                list(c.count(n=1))
            assert info.value.code is Code.UNIMPLEMENTED


def broken() -> Iterator[Any]:
    yield Number(1)
    yield {"n": "two"}  # not a Number: the client refuses it mid-stream


@pytest.mark.parametrize("grpc", GRPC)
def test_a_broken_request_stream_cancels_the_call(targets: dict[str, str], grpc: str) -> None:
    for protocol in STREAMING:
        with client(targets, protocol) as c, pytest.raises(Error) as info:
            c.total(broken())
        assert info.value.code is Code.INVALID_ARGUMENT, protocol
        assert [v.field for v in info.value.violations] == ["n"]
    with client(targets, grpc) as c, pytest.raises(Error) as info:
        list(c.double(broken()))
    assert info.value.code is Code.INVALID_ARGUMENT

    class Broken(Exception):
        pass

    async def failing() -> AsyncIterator[Number]:
        yield Number(1)
        await asyncio.sleep(0.05)  # the first answer may come back meanwhile
        raise Broken

    async def main() -> None:
        async with async_client(targets, grpc) as a:
            with pytest.raises(Broken):
                await a.total(failing())
            with pytest.raises(Broken):
                [n async for n in a.double(failing())]
            with pytest.raises(Error) as info:
                [n async for n in a.double(broken())]
            assert info.value.code is Code.INVALID_ARGUMENT

    asyncio.run(main())


def test_server_streams_over_rest_as_server_sent_events() -> None:
    EVENTS.clear()
    with serve(App(events)) as url, Client(events, url, protocol="rest") as c:
        assert ns(c.count(n=3)) == [0, 1, 2]
        received = []
        with pytest.raises(Error) as info:
            for number in c.count(n=-2):
                received.append(number.n)
        assert received == [0, 1]
        assert (info.value.code, info.value.message) == (Code.OUT_OF_RANGE, "negative count")
        EVENTS.clear()  # the handlers above ended before their last event was sent
        with contextlib.closing(c.count(n=10_000, interval=0.01)) as numbers:
            assert next(numbers).n == 0
        assert wait_for("events finally")  # leaving the stream cancelled the handler

        async def main() -> list[int]:
            async with AsyncClient(events, url, protocol="rest") as a:
                return [n.n async for n in a.count(n=2)]

        assert asyncio.run(main()) == [0, 1]


@pytest.mark.parametrize("protocol", [*STREAMING, "jsonrpc"])
def test_auth_and_headers_reach_the_handler_on_every_wire(
    targets: dict[str, str], protocol: str
) -> None:
    with client(targets, protocol, auth=ApiKey("k3y"), headers={"x-team": "blue"}) as c:
        assert c.echo_metadata(name="x-api-key").text.endswith(" k3y")
        assert c.echo_metadata(name="x-team").text.endswith(" blue")
        per_call = c.call("EchoMetadata", name="x-trace", headers={"X-Trace": "t1"})
        assert per_call.text.endswith(" t1")
