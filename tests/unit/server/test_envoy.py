"""``twofold serve --server pyvoy``'s Envoy configuration: the limits are in it, and
what it does not take is refused in one line. (tests/e2e/test_one_port.py serves it.)"""

from __future__ import annotations

from typing import Any

import pytest
from pyvoy import PyvoyServer

from tests.cli import twofold
from twofold.server import envoy
from twofold.server.limits import ServerLimits

LIMITS = ServerLimits(
    max_connections=7,
    max_header_bytes=5000,
    max_headers=12,
    header_timeout=2.5,
    idle_timeout=3.0,
    max_concurrent_streams=9,
)


def configured(access_log: bool = True) -> dict[str, Any]:
    config: dict[str, Any] = PyvoyServer(envoy.APP, port=0).get_envoy_config()
    envoy.limit(config, LIMITS, access_log)
    return config


def managers(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        f["typed_config"]
        for listener in config["static_resources"]["listeners"]
        for chain in listener["filter_chains"]
        for f in chain["filters"]
        if f["name"] == "envoy.filters.network.http_connection_manager"
    ]


def test_every_listener_carries_the_limits() -> None:
    config = configured()
    (hcm,) = managers(config)
    assert hcm["max_request_headers_kb"] == 5  # 5000 bytes, rounded up to KiB
    assert hcm["common_http_protocol_options"] == {
        "max_headers_count": 12,
        "idle_timeout": "3.000s",
    }
    assert hcm["request_headers_timeout"] == "2.500s"
    assert hcm["http2_protocol_options"] == {
        "max_concurrent_streams": 9,
        # Envoy's edge recommendation: a slow reader pins a window per stream, not 16 MiB.
        "initial_stream_window_size": 64 * 1024,
        "initial_connection_window_size": 1024 * 1024,
    }
    assert hcm["stream_idle_timeout"] == "0s"  # a quiet server stream is not cut
    assert hcm["local_reply_config"]["body_format"]["content_type"] == "application/problem+json"
    (listener,) = config["static_resources"]["listeners"]
    first = listener["filter_chains"][0]["filters"][0]
    assert first["name"] == "envoy.filters.network.connection_limit"
    assert first["typed_config"]["max_connections"] == 7


def test_no_access_log_is_none() -> None:
    (hcm,) = managers(configured(access_log=False))
    assert "access_log" not in hcm
    (hcm,) = managers(configured(access_log=True))
    assert hcm["access_log"][0]["name"] == "envoy.access_loggers.stdout"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--server", "pyvoy", "--workers", "2"), "--server pyvoy does not take --workers"),
        (("--server", "pyvoy", "--grpc-port", "6000"), "--grpc-port (native gRPC is on --port)"),
        (("--server", "pyvoy", "--tls-cert", "c.pem"), "--tls-cert without --tls-key"),
        (("--server", "pyvoy", "--http3"), "--http3 without TLS"),
        (("--tls-cert", "c.pem", "--tls-key", "k.pem"), "need --server pyvoy"),
    ],
)
def test_what_it_does_not_take_is_one_line(args: tuple[str, ...], said: str) -> None:
    result = twofold("serve", "tests.e2e.grpc_app:app", *args)
    assert result.returncode == 2
    assert said in result.stderr and result.stderr.count("\n") == 1, result.stderr
