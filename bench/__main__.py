"""``python -m bench [case ...]``: Twofold against its peers, in the same run, on this machine.

Prints a table per case and a markdown summary; every run's figures and the
load tool's own output are kept under ``--out``. The ratios are reported,
never asserted: a benchmark on a shared machine is evidence, not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from bench import load, report, stubs
from bench.apps.catalog import peers_dir
from bench.cases import CASES, RAW, candidate
from bench.runner import CaseResult, Settings, run_case


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Twofold against its peers, in the same run, on this machine.",
    )
    p.add_argument("cases", nargs="*", metavar="case", help=f"any of {', '.join(CASES)} (all)")
    p.add_argument("--duration", type=int, default=Settings.duration, help="seconds per run")
    p.add_argument("--warmup", type=int, default=Settings.warmup, help="seconds, discarded")
    p.add_argument("--runs", type=int, default=Settings.min_runs, help="clean runs per server")
    p.add_argument("--connections", type=int, default=Settings.connections)
    p.add_argument(
        "--load", choices=("auto", "wrk", "python"), default="auto",
        help="load generator: wrk if installed (auto), or the asyncio fallback",
    )  # fmt: skip
    p.add_argument("--servers", help="only these servers, comma-separated (twofold is kept)")
    p.add_argument(
        "--raw", action="store_true",
        help="also measure uvicorn with a constant-answer app: the ceiling of any framework",
    )  # fmt: skip
    p.add_argument(
        "--quiet-wait", type=float, default=Settings.quiet_wait,
        help="seconds to wait at most for other processes to go quiet before a run",
    )  # fmt: skip
    p.add_argument(
        "--budget", type=float, default=300,
        help="seconds after which no server gets more than --runs runs, clean or not",
    )  # fmt: skip
    p.add_argument(
        "--compare", metavar="SRC",
        help="also serve Twofold from SRC (a directory holding a twofold package) as twofold-b",
    )  # fmt: skip
    p.add_argument("--out", type=Path, help="where logs and runs.jsonl go (a new temp dir)")
    args = p.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        p.error(f"unknown case {', '.join(unknown)}; choose from {', '.join(CASES)}")
    return args


PACKAGES = ("twofold", "uvicorn", "uvloop", "httptools", "msgspec", "fastapi", "pydantic",
            "litestar", "connectrpc", "protobuf-py")  # fmt: skip


def _versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} -")
    return ", ".join(found)


def _source() -> str:
    """Which Twofold is measured: its directory, and its commit when it is a checkout."""
    import twofold

    where = Path(twofold.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "log", "-1", "--format=%h %cs"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--", "."],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        head = dirty = ""
    if not head:
        return f"twofold from {where}"
    return f"twofold from {where} at {head}" + (" + uncommitted changes" if dirty else "")


def _machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        model = names[0] if names else ""
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({model or platform.machine()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    names = args.cases or list(CASES)
    tool = args.load
    if tool == "auto":
        tool = "wrk" if load.available("wrk") else "python"
        if tool == "python":
            print("wrk not found (apt-get install wrk): using the asyncio load generator, which")
            print("may saturate before the fastest servers do; see the gen CPU column.")
    elif not load.available(tool):
        print(f"{tool} is not installed", file=sys.stderr)
        return 2
    pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    if not pin:
        print("warning: no taskset or a single CPU: server and load are NOT pinned apart")
    out = args.out or Path(tempfile.mkdtemp(prefix="twofold-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    peers = peers_dir()
    cases = [CASES[n] for n in names]
    if args.servers:
        keep = set(args.servers.split(","))
        cases = [
            # Twofold's own server of each case (twofold, twofold-pyvoy) is kept.
            replace(c, servers=(c.servers[0], *(s for s in c.servers[1:] if s.name in keep)))
            for c in cases
        ]
    if args.compare:
        src = str(Path(args.compare).resolve())
        cases = [
            replace(c, servers=(c.servers[0], candidate(c.servers[0], src), *c.servers[1:]))
            for c in cases
        ]
    if args.raw:  # the raw app is an HTTP/1.1 ceiling: no meaning for gRPC
        cases = [replace(c, servers=(*c.servers, RAW)) if c.tool is None else c for c in cases]
    missing = {c.tool for c in cases if c.tool and not load.available(c.tool)}
    if missing:
        print(f"{', '.join(sorted(missing))} not found (apt-get install nghttp2-client)")
        cases = [c for c in cases if c.tool not in missing]
    stub_dir = None
    if any(s.needs_stubs for c in cases for s in c.servers):
        stub_dir = stubs.generate(peers, out / "stubs")
    settings = Settings(
        duration=args.duration,
        warmup=args.warmup,
        min_runs=args.runs,
        connections=args.connections,
        tool=tool,
        quiet_wait=args.quiet_wait,
        deadline=time.monotonic() + args.budget,
        pin=pin,
        peers=peers,
        stubs=stub_dir,
        out=out,
    )
    started, t0 = time.strftime("%Y-%m-%d %H:%M:%S %Z"), time.monotonic()
    print(f"twofold bench, {started}, {_machine()}")
    print(_versions())
    print(_source())
    print(f"servers on CPU {settings.server_cpu}, load on CPU {settings.load_cpu}; logs in {out}")
    results: list[CaseResult] = []
    for case in cases:
        print(f"== {case.name}")
        result = run_case(case, settings)
        results.append(result)
        print(report.case_table(result))
    print()
    print(f"Summary ({started}, {tool}, {args.duration} s runs, median of clean runs):")
    print(report.summary(results))
    print(f"\n{time.monotonic() - t0:.0f} s in all; runs and tool output: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
