"""WebSocket upgrades on pyvoy's one port, routed by Envoy's HTTP connection manager.

pyvoy's own way (its ``websockets`` option) puts its WebSocket filter in front
of the connection manager on every connection, so the manager's header
timeout never sees a slow head, and an upgraded connection is closed at the
idle timeout whatever it does. Here the manager stays first, with its limits
(:func:`twofold.server.envoy.limit`): ``upgrade_configs`` takes HTTP/1.1
upgrades and HTTP/2 extended CONNECT (RFC 8441); an upgrade has a filter
chain of its own whose route sends it to an internal listener (no socket)
with pyvoy's WebSocket filter first. The route sets ``x-twofold-peer`` and
``x-twofold-scheme`` on every upgrade, whatever a client sent, for
:mod:`twofold.server.envoy_app`. That filter runs no lifespan of its own; the
connections run on the one lifespan's loop (:mod:`twofold.server.envoy_sockets`).
"""

from __future__ import annotations

import base64
import json
import math
import socket
from typing import Any

from twofold.core.options import WebSocketOptions

PEER_HEADER = "x-twofold-peer"
SCHEME_HEADER = "x-twofold-scheme"
LISTENER = "twofold_websocket"  # the internal listener, and the cluster that reaches it
WEBSOCKET_FILTER = "pyvoy-ws"  # pyvoy's WebSocket network filter
HCM = "envoy.filters.network.http_connection_manager"
_TYPES = "type.googleapis.com/envoy."
PROBLEM = "application/problem+json"
UNBOUNDED = 2**32 - 1  # an Envoy uint32 threshold that no count reaches
_BREAKERS = ("max_connections", "max_pending_requests", "max_requests")
_H2_KEY = base64.b64encode(b"twofold: RFC8441").decode()  # 16 bytes, as RFC 6455 asks
# Answered on the internal listener to a request that pyvoy's filter did not
# take as a WebSocket handshake (no Sec-WebSocket-Key, say): the router
# relays it to the client.
_NOT_A_HANDSHAKE = json.dumps(
    {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "not a WebSocket opening handshake (RFC 6455 section 4.1)",
    },
    separators=(",", ":"),
)


def route_websockets(config: dict[str, Any], tls: bool, limits: WebSocketOptions) -> None:
    """Move pyvoy's WebSocket filter in ``config`` (made with ``websockets=True``)
    behind the connection manager; ``tls``: whether the port's connections are TLS.
    ``limits``: the App's, whose pings become TCP keepalives (:func:`_keepalive`)."""
    listeners: list[dict[str, Any]] = config["static_resources"]["listeners"]
    found: dict[str, Any] | None = None
    for listener in listeners:
        if "address" in listener and "udp_listener_config" not in listener:
            listener.setdefault("socket_options", []).extend(_keepalive(limits))
        for chain in listener.get("filter_chains", ()):
            kept = []
            for item in chain["filters"]:
                if item["name"] == WEBSOCKET_FILTER:
                    found = item
                    continue
                kept.append(item)
                if item["name"] == HCM:
                    _upgrade(item["typed_config"], tls)
            chain["filters"] = kept
    if found is None:
        raise ValueError("pyvoy's configuration has no WebSocket filter")
    own = found["typed_config"]["filter_config"]
    own["value"] = json.dumps({**json.loads(own["value"]), "lifespan": False})
    listeners.append(
        {
            "name": LISTENER,
            "internal_listener": {},
            "filter_chains": [{"filters": [found, _bad_request()]}],
        }
    )
    config["static_resources"].setdefault("clusters", []).append(
        {
            "name": LISTENER,
            # Each upgrade holds one request and one connection of this cluster:
            # the port's connection limit bounds them, not Envoy's default
            # circuit breakers (1024 of each, then 503).
            "circuit_breakers": {"thresholds": [dict.fromkeys(_BREAKERS, UNBOUNDED)]},
            "load_assignment": {
                "cluster_name": LISTENER,
                "endpoints": [
                    {
                        "lb_endpoints": [
                            {
                                "endpoint": {
                                    "address": {
                                        "envoy_internal_address": {"server_listener_name": LISTENER}
                                    }
                                }
                            }
                        ]
                    }
                ],
            },
        }
    )
    config.setdefault("bootstrap_extensions", []).append(
        {
            "name": "envoy.bootstrap.internal_listener",
            "typed_config": {
                "@type": _TYPES + "extensions.bootstrap.internal_listener.v3.InternalListener"
            },
        }
    )


def _keepalive(limits: WebSocketOptions) -> list[dict[str, Any]]:
    """TCP keepalive on the port's connections, as the App's pings would be.

    pyvoy sends no WebSocket pings (ASGI has no message for them, and its
    filter has no timer; it answers a client's pings). What uvicorn's pings
    find, a client gone without a word, the kernel finds instead: probes
    after ``ping_interval`` seconds of silence, three in ``ping_timeout``,
    then the connection is reset. Accepted sockets inherit the options from
    the listening one (Linux). A client alive but silent is the App's
    ``idle_timeout``'s.
    """
    probes = 3
    wanted = [
        ("SOL_SOCKET", "SO_KEEPALIVE", 1),
        ("IPPROTO_TCP", "TCP_KEEPIDLE", max(1, math.ceil(limits.ping_interval))),
        ("IPPROTO_TCP", "TCP_KEEPINTVL", max(1, math.ceil(limits.ping_timeout / probes))),
        ("IPPROTO_TCP", "TCP_KEEPCNT", probes),
    ]
    options = []
    for level, name, value in wanted:
        if hasattr(socket, name):  # TCP_KEEPIDLE is Linux's (and recent macOS's)
            options.append(
                {
                    "level": getattr(socket, level),
                    "name": getattr(socket, name),
                    "int_value": value,
                    "state": "STATE_PREBIND",
                }
            )
    return options


def _upgrade(hcm: dict[str, Any], tls: bool) -> None:
    """An edge connection manager takes WebSocket upgrades and routes them to :data:`LISTENER`.

    Upgrades have a filter chain of their own (the router alone): every
    other request goes through the manager's filters as before, pyvoy's
    last, and is never routed.
    """
    if hcm.get("codec_type") == "HTTP3" or "upgrade_configs" in hcm:
        return  # RFC 9220 (WebSockets over HTTP/3) is not offered; a manager two chains share
    hcm["upgrade_configs"] = [{"upgrade_type": "websocket", "filters": [_router()]}]
    hcm.setdefault("http2_protocol_options", {})["allow_connect"] = True
    host = hcm["route_config"]["virtual_hosts"][0]
    host["routes"] = [
        {
            "match": {"prefix": "/"},
            "route": {"cluster": LISTENER, "timeout": "0s"},
            "request_headers_to_add": [
                _set(PEER_HEADER, "%DOWNSTREAM_REMOTE_ADDRESS%"),
                _set(SCHEME_HEADER, "wss" if tls else "ws"),
                # RFC 8441 has no Sec-WebSocket-Key (HTTP/2 itself shows that the
                # server speaks WebSocket); the HTTP/1.1 handshake Envoy turns an
                # extended CONNECT into must have one for pyvoy's filter to take it.
                {
                    "header": {"key": "sec-websocket-key", "value": _H2_KEY},
                    "append_action": "ADD_IF_ABSENT",
                },
            ],
        }
    ]


def _router() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": _TYPES + "extensions.filters.http.router.v3.Router"},
    }


def _set(name: str, value: str) -> dict[str, Any]:
    return {
        "header": {"key": name, "value": value},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
    }


def _bad_request() -> dict[str, Any]:
    """What the internal listener has after pyvoy's filter: a connection manager that
    answers 400 to what that filter did not take. No idle timeout: on an upgraded
    connection it never sees a request, and would cut the WebSocket."""
    return {
        "name": HCM,
        "typed_config": {
            "@type": _TYPES + "extensions.filters.network.http_connection_manager.v3"
            ".HttpConnectionManager",
            "stat_prefix": "websocket",
            "common_http_protocol_options": {"idle_timeout": "0s"},
            # An upgrade, else Envoy would answer 403 itself, without saying why.
            "upgrade_configs": [{"upgrade_type": "websocket"}],
            "route_config": {
                "virtual_hosts": [
                    {
                        "name": "handshake",
                        "domains": ["*"],
                        "routes": [
                            {
                                "match": {"prefix": "/"},
                                "direct_response": {
                                    "status": 400,
                                    "body": {"inline_string": _NOT_A_HANDSHAKE},
                                },
                                "response_headers_to_add": [_set("content-type", PROBLEM)],
                            }
                        ],
                    }
                ]
            },
            "http_filters": [_router()],
        },
    }
