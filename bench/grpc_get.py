"""gRPC unary GetProduct: twofold's grpcio server against a hand-written grpcio service.

``python -m bench.grpc_get [--duration 10] [--rounds 3]``

The peer is the peer directory's ``apps/grpc_server.py`` (grpc.aio, protoc's
generated servicer, upb messages); twofold is ``twofold serve
bench.apps.twofold_app:app``, its gRPC side on its own port. Each is one
process pinned to CPU 0, h2load is pinned to CPU 1, and the request is the
peer baselines' byte for byte (``h2load -t1 -c16 -m16``, the gRPC frame of
``GetProductRequest{id: 42}``). h2load only sees HTTP statuses, so before
and after the load each server is checked the gRPC way: the response bytes
are upb's serialization of product 42, ``grpc-status: 0`` ends the call
(nghttp), and an unknown id is NOT_FOUND. Rounds alternate the servers;
figures are medians. The issue's target is twofold >= 0.95x the peer.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc

from bench.apps.catalog import PRODUCTS, REPO, peers_dir

PATH = "/catalog.v1.ProductService/GetProduct"
BODY = b"\x00\x00\x00\x00\x02\x08\x2a"  # one uncompressed gRPC frame: GetProductRequest{id: 42}
TARGET = 0.95


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stubs(peers: Path, out: Path) -> Any:
    """protoc's upb messages for the peer's catalog.proto (what the peer server imports)."""
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{peers / 'proto'}",
         f"--python_out={out}", f"--grpc_python_out={out}", "catalog/v1/catalog.proto"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"protoc failed: {done.stderr}")
    sys.path.insert(0, str(out))
    from catalog.v1 import catalog_pb2  # type: ignore[import-not-found]

    return catalog_pb2


def _start(cmd: list[str], env: dict[str, str], pin: bool) -> subprocess.Popen[bytes]:
    if pin and shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    return subprocess.Popen(
        cmd, cwd=REPO, env={**os.environ, **env}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _wait(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=30)


def _check(port: int, pb2: Any) -> None:
    want = pb2.Product(**PRODUCTS[42]).SerializeToString()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(PATH)
        got = call(b"\x08\x2a", timeout=5)
        assert got == want, (got, want)
        try:
            call(pb2.GetProductRequest(id=10**9).SerializeToString(), timeout=5)
        except grpc.RpcError as exc:
            assert exc.code() is grpc.StatusCode.NOT_FOUND, exc
        else:
            raise AssertionError("an unknown id did not fail")
    if shutil.which("nghttp"):
        with tempfile.NamedTemporaryFile(suffix=".bin") as body:
            body.write(BODY)
            body.flush()
            out = subprocess.run(
                ["nghttp", "-v", "-d", body.name, "-H", ":method: POST",
                 "-H", "content-type: application/grpc", "-H", "te: trailers",
                 f"http://127.0.0.1:{port}{PATH}"],
                capture_output=True, text=True, timeout=10, check=False,
            ).stdout  # fmt: skip
        assert "grpc-status: 0" in out, out


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _h2load(port: int, body: Path, seconds: int, pin: bool) -> dict[str, Any]:
    cmd = ["h2load", "-t1", "-c16", "-m16", "-D", str(seconds), "-d", str(body),
           "-H", "content-type: application/grpc", "-H", "te: trailers",
           f"http://127.0.0.1:{port}{PATH}"]  # fmt: skip
    if pin and shutil.which("taskset"):
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    rps = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    reqs = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not (rps and reqs and codes):
        raise SystemExit(f"cannot read h2load's output:\n{out}")
    done, succeeded = int(reqs.group(1)), int(reqs.group(2))
    ok = done == succeeded == int(codes.group(1))
    return {"rps": float(rps.group(1)), "done": done, "ok": ok}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_get", description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    args = parser.parse_args(argv)
    if not shutil.which("h2load"):
        raise SystemExit("h2load not found: apt-get install nghttp2-client")
    pin = not args.no_pin
    peers = peers_dir()
    with tempfile.TemporaryDirectory() as tmp:
        pb2 = _stubs(peers, Path(tmp))
        body = Path(tmp) / "get42.bin"
        body.write_bytes(BODY)
        ports = {"twofold": _free_port(), "grpcio": _free_port()}
        servers = {
            "twofold": _start(
                [sys.executable, "-m", "twofold", "serve", "bench.apps.twofold_app:app",
                 "--port", str(_free_port()), "--grpc-port", str(ports["twofold"]),
                 "--no-access-log", "--log-level", "warning"], {}, pin,
            ),
            "grpcio": _start(
                [sys.executable, str(peers / "apps" / "grpc_server.py"), str(ports["grpcio"])],
                {"PYTHONPATH": tmp}, pin,
            ),
        }  # fmt: skip
        runs: dict[str, list[float]] = {name: [] for name in servers}
        # Server CPU per call: steadier than req/s when the machine is shared.
        cpu: dict[str, list[float]] = {name: [] for name in servers}
        try:
            for port in ports.values():
                _wait(port)
                _check(port, pb2)
                _h2load(port, body, args.warmup, pin)
            for round_ in range(args.rounds):
                order = list(ports) if round_ % 2 == 0 else list(reversed(ports))
                for name in order:
                    before = _cpu_seconds(servers[name].pid)
                    result = _h2load(ports[name], body, args.duration, pin)
                    used = _cpu_seconds(servers[name].pid) - before
                    if not result["ok"]:
                        raise SystemExit(f"{name}: some requests failed: {result}")
                    runs[name].append(result["rps"])
                    cpu[name].append(used / max(result["done"], 1) * 1e6)
                    print(
                        f"round {round_ + 1} {name:8} {result['rps']:10,.0f} req/s "
                        f"{cpu[name][-1]:8.1f} µs CPU/call",
                        flush=True,
                    )
            for port in ports.values():
                _check(port, pb2)  # still right after the load
        finally:
            for process in servers.values():
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    medians = {name: statistics.median(values) for name, values in runs.items()}
    per_call = {name: statistics.median(values) for name, values in cpu.items()}
    ratio = medians["twofold"] / medians["grpcio"]
    cpu_ratio = per_call["grpcio"] / per_call["twofold"]  # > 1: twofold spends less
    verdict = "met" if ratio >= TARGET else "missed"
    print(
        f"\ngrpc-get  twofold {medians['twofold']:,.0f} req/s  grpcio {medians['grpcio']:,.0f} "
        f"req/s  ratio {ratio:.2f}x (target >= {TARGET}x: {verdict})\n"
        f"          server CPU per call: twofold {per_call['twofold']:.1f} µs  "
        f"grpcio {per_call['grpcio']:.1f} µs  ratio {cpu_ratio:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
