"""A deadline is answered as one even when the cancelled handler's clean-up raises.

Code cancelled mid-operation sometimes raises its own exception in place of
the cancellation (a database session closed while it was connecting, say).
schemathesis once saw the catalog answer a 1 ms Connect deadline 500 instead
of 504, once in many runs; ``close_badly`` makes that path certain.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import msgspec
import pytest

from twofold import App, Deadlines, Service, timeout

service = Service("cleanup.v1")


class Done(msgspec.Struct):
    ok: bool


@service.procedure
async def close_badly(pause: float) -> Done:
    try:
        await asyncio.sleep(pause)
    except asyncio.CancelledError:
        raise RuntimeError("connection closed in the middle of an operation") from None
    return Done(True)


@service.procedure
@timeout(0.05)
async def close_badly_in_time(pause: float) -> Done:
    """The same, under the server's own deadline (the Deadlines interceptor's timeout)."""
    try:
        await asyncio.sleep(pause)
    except asyncio.CancelledError:
        raise RuntimeError("connection closed in the middle of an operation") from None
    return Done(True)


@service.procedure
async def fail(pause: float) -> Done:
    """A bug, with a deadline that has not passed: still INTERNAL."""
    raise RuntimeError("a bug")


@service.procedure
async def time_out(pause: float) -> Done:
    """A TimeoutError of the handler's own, not the deadline's: a bug too."""
    raise TimeoutError("the handler's own timeout")


def call(name: str, pause: float, timeout_ms: int) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(App(service, interceptors=[Deadlines()]))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(
                f"/cleanup.v1.CleanupService/{name}",
                json={"pause": pause},
                headers={"connect-timeout-ms": str(timeout_ms)},
            )

    return asyncio.run(main())


def body(response: httpx.Response) -> Any:
    return msgspec.json.decode(response.content)


def test_a_clean_up_error_after_the_deadline_is_deadline_exceeded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="twofold.core.errors"):
        r = call("CloseBadly", pause=5, timeout_ms=50)
    assert r.status_code == 504, r.text
    assert body(r)["code"] == "deadline_exceeded"
    # The exception that replaced the cancellation is not lost.
    assert "connection closed in the middle of an operation" in caplog.text


def test_so_it_is_under_the_server_side_deadline(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="twofold.core.errors"):
        r = call("CloseBadlyInTime", pause=5, timeout_ms=5000)
    assert r.status_code == 504, r.text
    assert body(r)["code"] == "deadline_exceeded"
    assert "connection closed in the middle of an operation" in caplog.text


def test_in_time_the_call_succeeds() -> None:
    r = call("CloseBadly", pause=0, timeout_ms=5000)
    assert r.status_code == 200, r.text
    assert body(r) == {"ok": True}


def test_an_error_before_the_deadline_is_internal() -> None:
    r = call("Fail", pause=0, timeout_ms=5000)
    assert r.status_code == 500, r.text
    assert body(r)["code"] == "internal"


def test_a_timeout_error_of_the_handler_is_internal() -> None:
    r = call("TimeOut", pause=0, timeout_ms=5000)
    assert r.status_code == 500, r.text
    assert body(r)["code"] == "internal"
