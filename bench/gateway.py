"""Gateway mode against going direct: one unary read, REST through the gateway vs native gRPC.

``python -m bench.gateway [SECONDS]`` starts a grpcio Greeter (the docs'
greeter.proto) pinned to core 0, then loads it twice with h2load pinned to
core 1: directly over gRPC (HTTP/2, 16 connections x 4 streams), and as
``GET /v1/greetings/bench`` through ``twofold gateway`` (also on core 0, so
the upstream and the gateway share it) over HTTP/1.1 (``h2load --h1``, 64
connections, one request in flight on each). It prints req/s, p50/p99 and
the ratio: what the REST edge costs on top of the service.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.load import H2_CLIENTS, LoadResult, parse_h2load

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "docs_src" / "gateway" / "greeter.proto"
HTTP_CLIENTS = 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _upstream(port: int) -> None:
    """The Greeter, written with plain grpcio (run as ``python -m bench.gateway upstream PORT``)."""
    import grpc

    from twofold.gateway import from_proto_files

    schema = from_proto_files([str(PROTO)])
    method = schema.service("greeter.v1.Greeter").methods_by_name["SayHello"]
    request, reply = (schema.message_class(t) for t in (method.input_type, method.output_type))

    async def say_hello(req: object, context: object) -> object:
        return reply(message=f"Hello, {getattr(req, 'name', '')}")

    async def main() -> None:
        server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(
            say_hello, request.FromString, reply.SerializeToString
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("greeter.v1.Greeter", {"SayHello": handler}),)
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


def _h2load(url: str, duration: int, *, h1: bool, body: bytes = b"") -> LoadResult:
    with (
        tempfile.NamedTemporaryFile(suffix=".bin") as data,
        tempfile.NamedTemporaryFile("r", suffix=".log") as log,
    ):
        data.write(body)
        data.flush()
        cmd = ["taskset", "-c", "1", "h2load", "-t1", "-D", str(duration), "--log-file", log.name]
        if h1:
            cmd += ["--h1", f"-c{HTTP_CLIENTS}", "-m1"]
        else:
            # As many calls in flight as the HTTP/1.1 run: 16 connections x 4 streams.
            cmd += [f"-c{H2_CLIENTS}", f"-m{HTTP_CLIENTS // H2_CLIENTS}", "-d", data.name]
            cmd += ["-Hcontent-type: application/grpc", "-Hte: trailers"]
        done = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 60)
        if done.returncode != 0:
            raise RuntimeError(f"h2load failed: {done.stderr.strip()}")
        latencies = [int(f[2]) for f in (ln.split("\t") for ln in log) if f[1] == "200"]
    return parse_h2load(done.stdout[done.stdout.find("finished in") :], latencies, None)


def _start(argv: list[str], ready: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(["taskset", "-c", "0", *argv], cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(ready, timeout=1).status_code < 500:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGTERM)
    raise RuntimeError(f"{argv[:4]} did not start")


def main(duration: int = 10) -> None:
    from twofold.gateway import from_proto_files
    from twofold.http.envelope import frame

    schema = from_proto_files([str(PROTO)])
    hello = schema.message_class(
        schema.service("greeter.v1.Greeter").methods_by_name["SayHello"].input_type
    )
    grpc_port, http_port = free_port(), free_port()
    py = sys.executable
    upstream = subprocess.Popen(
        ["taskset", "-c", "0", py, "-m", "bench.gateway", "upstream", str(grpc_port)],
        cwd=ROOT,
        start_new_session=True,
    )
    gateway = None
    try:
        time.sleep(2)  # grpcio binds before it serves; the gateway's start-up waits on nothing
        gateway = _start(
            [py, "-m", "twofold", "gateway", "--proto", str(PROTO), "--log-level", "warning",
             "--upstream", f"127.0.0.1:{grpc_port}", "--port", str(http_port)],
            f"http://127.0.0.1:{http_port}/v1/greetings/warm",
        )  # fmt: skip
        body = frame(hello(name="bench").SerializeToString())
        direct = _h2load(
            f"http://127.0.0.1:{grpc_port}/greeter.v1.Greeter/SayHello", duration, h1=False,
            body=body,
        )  # fmt: skip
        edge = _h2load(f"http://127.0.0.1:{http_port}/v1/greetings/bench", duration, h1=True)
    finally:
        for p in (gateway, upstream):
            if p is not None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(10)
    for name, r in (("direct gRPC", direct), ("REST via gateway", edge)):
        errors = f"  errors: {r.errors}" if r.errors else ""
        print(f"{name:18} {r.rps:9.0f} req/s  p50 {r.p50_ms:.2f} ms  p99 {r.p99_ms:.2f} ms{errors}")
    print(f"gateway / direct: {edge.rps / direct.rps:.2f}x req/s")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "upstream":
        _upstream(int(sys.argv[2]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
