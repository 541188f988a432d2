"""ConcurrencyLimit's budgets: streams apart from unary calls, a share kept for
identified callers, anonymous streams capped per address, in either order
with Authentication."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from tests.conftest import PROTOCOLS
from twofold import (
    ApiKeys,
    App,
    Authentication,
    Budget,
    Code,
    ConcurrencyLimit,
    Context,
    Deadlines,
    Error,
    Identity,
    JwtBearer,
    Service,
    StoredApiKey,
    credentials_of,
)
from twofold.core.chain import chain
from twofold.core.headers import Headers
from twofold.core.method import Method
from twofold.core.policy import PUBLIC
from twofold.interceptors.bearer import issue
from twofold.interceptors.limits import carries_credentials, remote_address
from twofold.testing.parity import AsyncWires, serve

SECRET = "a test secret that is long enough for HS256"
TOKEN = {"authorization": f"Bearer {issue(SECRET, 'alice')}"}
GATE: dict[str, asyncio.Event] = {}


class Tick(msgspec.Struct):
    n: int


service = Service("budgets.v1", security=PUBLIC)


@service.procedure(http=("POST", "/wait:run"))
async def wait(key: str) -> Tick:
    await GATE[key].wait()
    return Tick(0)


@service.procedure(http=("GET", "/ticks"))
async def ticks(n: int) -> AsyncIterator[Tick]:
    for i in range(n):
        yield Tick(i)


UNARY, STREAM = service.methods["Wait"], service.methods["Ticks"]


def context(
    method: Method, peer: str = "192.0.2.1:4000", headers: dict[str, str] | None = None
) -> Context:
    raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return Context("rest", method, Headers(raw), peer)


class Calls:
    """Calls through one ConcurrencyLimit, the handlers real, the streams held open."""

    def __init__(self, limit: ConcurrencyLimit) -> None:
        self.limit = limit
        self.unary = chain([limit], UNARY.handler)
        self.stream = chain([limit], STREAM.handler)
        self.open: list[Any] = []

    async def open_stream(self, **kw: Any) -> Code | None:
        try:
            self.open.append(await self.stream(STREAM.input_type(n=1), context(STREAM, **kw)))
        except Error as exc:
            assert exc.code is Code.RESOURCE_EXHAUSTED and exc.headers["Retry-After"] == "1"
            return exc.code
        return None

    async def close_all(self) -> None:
        for stream in self.open:
            await stream.aclose()
        self.open.clear()


def test_streams_do_not_take_the_places_of_unary_calls() -> None:
    async def main() -> None:
        calls = Calls(ConcurrencyLimit(unary=Budget(1), streams=Budget(2, anonymous_share=1)))
        assert [await calls.open_stream(peer=f"192.0.2.{i}:1") for i in range(3)] == [
            None,
            None,
            Code.RESOURCE_EXHAUSTED,
        ]
        # The streams' budget is full; a unary call still runs, and holds the unary one...
        GATE["u"] = asyncio.Event()
        unary = asyncio.ensure_future(calls.unary(UNARY.input_type(key="u"), context(UNARY)))
        await asyncio.sleep(0)
        assert calls.limit.in_flight() == 1
        # ...which does not keep a stream from starting once a stream ends.
        # Closed before its first message, a stream still gives its place back.
        await calls.open.pop().aclose()
        assert await calls.open_stream() is None
        GATE["u"].set()
        assert await unary == Tick(0)
        # Read to its end, a stream gives its place back too.
        assert [tick async for tick in calls.open.pop()] == [Tick(0)]
        assert calls.limit.in_flight(STREAM.kind) == 1
        await calls.close_all()
        assert calls.limit.in_flight(STREAM.kind) == calls.limit.in_flight() == 0

    asyncio.run(main())


def test_identified_callers_keep_their_share() -> None:
    async def main() -> None:
        calls = Calls(ConcurrencyLimit(streams=Budget(4, anonymous_share=0.5)))
        anonymous = [await calls.open_stream(peer=f"192.0.2.{i}:1") for i in range(3)]
        assert anonymous == [None, None, Code.RESOURCE_EXHAUSTED]
        identified = [await calls.open_stream(headers=TOKEN) for _ in range(3)]
        assert identified == [None, None, Code.RESOURCE_EXHAUSTED]  # 4 in all
        await calls.close_all()

    asyncio.run(main())


def test_anonymous_streams_are_capped_per_address_whatever_the_wire() -> None:
    async def main() -> None:
        calls = Calls(ConcurrencyLimit(streams=Budget(100, per_address=2)))
        # HTTP's host:port and grpcio's ipv4:host:port are one address.
        assert await calls.open_stream(peer="192.0.2.7:1") is None
        assert await calls.open_stream(peer="ipv4:192.0.2.7:2") is None
        assert await calls.open_stream(peer="192.0.2.7:3") is Code.RESOURCE_EXHAUSTED
        assert await calls.open_stream(peer="192.0.2.8:1") is None
        # Identified callers are accountable: no per-address cap.
        assert await calls.open_stream(peer="192.0.2.7:4", headers=TOKEN) is None
        await calls.close_all()
        assert calls.limit._streams.by_address == {}

    asyncio.run(main())


def test_who_counts_as_identified() -> None:
    ctx = context(STREAM)
    assert not carries_credentials(ctx)
    ctx.identity = Identity("alice")
    assert carries_credentials(ctx)
    by_key = credentials_of(ApiKeys([StoredApiKey.of("k", "robot")]))
    assert by_key(context(STREAM, headers={"x-api-key": "k"}))
    assert not by_key(context(STREAM, headers=TOKEN))


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("203.0.113.9:5000", "203.0.113.9"),
        ("ipv4:203.0.113.9:5000", "203.0.113.9"),
        ("[2001:db8:1:2:3:4:5:6]:5000", "2001:db8:1:2::/64"),
        ("ipv6:%5B2001:db8:1:2:ffff::1%5D:5000", "2001:db8:1:2::/64"),  # grpcio's form
        ("ipv6:%5B::1%5D:5000", "::/64"),
        ("ipv6:[::ffff:203.0.113.9]:5000", "203.0.113.9"),
        ("unix:/run/app.sock", "unix:/run/app.sock"),
        (None, ""),
    ],
)
def test_remote_address(peer: str | None, address: str) -> None:
    assert remote_address(Context("grpc", STREAM, Headers([]), peer)) == address


def test_budgets_must_be_sensible() -> None:
    for bad in ({"limit": 0}, {"limit": 1, "anonymous_share": 0}, {"limit": 1, "per_address": 0}):
        with pytest.raises(ValueError):
            Budget(**bad)
    assert Budget(1, anonymous_share=0.5).anonymous_limit == 1
    assert Budget(10, anonymous_share=0.75).anonymous_limit == 7


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("limit_first", [True, False])
def test_the_reserve_holds_in_either_order_on_every_protocol(
    protocol: str, limit_first: bool
) -> None:
    limit = ConcurrencyLimit(unary=Budget(2, anonymous_share=0.5))
    authentication = Authentication(JwtBearer(secret=SECRET))
    order: list[Any] = [limit, authentication] if limit_first else [authentication, limit]
    app = App(service, interceptors=[*order, Deadlines()])

    async def scenario(w: AsyncWires) -> None:
        GATE["a"], GATE["b"] = asyncio.Event(), asyncio.Event()

        async def held(key: str, headers: dict[str, str], count: int) -> asyncio.Future[Any]:
            call = asyncio.ensure_future(w.call(protocol, "Wait", {"key": key}, headers))
            for _ in range(500):
                if limit.in_flight() == count:
                    return call
                await asyncio.sleep(0.01)
            raise AssertionError("the call never started")

        anonymous = await held("a", {}, 1)
        refused = await w.call(protocol, "Wait", {"key": "a"}, {})
        assert refused.code == "resource_exhausted"
        assert refused.headers["retry-after"] == "1"
        if protocol == "rest":
            assert refused.status == 429
        # A forged token is refused by Authentication, and gives its place back.
        forged = await w.call(protocol, "Wait", {"key": "a"}, {"authorization": "Bearer x.y.z"})
        assert forged.code == "unauthenticated"
        # The place kept for identified callers: taken while the anonymous one waits.
        identified = await held("b", TOKEN, 2)
        assert (await w.call(protocol, "Wait", {"key": "b"}, TOKEN)).code == "resource_exhausted"
        GATE["a"].set()
        GATE["b"].set()
        assert (await anonymous).code is None
        assert (await identified).code is None
        assert limit.in_flight() == 0

    async def main() -> None:
        async with serve(app) as w:
            await scenario(w)

    asyncio.run(main())
