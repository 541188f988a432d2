"""``python -m bench.uploads``: a 200 MiB upload into Upload, File and bare Starlette.

Each target runs alone under ``uvicorn --loop uvloop --http httptools``, one
worker, on an ephemeral 127.0.0.1 port; one client (httpx, streaming the
body from memory in 1 MiB blocks) sends the body once, raw
(``application/octet-stream``) and as one ``multipart/form-data`` part
(Twofold targets). Printed per run: throughput (MiB/s of wall time, the
hashing included, one run: a figure to compare, not a promise) and the
server's peak RSS growth during the upload (VmHWM after minus before,
/proc/PID/status), which is what streaming is for.
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

MiB = 1 << 20
BLOCK = bytes(range(256)) * 4096  # 1 MiB
TARGETS = {
    "twofold Upload": ("bench.apps.uploads:app", "/stream/x", b"upload"),
    "twofold File": ("bench.apps.uploads:app", "/whole/x", b"file"),
    "Starlette request.stream()": ("bench.apps.uploads:starlette_app", "/stream/x", b""),
}
BOUNDARY = b"benchboundary"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def body(mib: int, form: bytes) -> Iterator[bytes]:
    """The file, raw, or as the one part of a form named ``form``."""
    if form:
        yield (
            b"--"
            + BOUNDARY
            + b'\r\nContent-Disposition: form-data; name="'
            + form
            + b'"; filename="x.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
    for _ in range(mib):
        yield BLOCK
    if form:
        yield b"\r\n--" + BOUNDARY + b"--\r\n"


def run(target: str, path: str, mib: int, form: bytes) -> tuple[float, float]:
    """One upload: (MiB/s, peak RSS growth in MiB)."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--loop", "uvloop",
            "--http", "httptools", "--no-access-log", "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(argv)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            for _ in range(200):
                try:
                    client.put(path, content=b"warm")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            expected = hashlib.sha256(b"".join(body(mib, b""))).hexdigest()
            if form:
                content_type = b"multipart/form-data; boundary=" + BOUNDARY
            else:
                content_type = b"application/octet-stream"
            before = peak_rss(server.pid)
            start = time.perf_counter()
            answer = client.put(
                path, content=body(mib, form), headers={"content-type": content_type.decode()}
            )
            elapsed = time.perf_counter() - start
            after = peak_rss(server.pid)
        answer.raise_for_status()
        got = answer.json()
        assert got["size"] == mib * MiB and got["sha256"] == expected, got
        return mib / elapsed, (after - before) / MiB
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200, help="upload size (default 200)")
    args = parser.parse_args()
    print(f"{args.mib} MiB, one run each\n")
    print("| target | body | MiB/s | peak RSS growth (MiB) |")
    print("|---|---|---:|---:|")
    for name, (target, path, part) in TARGETS.items():
        # The bare endpoint reads raw bytes only: parsing a form is not its floor.
        for form in (b"", part) if part else (b"",):
            rate, growth = run(target, path, args.mib, form)
            kind = "multipart" if form else "raw"
            print(f"| {name} | {kind} | {rate:.0f} | {growth:.1f} |", flush=True)


if __name__ == "__main__":
    main()
