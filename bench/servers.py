"""``python -m bench.servers``: the ASGI server for the one port, chosen by measurement.

Every candidate serves the same App (:mod:`bench.apps.twofold_app`) and
answers REST GET, Connect GET (JSON, POST) and gRPC GetProduct, in one run,
one after the other, each pinned to one core (``taskset``) with h2load on
another; the hand-written grpc.aio service (asyncio, then uvloop) is the
gRPC peer, and the peers' empty ASGI app on bare uvicorn REST GET's bar.
Reported per server and request: req/s and server CPU per request (from
/proc, every thread of the server process: Envoy's too); with ``--rounds
N``, the medians of N rounds. Figures are evidence for docs/benchmarks.md,
never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import cpu, stubs, wire
from bench.apps.catalog import STUBS_ENV, peers_dir
from bench.cases import CONNECT_PREFIX, GET_PROTO

APP = "bench.apps.twofold_app:app"
GRPC_BODY = wire.grpc_frame(GET_PROTO)


@dataclass(frozen=True)
class Candidate:
    name: str
    argv: tuple[str, ...]  # {python}, {port}, {grpc_port}, {peers}
    versions: tuple[str, ...]  # what REST and Connect are measured over: "h1", "h2c"
    grpc: str  # "port": gRPC on the same port; "grpc_port": on a second one; "" none
    requests: tuple[str, ...] = ("rest-get", "connect-get")  # over HTTP, besides gRPC

    @property
    def http1(self) -> bool:
        return bool(self.versions)


PY = "{python}"
CANDIDATES = (
    Candidate(
        "uvicorn+grpcio",
        (PY, "-m", "twofold", "serve", APP, "--port", "{port}", "--grpc-port", "{grpc_port}",
         "--no-access-log", "--log-level", "warning"),
        versions=("h1",), grpc="grpc_port",
    ),
    Candidate(
        "pyvoy",
        (PY, "-m", "twofold", "serve", APP, "--server", "pyvoy", "--port", "{port}",
         "--no-access-log", "--log-level", "warning"),
        versions=("h1", "h2c"), grpc="port",
    ),
    # Not a candidate: the floor of gRPC on pyvoy, a constant answer behind the
    # same supervisor and Envoy (bench/apps/grpc_constant.py).
    Candidate(
        "pyvoy-constant",
        (PY, "-m", "twofold", "serve", "bench.apps.grpc_constant:app", "--server", "pyvoy",
         "--port", "{port}", "--no-access-log", "--log-level", "warning"),
        versions=(), grpc="port",
    ),
    # hypercorn's HTTP/1.1 status line has no reason phrase ("HTTP/1.1 200 "),
    # which h2load's parser refuses: measured over h2c only. The peers'
    # hypercorn.toml lifts its 1000-requests-per-connection limit.
    Candidate(
        "hypercorn",
        (PY, "-m", "hypercorn", APP, "--bind", "127.0.0.1:{port}", "-k", "uvloop",
         "--config", "{peers}/hypercorn.toml"),
        versions=("h2c",), grpc="port",
    ),
    Candidate(
        "uvicorn-zttp",
        (PY, "-m", "uvicorn", APP, "--port", "{port}", "--http",
         "uvicorn.protocols.http.auto_zttp_impl:AutoZttpProtocol", "--loop", "uvloop",
         "--no-access-log", "--log-level", "warning"),
        versions=("h1", "h2c"), grpc="port",
    ),
    # Not a candidate either: the issue's bar for REST GET, the peers' empty
    # ASGI app (a constant answer) on bare uvicorn, as the peers run it.
    Candidate(
        "uvicorn-raw",
        (PY, "-m", "uvicorn", "raw_asgi:app", "--app-dir", "{peers}/apps", "--port", "{port}",
         "--loop", "uvloop", "--http", "httptools", "--no-access-log",
         "--log-level", "warning"),
        versions=("h1",), grpc="", requests=("rest-get",),
    ),
    Candidate(
        "grpc.aio",
        (PY, "-m", "bench.apps.grpcio_app", "{port}"),
        versions=(), grpc="port",
    ),
    Candidate(
        "grpc.aio+uvloop",
        (PY, "-c", "import sys, uvloop, runpy; uvloop.install(); "
         "sys.argv = ['grpcio_app', sys.argv[1]]; "
         "runpy.run_module('bench.apps.grpcio_app', run_name='__main__')", "{port}"),
        versions=(), grpc="port",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    server: str
    request: str
    version: str
    rps: float
    cpu_us: float


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time of the server ``pid`` leads and what it starts (hypercorn serves
    from a child, pyvoy's supervisor runs Envoys in groups of their own), every
    thread."""
    return cpu.ticks([pid])[0][pid] / cpu.HZ


@contextlib.contextmanager
def serving(c: Candidate, env: dict[str, str], log: Path) -> Iterator[tuple[int, int, int]]:
    """The server's pid, HTTP port and gRPC port (the same one but for uvicorn+grpcio)."""
    port, grpc_port = free_port(), free_port()
    values = {"python": sys.executable, "port": port, "grpc_port": grpc_port, "peers": peers_dir()}
    argv = [a.format(**values) for a in c.argv]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        argv = ["taskset", "-c", "0", *argv]
    with log.open("wb") as out:
        # A process group of its own: what the server starts is counted as its CPU.
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, process_group=0
        )
    try:
        wait_ready(c, port, process)
        yield process.pid, port, (grpc_port if c.grpc == "grpc_port" else port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(c: Candidate, port: int, process: subprocess.Popen[bytes]) -> None:
    import socket

    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"{c.name} exited with {process.returncode}")
        try:
            if c.http1:
                httpx.get(f"http://127.0.0.1:{port}/products/42", timeout=1).raise_for_status()
            else:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.5)  # grpcio's second port, and Envoy's workers, settle
            return
        except (httpx.HTTPError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{c.name} did not start")


def h2load(
    port: int,
    path: str,
    version: str,
    requests: int,
    headers: dict[str, str],
    body: bytes | None,
    *,
    pinned: bool = True,
) -> tuple[float, int]:
    """req/s and the count of 2xx answers of one h2load run (one thread, core 1;
    on any core when not ``pinned``)."""
    argv = ["h2load", "-n", str(requests), "-c", "16", "-t", "1"]
    argv += ["--h1"] if version == "h1" else ["-m", "4"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    with tempfile.NamedTemporaryFile() as data:
        if body is not None:
            data.write(body)
            data.flush()
            argv += ["-d", data.name]
        argv.append(f"http://127.0.0.1:{port}{path}")
        if pinned and shutil.which("taskset") and (os.cpu_count() or 1) > 1:
            argv = ["taskset", "-c", "1", *argv]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    ok = int(re.search(r"status codes: (\d+) 2xx", out).group(1))  # type: ignore[union-attr]
    return rps, ok


def grpc_answers(port: int) -> bool:
    """One GetProduct over gRPC (grpcio's client): OK, with the product's bytes."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(f"{CONNECT_PREFIX}/GetProduct")
        return bool(call(GET_PROTO, timeout=5, wait_for_ready=False))


def measure(c: Candidate, pid: int, port: int, request: str, version: str, n: int) -> Row:
    if request == "rest-get":
        path, headers, body = "/products/42", {}, None
    elif request == "connect-get":
        path = f"{CONNECT_PREFIX}/GetProduct"
        headers, body = {"content-type": "application/json"}, b'{"id":42}'
    else:
        path = f"{CONNECT_PREFIX}/GetProduct"
        headers, body = {"content-type": "application/grpc", "te": "trailers"}, GRPC_BODY
        try:
            grpc_answers(port)
        except Exception as exc:
            raise RuntimeError(f"no gRPC answer: {str(exc).splitlines()[0]}") from None
    h2load(port, path, version, max(1000, n // 10), headers, body)  # warm up
    before = cpu_seconds(pid)
    rps, ok = h2load(port, path, version, n, headers, body)
    used = cpu_seconds(pid) - before
    if ok != n:
        raise RuntimeError(f"{c.name} {request} {version}: {n - ok} answers were not 2xx")
    return Row(c.name, request, version, rps, used / n * 1e6)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__)
    p.add_argument("--requests", type=int, default=30000, help="per measurement")
    p.add_argument("--servers", help="only these, comma-separated")
    p.add_argument(
        "--rounds", type=int, default=1,
        help="measure every server this many times, in a rotating order; medians reported",
    )  # fmt: skip
    args = p.parse_args(argv)
    chosen = [c for c in CANDIDATES if not args.servers or c.name in args.servers.split(",")]
    out = Path(tempfile.mkdtemp(prefix="bench-servers-"))
    env = {**os.environ, STUBS_ENV: str(stubs.generate(peers_dir(), out / "stubs"))}
    env["PYTHONPATH"] = os.pathsep.join([str(Path.cwd()), env.get("PYTHONPATH", "")])
    rows: list[Row] = []
    for round_ in range(args.rounds):
        # Each round starts with the next server, so that none is always
        # measured first (or last) while the machine's load drifts.
        shift = round_ % len(chosen)
        for c in chosen[shift:] + chosen[:shift]:
            rows += serve_plan(c, env, out, args.requests, round_ + 1)
    print()
    print(table(medians(rows, [c.name for c in chosen])))
    print(f"\nlogs: {out}")
    return 0


def serve_plan(c: Candidate, env: dict[str, str], out: Path, n: int, round_: int) -> list[Row]:
    rows: list[Row] = []
    with serving(c, env, out / f"{c.name}-{round_}.log") as (pid, port, grpc_port):
        plan: list[tuple[str, str, int]] = []
        plan += [(r, v, port) for r in c.requests for v in c.versions]
        if c.grpc:
            plan.append(("grpc-get", "h2c", grpc_port))
        for request, version, served in plan:
            try:
                row = measure(c, pid, served, request, version, n)
            except Exception as exc:
                # A server that fails the load is left out of the table, and said so.
                print(f"{c.name:16} {request:12} {version:4} not measured: {exc}", flush=True)
                continue
            rows.append(row)
            print(f"round {round_} {row.server:16} {row.request:12} {row.version:4} "
                  f"{row.rps:9.0f} req/s {row.cpu_us:7.1f} µs CPU/req", flush=True)  # fmt: skip
    return rows


def medians(rows: list[Row], order: list[str]) -> list[Row]:
    """One row per server, request and HTTP version: the median req/s and CPU
    per request of its rounds, in the order the servers were chosen."""
    grouped: dict[tuple[str, str, str], list[Row]] = {}
    for r in rows:
        grouped.setdefault((r.server, r.request, r.version), []).append(r)
    found = [
        Row(*key, statistics.median(r.rps for r in runs), statistics.median(r.cpu_us for r in runs))
        for key, runs in grouped.items()
    ]
    return sorted(found, key=lambda r: order.index(r.server))


def table(rows: list[Row]) -> str:
    """The markdown table of docs/benchmarks.md: gRPC against grpc.aio, REST GET
    against the empty app on bare uvicorn, where those were measured."""
    peer = next((r for r in rows if r.server == "grpc.aio" and r.request == "grpc-get"), None)
    empty = next((r for r in rows if r.server == "uvicorn-raw"), None)
    lines = [
        "| server | request | HTTP | req/s | CPU µs/req | req/s vs peer | CPU vs peer |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        vs = cpu = ""
        base = peer if r.request == "grpc-get" else empty if r.request == "rest-get" else None
        if base is not None and base is not r:
            vs, cpu = f"{r.rps / base.rps:.2f}x", f"{r.cpu_us / base.cpu_us:.2f}x"
        cells = (r.server, r.request, r.version, f"{r.rps:.0f}", f"{r.cpu_us:.1f}", vs, cpu)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
