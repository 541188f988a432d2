"""Calls per second of the gRPC client's two transports, GetProduct, one run.

    python -m bench.grpc_client [--seconds 5] [--concurrency 1 16]

One ``twofold serve bench.apps.twofold_app:app`` (its grpcio port), then,
for each concurrency, ``AsyncClient(..., protocol="grpc")`` over grpcio's
aio channel and over Twofold's own HTTP/2 transport (``transport="h2"``),
each for the same number of seconds, alternating, in this one process. The
ratio is h2 over grpcio: the own transport has to earn its place (it
exists for trailers and full duplex where httpx has neither, and to call
gRPC without grpcio), so it should not be much slower.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from typing import Literal

from bench.apps.twofold_app import service
from twofold import AsyncClient


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _rate(
    target: str, transport: Literal["h2"] | None, concurrency: int, seconds: float
) -> tuple[float, float]:
    """Calls per second, and the client process's CPU time per call (all its
    threads: grpcio's are counted), in microseconds."""
    async with AsyncClient(service, target, protocol="grpc", transport=transport) as client:
        await client.get_product(id=42)  # the connection, made before the clock starts
        done = 0
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < end:
                await client.get_product(id=42)
                done += 1

        start, cpu = time.monotonic(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu = time.process_time() - cpu
        return done / (time.monotonic() - start), cpu / done * 1e6


def _wait(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    port, grpc_port = _port(), _port()
    argv = [sys.executable, "-m", "twofold", "serve", "bench.apps.twofold_app:app"]
    argv += ["--port", str(port), "--grpc-port", str(grpc_port), "--no-access-log"]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(grpc_port)
        target = f"127.0.0.1:{grpc_port}"
        print("| concurrency | grpcio aio | h2 | h2 / grpcio (calls/s) |")
        print("|---|---|---|---|")
        for concurrency in args.concurrency:
            grpcio, grpcio_cpu = asyncio.run(_rate(target, None, concurrency, args.seconds))
            own, own_cpu = asyncio.run(_rate(target, "h2", concurrency, args.seconds))
            print(
                f"| {concurrency} | {grpcio:,.0f}/s, {grpcio_cpu:.0f} µs CPU "
                f"| {own:,.0f}/s, {own_cpu:.0f} µs CPU | {own / grpcio:.2f}x |"
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
