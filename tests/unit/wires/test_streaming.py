"""Streaming in the definition: async generators stream out, AsyncIterator parameters
stream in, and the core reads them with deadlines and coded errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from twofold import Code, Context, DefinitionError, Error, Service
from twofold.core.chain import chain
from twofold.core.headers import Headers
from twofold.core.invoke import deadline, invoke, stream
from twofold.core.method import StreamKind


class Tick(msgspec.Struct):
    n: int


class Total(msgspec.Struct):
    sum: int


service = Service("stream.v1")


@service.procedure
async def count(to: int, ctx: Context) -> AsyncIterator[Tick]:
    """Server streaming: 0..to-1, then a failure when to is 13."""
    for n in range(to):
        if n == 13:
            raise RuntimeError("unlucky")
        yield Tick(n)


@service.procedure
async def add(ticks: AsyncIterator[Tick]) -> Total:
    """Client streaming: the sum of what came in."""
    return Total(sum([t.n async for t in ticks]))


@service.procedure
async def echo(ticks: AsyncIterator[Tick], ctx: Context) -> AsyncIterator[Tick]:
    """Bidi: each tick doubled, as it arrives."""
    async for t in ticks:
        yield Tick(t.n * 2)


@service.procedure
async def slow(seconds: float) -> AsyncIterator[Tick]:
    yield Tick(1)
    await asyncio.sleep(seconds)
    yield Tick(2)


async def feed(*ns: int) -> AsyncIterator[Tick]:
    for n in ns:
        yield Tick(n)


def ctx(name: str, deadline_in: float | None = None) -> Context:
    when = None if deadline_in is None else asyncio.get_running_loop().time() + deadline_in
    return Context("test", service.methods[name], Headers(), None, when)


def test_kinds_and_types() -> None:
    m = service.methods
    assert (m["Count"].kind, m["Add"].kind, m["Echo"].kind) == (
        StreamKind.SERVER,
        StreamKind.CLIENT,
        StreamKind.BIDI,
    )
    assert m["Count"].output_type is Tick and m["Count"].input_type.__name__ == "CountRequest"
    assert m["Add"].input_type is Tick and m["Add"].output_type is Total
    assert m["Echo"].input_type is Tick and m["Echo"].output_type is Tick


def test_server_client_and_bidi_streams() -> None:
    async def main() -> None:
        req = service.methods["Count"].input_type(to=3)
        got = [t.n async for t in stream(service.methods["Count"], ctx("Count"), req)]
        assert got == [0, 1, 2]
        total = await invoke(service.methods["Add"], ctx("Add"), feed(1, 2, 3))
        assert total == Total(6)
        doubled = [t.n async for t in stream(service.methods["Echo"], ctx("Echo"), feed(1, 5))]
        assert doubled == [2, 10]

    asyncio.run(main())


def test_a_failing_stream_raises_a_coded_error_after_its_outputs() -> None:
    async def main() -> list[int]:
        got: list[int] = []
        req = service.methods["Count"].input_type(to=20)
        with pytest.raises(Error) as info:
            async for t in stream(service.methods["Count"], ctx("Count"), req):
                got.append(t.n)
        assert info.value.code is Code.INTERNAL and info.value.message == "internal error"
        return got

    assert asyncio.run(main()) == list(range(13))


def test_deadline_covers_the_whole_stream() -> None:
    async def main() -> list[int]:
        got: list[int] = []
        c = ctx("Slow", deadline_in=0.05)
        with pytest.raises(Error) as info:
            async with deadline(c):
                req = service.methods["Slow"].input_type(seconds=5)
                async for t in stream(service.methods["Slow"], c, req):
                    got.append(t.n)
        assert info.value.code is Code.DEADLINE_EXCEEDED
        return got

    assert asyncio.run(main()) == [1]


def test_interceptors_see_streams_in_the_same_shape() -> None:
    seen: list[Any] = []

    async def spy(c: Context, request: Any, call_next: Any) -> Any:
        result = await call_next(request, c)
        seen.append((c.method.name, type(result).__name__))
        return result

    method = service.methods["Count"]
    method.call = chain([spy], method.handler)
    try:

        async def main() -> None:
            req = method.input_type(to=2)
            assert [t.n async for t in stream(method, ctx("Count"), req)] == [0, 1]

        asyncio.run(main())
    finally:
        method.call = method.handler
    assert seen == [("Count", "async_generator")]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(x: int) -> Any:\n    yield 1", "must be an async generator"),
        ("async def f(x: int) -> Tick:\n    yield Tick(1)", "AsyncIterator\\[Message\\]"),
        (
            "async def f(xs: AsyncIterator[Tick], y: int) -> Total: ...",
            "one AsyncIterator\\[Message\\] parameter",
        ),
        ("async def f(xs: AsyncIterator[int]) -> Total: ...", "one AsyncIterator"),
    ],
)
def test_bad_streaming_definitions(source: str, message: str) -> None:
    namespace: dict[str, Any] = {
        "Tick": Tick,
        "Total": Total,
        "AsyncIterator": AsyncIterator,
        "Any": Any,
    }
    exec(source, namespace)
    with pytest.raises(DefinitionError, match=message):
        Service("bad.v1").procedure(namespace["f"])


def test_client_streams_have_no_rest_binding() -> None:
    async def upload(ticks: AsyncIterator[Tick]) -> Total:
        return Total(0)

    with pytest.raises(DefinitionError, match="no REST binding"):
        Service("bad.v1").procedure(http=("POST", "/upload"))(upload)
