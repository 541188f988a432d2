"""A long-lived stream (``@lifetime``) has no server-side deadline and ends cleanly, on every wire.

The stream sends a message, waits past the server's default timeout, sends
another, then waits for events that never come: it must outlive the default
(both messages arrive) and end at its lifetime with no error (OK in each
wire's form), its handler closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest

from twofold import App, Deadlines, DefinitionError, Metrics, Service, lifetime, timeout
from twofold.testing.parity import serve

EVENTS: list[str] = []
DEFAULT = 0.2  # the server's default timeout in these tests
LIFETIME = 1.2  # the stream's, well past DEFAULT plus the pause


class Tick(msgspec.Struct):
    n: int


service = Service("lifetime.v1")


@service.procedure(http=("GET", "/ticks:watch"))
@lifetime(LIFETIME)
async def watch(pause: float) -> AsyncIterator[Tick]:
    """A subscription: two ticks, then nothing until the stream is closed."""
    try:
        yield Tick(0)
        await asyncio.sleep(pause)
        yield Tick(1)
        await asyncio.Event().wait()
    finally:
        EVENTS.append("closed")


def app(metrics: Metrics) -> App:
    return App(service, interceptors=[metrics, Deadlines(default=DEFAULT)])


@pytest.mark.parametrize("wire", ["rest", "connect", "connect-proto", "grpc-web", "grpc"])
def test_a_long_lived_stream_outlives_the_default_and_ends_cleanly(wire: str) -> None:
    metrics = Metrics()

    async def main() -> None:
        async with serve(app(metrics)) as w:
            EVENTS.clear()
            # The client's deadline is far off: only the lifetime can end it.
            result = await w.stream(wire, "Watch", [{"pause": 2 * DEFAULT}], {}, timeout_ms=20_000)
            assert result.code is None, result
            assert [int(m["n"]) for m in result.output] == [0, 1]  # int64: a string in proto3 JSON
            await asyncio.sleep(0.05)
            assert EVENTS == ["closed"]

    asyncio.run(main())
    labels = {
        "protocol": wire.removesuffix("-proto"),
        "method": "lifetime.v1.LifetimeService/Watch",
        "code": "ok",
    }
    assert metrics.registry.get_sample_value("twofold_calls_total", labels) == 1.0


@pytest.mark.parametrize("wire", ["rest", "connect", "grpc"])
def test_the_clients_deadline_still_ends_a_long_lived_stream(wire: str) -> None:
    async def main() -> None:
        async with serve(app(Metrics())) as w:
            # 0.3 s: past the server's default (which does not apply), before the pause ends.
            result = await w.stream(wire, "Watch", [{"pause": 5}], {}, timeout_ms=300)
            assert result.code == "deadline_exceeded", result
            assert [int(m["n"]) for m in result.output] == [0]

    asyncio.run(main())


def test_lifetime_is_declared_only_where_it_means_something() -> None:
    unary = Service("lifetime.v2")

    @unary.procedure
    @lifetime(60)
    async def once(n: int) -> Tick:
        return Tick(n)

    with pytest.raises(DefinitionError, match="server and bidi streams"):
        App(unary, interceptors=[Deadlines()])
    both = Service("lifetime.v3")

    @both.procedure
    @lifetime(60)
    @timeout(5)
    async def bounded(n: int) -> AsyncIterator[Tick]:
        yield Tick(n)

    with pytest.raises(DefinitionError, match="no @timeout"):
        App(both, interceptors=[Deadlines()])
    for seconds in (0, -1, 10**9):
        with pytest.raises(ValueError):
            lifetime(seconds)


def test_a_lifetime_nobody_enforces_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"@lifetime: add twofold\.Deadlines"):
        App(service)
