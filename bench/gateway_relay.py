"""Native gRPC through the gateway against going direct: one unary call's latency.

``python -m bench.gateway_relay [CALLS] [SERVER]`` starts bench.gateway's
grpcio Greeter and ``twofold gateway --server SERVER`` (hypercorn, or
pyvoy) in front of it (both on core 0), then makes CALLS sequential ``SayHello`` calls with a grpcio
client (core 1), first to the upstream directly, then through the gateway's
native gRPC relay; it prints p50/p99 of each and what the relay adds.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time

import grpc

from bench.gateway import PROTO, ROOT, _start, free_port


def _latencies(target: str, request: bytes, calls: int) -> list[float]:
    with grpc.insecure_channel(target) as channel:
        say = channel.unary_unary("/greeter.v1.Greeter/SayHello")
        for _ in range(200):  # warm up: connection, the gateway's channel, caches
            say(request, timeout=5)
        out = []
        for _ in range(calls):
            start = time.perf_counter()
            say(request, timeout=5)
            out.append(time.perf_counter() - start)
    return out


def _summary(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1e6, cuts[98] * 1e6


def main(calls: int = 5000, server: str = "hypercorn") -> None:
    from twofold.gateway import from_proto_files

    os.sched_setaffinity(0, {1})
    schema = from_proto_files([str(PROTO)])
    hello = schema.message_class(
        schema.service("greeter.v1.Greeter").methods_by_name["SayHello"].input_type
    )
    request = hello(name="bench").SerializeToString()
    grpc_port, http_port = free_port(), free_port()
    py = sys.executable
    upstream = subprocess.Popen(
        ["taskset", "-c", "0", py, "-m", "bench.gateway", "upstream", str(grpc_port)],
        cwd=ROOT,
        start_new_session=True,
    )
    gateway = None
    try:
        time.sleep(2)  # grpcio binds before it serves
        gateway = _start(
            [py, "-m", "twofold", "gateway", "--proto", str(PROTO), "--log-level", "warning",
             "--upstream", f"127.0.0.1:{grpc_port}", "--port", str(http_port),
             "--server", server],
            f"http://127.0.0.1:{http_port}/openapi.json",
        )  # fmt: skip
        direct = _summary(_latencies(f"127.0.0.1:{grpc_port}", request, calls))
        relayed = _summary(_latencies(f"127.0.0.1:{http_port}", request, calls))
    finally:
        for process in (gateway, upstream):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(10)
    print(f"{'':22} {'p50 µs':>8} {'p99 µs':>8}")
    print(f"{'direct gRPC':22} {direct[0]:8.0f} {direct[1]:8.0f}")
    print(f"{'via gateway (' + server + ')':22} {relayed[0]:8.0f} {relayed[1]:8.0f}")
    print(f"the relay adds {relayed[0] - direct[0]:.0f} µs at p50")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 5000,
        sys.argv[2] if len(sys.argv) > 2 else "hypercorn",
    )
