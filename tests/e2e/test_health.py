"""/healthz and /readyz over ``twofold serve``: alive, ready, and 503 while draining."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.server import start

TARGET = "tests.e2e.edge_app:app"


def test_alive_ready_never_guarded_and_not_documented(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/notes/1").status_code == 401  # the App does check credentials
            for path, text in (("/healthz", "ok\n"), ("/readyz", "ready\n")):
                answer = http.get(path)
                assert (answer.status_code, answer.text) == (200, text)
                assert answer.headers["cache-control"] == "no-store"
                # Wrong credentials are not looked at either.
                bad = http.get(path, headers={"authorization": "Bearer nonsense"})
                assert bad.status_code == 200
            paths = http.get("/openapi.json").json()["paths"]
            assert "/healthz" not in paths and "/readyz" not in paths
    finally:
        server.stop()


def test_readyz_is_503_from_sigterm_while_calls_in_flight_finish(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path, None, "--drain-delay", "4", "--grace", "10")
    results: list[httpx.Response] = []

    def nap() -> None:
        with httpx.Client(base_url=server.url, timeout=20) as slow:
            results.append(slow.post("/edge.v1.Edge/Nap", json={"seconds": 2}))

    try:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            assert http.get("/readyz").status_code == 200
            thread = threading.Thread(target=nap)
            thread.start()
            time.sleep(0.3)  # let the call start
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 3
            readyz = http.get("/readyz")
            while readyz.status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.05)
                readyz = http.get("/readyz")
            assert (readyz.status_code, readyz.text) == (503, "not ready: draining\n")
            assert http.get("/healthz").status_code == 200  # alive, just not taking traffic
            with grpc.insecure_channel(server.grpc_target) as channel:
                check = health_pb2_grpc.HealthStub(channel).Check
                status = check(health_pb2.HealthCheckRequest(), timeout=5).status
                assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            thread.join(timeout=15)
        assert [r.json() for r in results] == [{"slept": 2}]
        assert server.process.wait(timeout=20) == 0
    finally:
        server.stop()
