"""``twofold serve --server pyvoy``: a graceful stop and workers, as the uvicorn server has them.

SIGTERM turns readiness (``/readyz``, gRPC health) to draining, Envoy serves
on for ``--drain-delay``, then refuses new connections while calls in flight
finish for up to ``--grace``; what is left is ended (UNAVAILABLE on its
wire) and the server exits. ``--workers N`` runs N Envoys on the one port;
``--reload`` starts Envoy again when the code changes.
Clients: grpcio and httpx, against real processes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.grpc_app import Number
from tests.e2e.server import WAIT, Server, alive, spawn, start, wait_for
from tests.e2e.shutdown import CONNECT_TICKS, grpc_ticks, http_ticks, sigterm_during
from tests.e2e.test_grpc_serve import call

TARGET = "tests.e2e.grpc_app:app"


def pyvoy(tmp: Path, *args: str) -> Server:
    return start(TARGET, tmp, None, "--server", "pyvoy", *args)


def refused(server: Server) -> bool:
    """A new connection to the port is refused (the listeners are closed), or
    closed unanswered: one the kernel queued while the listener was closing,
    which Envoy then drops."""
    try:
        httpx.get(f"{server.url}/healthz", timeout=2)
    except (httpx.ConnectError, httpx.RemoteProtocolError):
        return True
    return False


def in_thread(results: list[Any], work: Callable[[], Any]) -> threading.Thread:
    def run() -> None:
        try:
            results.append(work())
        except grpc.RpcError as exc:
            results.append(exc.code())

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def whoami(server: Server) -> int:
    """The pid of the Envoy a new connection reached."""
    options = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own
    with grpc.insecure_channel(server.grpc_target, options=options) as channel:
        return int(call(channel, "Whoami", timeout=10).n)


def test_sigterm_drains_then_lets_the_call_in_flight_finish(tmp_path: Path) -> None:
    server = pyvoy(tmp_path, "--drain-delay", "2", "--grace", "20")
    results: list[Any] = []
    try:
        envoy = whoami(server)
        assert envoy != server.process.pid  # the supervisor runs Envoy as a child
        with grpc.insecure_channel(server.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest()).status == 1  # SERVING
            thread = in_thread(results, lambda: call(channel, "Sleep", timeout=30, seconds=4))
            wait_for(lambda: "sleep start" in server.output(), "the call reached the handler")
            server.process.send_signal(signal.SIGTERM)
            with httpx.Client(base_url=server.url, timeout=5) as http:
                # During --drain-delay: still serving, but not ready.
                wait_for(lambda: http.get("/readyz").status_code == 503, "readyz 503")
                assert http.get("/readyz").text == "not ready: draining\n"
                assert http.get("/healthz").status_code == 200
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            wait_for(lambda: refused(server), "new connections refused after the delay")
            thread.join(timeout=WAIT)
        assert results == [Number(envoy)]  # finished, not cut
        assert server.process.wait(timeout=WAIT) == 0
        assert not alive(envoy)
    finally:
        server.stop()
    log = server.output()
    assert "Received SIGTERM: draining the Envoys" in log
    assert log.count("lifespan start") == 1 and log.count("lifespan stop") == 1
    assert "sleep cancelled" not in log


def test_calls_past_the_grace_period_end_with_unavailable(tmp_path: Path) -> None:
    server = pyvoy(tmp_path, "--grace", "1")

    def unary(opened: threading.Barrier) -> Any:
        with grpc.insecure_channel(server.grpc_target) as channel:
            done: list[Any] = []
            thread = in_thread(done, lambda: call(channel, "Sleep", timeout=60, seconds=60))
            wait_for(lambda: "sleep start" in server.output(), "the call reached the handler")
            opened.wait()
            thread.join()
            return done[0]

    calls = {
        "unary": unary,
        "grpc": lambda opened: grpc_ticks(server, opened),
        "connect": lambda opened: http_ticks(server, *CONNECT_TICKS, opened),
    }
    try:
        status, ends = sigterm_during(server, calls)
        assert status == 0
    finally:
        server.stop()
    assert ends["unary"] is grpc.StatusCode.UNAVAILABLE  # 503 before any answer
    assert ends["grpc"] is grpc.StatusCode.UNAVAILABLE
    flags, end = ends["connect"]
    assert flags == 2  # Connect's end-of-stream message
    assert json.loads(end)["error"]["code"] == "unavailable"
    assert "sleep cancelled" in server.output()  # the handler saw it


def test_a_second_signal_ends_the_calls_at_once(tmp_path: Path) -> None:
    server = pyvoy(tmp_path, "--grace", "600")
    results: list[Any] = []
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            thread = in_thread(results, lambda: call(channel, "Sleep", timeout=60, seconds=60))
            wait_for(lambda: "sleep start" in server.output(), "the call reached the handler")
            server.process.send_signal(signal.SIGTERM)
            wait_for(lambda: refused(server), "draining")
            server.process.send_signal(signal.SIGINT)
            thread.join(timeout=WAIT)
        # Well within the 600 s of grace: the second signal ended it.
        assert server.process.wait(timeout=WAIT) == 0
    finally:
        server.stop()
    assert results == [grpc.StatusCode.UNAVAILABLE]
    assert "Received SIGINT while stopping: ending the calls in flight" in server.output()


def test_envoy_stops_when_its_supervisor_is_killed(tmp_path: Path) -> None:
    server = pyvoy(tmp_path)
    envoy = whoami(server)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    wait_for(lambda: not alive(envoy), "Envoy stops without its supervisor")
    assert refused(server)


def test_workers_are_envoy_processes_sharing_the_port(tmp_path: Path) -> None:
    server = pyvoy(tmp_path, "--workers", "2")
    try:
        pids: set[int] = set()
        # Each new connection goes to either Envoy (SO_REUSEPORT): both answer in time.
        wait_for(lambda: pids.add(whoami(server)) or len(pids) == 2, "both Envoys answer")
        assert server.process.pid not in pids
        with httpx.Client(base_url=server.url, http1=False, http2=True) as http:
            assert http.get("/readyz").status_code == 200
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=WAIT) == 0
        assert not any(alive(pid) for pid in pids)
    finally:
        server.stop()
    log = server.output()
    assert log.count("Started Envoy process") == 2 and log.count("lifespan stop") == 2


def test_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    server = pyvoy(tmp_path, "--workers", "2")
    try:
        pids: set[int] = set()
        wait_for(lambda: pids.add(whoami(server)) or len(pids) == 2, "both Envoys answer")
        dead = pids.pop()
        # Killed before the supervisor saw it ready, it would be a failed start.
        wait_for(lambda: f"Envoy [{dead}] is serving" in server.output(), "seen serving")
        os.kill(dead, signal.SIGKILL)
        wait_for(lambda: "died (signal SIGKILL): starting a new one" in server.output(), "logged")
        fresh: set[int] = set()
        wait_for(lambda: fresh.add(whoami(server)) or len(fresh - pids) == 1, "a new Envoy")
        assert dead not in fresh
    finally:
        server.stop()


EDITED = """
import msgspec

from twofold import App, Service

service = Service("edited.v1")


class Version(msgspec.Struct):
    name: str


@service.procedure
async def version() -> Version:
    return Version("{version}")


app = App(service)
"""


def test_reload_restarts_envoy_when_the_code_changes(tmp_path: Path) -> None:
    module = tmp_path / "edited.py"
    module.write_text(EDITED.format(version="one"))

    def argv(port: int, _: int | None) -> list[str]:
        return [sys.executable, "-m", "twofold", "serve", "edited:app", "--server", "pyvoy",
                "--reload", "--port", str(port)]  # fmt: skip

    server = spawn(argv, tmp_path, cwd=tmp_path)

    def version() -> str | None:
        try:
            answer = httpx.post(f"{server.url}/edited.v1.EditedService/Version", json={}, timeout=5)
        except httpx.TransportError:
            return None  # between two Envoys
        return str(answer.json()["name"]) if answer.status_code == 200 else None

    try:
        assert version() == "one"
        module.write_text(EDITED.format(version="two"))
        wait_for(lambda: version() == "two", "the new code serves")
        module.write_text("this is not Python\n")
        wait_for(lambda: "waiting for a change" in server.output(), "the broken code is said")
        assert server.process.poll() is None  # still there for the next change
        module.write_text(EDITED.format(version="three"))
        wait_for(lambda: version() == "three", "the fixed code serves")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=WAIT) == 0
    finally:
        server.stop()
    assert "Changes in edited.py: restarting Envoy" in server.output()
