"""``twofold serve`` with gRPC: one lifespan for both servers, graceful stop, workers, ports."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.cli import twofold
from tests.e2e.grpc_app import Number, service
from tests.e2e.server import ROOT, WAIT, Server, free_port, start, wait_for, wait_ready
from twofold.protobuf import Schema

TARGET = "tests.e2e.grpc_app:app"
SCHEMA = Schema(service)


def call(channel: grpc.Channel, rpc: str, timeout: float = 10, **fields: Any) -> Any:
    method = service.methods[rpc]
    multicallable = channel.unary_unary(
        method.path,
        request_serializer=SCHEMA.codec(method.input_type).encode,
        response_deserializer=SCHEMA.codec(method.output_type).decode,
    )
    return multicallable(method.input_type(**fields), timeout=timeout)


def wait_exit(server: Server, timeout: float = 15) -> int:
    try:
        return server.process.wait(timeout=timeout)
    finally:
        server.stop()


def test_sigterm_lets_calls_in_flight_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path, None, "--grace", "5")
    results: list[Any] = []
    with grpc.insecure_channel(server.grpc_target) as channel:
        assert call(channel, "Whoami") == Number(server.process.pid)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        thread = threading.Thread(
            target=lambda: results.append(call(channel, "Sleep", seconds=1.5))
        )
        thread.start()
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        time.sleep(0.3)
        with pytest.raises(grpc.RpcError) as info:  # a new call during the grace period
            call(channel, "Whoami", timeout=2)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        with grpc.insecure_channel(server.grpc_target) as fresh, pytest.raises(grpc.RpcError):
            health_pb2_grpc.HealthStub(fresh).Check(health_pb2.HealthCheckRequest(), timeout=1)
        thread.join(timeout=10)
    assert results == [Number(server.process.pid)]  # the call in flight finished
    assert wait_exit(server) == 0
    log = server.output()
    assert log.count("lifespan start") == 1 and log.count("lifespan stop") == 1
    # The lifespan ends after both servers have stopped.
    assert log.index("lifespan stop") > log.index("Finished server process")


def test_calls_past_the_grace_period_are_cancelled(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path, None, "--grace", "0.5")
    errors: list[grpc.RpcError] = []

    def slow() -> None:
        try:
            # Ten minutes, past the call's own deadline (WAIT): cut at the end of the
            # grace period, the call ends with the server's code; a server that
            # waited for the handler would leave it to end with DEADLINE_EXCEEDED.
            call(channel, "Sleep", timeout=WAIT, seconds=600.0)
        except grpc.RpcError as exc:
            errors.append(exc)

    with grpc.insecure_channel(server.grpc_target) as channel:
        call(channel, "Whoami")
        thread = threading.Thread(target=slow)
        thread.start()
        wait_for(lambda: "sleep start" in server.output(), "the call reached the handler")
        server.process.send_signal(signal.SIGTERM)
        thread.join(timeout=WAIT)
    assert wait_exit(server) == 0
    assert errors and errors[0].code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    assert "sleep cancelled" in server.output()  # the handler saw it


def test_health_reports_serving(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path)
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ("", "streams.v1.Streams"):
                status = health.Check(health_pb2.HealthCheckRequest(service=name)).status
                assert status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop()


def test_workers_share_the_grpc_port(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path, None, "--workers", "2")
    try:
        pids = set()
        deadline = time.monotonic() + 20  # start() returns when the first worker answers
        while len(pids) < 2 and time.monotonic() < deadline:
            # Each channel is a new connection, which SO_REUSEPORT gives to either worker.
            with grpc.insecure_channel(
                server.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]
            ) as channel:
                pids.add(call(channel, "Whoami").n)
        assert len(pids) == 2
        assert httpx.post(f"{server.url}/streams.v1.Streams/Whoami", json={}).status_code == 200
    finally:
        server.stop()
    log = server.output()
    assert log.count("lifespan start") == 2 and log.count("lifespan stop") == 2


def test_an_ipv6_host_serves_grpc_too(tmp_path: Path) -> None:
    """--host :: (an IPv6 or dual-stack cluster) listens on both ports; here on ::1."""
    port, grpc_port = free_port(), free_port()
    ports = ["--port", str(port), "--grpc-port", str(grpc_port)]
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "twofold", "serve", TARGET, "--host", "::1", *ports],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://[::1]:{port}", port, process, log, grpc_port)
    try:
        assert wait_ready(server), server.output()
        with grpc.insecure_channel(f"[::1]:{grpc_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        assert f"gRPC running on [::1]:{grpc_port}" in server.output()
    finally:
        server.stop()


def test_taken_grpc_port_is_a_one_line_error() -> None:
    with socket.socket() as busy, socket.socket() as http:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        http.bind(("127.0.0.1", 0))
        port, free = busy.getsockname()[1], http.getsockname()[1]
        http.close()
        result = twofold("serve", TARGET, "--port", str(free), "--grpc-port", str(port))
    assert result.returncode == 1
    assert result.stderr == (
        f"twofold: error: port {port} on 127.0.0.1 is already in use"
        " — choose another with --grpc-port, or serve no gRPC with --no-grpc\n"
    )


def test_no_grpc(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path, None, "--no-grpc")
    try:
        assert server.grpc_port is None
        assert httpx.post(f"{server.url}/streams.v1.Streams/Whoami", json={}).status_code == 200
        assert "gRPC running" not in server.output()
    finally:
        server.stop()
