"""Load generators: wrk when installed, else a small asyncio HTTP/1.1 client; h2load for gRPC.

wrk and the fallback keep ``connections`` keep-alive connections busy for
``duration`` seconds, one request in flight on each (wrk's model), and
report req/s, p50/p99 latency and the count of bad answers. The fallback
exists so the benchmark runs anywhere; it spends far more CPU per request
than wrk and can be the bottleneck for the fastest servers (the runner
reports load-gen CPU so that shows).

gRPC goes over HTTP/2 with h2load, as in the peer baselines: 16 connections
of 16 concurrent streams each, whatever ``connections`` says.

Run as ``python -m bench.load SPEC_JSON`` the fallback prints one JSON
result; the runner starts it that way so that it can be pinned to its core.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any, cast

from bench.cases import Request


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: str  # "" when every answer was 2xx/3xx and no socket failed
    output: str  # the tool's own report, for the logs


def available(tool: str) -> bool:
    return tool == "python" or shutil.which(tool) is not None


def run(
    tool: str, port: int, request: Request, duration: int, connections: int, cpu: str
) -> LoadResult:
    """Run the load once, pinned to ``cpu`` with taskset."""
    if tool == "wrk":
        return _run_wrk(port, request, duration, connections, cpu)
    if tool == "h2load":
        return _run_h2load(port, request, duration, cpu)
    spec = {
        "port": port,
        "method": request.method,
        "path": request.path,
        "body": request.body.decode("latin-1"),
        "headers": request.headers,
        "duration": duration,
        "connections": connections,
    }
    cmd = ["taskset", "-c", cpu, sys.executable, "-m", "bench.load", json.dumps(spec)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"python load generator failed: {done.stderr.strip()[-500:]}")
    return LoadResult(**json.loads(done.stdout))


# ---------------------------------------------------------------- wrk


def _lua_string(data: bytes) -> str:
    """A Lua string literal for any bytes (decimal escapes: LuaJIT's Lua 5.1 has no \\x)."""
    out = []
    for b in data:
        ch = chr(b)
        out.append(ch if 32 <= b < 127 and ch not in "'\\" else f"\\{b:03d}")
    return "'" + "".join(out) + "'"


def lua_script(request: Request) -> str:
    lines = [f"wrk.method = {_lua_string(request.method.encode())}"]
    for name, value in request.headers:
        lines.append(f"wrk.headers[{_lua_string(name.encode())}] = {_lua_string(value.encode())}")
    if request.body:
        lines.append(f"wrk.body = {_lua_string(request.body)}")
    return "\n".join(lines) + "\n"


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> LoadResult:
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if total is None or rps is None:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = []
    sock = re.search(r"Socket errors: (.*)", out)
    if sock:
        errors.append(f"socket errors: {sock.group(1)}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        errors.append(f"{bad.group(1)} non-2xx/3xx")
    return LoadResult(
        tool="wrk",
        requests=int(total.group(1)),
        seconds=_ms(total.group(2) + total.group(3)) / 1e3,
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)) if p50 else None,
        p99_ms=_ms(p99.group(1)) if p99 else None,
        errors="; ".join(errors),
        output=out,
    )


def _run_wrk(port: int, request: Request, duration: int, connections: int, cpu: str) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
        script.write(lua_script(request))
        script.flush()
        cmd = [
            "taskset", "-c", cpu, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
            "-s", script.name, f"http://127.0.0.1:{port}{request.path}",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr.strip()}")
    return parse_wrk(" ".join(cmd) + "\n" + done.stdout)


# ---------------------------------------------------------------- h2load

H2_CLIENTS, H2_STREAMS = 16, 16  # the peer baselines' h2load -c16 -m16


def parse_h2load(out: str, latencies_us: list[int], expect_data: int | None) -> LoadResult:
    """h2load's summary, the latencies of its ``--log-file``.

    h2load sees HTTP statuses only, and a gRPC error is an HTTP 200 whose
    trailers say otherwise. But an error carries no message, so when
    ``expect_data`` (the bytes of one answer's DATA frames) is given, DATA
    received must be that per request: every call answered in full. A run's
    time may end between a call's message and its trailers (pyvoy sends
    them apart), so the messages of up to one call per stream in flight may
    come on top, never a part of one.
    """
    rps = re.search(r"finished in ([\d.]+)(us|ms|s|m), ([\d.]+) req/s", out)
    reqs = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    data = re.search(r"traffic: .*\((\d+)\) data", out)
    if not (rps and reqs and codes and data):
        raise RuntimeError(f"cannot read h2load output:\n{out}")
    done, succeeded, ok = int(reqs.group(1)), int(reqs.group(2)), int(codes.group(1))
    errors = []
    if succeeded != done or ok != done:
        errors.append(f"{done - min(succeeded, ok)} of {done} failed or not 2xx")
    if expect_data is not None:
        answers, part = divmod(int(data.group(1)), expect_data)
        if part or not done <= answers <= done + H2_CLIENTS * H2_STREAMS:
            errors.append(f"{data.group(1)} bytes of DATA for {done} answers of {expect_data}")
    lat = sorted(latencies_us)
    n = len(lat)
    return LoadResult(
        tool="h2load",
        requests=done,
        seconds=_ms(rps.group(1) + rps.group(2)) / 1e3,
        rps=float(rps.group(3)),
        p50_ms=lat[n // 2] / 1e3 if n else None,
        p99_ms=lat[min(n - 1, n * 99 // 100)] / 1e3 if n else None,
        errors="; ".join(errors),
        output=out,
    )


def _run_h2load(port: int, request: Request, duration: int, cpu: str) -> LoadResult:
    with (
        tempfile.NamedTemporaryFile(suffix=".bin", prefix="bench-") as body,
        tempfile.NamedTemporaryFile("r", suffix=".log", prefix="bench-") as log,
    ):
        body.write(request.body)
        body.flush()
        cmd = [
            "taskset", "-c", cpu, "h2load", "-t1", f"-c{H2_CLIENTS}", f"-m{H2_STREAMS}",
            "-D", str(duration), "-d", body.name, "--log-file", log.name,
            *(f"-H{name.lower()}: {value}" for name, value in request.headers),
            f"http://127.0.0.1:{port}{request.path}",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
        if done.returncode != 0:
            raise RuntimeError(f"h2load failed: {done.stderr.strip()}")
        # One line per request: start (µs since the epoch), HTTP status, µs to the end.
        latencies = [int(f[2]) for f in (ln.split("\t") for ln in log) if f[1] == "200"]
    summary = done.stdout[done.stdout.find("finished in") :]
    return parse_h2load(" ".join(cmd) + "\n" + summary, latencies, request.answer_size)


# ---------------------------------------------------------------- asyncio fallback


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending the same request again as each answer ends."""

    def __init__(self, payload: bytes, stop_at: float, stats: _Stats, done: asyncio.Future[None]):
        self.payload = payload
        self.stop_at = stop_at
        self.stats = stats
        self.done = done
        self.buffer = b""
        self.need = -1  # bytes of the current response, once its head is read
        self.status_ok = True
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence the cast.
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.need < 0:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].lower()
                self.status_ok = head[9:10] in (b"2", b"3")
                m = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
                if m is None:  # every server here sends Content-Length
                    self._fail("response without content-length")
                    return
                self.need = end + 4 + int(m.group(1))
            if len(self.buffer) < self.need:
                return
            self.buffer = self.buffer[self.need :]
            self.need = -1
            now = time.perf_counter()
            self.stats.record(now - self.sent_at, self.status_ok)
            if now >= self.stop_at:
                assert self.transport is not None
                self.transport.close()
                return
            self._send()

    def _fail(self, why: str) -> None:
        self.stats.socket_errors += 1
        assert self.transport is not None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if time.perf_counter() < self.stop_at:
            self.stats.socket_errors += 1
        if not self.done.done():
            self.done.set_result(None)


class _Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.bad_status = 0
        self.socket_errors = 0

    def record(self, seconds: float, ok: bool) -> None:
        self.latencies.append(seconds)
        if not ok:
            self.bad_status += 1


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    body = spec["body"].encode("latin-1")
    head = [f"{spec['method']} {spec['path']} HTTP/1.1", f"Host: 127.0.0.1:{spec['port']}"]
    head += [f"{k}: {v}" for k, v in spec["headers"]]
    if body or spec["method"] in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(body)}")
    payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    loop = asyncio.get_running_loop()
    stats = _Stats()
    start = time.perf_counter()
    stop_at = start + spec["duration"]
    waits = []
    for _ in range(spec["connections"]):
        done: asyncio.Future[None] = loop.create_future()
        protocol = functools.partial(_Connection, payload, stop_at, stats, done)
        await loop.create_connection(protocol, "127.0.0.1", spec["port"])
        waits.append(done)
    await asyncio.wait_for(asyncio.gather(*waits), spec["duration"] + 30)
    seconds = time.perf_counter() - start
    lat = sorted(stats.latencies)
    n = len(lat)
    errors = []
    if stats.socket_errors:
        errors.append(f"{stats.socket_errors} socket errors")
    if stats.bad_status:
        errors.append(f"{stats.bad_status} non-2xx/3xx")
    return asdict(
        LoadResult(
            tool="python",
            requests=n,
            seconds=seconds,
            rps=n / seconds,
            p50_ms=lat[n // 2] * 1e3 if n else None,
            p99_ms=lat[min(n - 1, n * 99 // 100)] * 1e3 if n else None,
            errors="; ".join(errors),
            output=f"asyncio client: {n} requests in {seconds:.2f}s, {spec['connections']} conns",
        )
    )


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(_drive(spec))))


if __name__ == "__main__":
    main()
