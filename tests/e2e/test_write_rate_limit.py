"""The catalog's write rate limit is one limit for every worker on PostgreSQL, and
refuses alike on every wire (examples/catalog/ratelimits.py)."""

from __future__ import annotations

import http.client
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from examples.catalog import service
from tests.e2e import postgres
from tests.e2e.databases import Database, rows
from tests.e2e.postgres import Cluster
from tests.e2e.server import Server, start, workers_of
from tests.e2e.test_supervision import wait_for
from tests.tokens import ADMIN
from twofold import Client, Code, Error
from twofold.client import BearerToken, Rpc

BURST = 12
# A token a minute: none comes back while the test runs, so the count is exact.
RATE = 1 / 60
PRODUCT = {"name": "Limited", "price": "1.00", "category": "Books", "tags": []}
CREATE = service.methods["CreateProduct"]
JSON = {"content-type": "application/json", "authorization": f"Bearer {ADMIN}"}


class Connection:
    """One keep-alive HTTP/1.1 connection, and the worker that accepted it."""

    def __init__(self, server: Server) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        # A first answer: the connection is accepted, its socket has an owner.
        self.http.request("GET", "/healthz")
        assert self.http.getresponse().read() is not None
        assert self.http.sock is not None
        client_port = self.http.sock.getsockname()[1]
        self.worker = worker_of(server, client_port)

    def post(self, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, Any]:
        """(status, the Retry-After header, the decoded body)."""
        self.http.request("POST", path, json.dumps(body), {**JSON, **headers})
        response = self.http.getresponse()
        answer = json.loads(response.read() or b"null")
        return response.status, response.getheader("retry-after"), answer

    def rest(self) -> tuple[int, Any, Any]:
        return self.post("/products", PRODUCT, {})

    def connect(self) -> tuple[int, Any, Any]:
        return self.post(CREATE.path, {"product": PRODUCT}, {"connect-protocol-version": "1"})

    def jsonrpc(self) -> tuple[int, Any, Any]:
        params = {"product": PRODUCT}
        call = {"jsonrpc": "2.0", "id": 1, "method": "CreateProduct", "params": params}
        return self.post("/jsonrpc", call, {})


def worker_of(server: Server, client_port: int) -> int:
    """The worker process holding the server's end of the connection from ``client_port``.

    /proc/net/tcp names the socket (by inode) whose peer is that port; the
    worker is the one with a file descriptor on it.
    """
    inode = ""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
        if local == server.port and remote == client_port:
            inode = fields[9]
    assert inode, f"no server socket for the connection from port {client_port}"
    # The server itself when it has no workers (--workers 1).
    for pid in workers_of(server.process.pid) or [server.process.pid]:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:  # closed meanwhile
                continue
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def one_on_each(server: Server) -> tuple[Connection, Connection]:
    """A connection to each of the two workers (the kernel hands connections out)."""
    found: dict[int, Connection] = {}
    spare: list[Connection] = []

    def both() -> bool:
        connection = Connection(server)
        if connection.worker in found:
            spare.append(connection)
        else:
            found[connection.worker] = connection
        return len(found) == 2

    wait_for(lambda: len(workers_of(server.process.pid)) == 2, "two workers")
    wait_for(both, "a connection on each worker")
    for connection in spare:
        connection.http.close()
    first, second = found.values()
    return first, second


def test_a_burst_over_the_limit_is_refused_by_every_worker_alike(
    postgres_cluster: Cluster, tmp_path: Path
) -> None:
    url = Database("postgresql", postgres_cluster).new_url(tmp_path)
    env = {
        "CATALOG_DATABASE_URL": url,
        "CATALOG_WRITE_RATE": str(RATE),
        "CATALOG_WRITE_BURST": str(BURST),
    }
    server = start("examples.catalog:app", tmp_path, env, "--workers", "2")
    try:
        first, second = one_on_each(server)
        # Half the burst through each worker, then one more on each: with a
        # bucket per process each would still have half its burst left.
        outcomes = [c.rest() for _ in range(BURST // 2) for c in (first, second)]
        assert [status for status, _, _ in outcomes] == [201] * BURST
        for connection in (first, second):
            status, retry_after, problem = connection.rest()
            assert status == 429, problem
            assert retry_after is not None and int(retry_after) >= 1
            assert problem["code"] == "resource_exhausted"
            status, retry_after, error = connection.connect()
            assert (status, error["code"]) == (429, "resource_exhausted"), error
            assert retry_after is not None and int(retry_after) >= 1
            status, _, answer = connection.jsonrpc()
            assert status == 200 and answer["error"]["data"]["code"] == "resource_exhausted"
        grpc = Client([Rpc.from_method(CREATE)], server.grpc_target, protocol="grpc",
                      auth=BearerToken(ADMIN))  # fmt: skip
        with grpc, pytest.raises(Error) as refused:
            grpc.create_product(product=PRODUCT)
        assert refused.value.code is Code.RESOURCE_EXHAUSTED
        # Reads are not writes: they pass.
        first.http.request("GET", "/products/1")
        assert first.http.getresponse().status == 200
        assert rows(url, "SELECT count(*) FROM products") == [(BURST,)]
        assert not re.search(r"Traceback|Exception", server.output()), server.output()
        first.http.close()
        second.http.close()
    finally:
        server.stop()


def test_writes_are_refused_while_the_limit_cannot_be_checked(tmp_path: Path) -> None:
    """The database gone, a write is UNAVAILABLE with Retry-After: the limit never fails open."""
    directory = postgres.bindir()
    if directory is None:
        pytest.skip("PostgreSQL is not installed: run scripts/ensure-postgres")
    cluster = postgres.start(directory)  # of its own: this test stops it
    try:
        env = {"CATALOG_DATABASE_URL": Database("postgresql", cluster).new_url(tmp_path)}
        server = start("examples.catalog:app", tmp_path, env, "--no-grpc")
        try:
            connection = Connection(server)
            assert connection.rest()[0] == 201
            cluster.run("pg_ctl", "stop", "-D", str(cluster.data), "-m", "immediate", "-w")
            status, retry_after, problem = connection.rest()
            assert status == 503, problem
            assert problem["code"] == "unavailable" and retry_after == "1", problem
            # Refused by the limit, before the handler could try the database itself.
            assert "rate limit cannot be checked" in problem["detail"], problem
            connection.http.close()
        finally:
            server.stop()
    finally:
        cluster.stop()
