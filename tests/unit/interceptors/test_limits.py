"""Deadlines and limits, the same over every protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from tests.conftest import PROTOCOLS, run
from twofold import (
    App,
    Authentication,
    ConcurrencyLimit,
    Context,
    Deadlines,
    DefinitionError,
    JwtBearer,
    RateLimit,
    Service,
    StreamLimit,
    timeout,
)
from twofold.core.policy import PUBLIC
from twofold.interceptors.bearer import issue
from twofold.interceptors.limits import MemoryBuckets
from twofold.testing.parity import AsyncWires

EVENTS: list[str] = []
GATE: dict[str, asyncio.Event] = {}
SECRET = "a test secret that is long enough for HS256"


class Slept(msgspec.Struct):
    seconds: float


service = Service("limits.v1", security=PUBLIC)


@service.procedure(http=("POST", "/slow:run"))
@timeout(0.2)
async def slow(seconds: float) -> Slept:
    """Sleeps longer than its declared timeout allows."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        EVENTS.append("cancelled")
        raise
    return Slept(seconds)


@service.procedure(http=("POST", "/nap:run"))
async def nap(seconds: float, ctx: Context) -> Slept:
    """No declared timeout: only the client's deadline can cut it short."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        EVENTS.append("cancelled")
        raise
    return Slept(seconds)


@service.procedure(http=("POST", "/wait:run"))
async def wait(key: str) -> Slept:
    await GATE[key].wait()
    return Slept(0)


@service.procedure
async def count(n: int) -> AsyncIterator[Slept]:
    for i in range(n):
        yield Slept(i)


def test_a_declared_timeout_cancels_a_slow_handler(protocol: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        EVENTS.clear()
        result = await w.call(protocol, "Slow", {"seconds": 5}, {})
        assert result.code == "deadline_exceeded"
        if protocol == "rest":
            assert result.status == 504
        await asyncio.sleep(0.05)
        assert EVENTS == ["cancelled"]
        assert (await w.call(protocol, "Slow", {"seconds": 0.01}, {})).code is None

    run(App(service, interceptors=[Deadlines()]), scenario)


# Each protocol's own way to ask for a deadline.
CLIENT_DEADLINE = {
    "rest": {"request-timeout": "0.2"},
    "jsonrpc": None,  # JSON-RPC has no deadline header: the server default applies
    "connect": {"connect-timeout-ms": "200"},
    "connect-proto": {"connect-timeout-ms": "200"},
    "grpc-web": {"grpc-timeout": "200m"},
    "grpc": None,  # grpcio's own timeout= (tests/e2e/test_grpc.py)
}


@pytest.mark.parametrize("protocol", [p for p, h in CLIENT_DEADLINE.items() if h])
def test_the_clients_deadline_cancels_the_handler(protocol: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        EVENTS.clear()
        headers = CLIENT_DEADLINE[protocol] or {}
        result = await w.call(protocol, "Nap", {"seconds": 5}, headers)
        assert result.code == "deadline_exceeded"
        await asyncio.sleep(0.05)
        assert EVENTS == ["cancelled"]

    run(App(service, interceptors=[Deadlines()]), scenario)


def test_a_default_timeout_covers_undeclared_methods_on_every_protocol() -> None:
    async def scenario(w: AsyncWires) -> None:
        for protocol in PROTOCOLS:
            result = await w.call(protocol, "Nap", {"seconds": 5}, {})
            assert result.code == "deadline_exceeded", protocol

    run(App(service, interceptors=[Deadlines(default=0.1)]), scenario)


@pytest.mark.parametrize("value", ["-1", "0", "abc", "nan", "inf", "1e309", "99999999", "1" * 40])
def test_bad_request_timeouts_are_invalid_argument(value: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        result = await w.call("rest", "Nap", {"seconds": 0}, {"request-timeout": value})
        assert result.code == "invalid_argument" and result.status == 400

    run(App(service, interceptors=[Deadlines()]), scenario)


def test_concurrency_limit_is_resource_exhausted_with_retry_after(protocol: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        GATE["a"] = asyncio.Event()
        first = asyncio.ensure_future(w.call(protocol, "Wait", {"key": "a"}, {}))
        await asyncio.sleep(0.1)
        second = await w.call(protocol, "Wait", {"key": "a"}, {})
        assert second.code == "resource_exhausted"
        assert second.headers["retry-after"] == "1"
        if protocol == "rest":
            assert second.status == 429
        GATE["a"].set()
        assert (await first).code is None
        assert (await w.call(protocol, "Wait", {"key": "a"}, {})).code is None

    run(App(service, interceptors=[ConcurrencyLimit(1), Deadlines()]), scenario)


def test_rate_limit_per_identity() -> None:
    app = App(
        service,
        interceptors=[
            Authentication(JwtBearer(secret=SECRET)),
            RateLimit(rate=0.5, burst=2),
            Deadlines(),
        ],
    )
    alice = {"authorization": f"Bearer {issue(SECRET, 'alice')}"}
    bob = {"authorization": f"Bearer {issue(SECRET, 'bob')}"}

    async def scenario(w: AsyncWires) -> None:
        codes = [(await w.call("rest", "Nap", {"seconds": 0}, alice)).code for _ in range(3)]
        assert codes == [None, None, "resource_exhausted"]
        refused = await w.call("grpc", "Nap", {"seconds": 0}, alice)
        assert refused.code == "resource_exhausted" and refused.headers["retry-after"] == "2"
        assert (await w.call("connect", "Nap", {"seconds": 0}, bob)).code is None

    run(app, scenario)


def test_rate_limits_sharing_one_store_grant_one_burst() -> None:
    """Two apps (two workers, say) whose limits keep their buckets in one store."""
    shared = MemoryBuckets()

    def worker() -> App:
        limit = RateLimit(rate=0.001, burst=3, buckets=shared)
        return App(service, interceptors=[Authentication(JwtBearer(secret=SECRET)), limit,
                                          Deadlines()])  # fmt: skip

    alice = {"authorization": f"Bearer {issue(SECRET, 'alice')}"}
    codes: list[str | None] = []

    async def scenario(w: AsyncWires) -> None:
        for _ in range(2):
            codes.append((await w.call("rest", "Nap", {"seconds": 0}, alice)).code)

    run(worker(), scenario)
    run(worker(), scenario)
    assert codes == [None, None, None, "resource_exhausted"]


def test_stream_limit() -> None:
    async def scenario(w: AsyncWires) -> None:
        method = w.methods["Count"]
        call = w.channel.unary_stream(
            method.path,
            request_serializer=w.schema.codec(method.input_type).encode,
            response_deserializer=w.schema.codec(method.output_type).decode,
        )
        got: list[Any] = []
        with pytest.raises(Exception) as raised:
            async for item in call(method.input_type(n=10)):
                got.append(item)
        assert len(got) == 3
        assert "more than 3 response messages" in str(raised.value)
        assert len([x async for x in call(method.input_type(n=3))]) == 3

    run(App(service, interceptors=[StreamLimit(3), Deadlines()]), scenario)


def test_a_declared_timeout_nobody_enforces_is_refused() -> None:
    with pytest.raises(DefinitionError, match="Deadlines"):
        App(service)
    App(service, interceptors=[Deadlines()])


def test_a_timeout_must_be_sensible() -> None:
    with pytest.raises(ValueError):
        timeout(-1)
    with pytest.raises(ValueError):
        timeout(10**9)


# Negative, absurd or malformed deadlines in each protocol's own header.
BAD_DEADLINES = [
    ("rest", "request-timeout", "-5"),
    ("rest", "request-timeout", "1e999"),
    ("connect", "connect-timeout-ms", "-5"),
    ("connect", "connect-timeout-ms", "12345678901"),  # over 10 digits
    ("connect", "connect-timeout-ms", "1.5"),
    ("connect-proto", "connect-timeout-ms", "+100"),
    ("grpc-web", "grpc-timeout", "-1m"),
    ("grpc-web", "grpc-timeout", "123456789S"),  # over 8 digits
    ("grpc-web", "grpc-timeout", "5x"),
    ("grpc-web", "grpc-timeout", "S"),
]


@pytest.mark.parametrize(("protocol", "name", "value"), BAD_DEADLINES)
def test_bad_deadlines_are_invalid_argument_on_every_protocol(
    protocol: str, name: str, value: str
) -> None:
    async def scenario(w: AsyncWires) -> None:
        result = await w.call(protocol, "Nap", {"seconds": 0}, {name: value})
        assert result.code == "invalid_argument", result
        assert (await w.call(protocol, "Nap", {"seconds": 0}, {})).code is None  # still serving

    run(App(service, interceptors=[Deadlines()]), scenario)
