"""The call context's peer: the transport's address, formatted when asked."""

from __future__ import annotations

from typing import Any

import pytest

from twofold import Context, Service
from twofold.core.headers import Headers

service = Service("peer.v1")


@service.procedure
async def ping() -> None:
    return None


METHOD = service.methods["Ping"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (("127.0.0.1", 50000), "127.0.0.1:50000"),
        (["10.0.0.7", 443], "10.0.0.7:443"),  # some servers give a list
        (("::1", 8080), "[::1]:8080"),
        ("ipv4:127.0.0.1:9", "ipv4:127.0.0.1:9"),  # grpcio's own text, as it is
        (None, None),
        ((), None),  # a server with no client address
    ],
)
def test_peer_is_formatted_once_from_what_the_server_gives(given: Any, expected: Any) -> None:
    ctx = Context("connect", METHOD, Headers(), given)
    assert ctx.peer == expected
    assert ctx.peer == expected  # the second look reads what the first one kept
