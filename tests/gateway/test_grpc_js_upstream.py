"""The gateway in front of a Node upstream written with @grpc/grpc-js.

tests/gateway/node/library.js serves tests/gateway/library.proto (loaded by
@grpc/proto-loader, both pinned in package.json; ``npm ci`` installs them).
The gateway, in this process, fronts it with REST: CRUD, a custom verb,
errors with google.rpc details, a server stream as SSE, deadlines, and the
upstream restarting under it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.grpc_stubs import GOOGLEAPIS_INCLUDE
from tests.e2e.server import ROOT
from tests.gateway.conftest import gateway_for, serve

PROGRAM = Path(__file__).with_name("node") / "library.js"
NODE_MODULES = ROOT / "node_modules"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_MODULES / "@grpc" / "grpc-js").is_dir(),
    reason="needs node and @grpc/grpc-js (npm ci --no-audit --no-fund)",
)


class NodeUpstream:
    """library.js as a process of its own, stopped by PID."""

    def __init__(self, port: int = 0) -> None:
        self.process = subprocess.Popen(
            ["node", str(PROGRAM), str(PROGRAM.parents[1]), str(GOOGLEAPIS_INCLUDE), str(port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"library.js did not start: {line}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture(scope="module")
def node() -> Iterator[NodeUpstream]:
    upstream = NodeUpstream()
    try:
        yield upstream
    finally:
        upstream.stop()


@pytest.fixture(scope="module")
def client(node: NodeUpstream) -> Iterator[httpx.Client]:
    with (
        serve(gateway_for(f"127.0.0.1:{node.port}")) as url,
        httpx.Client(base_url=url, timeout=10.0) as http,
    ):
        yield http


def test_crud(client: httpx.Client) -> None:
    made = client.post("/v1/shelves/2/books?bookId=n1", json={"title": "Node", "pages": "10"})
    assert made.status_code == 200, made.text
    assert made.json()["name"] == "shelves/2/books/n1"
    got = client.get("/v1/shelves/2/books/n1")
    assert got.json()["title"] == "Node" and got.json()["pages"] == "10"
    listed = client.get("/v1/shelves/2/books").json()
    assert [b["name"] for b in listed["books"]] == ["shelves/2/books/n1"]
    assert client.delete("/v1/shelves/2/books/n1").status_code == 200
    gone = client.get("/v1/shelves/2/books/n1")
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"


def test_custom_verb(client: httpx.Client) -> None:
    moved = client.post("/v1/shelves/1/books/1:move", json={"destination": "shelves/9"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["name"] == "shelves/9/books/1"


def test_bad_request_details_become_violations(client: httpx.Client) -> None:
    answer = client.post("/v1/shelves/2/books", json={"pages": "1"})
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["violations"] == [{"field": "book.title", "description": "required"}]


def test_server_stream_as_sse(client: httpx.Client) -> None:
    with client.stream("GET", "/v1/shelves/3/books:watch?count=3") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        data = [json.loads(line[6:]) for line in answer.iter_lines() if line.startswith("data: ")]
    assert [d["title"] for d in data] == ["Book 0", "Book 1", "Book 2"]


def test_deadline(client: httpx.Client) -> None:
    answer = client.post(
        "/library.v1.Library/Echo",
        json={"text": "slow", "delayMs": 3000},
        headers={"connect-timeout-ms": "200"},
    )
    assert answer.status_code == 504
    assert answer.json()["code"] == "deadline_exceeded"


def test_upstream_restart() -> None:
    """Down: 503 with Retry-After at once, never a hang; back: answers again."""
    node = NodeUpstream()
    port = node.port
    with (
        serve(gateway_for(f"127.0.0.1:{port}")) as url,
        httpx.Client(base_url=url, timeout=10.0) as http,
    ):
        assert http.get("/v1/shelves/1/books/1").status_code == 200
        node.stop()
        down = http.get("/v1/shelves/1/books/1")
        assert down.status_code == 503
        assert down.headers["retry-after"].isdigit()
        assert down.json()["detail"] == "the upstream service is unavailable"
        node = NodeUpstream(port)
        try:
            deadline = time.monotonic() + 15
            while http.get("/v1/shelves/1/books/1").status_code != 200:
                assert time.monotonic() < deadline, "the gateway never reconnected"
                time.sleep(0.1)
        finally:
            node.stop()
