"""The library upstream (tests/gateway/upstream.py) and a gateway in front of it, on 127.0.0.1."""

from __future__ import annotations

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
