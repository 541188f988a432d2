"""twofold.Client under faults, against real servers on 127.0.0.1.

A server that is down, a handler slower than the deadline, a 503 with
Retry-After, a method that must never be retried: over every protocol, and
counted at both ends (requests the client sent, requests the server saw;
over gRPC, where grpcio owns the connection, the retries the client logged).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest

from tests.e2e.server import free_port
from tests.e2e.threaded import serve, serve_grpc
from twofold import App, AsyncClient, Client, Code, Error, Idempotency, Service
from twofold.client import Retry
from twofold.core.asgi import ASGIApp, Receive, Scope, Send

PROTOCOLS = ["rest", "jsonrpc", "connect", "connect-proto", "grpc-web"]
FAST_RETRY = Retry(attempts=3, backoff=0.01, max_backoff=0.02)
# A handler's sleep when a test wants it cut short: far past any deadline here and
# past WAIT, so that a deadline ignored fails the test instead of only slowing it.
FOREVER = 600.0
WAIT = 60.0  # how long a test waits for the server to notice: a bound, never a measure

service = Service("faults.v1")
items = service.resource("items")
STARTED = threading.Event()
CANCELLED = threading.Event()
SLEEPING: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = []


class Item(msgspec.Struct, kw_only=True):
    id: int
    name: str = ""


@items.get
async def get_item(id: int) -> Item:
    return Item(id=id, name=f"item {id}")


@items.create
async def create_item(item: Item) -> Item:
    return item


@service.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS, http=("GET", "/slow"))
async def slow(seconds: float = 5.0) -> Item:
    """Sleep; record whether the server cancelled the sleep."""
    STARTED.set()
    task = asyncio.current_task()
    assert task is not None
    SLEEPING.append((asyncio.get_running_loop(), task))
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        CANCELLED.set()
        raise
    return Item(id=0)


@service.procedure(idempotency=Idempotency.NO_SIDE_EFFECTS)
async def items_from(first: int) -> AsyncIterator[Item]:
    for i in range(first, first + 2):
        yield Item(id=i)


class Flaky:
    """Answers the first ``failures`` requests with 503 and Retry-After, then
    hands requests to ``app``; ``seen`` counts every request."""

    def __init__(self, app: ASGIApp, failures: int, retry_after: str | None = "1") -> None:
        self.app = app
        self.failures = failures
        self.retry_after = retry_after
        self.seen = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.seen += 1
        if self.failures <= 0:
            await self.app(scope, receive, send)
            return
        self.failures -= 1
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"4")]
        if self.retry_after is not None:
            headers.append((b"retry-after", self.retry_after.encode()))
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": b"busy"})


class Counting(httpx.HTTPTransport):
    """httpx's transport, counting the requests it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)


class AsyncCounting(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await super().handle_async_request(request)


@pytest.fixture
def down() -> str:
    """A URL where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(App(service)) as base:
        yield base


@pytest.fixture(scope="module")
def grpc_target() -> Iterator[str]:
    with serve_grpc(App(service)) as address:
        yield address


def retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum("retrying" in r.getMessage() for r in caplog.records if r.name == "twofold.client")


def raised(fn: Any, *args: Any, **kwargs: Any) -> Error:
    """The Error ``fn(*args, **kwargs)`` raises. The call runs in a thread awaited
    for WAIT at most, so that a deadline not kept fails the test, not hangs it."""
    ended: list[Any] = []

    def call() -> None:
        try:
            ended.append(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the test's thread
            ended.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert ended, f"the call had not ended after {WAIT:.0f} s: its deadline was not kept"
    (outcome,) = ended
    assert isinstance(outcome, Error), f"the call ended with {outcome!r}, not an Error"
    return outcome


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_server_down_is_unavailable_after_the_retries(protocol: str, down: str) -> None:
    transport = Counting()
    with Client(service, down, protocol=protocol, retry=FAST_RETRY, transport=transport) as c:
        error = raised(c.get_item, id=1)
    assert error.code is Code.UNAVAILABLE
    assert "cannot connect" in error.message
    assert transport.sent == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_method_with_side_effects_is_never_retried(protocol: str, down: str) -> None:
    transport = Counting()
    with Client(service, down, protocol=protocol, retry=FAST_RETRY, transport=transport) as c:
        error = raised(c.create_item, item={"id": 1})
    assert error.code is Code.UNAVAILABLE
    assert transport.sent == 1


def grpc_options(protocol: str) -> dict[str, Any]:
    """``grpc-h2``: native gRPC on the client's own HTTP/2 (``transport="h2"``)."""
    if protocol == "grpc-h2":
        return {"protocol": "grpc", "transport": "h2"}
    return {"protocol": protocol}


@pytest.mark.parametrize("grpc", ["grpc", "grpc-h2"])
def test_grpc_server_down_is_unavailable_after_the_retries(
    caplog: pytest.LogCaptureFixture, grpc: str
) -> None:
    caplog.set_level(logging.INFO, "twofold.client")
    nowhere = f"127.0.0.1:{free_port()}"
    with Client(service, nowhere, retry=FAST_RETRY, **grpc_options(grpc)) as c:
        assert raised(c.get_item, id=1).code is Code.UNAVAILABLE
        assert retries(caplog) == 2  # three attempts in all
        caplog.clear()
        assert raised(c.create_item, item={"id": 1}).code is Code.UNAVAILABLE
        assert retries(caplog) == 0  # a create is never repeated

    async def main() -> Error:
        async with AsyncClient(service, nowhere, retry=FAST_RETRY, **grpc_options(grpc)) as c:
            with pytest.raises(Error) as info:
                await c.get_item(id=1)
            return info.value

    caplog.clear()
    assert asyncio.run(main()).code is Code.UNAVAILABLE
    assert retries(caplog) == 2


@pytest.mark.parametrize("protocol", ["connect", "grpc", "grpc-h2"])
def test_a_stream_that_cannot_start_is_retried(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "twofold.client")
    nowhere = f"127.0.0.1:{free_port()}"
    target = f"http://{nowhere}" if protocol == "connect" else nowhere
    with Client(service, target, retry=FAST_RETRY, **grpc_options(protocol)) as c:
        assert raised(list, c.items_from(first=1)).code is Code.UNAVAILABLE
    assert retries(caplog) == 2


def waits(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The waits the client chose before its retries, as it logged them."""
    return [
        r.getMessage().rsplit("retrying in ", 1)[1]
        for r in caplog.records
        if r.name == "twofold.client" and "retrying in " in r.getMessage()
    ]


def test_a_503_before_a_stream_waits_then_streams(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "twofold.client")
    flaky = Flaky(App(service), failures=1, retry_after="1")
    with serve(flaky) as base, Client(service, base, protocol="grpc-web") as c:
        assert [item.id for item in c.items_from(first=5)] == [5, 6]
    assert flaky.seen == 2
    assert waits(caplog) == ["1.000s"]  # what Retry-After asked for, not the client's backoff


def test_async_server_down_is_retried_too(down: str) -> None:
    transport = AsyncCounting()

    async def main() -> Error:
        async with AsyncClient(service, down, retry=FAST_RETRY, transport=transport) as c:
            with pytest.raises(Error) as info:
                await c.get_item(id=1)
            return info.value

    assert asyncio.run(main()).code is Code.UNAVAILABLE
    assert transport.sent == 3


def test_the_deadline_bounds_the_retries(down: str) -> None:
    slow_backoff = Retry(attempts=100, backoff=0.2, max_backoff=0.2)
    transport = Counting()
    with Client(service, down, retry=slow_backoff, timeout=0.5, transport=transport) as c:
        error = raised(c.get_item, id=1)
    assert error.code is Code.UNAVAILABLE  # the last failure, not a generic timeout
    # Unbounded, all 100 attempts are made (some 10 s of backoff); in 0.5 s, the
    # 99 waits of up to 0.2 s each could not all fit, however fast the machine.
    assert 1 <= transport.sent < slow_backoff.attempts


def wait_for_cancellation() -> bool:
    return CANCELLED.wait(WAIT)


@pytest.mark.parametrize("protocol", ["connect", "connect-proto", "grpc-web", "grpc", "grpc-h2"])
def test_the_deadline_cancels_the_handler(protocol: str, url: str, grpc_target: str) -> None:
    STARTED.clear()
    CANCELLED.clear()
    target = grpc_target if protocol.startswith("grpc") and protocol != "grpc-web" else url
    with Client(service, target, **grpc_options(protocol)) as c:
        # Without the deadline the call would end after FOREVER, as a success.
        error = raised(c.slow, seconds=FOREVER, timeout=0.3)
    assert error.code is Code.DEADLINE_EXCEEDED
    assert STARTED.is_set()
    # connect-timeout-ms or grpc-timeout went with the call: the server stopped the handler.
    assert wait_for_cancellation()


@pytest.mark.parametrize("protocol", ["connect", "grpc", "grpc-h2"])
def test_async_deadline_cancels_the_handler(protocol: str, url: str, grpc_target: str) -> None:
    STARTED.clear()
    CANCELLED.clear()
    target = url if protocol == "connect" else grpc_target

    async def main() -> Error:
        async with AsyncClient(service, target, timeout=0.3, **grpc_options(protocol)) as c:
            with pytest.raises(Error) as info:
                await c.slow(seconds=FOREVER)
            return info.value

    assert asyncio.run(asyncio.wait_for(main(), WAIT)).code is Code.DEADLINE_EXCEEDED
    assert wait_for_cancellation()


@pytest.mark.parametrize("protocol", ["rest", "jsonrpc"])
def test_the_deadline_holds_on_every_protocol(protocol: str, url: str) -> None:
    STARTED.clear()
    CANCELLED.clear()
    SLEEPING.clear()
    with Client(service, url, protocol=protocol, timeout=0.3) as c:
        # Without the deadline the call would end after FOREVER, as a success.
        error = raised(c.slow, seconds=FOREVER)
    assert error.code is Code.DEADLINE_EXCEEDED
    assert STARTED.is_set()
    # No deadline travels on these wires and the server does not stop a handler
    # whose client hung up: end it here, or the server would wait for it at exit.
    for loop, task in SLEEPING:
        loop.call_soon_threadsafe(task.cancel)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_503_with_retry_after_waits_then_succeeds(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "twofold.client")
    flaky = Flaky(App(service), failures=1, retry_after="1")
    with serve(flaky) as base, Client(service, base, protocol=protocol) as c:
        item = c.get_item(id=7)
    assert item == Item(id=7, name="item 7")
    assert flaky.seen == 2
    assert waits(caplog) == ["1.000s"]  # what Retry-After asked for, not the client's backoff


def test_503_on_a_method_with_side_effects_is_raised_at_once() -> None:
    flaky = Flaky(App(service), failures=1)
    with serve(flaky) as base, Client(service, base, protocol="connect") as c:
        error = raised(c.create_item, item={"id": 1})
        assert error.code is Code.UNAVAILABLE and "503" in error.message
        assert flaky.seen == 1
        assert c.create_item(item={"id": 1}) == Item(id=1)  # the next call is the next request


def test_a_retry_after_longer_than_the_deadline_is_not_waited_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "twofold.client")
    flaky = Flaky(App(service), failures=1, retry_after="30")
    with serve(flaky) as base, Client(service, base, timeout=2) as c:
        error = raised(c.get_item, id=1)
    assert error.code is Code.UNAVAILABLE
    assert waits(caplog) == []  # the 30 s it asked for would outlast the deadline
    assert flaky.seen == 1


def test_backoff_without_retry_after() -> None:
    flaky = Flaky(App(service), failures=2, retry_after=None)
    with serve(flaky) as base, Client(service, base, retry=FAST_RETRY) as c:
        assert c.get_item(id=2).id == 2
    assert flaky.seen == 3
