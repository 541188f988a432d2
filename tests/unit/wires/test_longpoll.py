"""Long polls in process (twofold.wires.longpoll): what the catalog's e2e tests
cannot show, on small services of their own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from twofold import App, Deadlines, DefinitionError, Error, Idempotency, Service, resumable
from twofold.http.resumption import seconds, wait_of


class Tick(msgspec.Struct):
    id: int


def app_of(*, resume: bool, interceptors: list[Deadlines] | None = None) -> App:
    service = Service("ticks.v1")

    async def watch_ticks(after: int = 0) -> AsyncIterator[Tick]:
        if after == 0:
            yield Tick(1)
        await asyncio.Event().wait()  # nothing more, ever
        yield Tick(2)

    handler = resumable("id", after="after")(watch_ticks) if resume else watch_ticks
    service.procedure(http=("GET", "/ticks:watch"), idempotency=Idempotency.NO_SIDE_EFFECTS)(
        handler
    )
    return App(service, interceptors=interceptors or [])


def get(app: App, params: dict[str, str], headers: dict[str, str] | None = None) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/ticks:watch", params=params, headers=headers)

    return asyncio.run(main())


def test_a_stream_that_cannot_resume_refuses_wait() -> None:
    r = get(app_of(resume=False), {"wait": "1"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert "not resumable" in r.json()["detail"]


def test_the_deadline_ends_a_held_poll_with_504() -> None:
    app = app_of(resume=True, interceptors=[Deadlines()])
    r = get(app, {"wait": "30", "after": "1"}, {"Request-Timeout": "0.3"})
    assert r.status_code == 504
    assert r.json()["code"] == "deadline_exceeded"


def test_events_then_nothing() -> None:
    app = app_of(resume=True)
    r = get(app, {"wait": "5"})
    assert r.status_code == 200 and r.json() == {"events": [{"id": 1}], "cursor": "1"}
    r = get(app, {"wait": "0", "after": "1"})
    assert r.status_code == 204
    assert r.headers["link"] == '</ticks:watch?wait=0&after=1>; rel="next"'


@pytest.mark.parametrize(
    ("raw", "expected"), [("0", 0.0), ("1.5", 1.5), ("1e9", 30.0), ("inf", 30.0)]
)
def test_wait_is_seconds_clamped_to_the_maximum(raw: str, expected: float) -> None:
    assert seconds(raw, 30.0) == expected


@pytest.mark.parametrize("raw", ["", "-1", "-0.1", "nan", "abc", "1" * 33, "1,5"])
def test_a_wait_that_is_not_seconds_is_invalid(raw: str) -> None:
    with pytest.raises(Error) as caught:
        seconds(raw, 30.0)
    assert caught.value.code.wire_name == "invalid_argument"


def test_only_the_wait_parameter_asks_for_a_poll() -> None:
    assert wait_of(b"") is None
    assert wait_of(b"after=3&waiting=1") is None
    assert wait_of(b"after=3&wait=") == ""
    assert wait_of(b"a=1&wait=30") == "30"


def test_a_wait_given_twice_is_a_400() -> None:
    r = get(app_of(resume=True), {"wait": ["1", "2"]})  # type: ignore[dict-item]
    assert r.status_code == 400 and "given more than once" in r.json()["detail"]


def test_a_resumable_request_with_a_wait_field_is_refused() -> None:
    service = Service("ticks.v1")

    @service.procedure(http=("GET", "/ticks:watch"), idempotency=Idempotency.NO_SIDE_EFFECTS)
    @resumable("id", after="after")
    async def watch_ticks(after: int = 0, wait: int = 0) -> AsyncIterator[Tick]:
        yield Tick(1)

    with pytest.raises(DefinitionError, match="'wait'"):
        App(service)
