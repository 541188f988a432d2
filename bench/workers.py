"""``python -m bench.workers``: the catalog on 1 and 2 workers, on SQLite and PostgreSQL.

REST GET req/s with 1 and 2 workers (their ratio), the server's CPU per
request, and creates (POST /products) on SQLite and on PostgreSQL: p50, p99
and req/s. The load is h2load over HTTP/1.1, on the same cores as the
servers (two workers need both): CPU per request is the figure contention
does not move. PostgreSQL is a throwaway cluster (tests/e2e/postgres.py).
Figures are printed as a markdown table, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import cpu
from tests.e2e import postgres
from tests.e2e.server import free_port
from twofold.interceptors.bearer import DEVELOPMENT_SECRET, issue

REPO = Path(__file__).resolve().parents[1]
TOKEN = issue(DEVELOPMENT_SECRET, "bench", ["products:write"], expires_in=3600)
PRODUCT = {"name": "Bench", "price": "9.99", "category": "Books", "tags": ["a", "b"]}
SEEDED = 100


@dataclass
class Figures:
    label: str
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    cpu_us_per_request: float
    load_cpu_us_per_request: float
    others_cpu_s: float
    errors: str


class Catalog:
    """``twofold serve examples.catalog:app --workers N`` in a process group of its own."""

    def __init__(self, url: str, workers: int, out: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "CATALOG_DATABASE_URL": url,
            "CATALOG_PAGE_TOKEN_SECRET": "the benchmark's page token secret",
            # The benchmark measures throughput, not the write limit.
            "CATALOG_WRITE_RATE": "1000000",
            "CATALOG_WRITE_BURST": "1000000",
        }
        env.pop("CATALOG_JWT_SECRET", None)  # the development secret signs TOKEN
        self.log = out / f"server-{workers}-{self.port}.log"
        argv = [sys.executable, "-m", "twofold", "serve", "examples.catalog:app",
                "--port", str(self.port), "--workers", str(workers), "--no-grpc",
                "--no-access-log"]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the catalog did not start:\n{self.log.read_text()}")
            time.sleep(0.2)
        time.sleep(1.0)  # every worker up, not only the first to answer

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def h2load(
    catalog: Catalog, paths: list[str], duration: int, connections: int, post: bool
) -> Figures:
    with (
        tempfile.NamedTemporaryFile(suffix=".json") as body,
        tempfile.NamedTemporaryFile("r", suffix=".log") as log,
    ):
        body.write(json.dumps(PRODUCT).encode())
        body.flush()
        cmd = ["h2load", "--h1", "-t1", f"-c{connections}", "-D", str(duration),
               "--log-file", log.name]  # fmt: skip
        if post:
            cmd += ["-d", body.name, "-H", "content-type: application/json",
                    "-H", f"authorization: Bearer {TOKEN}"]  # fmt: skip
        cmd += [catalog.base + path for path in paths]
        group = catalog.process.pid
        before, others_before = cpu.ticks([group])
        load_before = cpu.own_ticks()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
        after, others_after = cpu.ticks([group])
        load_after = cpu.own_ticks()
        if done.returncode != 0:
            raise RuntimeError(f"h2load failed: {done.stderr.strip()}")
        ok = "201" if post else "200"
        latencies = [int(f[2]) for f in (ln.split("\t") for ln in log) if f[1] == ok]
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", done.stdout)
    counts = re.search(r"requests: \d+ total, \d+ started, (\d+) done", done.stdout)
    if rps is None or counts is None:
        raise RuntimeError(f"cannot read h2load's output:\n{done.stdout}")
    requests = max(1, int(counts.group(1)))
    latencies.sort()
    n = len(latencies)
    hz = cpu.HZ
    return Figures(
        label="",
        rps=float(rps.group(1)),
        p50_ms=latencies[n // 2] / 1e3 if n else None,
        p99_ms=latencies[min(n - 1, n * 99 // 100)] / 1e3 if n else None,
        cpu_us_per_request=(after[group] - before[group]) / hz / requests * 1e6,
        load_cpu_us_per_request=(load_after - load_before) / hz / requests * 1e6,
        others_cpu_s=(others_after - others_before) / hz,
        errors="" if n == requests else f"{requests - n} of {requests} not {ok}",
    )


def seed(catalog: Catalog) -> None:
    with httpx.Client(base_url=catalog.base, timeout=30) as client:
        headers = {"authorization": f"Bearer {TOKEN}"}
        for _ in range(SEEDED):
            client.post("/products", json=PRODUCT, headers=headers).raise_for_status()


def measure(
    label: str, url: str, workers: int, out: Path, args: argparse.Namespace, *, post: bool
) -> Figures:
    catalog = Catalog(url, workers, out)
    try:
        if post:
            paths = ["/products"]
        else:
            seed(catalog)
            paths = [f"/products/{i}" for i in range(1, 11)]
        h2load(catalog, paths, 2, args.connections, post)  # warm-up, discarded
        figures = h2load(catalog, paths, args.duration, args.connections, post)
    finally:
        catalog.stop()
    figures.label = label
    print(_row(figures), flush=True)
    return figures


def _row(f: Figures) -> str:
    def ms(v: float | None) -> str:
        return f"{v:.2f}" if v is not None else "-"

    return (
        f"| {f.label} | {f.rps:,.0f} | {ms(f.p50_ms)} | {ms(f.p99_ms)} | "
        f"{f.cpu_us_per_request:,.0f} | {f.load_cpu_us_per_request:,.0f} | "
        f"{f.others_cpu_s:.1f} | {f.errors or 'none'} |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3, help="GET rounds of 1 then 2 workers")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = p.parse_args(argv)
    out = Path(tempfile.mkdtemp(prefix="twofold-bench-workers-"))
    print(f"python -m bench.workers, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}; logs in {out}")  # fmt: skip
    print("| run | req/s | p50 ms | p99 ms | server CPU µs/req | load CPU µs/req | "
          "others' CPU s | errors |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for round_ in range(args.rounds):  # alternated: a neighbour's load hits both alike
        rps = {}
        for workers in (1, 2):
            url = f"sqlite+aiosqlite:///{out / f'get-{round_}-{workers}.db'}"
            label = f"GET /products/{{id}}, SQLite, {workers} worker(s)"
            rps[workers] = measure(label, url, workers, out, args, post=False).rps
        ratios.append(rps[2] / rps[1])
    cluster = None
    directory = None if args.no_postgres else postgres.bindir()
    if directory is not None:
        cluster = postgres.start(directory)
    try:
        for workers in (1, 2):
            url = f"sqlite+aiosqlite:///{out / f'create-{workers}.db'}"
            label = f"POST /products, SQLite, {workers} worker(s)"
            measure(label, url, workers, out, args, post=True)
            if cluster is not None:
                url = cluster.create_database("bench")
                migrate = [sys.executable, "-m", "examples.catalog", "migrate"]
                env = {**os.environ, "CATALOG_DATABASE_URL": url}
                subprocess.run(migrate, cwd=REPO, env=env, check=True, capture_output=True)
                label = f"POST /products, PostgreSQL, {workers} worker(s)"
                measure(label, url, workers, out, args, post=True)
    finally:
        if cluster is not None:
            cluster.stop()
    each = ", ".join(f"{r:.2f}x" for r in ratios)
    print(f"\nREST GET, 2 workers / 1 worker: {statistics.median(ratios):.2f}x median ({each})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
