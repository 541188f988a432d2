"""``python -m bench.pyvoy_workers``: what ``--workers N`` should mean on pyvoy, measured.

pyvoy runs the App on one Python event loop per Envoy process, under one
GIL, whatever Envoy's worker threads (``--concurrency``) are; so there are
two ways to use more cores: more Envoy threads in one process, or more
Envoy processes sharing the port (SO_REUSEPORT). Each layout serves the
benchmark App (:mod:`bench.apps.twofold_app`) through
:func:`twofold.server.envoy_supervisor.run` (the supervisor ``twofold serve --server
pyvoy`` runs), and h2load sends REST GET over HTTP/1.1 and h2c and gRPC
GetProduct, unpinned: two processes need both cores, and h2load shares
them. Reported per layout and request: req/s and the server's CPU per
request (from /proc: the supervisor and every Envoy, every thread). On a
shared machine req/s moves with the neighbours; CPU per request much less.
Figures are evidence for docs/benchmarks.md, never asserted.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.cases import CONNECT_PREFIX
from bench.servers import GRPC_BODY, cpu_seconds, free_port, h2load

APP = "bench.apps.twofold_app:app"
SERVE = """
import sys
from twofold.server import envoy, envoy_supervisor
from twofold.server.limits import ServerLimits
port, workers, threads = (int(a) for a in sys.argv[1:])
sys.exit(envoy_supervisor.run(envoy.EnvoySettings(
    host="127.0.0.1", port=port, limits=ServerLimits(max_connections=10000),
    log_level="warning", access_log=False, workers=workers, threads=threads)))
"""


@dataclass(frozen=True)
class Layout:
    workers: int  # Envoy processes
    threads: int  # Envoy worker threads in each

    @property
    def name(self) -> str:
        envoys = "Envoy" if self.workers == 1 else "Envoys"
        threads = "thread" if self.threads == 1 else "threads"
        return f"{self.workers} {envoys} x {self.threads} {threads}"


LAYOUTS = (Layout(1, 1), Layout(1, 2), Layout(2, 1), Layout(2, 2))
REQUESTS = {
    "rest-get": ("/products/42", {}, None),
    "grpc-get": (
        f"{CONNECT_PREFIX}/GetProduct",
        {"content-type": "application/grpc", "te": "trailers"},
        GRPC_BODY,
    ),
}
PLAN = (("rest-get", "h1"), ("rest-get", "h2c"), ("grpc-get", "h2c"))


def serve(layout: Layout, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    import httpx

    port = free_port()
    argv = [sys.executable, "-c", SERVE, str(port), str(layout.workers), str(layout.threads)]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"{layout.name} exited with {process.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/products/42", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            subprocess.run(["sleep", "0.1"], check=True)
    subprocess.run(["sleep", "1"], check=True)  # every Envoy up, not only the first
    return process, port


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pyvoy_workers", description=__doc__)
    p.add_argument("--requests", type=int, default=30000, help="per measurement")
    p.add_argument("--rounds", type=int, default=2, help="every layout this many times, in turn")
    args = p.parse_args(argv)
    out = Path(tempfile.mkdtemp(prefix="bench-pyvoy-workers-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path.cwd()), env.get("PYTHONPATH", "")])
    env["TWOFOLD_APP"] = APP
    results: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for layout in LAYOUTS:
            process, port = serve(layout, env, out / f"{layout.workers}x{layout.threads}.log")
            try:
                for request, version in PLAN:
                    path, headers, body = REQUESTS[request]
                    h2load(
                        port,
                        path,
                        version,
                        max(1000, args.requests // 10),
                        headers,
                        body,
                        pinned=False,
                    )
                    before = cpu_seconds(process.pid)
                    rps, ok = h2load(
                        port, path, version, args.requests, headers, body, pinned=False
                    )
                    used = cpu_seconds(process.pid) - before
                    if ok != args.requests:
                        raise RuntimeError(f"{layout.name} {request}: {args.requests - ok} not 2xx")
                    cpu = used / args.requests * 1e6
                    results.setdefault((layout.name, request, version), []).append((rps, cpu))
                    print(f"{layout.name:24} {request:9} {version:4} {rps:8.0f} req/s "
                          f"{cpu:6.1f} µs CPU/req", flush=True)  # fmt: skip
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    print("\n| layout | request | HTTP | req/s (best) | CPU µs/req (best) |")
    print("|---|---|---|---:|---:|")
    for (name, request, version), runs in results.items():
        rps = max(r for r, _ in runs)
        cpu = min(c for _, c in runs)
        print(f"| {name} | {request} | {version} | {rps:.0f} | {cpu:.1f} |")
    print(f"\nlogs: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
