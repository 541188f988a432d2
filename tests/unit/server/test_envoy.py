"""``twofold serve --server pyvoy``'s Envoy configuration: the limits are in it, and
what it does not take is refused in one line. (tests/e2e/test_one_port.py serves it.)"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from pyvoy import PyvoyServer

from tests.cli import twofold
from twofold.core.options import WebSocketOptions
from twofold.server import envoy, envoy_websocket
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


def configured_http3(tmp_path: Path) -> dict[str, Any]:
    """``--tls-cert/--tls-key --http3 --port 8443``'s configuration, as Envoy is given it."""
    settings = envoy.EnvoySettings(
        host="127.0.0.1",
        port=8443,
        limits=LIMITS,
        tls_cert=str(tmp_path / "cert.pem"),
        tls_key=str(tmp_path / "key.pem"),
        http3=True,
    )
    return envoy.configuration(settings)


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


def test_the_http3_listener_carries_the_limits(tmp_path: Path) -> None:
    tcp, udp = config_listeners = configured_http3(tmp_path)["static_resources"]["listeners"]
    assert "udp_listener_config" not in tcp
    assert udp["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 8443,
        "protocol": "UDP",
    }
    quic = udp["udp_listener_config"]["quic_options"]
    assert quic["quic_protocol_options"]["max_concurrent_streams"] == 9
    assert "idle_timeout" not in quic  # QUIC's counts packets, not streams: Envoy's 300 s stay
    for listener in config_listeners:
        first = listener["filter_chains"][0]["filters"][0]
        assert first["typed_config"]["max_connections"] == 7
    (h3,) = managers({"static_resources": {"listeners": [udp]}})
    assert h3["codec_type"] == "HTTP3"
    assert h3["max_request_headers_kb"] == 5
    assert h3["common_http_protocol_options"]["max_headers_count"] == 12
    assert h3["generate_request_id"] is False  # as on TCP: the App's request id, not Envoy's
    assert "http2_protocol_options" not in h3


def test_tcp_answers_advertise_http3(tmp_path: Path) -> None:
    tcp_hcm, h3_hcm = managers(configured_http3(tmp_path))
    alt_svc = tcp_hcm["http_filters"][0]
    assert alt_svc["name"] == "envoy.filters.http.header_mutation"
    (mutation,) = alt_svc["typed_config"]["mutations"]["response_mutations"]
    assert mutation["append"]["header"] == {"key": "alt-svc", "value": 'h3=":8443"; ma=86400'}
    assert mutation["append"]["append_action"] == "ADD_IF_ABSENT"  # the App's own wins
    assert tcp_hcm["http_filters"][1]["name"] == "pyvoy"
    # HTTP/3 answers need not say it again; pyvoy's two managers no longer share one list.
    assert [f["name"] for f in h3_hcm["http_filters"]] == ["pyvoy"]


def test_no_access_log_is_none() -> None:
    (hcm,) = managers(configured(access_log=False))
    assert "access_log" not in hcm
    (hcm,) = managers(configured(access_log=True))
    assert hcm["access_log"][0]["name"] == "envoy.access_loggers.stdout"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--server", "pyvoy", "--grpc-port", "6000"), "--grpc-port (native gRPC is on --port)"),
        (("--server", "pyvoy", "--tls-cert", "c.pem"), "--tls-cert without --tls-key"),
        (("--server", "pyvoy", "--http3"), "--http3 without TLS"),
        (
            ("--server", "pyvoy", "--tls-cert", "c", "--tls-key", "k", "--http3", "--port", "0"),
            "--http3 with --port 0",
        ),
        (("--tls-cert", "c.pem", "--tls-key", "k.pem"), "need --server pyvoy"),
    ],
)
def test_what_it_does_not_take_is_one_line(args: tuple[str, ...], said: str) -> None:
    result = twofold("serve", "tests.e2e.grpc_app:app", *args)
    assert result.returncode == 2
    assert said in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_envoy_is_driven_through_its_admin_socket_and_the_control_pipe() -> None:
    settings = envoy.EnvoySettings(host="127.0.0.1", port=0, limits=LIMITS)
    argv, env = envoy.command(settings, admin="/run/x/admin.sock", control=7)
    config = json.loads(argv[argv.index("--config-yaml") + 1])
    # A Unix socket only its owner may use, not a TCP port anyone local could drain.
    assert config["admin"] == {"address": {"pipe": {"path": "/run/x/admin.sock", "mode": 0o600}}}
    # Listeners close at once on a drain: the grace period is the supervisor's clock.
    assert argv[argv.index("--drain-strategy") + 1] == "immediate"
    assert argv[argv.index("--drain-time-s") + 1] == "0"
    assert argv[argv.index("--concurrency") + 1] == "1"  # more Envoys, not threads: --workers
    assert env["TWOFOLD_CONTROL_FD"] == "7"
    assert json.loads(env["TWOFOLD_LIMITS"]) == {
        "max_url_bytes": LIMITS.max_url_bytes,
        "body_timeout": LIMITS.body_timeout,
    }


def _udp_taken_tcp_free() -> socket.socket:
    """A UDP socket bound to a port whose TCP twin was free a moment ago.

    The kernel picks a UDP port with no regard for TCP's: one of the suite's
    own connections may hold the same number over TCP, and the server would
    then report that port first. So the number comes from TCP."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                continue
        return udp
    raise AssertionError("no port free over both TCP and UDP")


def test_a_taken_udp_port_is_one_line_with_http3() -> None:
    with _udp_taken_tcp_free() as busy:
        port = busy.getsockname()[1]
        tls = ("--tls-cert", "c.pem", "--tls-key", "k.pem")
        args = ("--server", "pyvoy", *tls, "--http3", "--port", str(port))
        result = twofold("serve", "tests.e2e.grpc_app:app", *args)
    assert result.returncode == 1
    assert result.stderr == (
        f"twofold: error: UDP port {port} on 127.0.0.1 is already in use"
        " — choose another with --port\n"
    )


def configured_websocket(tmp_path: Path | None = None) -> dict[str, Any]:
    tls = (
        {}
        if tmp_path is None
        else {"tls_cert": str(tmp_path / "c"), "tls_key": str(tmp_path / "k")}
    )
    settings = envoy.EnvoySettings(
        host="127.0.0.1", port=8443, limits=LIMITS, websocket=WebSocketOptions(ping_interval=30),
        http3=tmp_path is not None, **tls,  # type: ignore[arg-type]
    )  # fmt: skip
    return envoy.configuration(settings)


def test_websocket_upgrades_go_through_the_connection_manager_to_pyvoy() -> None:
    config = configured_websocket()
    edge, internal = config["static_resources"]["listeners"]
    names = [f["name"] for f in edge["filter_chains"][0]["filters"]]
    # The manager first on the port (after the connection limit), not pyvoy's filter.
    assert names == ["envoy.filters.network.connection_limit", envoy_websocket.HCM]
    hcm = edge["filter_chains"][0]["filters"][1]["typed_config"]
    # Upgrades through the router alone; every other request to pyvoy's filter, as before.
    ((upgrades,),) = [
        c["filters"] for c in hcm["upgrade_configs"] if c["upgrade_type"] == "websocket"
    ]
    assert upgrades["name"] == "envoy.filters.http.router"
    assert [f["name"] for f in hcm["http_filters"]] == ["pyvoy"]
    assert hcm["http2_protocol_options"]["allow_connect"] is True  # RFC 8441
    assert hcm["common_http_protocol_options"]["idle_timeout"] == "3.000s"
    (upgrade,) = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert upgrade["route"]["cluster"] == envoy_websocket.LISTENER
    assert internal["name"] == envoy_websocket.LISTENER and "internal_listener" in internal
    ws, fallback = internal["filter_chains"][0]["filters"]
    assert ws["name"] == envoy_websocket.WEBSOCKET_FILTER
    own = json.loads(ws["typed_config"]["filter_config"]["value"])
    # One lifespan (the App's loop), and messages past the App's limit refused by pyvoy.
    assert own["lifespan"] is False
    assert own["websockets_max_message_size"] == WebSocketOptions().max_message_size
    assert fallback["typed_config"]["common_http_protocol_options"]["idle_timeout"] == "0s"


def test_pings_are_tcp_keepalive_on_pyvoy() -> None:
    (edge, _) = configured_websocket()["static_resources"]["listeners"]
    options = {(o["level"], o["name"]): o["int_value"] for o in edge["socket_options"]}
    assert options[(socket.SOL_SOCKET, socket.SO_KEEPALIVE)] == 1
    assert options[(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)] == 30  # ping_interval
    assert options[(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)] == 7  # ping_timeout / 3 probes
    assert options[(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)] == 3


def test_no_websocket_over_http3(tmp_path: Path) -> None:
    config = configured_websocket(tmp_path)
    quic = [hcm for hcm in managers(config) if hcm.get("codec_type") == "HTTP3"]
    assert quic and all("upgrade_configs" not in hcm for hcm in quic)
    tcp = managers(config)[0]  # the port's; the internal listener's comes last
    assert tcp.get("codec_type") != "HTTP3"
    tls = tcp["route_config"]["virtual_hosts"][0]["routes"][0]["request_headers_to_add"]
    assert {"header": {"key": "x-twofold-scheme", "value": "wss"}} in [
        {"header": h["header"]} for h in tls
    ]


def test_without_websocket_options_no_upgrade_is_taken() -> None:
    config = envoy.configuration(envoy.EnvoySettings(host="127.0.0.1", port=8000, limits=LIMITS))
    assert len(config["static_resources"]["listeners"]) == 1  # no internal listener
    assert all("upgrade_configs" not in hcm for hcm in managers(config))
