"""Gateway mode against Envoy's gRPC-JSON transcoder, both in front of one grpcio upstream.

``python -m bench.gateway [SECONDS] [--instructions]`` starts a grpcio
Greeter (the docs' greeter.proto) pinned to core 0, then, in one run, loads
three targets with h2load pinned to core 1:

- the upstream directly over gRPC (HTTP/2, 16 connections x 4 streams);
- ``GET /v1/greetings/bench`` through ``twofold gateway`` (one process);
- the same through Envoy's ``grpc_json_transcoder`` (``--concurrency 1``,
  a descriptor set protoc compiles from the same .proto).

Both proxies run on core 0 beside the upstream and are loaded over HTTP/1.1
(``h2load --h1``). Each target gets two phases: throughput (64 requests in
flight for SECONDS) and latency (one request at a time for SECONDS, so the
p50/p99 a proxy adds over the direct call is its own, not a queue's). The
per-core figure divides the requests a proxy served by the CPU seconds the
proxy itself used (utime + stime of its process, all threads), which holds
up better than req/s on a machine others are loading too.

``--instructions`` also runs each proxy under cachegrind, once for
``--small`` and once for ``--large`` sequential requests, and prints the
difference over the difference of the counts: user-space instructions per
request, start-up cancelled out (see bench.instructions).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.load import H2_CLIENTS, LoadResult, parse_h2load
from tests.gateway import transcoder

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "docs_src" / "gateway" / "greeter.proto"
SERVICE = "greeter.v1.Greeter"
HTTP_CLIENTS = 64
REST_PATH = "/v1/greetings/bench"
free_port = transcoder.free_port


def _upstream(port: int) -> None:
    """The Greeter, written with plain grpcio (run as ``python -m bench.gateway upstream PORT``)."""
    import grpc

    from twofold.gateway import from_proto_files

    schema = from_proto_files([str(PROTO)])
    method = schema.service(SERVICE).methods_by_name["SayHello"]
    request, reply = (schema.message_class(t) for t in (method.input_type, method.output_type))

    async def say_hello(req: object, context: object) -> object:
        return reply(message=f"Hello, {getattr(req, 'name', '')}")

    async def main() -> None:
        server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(
            say_hello, request.FromString, reply.SerializeToString
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"SayHello": handler}),)
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


def _h2load(url: str, duration: int, *, h1: bool, inflight: int, body: bytes = b"") -> LoadResult:
    with (
        tempfile.NamedTemporaryFile(suffix=".bin") as data,
        tempfile.NamedTemporaryFile("r", suffix=".log") as log,
    ):
        data.write(body)
        data.flush()
        cmd = ["taskset", "-c", "1", "h2load", "-t1", "-D", str(duration), "--log-file", log.name]
        if h1:
            cmd += ["--h1", f"-c{inflight}", "-m1"]
        else:
            # As many calls in flight as over HTTP/1.1: up to 16 connections x 4 streams.
            clients = min(H2_CLIENTS, inflight)
            cmd += [f"-c{clients}", f"-m{inflight // clients}", "-d", data.name]
            cmd += ["-Hcontent-type: application/grpc", "-Hte: trailers"]
        done = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 60)
        if done.returncode != 0:
            raise RuntimeError(f"h2load failed: {done.stderr.strip()}")
        latencies = [int(f[2]) for f in (ln.split("\t") for ln in log) if f[1] == "200"]
    return parse_h2load(done.stdout[done.stdout.find("finished in") :], latencies, None)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, every thread's, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(argv: list[str], ready: str, *, core: str = "0") -> subprocess.Popen[bytes]:
    pin = ["taskset", "-c", core] if core else []
    process = subprocess.Popen(
        [*pin, *argv], cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{argv[:4]} exited with {process.returncode}")
        try:
            if httpx.get(ready, timeout=5).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    _stop(process)
    raise RuntimeError(f"{argv[:4]} did not start")


def _stop(process: subprocess.Popen[bytes] | None, grace: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _gateway_argv(grpc_port: int, http_port: int) -> list[str]:
    return [sys.executable, "-m", "twofold", "gateway", "--proto", str(PROTO),
            "--log-level", "warning", "--upstream", f"127.0.0.1:{grpc_port}",
            "--port", str(http_port)]  # fmt: skip


def _envoy_argv(grpc_port: int, http_port: int) -> list[str]:
    return transcoder.command(PROTO, [SERVICE], http_port, grpc_port, concurrency=1)


PROXIES: dict[str, Callable[[int, int], list[str]]] = {
    "twofold gateway": _gateway_argv,
    "Envoy transcoder": _envoy_argv,
}


@dataclass
class Measured:
    load: LoadResult
    sequential: LoadResult
    cpu_seconds: float | None = None  # the proxy's own

    @property
    def per_core(self) -> float | None:
        if not self.cpu_seconds:
            return None
        return self.load.requests / self.cpu_seconds


def _measure_proxy(name: str, grpc_port: int, duration: int) -> Measured:
    port = free_port()
    url = f"http://127.0.0.1:{port}{REST_PATH}"
    proxy = _start(PROXIES[name](grpc_port, port), url)
    try:
        _h2load(url, 2, h1=True, inflight=HTTP_CLIENTS)  # warm-up, not counted
        before = _cpu_seconds(proxy.pid)
        load = _h2load(url, duration, h1=True, inflight=HTTP_CLIENTS)
        cpu = _cpu_seconds(proxy.pid) - before
        sequential = _h2load(url, duration, h1=True, inflight=1)
    finally:
        _stop(proxy)
    return Measured(load, sequential, cpu)


def _count_instructions(name: str, grpc_port: int, n: int, out: Path) -> int:
    """User-space instructions the proxy spent, start to end, serving ``n`` requests."""
    port = free_port()
    result = out / f"cachegrind.{name.split()[0].lower()}.{n}"
    wrap = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={result}"]
    url = f"http://127.0.0.1:{port}{REST_PATH}"
    proxy = _start([*wrap, *PROXIES[name](grpc_port, port)], url, core="")
    try:
        done = subprocess.run(
            ["h2load", "--h1", "-n", str(n), "-c1", "-m1", url],
            capture_output=True, text=True, check=False, timeout=3600,
        ).stdout  # fmt: skip
        ok = re.search(r"status codes: (\d+) 2xx", done)
        if not ok or int(ok.group(1)) != n:
            raise RuntimeError(f"not every request succeeded:\n{done}")
    finally:
        _stop(proxy, grace=300)  # valgrind writes its file as the process ends
    summary = re.search(r"^summary: (\d+)", result.read_text(), re.M)
    if summary is None:
        raise RuntimeError(f"no summary in {result}")
    return int(summary.group(1))


def _ms(value: float | None) -> float:
    if value is None:
        raise RuntimeError("h2load logged no successful request")
    return value


def _line(name: str, r: LoadResult) -> str:
    errors = f"  errors: {r.errors}" if r.errors else ""
    return f"{name:18} {r.rps:9.0f} req/s  p50 {r.p50_ms:.2f} ms  p99 {r.p99_ms:.2f} ms{errors}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    p.add_argument("seconds", nargs="?", type=int, default=10, help="each phase's length")
    p.add_argument("--instructions", action="store_true", help="also count under cachegrind")
    p.add_argument("--small", type=int, default=200, help="requests in the first count")
    p.add_argument("--large", type=int, default=1200, help="requests in the second count")
    args = p.parse_args(argv)
    tools = ["h2load", "taskset", *(["valgrind"] if args.instructions else [])]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        print(f"not found: {', '.join(missing)}", file=sys.stderr)
        return 2

    from twofold.gateway import from_proto_files
    from twofold.http.envelope import frame

    schema = from_proto_files([str(PROTO)])
    hello = schema.message_class(schema.service(SERVICE).methods_by_name["SayHello"].input_type)
    body = frame(hello(name="bench").SerializeToString())
    grpc_port = free_port()
    upstream = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "bench.gateway", "upstream", str(grpc_port)],
        cwd=ROOT,
        start_new_session=True,
    )
    measured: dict[str, Measured] = {}
    instructions: dict[str, float] = {}
    try:
        time.sleep(2)  # grpcio binds before it serves
        direct_url = f"http://127.0.0.1:{grpc_port}/{SERVICE}/SayHello"
        _h2load(direct_url, 2, h1=False, inflight=HTTP_CLIENTS, body=body)  # warm-up
        measured["direct gRPC"] = Measured(
            _h2load(direct_url, args.seconds, h1=False, inflight=HTTP_CLIENTS, body=body),
            _h2load(direct_url, args.seconds, h1=False, inflight=1, body=body),
        )
        for name in PROXIES:
            measured[name] = _measure_proxy(name, grpc_port, args.seconds)
        if args.instructions:
            out = Path(tempfile.mkdtemp(prefix="twofold-gateway-instructions-"))
            for name in PROXIES:
                small = _count_instructions(name, grpc_port, args.small, out)
                large = _count_instructions(name, grpc_port, args.large, out)
                instructions[name] = (large - small) / (args.large - args.small)
    finally:
        _stop(upstream)

    direct = measured["direct gRPC"]
    print(f"throughput: {HTTP_CLIENTS} in flight, {args.seconds} s")
    for name, m in measured.items():
        per_core = f"  {m.per_core:7.0f} req per proxy CPU-second" if m.per_core else ""
        print(_line(name, m.load) + per_core)
    print("latency: one request at a time; added = through the proxy - direct")
    for name, m in measured.items():
        added = ""
        if name != "direct gRPC":
            p50 = _ms(m.sequential.p50_ms) - _ms(direct.sequential.p50_ms)
            p99 = _ms(m.sequential.p99_ms) - _ms(direct.sequential.p99_ms)
            added = f"  added p50 {p50:+.2f} ms  p99 {p99:+.2f} ms"
        print(_line(name, m.sequential) + added)
    ours, envoy = measured["twofold gateway"], measured["Envoy transcoder"]
    print(f"gateway / Envoy: {ours.load.rps / envoy.load.rps:.2f}x req/s", end="")
    if ours.per_core and envoy.per_core:
        print(f", {ours.per_core / envoy.per_core:.2f}x req per CPU-second", end="")
    print()
    for name, count in instructions.items():
        print(f"{name:18} {count:12,.0f} instructions/request")
    if len(instructions) == 2:
        ratio = instructions["twofold gateway"] / instructions["Envoy transcoder"]
        print(f"gateway / Envoy: {ratio:.1f}x instructions")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "upstream":
        _upstream(int(sys.argv[2]))
    else:
        sys.exit(main())
