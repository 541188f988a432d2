"""``twofold serve --workers N``: dead workers are replaced, start-up failures are
bounded, and a signal drains every worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import httpx

from tests.e2e.server import ROOT, WAIT, Server, alive, free_port, start, wait_for, workers_of
from tests.e2e.shutdown import (
    CONNECT_TICKS,
    GRPC_WEB_TICKS,
    grpc_ticks,
    http_ticks,
    sigterm_during,
)
from tests.e2e.test_grpc_serve import call

TARGET = "tests.e2e.supervised_app:app"


def two_workers(server: Server) -> list[int]:
    pids: list[int] = []

    def found() -> bool:
        pids[:] = workers_of(server.process.pid)
        return len(pids) == 2

    wait_for(found, "two workers")
    return pids


def whoami(server: Server) -> int | None:
    """The pid of the worker a new gRPC connection reached (None: none listens yet)."""
    options = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own
    with grpc.insecure_channel(server.grpc_target, options=options) as channel:
        try:
            return int(call(channel, "Whoami", timeout=5).n)
        except grpc.RpcError:
            return None


def both_serving(server: Server) -> list[int]:
    """The two workers' pids, once each has answered a call."""
    pids = two_workers(server)
    answered: set[int | None] = set()
    wait_for(lambda: answered.add(whoami(server)) or set(pids) <= answered, "both serve")
    return pids


def test_a_killed_worker_is_replaced_and_logged(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path, None, "--workers", "2")
    try:
        # Both serving first: a worker killed before it served is a start-up
        # failure to the supervisor (retried after a back-off), not a death.
        first, second = both_serving(server)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: first not in workers_of(server.process.pid), "the dead worker reaped")
        (replacement,) = set(two_workers(server)) - {second}
        answered: set[int] = set()
        wait_for(lambda: answered.add(whoami(server)) or replacement in answered, "it serves")
        assert f"Worker [{first}] died (signal SIGKILL): starting a new one" in server.output()
        assert f"Started worker process [{replacement}]" in server.output()
        assert server.process.poll() is None
    finally:
        server.stop()
    assert server.process.returncode == 0


def test_a_worker_that_cannot_start_is_retried_then_the_supervisor_gives_up(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "broken"
    server = start(TARGET, tmp_path, {"TWOFOLD_TEST_BREAK": str(marker)}, "--workers", "2")
    try:
        first, second = two_workers(server)
        marker.touch()  # from now on, a new worker's lifespan fails
        os.kill(first, signal.SIGKILL)
        assert server.process.wait(timeout=WAIT) == 3  # uvicorn's status for a failed start-up
    finally:
        server.stop()
    log = server.output()
    for attempt in range(1, 5):
        assert f"(failure {attempt} of 5)" in log
    assert "failed to start (exit status 3), 5 times in a row: stopping" in log
    assert not alive(second)  # drained with the supervisor


def test_a_worker_that_fails_before_any_served_stops_the_supervisor_at_once(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "broken"
    marker.touch()
    port = str(free_port())
    argv = [sys.executable, "-m", "twofold", "serve", TARGET, "--port", port, "--no-grpc"]
    process = subprocess.run(
        [*argv, "--workers", "2"],
        cwd=ROOT,
        env={**os.environ, "TWOFOLD_TEST_BREAK": str(marker)},
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert process.returncode == 3
    assert "failed to start (exit status 3): stopping" in process.stderr
    assert "starting another" not in process.stderr


def test_sigterm_lets_a_call_in_flight_finish_in_every_worker(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path, None, "--workers", "2", "--grace", "5")
    results: list[int] = []
    try:
        two_workers(server)

        def slow() -> None:
            answer = httpx.post(
                f"{server.url}/streams.v1.Streams/Sleep", json={"seconds": 1.5}, timeout=30
            )
            results.append(answer.status_code)

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        thread.join(timeout=WAIT)
        assert server.process.wait(timeout=WAIT) == 0
    finally:
        server.stop()
    assert results == [200]
    assert "Received SIGTERM: stopping the workers" in server.output()


def test_workers_that_do_not_stop_are_killed(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path, {"TWOFOLD_TEST_HANG": "1"}, "--workers", "2", "--grace", "0.5")
    try:
        pids = both_serving(server)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=WAIT) == 1  # not a clean stop
    finally:
        server.stop()
    for pid in pids:
        assert f"Worker [{pid}] did not stop within 5.5 s: killing it" in server.output()
        assert not alive(pid)
    assert "Traceback" not in server.output()


def test_open_streams_end_with_unavailable_when_the_server_stops(tmp_path: Path) -> None:
    """Past the grace period a stream still open ends with UNAVAILABLE on its wire, not cut."""
    server = start(TARGET, tmp_path, None, "--workers", "2", "--grace", "1")
    calls = {
        "connect": lambda opened: http_ticks(server, *CONNECT_TICKS, opened),
        "grpc-web": lambda opened: http_ticks(server, *GRPC_WEB_TICKS, opened),
        "grpc": lambda opened: grpc_ticks(server, opened),
    }
    try:
        two_workers(server)
        status, ends = sigterm_during(server, calls)
        assert status == 0
    finally:
        server.stop()
    connect_flags, connect_end = ends["connect"]
    assert connect_flags == 2  # Connect's end-of-stream message
    assert json.loads(connect_end)["error"]["code"] == "unavailable"
    web_flags, trailers = ends["grpc-web"]
    assert web_flags == 0x80  # gRPC-Web's trailers frame
    assert b"grpc-status: 14" in trailers
    assert ends["grpc"] is grpc.StatusCode.UNAVAILABLE
    assert "Exception in ASGI application" not in server.output()
