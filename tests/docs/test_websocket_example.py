"""docs/websocket.md: the example service, served for real, answers the example client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from docs_src.websocket.client import main
from tests.e2e.server import Server, start


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start(
        "docs_src.websocket.app:app", tmp_path_factory.mktemp("ws-docs"), None, "--no-grpc"
    )
    yield server
    server.stop()


def test_the_client_gets_what_the_page_says(server: Server) -> None:
    seen = asyncio.run(main(f"ws://127.0.0.1:{server.port}/jsonrpc"))
    assert seen[0] == {"text": "HELLO"}
    subscription = seen[1]["subscription"]
    assert seen[1:4] == [
        {"subscription": subscription, "result": {"n": 1}},
        {"subscription": subscription, "result": {"n": 2}},
        {"subscription": subscription, "end": True},
    ]
    stream = seen[4]["subscription"]
    assert seen[4:] == [
        {"subscription": stream, "result": {"text": "ping"}},
        True,
        {"subscription": stream, "end": True},
    ]
