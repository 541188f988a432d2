"""docs/gateway.md: the REST edge of a gRPC Greeter, as a library (an ASGI app).

Serve it with any ASGI server: ``uvicorn docs_src.gateway.edge:app``; or run
``twofold gateway --proto docs_src/gateway/greeter.proto --upstream HOST:PORT``.
"""

from __future__ import annotations

import os
from pathlib import Path

from twofold import WebSocketOptions
from twofold.gateway import Gateway, GatewayOptions, from_proto_files

PROTO = Path(__file__).with_name("greeter.proto")


def build(upstream: str) -> Gateway:
    schema = from_proto_files([str(PROTO)])  # compiled in process: no generated code
    options = GatewayOptions(
        title="Greeter",
        timeout=5.0,  # no upstream call outlives this, whatever the client asks
        forward_headers=("authorization", "x-request-id", "traceparent", "x-tenant"),
        cache_control={"greeter.v1.Greeter.SayHello": "public, max-age=60"},
        # WebSocket JSON-RPC at /jsonrpc: a message over 64 KiB closes 1009,
        # a connection with nothing running closes 1000 after a minute of silence.
        websocket=WebSocketOptions(max_message_size=64 * 1024, idle_timeout=60.0),
    )
    return Gateway(schema, upstream, options)


app = build(os.environ.get("GREETER_UPSTREAM", "127.0.0.1:50051"))
