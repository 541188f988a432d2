"""The library upstream (tests/gateway/upstream.py) and a gateway in front of it, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from tests.gateway.upstream import PROTO, Upstream, running
from twofold.gateway import Gateway, GatewayOptions, from_proto_files


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread, lifespan on (the gateway closes
    its channels there); yields the base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="critical", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve_h2(app: Any) -> Iterator[int]:
    """Serve an ASGI app with hypercorn (HTTP/1.1 and h2c, trailers) in a thread of
    its own; yields the port."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    config = Config()
    # hypercorn closes the descriptor it is given when it stops: give it its own.
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    config.accesslog = config.errorlog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        loop.run_until_complete(hypercorn_serve(app, config, shutdown_trigger=stop.wait))

    thread = threading.Thread(target=run, name="test-gateway-h2", daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
        sock.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running() as found:
        yield found


def gateway_for(target: str, **options: Any) -> Gateway:
    return Gateway(from_proto_files([str(PROTO)]), target, GatewayOptions(**options))


@pytest.fixture(scope="module")
def gateway_url(upstream: Upstream) -> Iterator[str]:
    with serve(gateway_for(upstream.target, max_body_size=64 * 1024)) as url:
        yield url


@pytest.fixture
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=10.0) as client:
        yield client
