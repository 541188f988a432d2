"""docs/gateway.md: the Greeter edge (docs_src/gateway) in front of a grpcio Greeter."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from docs_src.gateway.edge import PROTO, build
from docs_src.gateway.socket_client import main
from tests.gateway.conftest import serve
from twofold.gateway import from_proto_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def greeter() -> Iterator[str]:
    """A Greeter written with plain grpcio, on 127.0.0.1."""
    schema = from_proto_files([str(PROTO)])
    service = schema.service("greeter.v1.Greeter")
    request = schema.message_class(service.methods_by_name["SayHello"].input_type)
    reply = schema.message_class(service.methods_by_name["SayHello"].output_type)

    async def say_hello(req: Any, context: Any) -> Any:
        if not req.name.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a name, please")
        return reply(message=f"Hello, {req.name}")

    async def say_hellos(req: Any, context: Any) -> AsyncIterator[Any]:
        for i in range(req.times):
            yield reply(message=f"Hello #{i + 1}, {req.name}")

    handlers = grpc.method_handlers_generic_handler(
        "greeter.v1.Greeter",
        {
            "SayHello": grpc.unary_unary_rpc_method_handler(
                say_hello, request.FromString, reply.SerializeToString
            ),
            "SayHellos": grpc.unary_stream_rpc_method_handler(
                say_hellos, request.FromString, reply.SerializeToString
            ),
        },
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[Any, int]:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handlers,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield f"127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_the_edge_serves_rest_sse_and_problems(greeter: str) -> None:
    with serve(build(greeter)) as url, httpx.Client(base_url=url) as http:
        r = http.get("/v1/greetings/Ada")
        assert r.json() == {"message": "Hello, Ada"}
        assert r.headers["cache-control"] == "public, max-age=60"
        r = http.get("/v1/greetings/Ada:stream?times=2")
        assert r.headers["content-type"] == "text/event-stream"
        assert r.text == (
            'data: {"message":"Hello #1, Ada"}\n\ndata: {"message":"Hello #2, Ada"}\n\n'
        )
        r = http.get("/v1/greetings/%20")
        assert r.status_code == 400
        assert r.json()["detail"] == "a name, please"
        r = http.post("/greeter.v1.Greeter/SayHello", json={"name": "Bo"})  # Connect
        assert r.json() == {"message": "Hello, Bo"}


def test_the_edge_serves_websocket_json_rpc(greeter: str) -> None:
    page = (ROOT / "docs" / "gateway.md").read_text()
    client = (ROOT / "docs_src" / "gateway" / "socket_client.py").read_text()
    block = re.search(r"```python\n# docs_src/gateway/socket_client.py\n(.*?)```", page, re.S)
    assert block is not None and block.group(1) in client
    with serve(build(greeter)) as url:
        ws = url.replace("http://", "ws://") + "/jsonrpc"
        seen = asyncio.run(main(ws))
        assert seen == [
            [
                {"jsonrpc": "2.0", "result": {"message": "Hello, Ada"}, "id": 1},
                {"jsonrpc": "2.0", "result": "s1", "id": 2},
            ],
            {"subscription": "s1", "result": {"message": "Hello #1, Bo"}},
            {"subscription": "s1", "result": {"message": "Hello #2, Bo"}},
            {"subscription": "s1", "end": True},
        ]
        # The example's limit: a message over 64 KiB closes the connection with 1009.
        with connect(ws) as conn:
            conn.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "SayHello",
                        "params": {"name": "x" * 70_000},
                    }
                )
            )
            with pytest.raises(ConnectionClosed) as closed:
                conn.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
