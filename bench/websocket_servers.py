"""``python -m bench.websocket_servers``: JSON-RPC over WebSocket, end to end, per server.

``twofold serve`` on uvicorn and on pyvoy (:data:`bench.servers.CANDIDATES`,
pinned as there) serves the peer App (:mod:`bench.apps.twofold_app`); one
``websockets`` client calls ``GetProduct`` on one connection, each call
sent once the one before is answered. Reported per server: calls/s and
server CPU per call (every thread of the server process, Envoy's too). On
pyvoy a call crosses Envoy twice (the port's connection manager, then
pyvoy's WebSocket filter on an internal listener) and hops between
pyvoy's loop and the App's (:mod:`twofold.server.envoy_sockets`). Figures
are evidence for docs/benchmarks.md, never asserted.

    python -m bench.websocket_servers [--calls 5000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from websockets.sync.client import connect

from bench.servers import CANDIDATES, cpu_seconds, serving

SERVERS = ("uvicorn+grpcio", "pyvoy")
CALL = '{"jsonrpc":"2.0","method":"GetProduct","params":{"id":42},"id":1}'


def measure(port: int, pid: int, calls: int) -> tuple[float, float]:
    """Calls per second, and the server's CPU microseconds per call."""
    with connect(f"ws://127.0.0.1:{port}/jsonrpc") as ws:
        for _ in range(calls // 10):  # warm up
            ws.send(CALL)
            ws.recv()
        cpu, started = cpu_seconds(pid), time.perf_counter()
        for _ in range(calls):
            ws.send(CALL)
            assert '"result"' in ws.recv(), "GetProduct failed"
        elapsed, used = time.perf_counter() - started, cpu_seconds(pid) - cpu
    return calls / elapsed, used / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.websocket_servers")
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args(argv)
    print("| server | calls/s | server CPU µs/call |\n|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for candidate in (c for c in CANDIDATES if c.name in SERVERS):
            log = Path(tmp) / f"{candidate.name}.log"
            with serving(candidate, dict(os.environ), log) as (pid, port, _):
                rate, cpu = measure(port, pid, args.calls)
            print(f"| {candidate.name} | {rate:,.0f} | {cpu:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
