"""``ServerLimits``: Twofold's own server settings, whatever the server under them."""

from __future__ import annotations

import pytest

from twofold import ServerLimits


def test_the_defaults_are_the_documented_ones() -> None:
    limits = ServerLimits()
    assert (limits.max_header_bytes, limits.max_headers, limits.max_url_bytes) == (16384, 100, 8192)
    assert (limits.header_timeout, limits.body_timeout, limits.idle_timeout) == (10.0, 30.0, 5.0)
    assert (limits.max_connections, limits.max_concurrent_streams) == (1000, 1000)


@pytest.mark.parametrize("field", ["max_headers", "header_timeout", "max_connections"])
def test_a_limit_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=f"ServerLimits.{field} must be positive"):
        ServerLimits(**{field: 0})


def test_grpc_channels_are_not_closed_at_the_http_idle_timeout() -> None:
    from twofold.server.grpc import _limit_options

    options = dict(_limit_options(ServerLimits(idle_timeout=1.0)))
    assert options["grpc.max_connection_idle_ms"] == 3_600_000
    options = dict(_limit_options(ServerLimits(grpc_idle_timeout=30.0)))
    assert options["grpc.max_connection_idle_ms"] == 30_000
