"""Run one case: start its servers, check them, warm up, measure in rounds, check again.

Every server is one uvicorn worker pinned to the server core (``taskset -c
0``); the load generator is pinned to the other (``taskset -c 1``). All the
servers of a case are up together and measured in rounds, one run each per
round in a rotating order, so that a ratio compares runs taken minutes (not
a whole benchmark) apart; an idle server costs nothing.

Noise handling follows the peer baselines: before each run wait (bounded)
until other processes are quiet; a run during which they used too much CPU
is logged but not counted; each server needs ``min_runs`` clean runs, and
one more when its first two differ by more than 15%. Figures are medians.
When others stay busy, waiting and extra rounds cannot help, so both are
bounded: a case waits ``quiet_budget`` seconds in all, and past the run's
``deadline`` a server stops after ``min_runs`` runs, clean or not (the
report then flags it as noisy; its CPU per request stays meaningful).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from bench import cpu, load
from bench.apps.catalog import PEERS_ENV, REPO, STUBS_ENV
from bench.cases import Case, Server
from bench.checks import CheckFailed, check

SPREAD = 1.15  # two clean runs further apart than this call for a third


@dataclass(frozen=True)
class Settings:
    duration: int = 8
    warmup: int = 2
    min_runs: int = 2
    max_rounds: int = 3
    connections: int = 64
    tool: str = "wrk"
    quiet_pct: float = 10.0  # wait for others to be under this before a run...
    quiet_wait: float = 10.0  # ...for at most this long
    quiet_budget: float = 30.0  # waiting for quiet, per case
    deadline: float = float("inf")  # time.monotonic() past which no extra round starts
    noisy_pct: float = 15.0  # a run during which others used this much is not counted
    server_cpu: str = "0"
    load_cpu: str = "1"
    pin: bool = True
    peers: Path = Path()
    stubs: Path | None = None
    out: Path = Path()


@dataclass
class Run:
    server: str
    round: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    cpu_us_per_req: float | None  # server CPU per request: steady even when the core is shared
    server_cpu_pct: int
    loadgen_cpu_pct: int
    others_cpu_pct: int
    server_core_busy_pct: int | None
    load_core_busy_pct: int | None
    errors: str
    clean: bool


@dataclass
class ServerResult:
    server: str
    runs: list[Run] = field(default_factory=list)
    skipped: str = ""  # why it was not measured
    failed_after: str = ""  # a check that failed after the load

    @property
    def clean(self) -> list[Run]:
        return [r for r in self.runs if r.clean]

    @property
    def counted(self) -> list[Run]:
        """The clean runs, or every run when none was clean (then flagged as noisy)."""
        return self.clean or self.runs

    @property
    def rps(self) -> float | None:
        runs = self.counted
        return statistics.median(r.rps for r in runs) if runs else None

    def median(self, attr: str) -> float | None:
        values = [getattr(r, attr) for r in self.counted if getattr(r, attr) is not None]
        return statistics.median(values) if values else None

    def satisfied(self, settings: Settings) -> bool:
        if time.monotonic() > settings.deadline and len(self.runs) >= settings.min_runs:
            return True
        rps = [r.rps for r in self.clean]
        if len(rps) < settings.min_runs:
            return False
        return len(rps) > 2 or max(rps) <= SPREAD * min(rps)


@dataclass
class CaseResult:
    case: Case
    tool: str
    settings: Settings
    servers: dict[str, ServerResult]


class ServerProcess:
    """One server: a uvicorn process in its own session, so its process group is its id."""

    def __init__(self, server: Server, settings: Settings, wrap: Sequence[str] = ()) -> None:
        """``wrap`` goes before the server's command (a tool that runs it: valgrind)."""
        self.server = server
        self.port = _free_port()
        self.log_path = settings.out / f"{server.name}-{self.port}.log"
        app_dir = REPO if server.app_dir == "repo" else settings.peers / "apps"
        cmd = [
            sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir),
            "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log",
            "--loop", "uvloop", "--http", "httptools", "--log-level", "warning", server.app,
        ]  # fmt: skip
        if server.argv:
            fill = {"{python}": sys.executable, "{port}": str(self.port)}
            cmd = [fill.get(arg, arg) for arg in server.argv]
        cmd = [*wrap, *cmd]
        if settings.pin:
            cmd = ["taskset", "-c", settings.server_cpu, *cmd]
        env = {**os.environ, PEERS_ENV: str(settings.peers)}
        if settings.stubs is not None:
            env[STUBS_ENV] = str(settings.stubs)
        if server.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (server.pythonpath, env.get("PYTHONPATH")) if p
            )
        self.cmd = cmd
        self._log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
            start_new_session=True,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def group(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-800:]
                raise CheckFailed(f"exited with {self.proc.returncode}: {tail}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise CheckFailed("did not open its port")

    def stop(self, grace: float = 10) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _measure(
    proc: ServerProcess, groups: list[int], case: Case, settings: Settings, duration: int
) -> tuple[load.LoadResult, dict[str, Any]]:
    """One load run against one server, with the CPU every party used meanwhile."""
    t0 = time.monotonic()
    meter = cpu.Meter(groups)
    meter.start()
    k0 = cpu.core_ticks()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    tool = case.tool or settings.tool
    result = load.run(
        tool, proc.port, case.request, duration, settings.connections, settings.load_cpu
    )
    wall = time.monotonic() - t0
    servers, others = meter.stop()
    k1 = cpu.core_ticks()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    gen = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    server_s = servers[proc.group]
    usage = {
        "cpu_us_per_req": 1e6 * server_s / result.requests if result.requests else None,
        "server_cpu_pct": round(100 * server_s / wall),
        "loadgen_cpu_pct": round(100 * gen / wall),
        "others_cpu_pct": round(others),
        "server_core_busy_pct": cpu.core_busy_pct(k0, k1, settings.server_cpu),
        "load_core_busy_pct": cpu.core_busy_pct(k0, k1, settings.load_cpu),
    }
    return result, usage


def run_case(case: Case, settings: Settings, say: Any = print) -> CaseResult:
    results = {s.name: ServerResult(s.name) for s in case.servers}
    procs: list[ServerProcess] = []
    jsonl = (settings.out / "runs.jsonl").open("a")
    try:
        for server in case.servers:
            procs.append(ServerProcess(server, settings))
        live: list[ServerProcess] = []
        for proc in procs:
            try:
                proc.wait_ready()
                check(proc.server.check or case.check, proc.url)
                live.append(proc)
                say(f"   {proc.server.name}: pid {proc.proc.pid}, port {proc.port}, check ok")
            except CheckFailed as exc:
                results[proc.server.name].skipped = f"check failed: {exc}"
                say(f"   {proc.server.name}: NOT MEASURED, check failed: {exc}")
                proc.stop()
        groups = [p.group for p in live]
        for proc in live:  # warm-up, discarded
            _measure(proc, groups, case, settings, settings.warmup)
        waited = 0.0
        for rnd in range(1, settings.max_rounds + 1):
            todo = [p for p in live if not results[p.server.name].satisfied(settings)]
            if not todo:
                break
            shift = (rnd - 1) % len(todo)
            for proc in todo[shift:] + todo[:shift]:
                budget = min(settings.quiet_wait, max(0.0, settings.quiet_budget - waited))
                t_wait = time.monotonic()
                quiet = cpu.wait_quiet(groups, settings.quiet_pct, budget)
                waited += time.monotonic() - t_wait
                result, usage = _measure(proc, groups, case, settings, settings.duration)
                run = Run(
                    server=proc.server.name,
                    round=rnd,
                    rps=result.rps,
                    p50_ms=result.p50_ms,
                    p99_ms=result.p99_ms,
                    errors=result.errors,
                    clean=usage["others_cpu_pct"] < settings.noisy_pct and not result.errors,
                    **usage,
                )
                results[proc.server.name].runs.append(run)
                record = {
                    "ts": time.time(),
                    "case": case.name,
                    "tool": result.tool,
                    "quiet_before_pct": quiet,
                    "requests": result.requests,
                }
                jsonl.write(json.dumps({**record, **asdict(run), "cmd": proc.cmd}) + "\n")
                jsonl.flush()
                with (settings.out / f"{case.name}.{proc.server.name}.r{rnd}.txt").open("w") as f:
                    f.write(result.output)
                say(
                    f"   round {rnd} {proc.server.name:<10} {run.rps:>9,.0f} req/s"
                    f"  p50 {_fmt(run.p50_ms)} ms  p99 {_fmt(run.p99_ms)} ms"
                    f"  {_fmt(run.cpu_us_per_req, '.0f')} µs CPU/req"
                    f"  server {run.server_cpu_pct}%  others {run.others_cpu_pct}%"
                    + ("" if run.clean else "  (not counted: " + (run.errors or "noisy") + ")")
                )
        for proc in live:
            try:
                check(proc.server.check or case.check, proc.url)
            except CheckFailed as exc:
                results[proc.server.name].failed_after = str(exc)
                say(f"   {proc.server.name}: check FAILED after the load: {exc}")
    finally:
        for proc in procs:
            proc.stop()
        jsonl.close()
    return CaseResult(case, case.tool or settings.tool, settings, results)


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)
