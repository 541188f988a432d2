"""``twofold serve``'s default access log, read from a real server's standard output.

One JSON line per HTTP request (the call's with ``request`` and ``status``
when the App composes AccessLog, else the server's), a line per call where
there is no HTTP request of its own (native gRPC), a stream's line at its
end, nothing with ``--no-access-log``, and every line out after SIGTERM
although the log is buffered.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import grpc
import httpx
import pytest

from tests.e2e.databases import Database
from tests.e2e.server import Server, start

CALL_FIELDS = {"protocol", "method", "code", "duration_ms", "peer", "request_id"}
HTTP_FIELDS = {"protocol", "request", "status", "duration_ms", "peer"}
SHELF = "docs_src.testing.shelf:app"  # an App without AccessLog
WATCH = "GET /products:watchPrices"


@pytest.fixture(scope="module")
def catalog(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("access-log")
    server = start("examples.catalog:app", tmp, database.env(tmp))
    yield server
    server.stop()


def new_lines(server: Server, before: int) -> list[dict[str, object]]:
    """The lines since ``before`` lines were in (skipping that count's own marker)."""
    return server.access_log()[before + 1 :]


def test_every_request_gets_exactly_one_line(catalog: Server) -> None:
    before = len(catalog.access_log())
    with httpx.Client(base_url=catalog.url, timeout=10.0) as http:
        assert http.get("/products?page_size=1&token=query-secret").status_code == 200
        assert http.get("/products/999999999").status_code == 404
        assert http.get("/no/such/path").status_code == 404
        assert http.get("/healthz").status_code == 200
        assert http.get("/metrics").status_code == 200
        batch = [
            {"jsonrpc": "2.0", "id": 1, "method": "ListProducts", "params": {}},
            {"jsonrpc": "2.0", "id": 2, "method": "GetProduct", "params": {"id": 999999999}},
        ]
        assert http.post("/jsonrpc", json=batch).status_code == 200
        assert http.post("/products", json={"name": "x"}).status_code == 401
    lines = new_lines(catalog, before)
    seen = [(line["request"], line["status"], line.get("code")) for line in lines]
    assert seen == [
        ("GET /products", 200, "ok"),
        ("GET /products/999999999", 404, "not_found"),
        ("GET /no/such/path", 404, "not_found"),
        ("GET /healthz", 200, None),
        ("GET /metrics", 200, None),
        # A batch is a line per call, each with the request they came in.
        ("POST /jsonrpc", 200, "ok"),
        ("POST /jsonrpc", 200, "not_found"),
        ("POST /products", 401, "unauthenticated"),
    ]
    for line in lines:
        fields = HTTP_FIELDS if line["protocol"] == "http" else CALL_FIELDS | {"request", "status"}
        assert set(line) == fields, line
    assert lines[0]["method"] == "catalog.v1.CatalogService/ListProducts"
    assert "query-secret" not in catalog.output()  # a query is never written


def test_a_call_with_no_http_request_of_its_own_gets_its_line(
    catalog: Server, stubs: tuple[ModuleType, ModuleType]
) -> None:
    pb2, pb2_grpc = stubs
    before = len(catalog.access_log())
    with grpc.insecure_channel(catalog.grpc_target) as channel:
        pb2_grpc.CatalogServiceStub(channel).ListProducts(pb2.ListProductsRequest(), timeout=10)
    (line,) = new_lines(catalog, before)
    assert set(line) == CALL_FIELDS
    assert line["protocol"] == "grpc" and line["code"] == "ok"


def test_a_stream_is_logged_at_its_end(catalog: Server) -> None:
    before = len(catalog.access_log())
    with (
        httpx.Client(base_url=catalog.url, timeout=10.0) as http,
        http.stream("GET", "/products:watchPrices") as stream,
    ):
        assert stream.status_code == 200
        # Open: other requests are logged meanwhile, the stream is not.
        assert not [line for line in new_lines(catalog, before) if line["request"] == WATCH]
    lines = [line for line in new_lines(catalog, before) if line["request"] == WATCH]
    assert [(line["status"], line["code"]) for line in lines] == [(200, "canceled")]


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_an_app_without_access_log_gets_the_servers_line(tmp_path: Path, http: str) -> None:
    server = start(SHELF, tmp_path, None, "--http", http)
    try:
        before = len(server.access_log())
        assert httpx.get(f"{server.url}/books/1").status_code == 200
        assert httpx.head(f"{server.url}/books/1").status_code == 200
        assert httpx.get(f"{server.url}/nowhere").status_code == 404
        lines = new_lines(server, before)
    finally:
        server.stop()
    assert [(line["request"], line["status"]) for line in lines] == [
        ("GET /books/1", 200),
        ("HEAD /books/1", 200),
        ("GET /nowhere", 404),
    ]
    assert all(set(line) == HTTP_FIELDS and line["protocol"] == "http" for line in lines)


def test_no_access_log_writes_no_line(tmp_path: Path) -> None:
    server = start(SHELF, tmp_path, None, "--no-access-log")
    try:
        assert httpx.get(f"{server.url}/books/1").status_code == 200
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert server.access_lines() == []


def test_every_line_is_out_after_sigterm(database: Database, tmp_path: Path) -> None:
    """Lines still in the buffer, and the line of a stream the shutdown ends, are
    written before the worker exits."""
    server = start("examples.catalog:app", tmp_path, database.env(tmp_path), "--grace", "1")
    opened = threading.Event()

    def watch() -> None:
        # Ends when the server closes the stream at shutdown.
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            try:
                with client.stream("GET", "/products:watchPrices") as stream:
                    opened.set()
                    for _ in stream.iter_bytes():
                        pass
            except httpx.HTTPError:
                pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    ids = [f"sigterm-{i}" for i in range(200)]
    try:
        assert opened.wait(10)
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            for request_id in ids:
                r = http.get("/products/999999999", headers={"x-request-id": request_id})
                assert r.status_code == 404
        server.process.send_signal(signal.SIGTERM)  # at once: the last lines are buffered
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()
        watcher.join(timeout=30)
    lines = server.access_lines()
    logged = [line["request_id"] for line in lines if line.get("request_id") in set(ids)]
    assert logged == ids
    assert [line["status"] for line in lines if line.get("request") == WATCH] == [200]


def test_the_workers_lines_are_all_out_and_whole(tmp_path: Path) -> None:
    """``--workers 2`` on one output: every request's line, none cut by another's,
    the last ones written as the workers stop."""
    server = start(SHELF, tmp_path, None, "--workers", "2", "--no-grpc")
    try:
        for i in range(200):  # a connection each, spread over the workers by the kernel
            assert httpx.get(f"{server.url}/books/{i % 3 + 1}?n={i}").status_code in (200, 404)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()
    lines = server.access_lines()  # each a whole JSON object, or json.loads fails
    books = [line for line in lines if str(line["request"]).startswith("GET /books/")]
    assert len(books) == 200
