"""The gateway's upstream relays (twofold.gateway.upstream) against the library
upstream on 127.0.0.1: a consumer that stops reading cancels the upstream call
while the stream still has more to say, and the call is counted as canceled.

The HTTP tests show a client that leaves; these show the relay's own part,
which every front wire relies on when it stops early (an answer it cannot
convert, a send that fails)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.gateway.upstream import SERVICE, Upstream, message
from twofold.gateway.upstream import Upstream as Relay
from twofold.interceptors.metrics import Metrics

WatchRequest = message("WatchRequest")
EchoRequest = message("EchoRequest")
PARENT = "shelves/relay-stops"


async def _slow_chat() -> AsyncIterator[bytes]:
    """A request answered at once, one the upstream takes a minute over, then a
    request side that stays open (a client still typing).

    The slow one keeps the upstream busy when the call is cancelled: grpcio
    may half-close a cancelled call's request side first, and an upstream
    that was only waiting for requests would take that as the end of them.
    """
    yield EchoRequest(text="hello").SerializeToString()
    yield EchoRequest(text="slow", delay_ms=60_000).SerializeToString()
    await asyncio.Event().wait()


def _first_then_stop(relay: Relay, kind: str, upstream: Upstream, cancelled: str) -> bytes:
    """Read the first answer and close the relay's iterator, then wait (the
    channel still open: closing it would cancel its calls by itself) until
    the upstream handler was cancelled."""

    async def main() -> bytes:
        if kind == "server":
            request = WatchRequest(parent=PARENT, count=1000, delay_ms=50).SerializeToString()
            items = relay.server_stream(f"/{SERVICE}/WatchBooks", request, [], 30.0, "test")
        else:
            items = relay.stream(f"/{SERVICE}/Chat", _slow_chat(), [], 30.0, "test")
        try:
            first = await anext(items)
            await items.aclose()  # type: ignore[attr-defined]
            deadline = time.monotonic() + 20
            while cancelled not in upstream.library.cancelled:
                assert time.monotonic() < deadline, upstream.library.cancelled
                await asyncio.sleep(0.05)
        finally:
            await relay.close()
        return first

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("kind", "method", "cancelled"),
    [("server", "WatchBooks", PARENT), ("bidi", "Chat", "Chat")],
)
def test_a_consumer_that_stops_early_cancels_the_upstream_call(
    upstream: Upstream, kind: str, method: str, cancelled: str
) -> None:
    upstream.library.cancelled.clear()
    relay = Relay(upstream.target)
    metrics = relay.metrics = Metrics()
    # The upstream handler is cancelled (its 50 s of books, its minute-long
    # answer), not left to run to its own end.
    first = _first_then_stop(relay, kind, upstream, cancelled)
    if kind == "server":
        assert message("Book").FromString(first).name == f"{PARENT}/books/0"
    else:
        assert EchoRequest.FromString(first).text == "hello"
    labels = {"protocol": "test", "method": f"{SERVICE}/{method}", "code": "canceled"}
    assert metrics.registry.get_sample_value("twofold_calls_total", labels) == 1.0
