"""``python -m bench.windows``: HTTP/2 throughput on the one port with Twofold's
flow-control windows and with Envoy's defaults.

``twofold serve --server pyvoy`` sets HTTP/2's windows to 64 KiB a stream and
1 MiB a connection (``twofold.server.envoy.STREAM_WINDOW``), against a slow
reader; Envoy's defaults are 16 MiB and 24 MiB. Each setting serves
bench/apps/windows.py in a server of its own (the constants patched before
the CLI builds Envoy's configuration) on an ephemeral 127.0.0.1 port, and one
client measures, best of ``--runs``:

- upload: httpx over h2c PUTs a 256 MiB body, read by a ``twofold.Upload``
  (what the server's receive window paces);
- download: grpcio reads a server stream of 1024 messages of 64 KiB (what
  Envoy's send buffer, a window per stream, paces).

Printed: MiB/s of wall time. One machine, one client: figures to compare
with each other, not promises.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
import httpx

from bench.apps.windows import app
from twofold.protobuf import Schema
from twofold.server import envoy

MiB = 1 << 20
UPLOAD = 256 * MiB
BLOCK = b"\0" * MiB
SETTINGS = {
    "twofold (64 KiB / 1 MiB)": (envoy.STREAM_WINDOW, envoy.CONNECTION_WINDOW),
    "Envoy's defaults (16 MiB / 24 MiB)": (16 * MiB, 24 * MiB),
}
# The server, with the windows of argv[1:3], then the CLI's arguments.
SERVE = (
    "import sys; from twofold.server import envoy; "
    "envoy.STREAM_WINDOW, envoy.CONNECTION_WINDOW = int(sys.argv[1]), int(sys.argv[2]); "
    "from twofold.cli import main; sys.exit(main(sys.argv[3:]))"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(stream: int, connection: int, port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-c", SERVE, str(stream), str(connection), "serve",
            "bench.apps.windows:app", "--server", "pyvoy", "--port", str(port),
            "--no-access-log"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


def body() -> Iterator[bytes]:
    for _ in range(UPLOAD // MiB):
        yield BLOCK


def upload(port: int) -> float:
    with httpx.Client(http1=False, http2=True, timeout=120) as client:
        start = time.perf_counter()
        r = client.put(f"http://127.0.0.1:{port}/bodies/x", content=body())
        elapsed = time.perf_counter() - start
    assert r.json() == {"size": UPLOAD}, r.text
    return UPLOAD / MiB / elapsed


def download(port: int) -> float:
    method = next(m for m in app.table if m.name == "Chunks")
    schema = Schema(app.table)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        chunks = channel.unary_stream(
            method.path,
            request_serializer=schema.codec(method.input_type).encode,
            response_deserializer=schema.codec(method.output_type).decode,
        )
        start = time.perf_counter()
        size = sum(len(c.data) for c in chunks(method.input_type(size=64 * 1024, count=1024)))
        elapsed = time.perf_counter() - start
    assert size == 64 * MiB
    return size / MiB / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    print("| windows | upload (MiB/s) | download (MiB/s) |")
    print("|---|---|---|")
    for name, (stream, connection) in SETTINGS.items():
        port = free_port()
        process = serve(stream, connection, port)
        try:
            up = max(upload(port) for _ in range(runs))
            down = max(download(port) for _ in range(runs))
        finally:
            process.terminate()
            process.wait(timeout=10)
        print(f"| {name} | {up:.0f} | {down:.0f} |")


if __name__ == "__main__":
    main()
