"""Real server processes on 127.0.0.1 (``twofold serve``, or hypercorn), stopped by PID.

The one way the tests start a server in a process of its own."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0  # seconds for a process to come or go, or a line to be logged, on a loaded machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    grpc_port: int | None = None

    @property
    def grpc_target(self) -> str:
        """``127.0.0.1:PORT`` of its native gRPC server, for ``grpc.insecure_channel``:
        grpcio's port, or the one port of a server that has no other (pyvoy)."""
        return f"127.0.0.1:{self.grpc_port or self.port}"

    @property
    def pyvoy(self) -> bool:
        """Whether it is ``twofold serve --server pyvoy`` (Envoy), not uvicorn."""
        return "pyvoy" in list(map(str, self.process.args))  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def access_lines(self) -> list[dict[str, Any]]:
        """The access-log lines in its output (one JSON object a line), once stopped."""
        return [json.loads(line) for line in self.output().splitlines() if line.startswith('{"')]

    def access_log(self) -> list[dict[str, Any]]:
        """Its access-log lines so far, all of them: the log is buffered (written at
        most 0.2 s late), so a marker request is sent and its line awaited; lines
        are written in the order requests end, so every earlier one is out too."""
        marker = f"GET /access-log-marker/{uuid.uuid4().hex}"
        httpx.get(self.url + marker[4:], timeout=10.0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = self.access_lines()
            for i, line in enumerate(lines):
                if line.get("request") == marker:
                    return lines[:i]
            time.sleep(0.05)
        raise AssertionError(f"the marker's access-log line never came:\n{self.output()}")


# The servers of ``twofold serve`` that carry every HTTP wire on one port (no grpcio).
ONE_PORT = {"uvicorn": ("--no-grpc",), "pyvoy": ("--server", "pyvoy")}


def start(
    target: str,
    tmp: Path,
    env: dict[str, str] | None = None,
    *args: str,
    group: bool = False,
) -> Server:
    """Run ``python -m twofold serve TARGET`` and wait until it answers.

    Unless ``args`` say otherwise, gRPC listens on a free port too (never on
    the default 50051, which parallel servers would share). With ``group``
    the server leads a process group of its own (its workers in it), which a
    test may kill whole (:func:`kill_group`).
    """
    # pyvoy serves native gRPC on --port: no second port.
    grpc = "--grpc-port" not in args and "--no-grpc" not in args and "pyvoy" not in args

    def argv(port: int, grpc_port: int | None) -> list[str]:
        extra = (*args, "--grpc-port", str(grpc_port)) if grpc_port else args
        return [sys.executable, "-m", "twofold", "serve", target, "--port", str(port), *extra]

    return spawn(argv, tmp, env, grpc=grpc, group=group)


def kill_group(server: Server) -> None:
    """SIGKILL the server and every process of its group, as a crash or an OOM
    kill of the container would: nothing gets to clean up."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()


def hypercorn(target: str, tmp: Path, env: dict[str, str] | None = None) -> Server:
    """Serve the ASGI app ``target`` with hypercorn, which speaks HTTP/2 (h2c)."""

    def argv(port: int, _: int | None) -> list[str]:
        return [sys.executable, "-m", "hypercorn", target, "--bind", f"127.0.0.1:{port}"]

    return spawn(argv, tmp, env)


def spawn(
    argv: Callable[[int, int | None], list[str]],
    tmp: Path,
    env: dict[str, str] | None = None,
    *,
    grpc: bool = False,
    group: bool = False,
    tls: Path | None = None,
    cwd: Path = ROOT,
) -> Server:
    """Run the server ``argv(port, grpc_port)`` makes, and wait until it answers
    ``/openapi.json``; the ports are free ones, tried again if taken meanwhile.
    ``tls``: the server's certificate, which its HTTPS URL is checked against."""
    for _attempt in range(3):
        port = free_port()
        grpc_port = free_port() if grpc else None
        log = tmp / f"server-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv(port, grpc_port),
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=group,
            )
        scheme = "https" if tls else "http"
        server = Server(f"{scheme}://127.0.0.1:{port}", port, process, log, grpc_port)
        verify = ssl.create_default_context(cafile=str(tls)) if tls else True
        if wait_ready(server, verify=verify):
            return server
        server.stop()
        if "already in use" not in server.output() and "cannot listen" not in server.output():
            raise RuntimeError(f"server did not start:\n{server.output()}")
    raise RuntimeError("no free port after 3 attempts")


def wait_ready(server: Server, timeout: float = 20.0, verify: ssl.SSLContext | bool = True) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            httpx.get(f"{server.url}/openapi.json", timeout=1.0, verify=verify)
            return True
        except httpx.TransportError:
            time.sleep(0.05)
    return False


def workers_of(pid: int) -> list[int]:
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


def wait_for(condition: Callable[[], object], what: str) -> None:
    """Poll ``condition`` until it holds; after :data:`WAIT`, fail saying ``what`` never came."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
