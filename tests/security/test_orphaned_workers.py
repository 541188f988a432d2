"""``twofold serve --workers N``: workers die with their supervisor, even a SIGKILLed one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.server import ROOT, Server, start, wait_ready

TARGET = "tests.e2e.grpc_app:app"
WAIT = 30.0  # seconds for the workers to go: they stop gracefully, loaded machine or not


def serve(port: int, tmp: Path) -> subprocess.Popen[bytes]:
    with (tmp / "again.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "twofold", "serve", TARGET, "--port", str(port), "--no-grpc"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def children(pid: int) -> list[int]:
    """The worker processes of ``pid`` (multiprocessing's spawned children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; whoever inherited it reaps it


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_workers_exit_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    server = start(TARGET, tmp_path, None, "--workers", "2")
    workers: list[int] = []
    try:
        deadline = time.monotonic() + WAIT
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = children(server.process.pid)
            time.sleep(0.1)
        assert len(workers) == 2
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        deadline = time.monotonic() + WAIT
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in workers)
        assert server.grpc_port is not None
        assert bindable(server.port) and bindable(server.grpc_port)
        # And a new server takes the port, as a restart would.
        again = Server(
            server.url, server.port, serve(server.port, tmp_path), tmp_path / "again.log"
        )
        try:
            assert wait_ready(again), again.output()
        finally:
            again.stop()
    finally:
        for pid in workers:  # only if the test failed: orphans we started
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
