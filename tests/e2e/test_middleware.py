"""ASGI middleware around an App under ``twofold serve``: every HTTP wire goes
through it, native gRPC is still served, and a wrapped app drains on SIGTERM."""

from __future__ import annotations

import signal
import struct
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from docs_src.middleware.app import ARTICLES, Article, Headline, service
from tests.cli import twofold
from tests.e2e.server import Server, start
from twofold import Client
from twofold.protobuf import Schema

HOST = "127.0.0.1"  # what the examples trust, besides news.example.com
GET_ARTICLE = "/news.v1.NewsService/GetArticle"


def requests() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """One request per HTTP wire, as that wire's clients send it."""
    codec = Schema(service).codec(service.methods["GetArticle"].input_type)
    message = codec.encode(service.methods["GetArticle"].input_type(id=1))
    frame = struct.pack(">BI", 0, len(message)) + message
    return {
        "rest": ("GET", "/articles/1", {}),
        "sse": ("GET", "/headlines:watch", {"headers": {"accept": "text/event-stream"}}),
        "connect": ("POST", GET_ARTICLE, {"json": {"id": 1}}),
        "connect-get": (
            "GET",
            GET_ARTICLE,
            {"params": {"encoding": "json", "message": '{"id":1}'}},
        ),
        "grpc-web": (
            "POST",
            GET_ARTICLE,
            {"content": frame, "headers": {"content-type": "application/grpc-web+proto"}},
        ),
        "jsonrpc": (
            "POST",
            "/jsonrpc",
            {"json": {"jsonrpc": "2.0", "id": 1, "method": "GetArticle", "params": {"id": 1}}},
        ),
    }


@pytest.fixture(scope="module", params=["app", "wrapped"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The docs' example served twice: App(middleware=...), and wrapped by hand."""
    served = start(f"docs_src.middleware.{request.param}:app", tmp_path_factory.mktemp("mw"))
    yield served
    served.stop()


@pytest.mark.parametrize("wire", list(requests()))
def test_the_middleware_sees_every_http_wire(server: Server, wire: str) -> None:
    verb, path, kwargs = requests()[wire]
    with httpx.Client(base_url=server.url, timeout=10) as http:
        headers = {**kwargs.pop("headers", {}), "accept-encoding": "gzip"}
        refused = http.request(verb, path, headers={**headers, "host": "evil.example"}, **kwargs)
        # TrustedHostMiddleware's own answer: no wire, interceptor or handler saw it.
        assert (refused.status_code, refused.text) == (400, "Invalid host header")
        served = http.request(verb, path, headers=headers, **kwargs)
        assert served.status_code == 200, served.text
        if wire == "sse":
            # GZipMiddleware leaves event streams alone: each event must leave at once.
            assert "content-encoding" not in served.headers
            assert served.text.count("data: ") == 3
        else:
            assert served.headers["content-encoding"] == "gzip"  # the article is > 500 bytes
            assert ARTICLES[1].body in served.text or wire == "grpc-web"


@pytest.mark.parametrize("protocol", ["rest", "connect", "connect-proto", "grpc-web", "jsonrpc"])
def test_twofold_clients_work_through_the_middleware(server: Server, protocol: str) -> None:
    with Client(service, server.url, protocol=protocol) as client:
        assert client.get_article(id=2) == ARTICLES[2]
        if protocol != "jsonrpc":  # JSON-RPC carries no streams
            titles = [h.title for h in client.watch_headlines(count=2)]
            assert titles == ["Article 1", "Article 2"]


def test_native_grpc_is_served_beside_the_middleware(server: Server) -> None:
    # Native gRPC is no ASGI: grpcio serves the App found inside the wrapper.
    with Client(service, server.grpc_target, protocol="grpc") as client:
        assert client.get_article(id=3) == ARTICLES[3]
        assert list(client.watch_headlines(count=1)) == [Headline(1, "Article 1")]
    assert isinstance(ARTICLES[3], Article)


def test_a_wrapped_app_drains_on_sigterm_with_grpc_and_readiness(tmp_path: Path) -> None:
    # tests/e2e/wrapped_app.py: the edge app (a slow Nap call) inside a middleware.
    server = start("tests.e2e.wrapped_app:app", tmp_path, None, "--drain-delay", "2")
    results: list[httpx.Response] = []

    def nap() -> None:
        with httpx.Client(base_url=server.url, timeout=20) as slow:
            results.append(slow.post("/edge.v1.Edge/Nap", json={"seconds": 2}))

    try:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            answer = http.get("/readyz")
            assert answer.status_code == 200 and answer.headers["x-wrapped"] == "yes"
            thread = threading.Thread(target=nap)
            thread.start()
            time.sleep(0.3)  # let the call start
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 3
            readyz = http.get("/readyz")
            while readyz.status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.05)
                readyz = http.get("/readyz")
            # The App inside the wrapper is the one told of the signal.
            assert (readyz.status_code, readyz.text) == (503, "not ready: draining\n")
            with grpc.insecure_channel(server.grpc_target) as channel:
                check = health_pb2_grpc.HealthStub(channel).Check
                status = check(health_pb2.HealthCheckRequest(), timeout=5).status
                assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            thread.join(timeout=15)
        assert [(r.json(), r.headers["x-wrapped"]) for r in results] == [({"slept": 2}, "yes")]
        assert server.process.wait(timeout=20) == 0
    finally:
        server.stop()


def test_a_wrapped_app_serves_with_workers(tmp_path: Path) -> None:
    server = start("tests.e2e.wrapped_app:app", tmp_path, None, "--workers", "2")
    try:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            for _ in range(4):
                answer = http.post("/edge.v1.Edge/Calls", json={})
                assert answer.status_code == 200 and answer.headers["x-wrapped"] == "yes"
        with grpc.insecure_channel(server.grpc_target) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            status = check(health_pb2.HealthCheckRequest(), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop()
    assert server.process.wait(timeout=20) == 0


def test_an_app_with_no_twofold_app_inside_is_one_clear_error() -> None:
    done = twofold("serve", "tests.e2e.wrapped_app:opaque", "--port", "0", "--no-grpc")
    assert done.returncode == 2, done.stderr
    assert "tests.e2e.wrapped_app:opaque (Opaque) has no twofold App" in done.stderr
    assert "App(..., middleware=[...])" in done.stderr and "Traceback" not in done.stderr


def test_a_wrapped_app_keeps_its_middleware_on_pyvoy(tmp_path: Path) -> None:
    server = start("docs_src.middleware.wrapped:app", tmp_path, None, "--server", "pyvoy")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            refused = http.get("/articles/1", headers={"host": "evil.example"})
            assert (refused.status_code, refused.text) == (400, "Invalid host header")
            assert http.get("/articles/1").status_code == 200
    finally:
        server.stop()
