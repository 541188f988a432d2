"""An ASGI app served by uvicorn in a thread of the test process, on 127.0.0.1.

The client tests need servers whose handlers they can watch (was it
cancelled?) and servers that misbehave on purpose; both are easiest when the
server shares the test's memory. The port is the kernel's choice (port 0).
:func:`serve_grpc` does the same for an App's native gRPC server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="critical", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve_grpc(app: Any) -> Iterator[str]:
    """Serve ``app``'s methods over native gRPC until the block ends; yields ``host:port``."""
    from twofold import GrpcServer

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-grpc-server", daemon=True)
    thread.start()

    async def start() -> tuple[GrpcServer, int]:
        server = GrpcServer(app)
        port = server.add_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
