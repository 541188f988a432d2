"""``python -m bench.instructions [case ...]``: each server's instructions per request, exactly.

Each server of a case runs whole (uvicorn and the app, or the gRPC server
and its C-core threads) under ``valgrind --tool=cachegrind``, and h2load
sends it ``--small`` and then, in a fresh server, ``--large`` requests one
at a time (``-c1 -m1``; ``--h1`` for HTTP/1.1 cases). The difference of the
two totals over the difference of the counts is what one request costs, the
start-up and shutdown cancelled out. Sequential requests batch nothing, so
the count moves little from run to run (1-5% for gRPC, whose C-core threads
poll on timers) and hardly with what else the machine is doing: the measure
for a change to a hot path on a shared machine, where req/s cannot resolve
a few percent. Run it twice when a difference is that small.

Every process of the server is counted (``--trace-children``, one file a
process, summed): with ``--pyvoy``, gRPC cases also count ``twofold serve
--server pyvoy`` (the supervisor, and the Envoy it starts with the App's
Python inside: every Envoy thread, pyvoy's bridge and the App), and beside
it ``pyvoy-constant`` (bench/apps/grpc_constant.py), a constant answer on
the same server: the floor of any gRPC app there.

It counts user-space instructions only: the kernel's share (system calls,
context switches) is left out, which for gRPC is about a third of the CPU.
A run takes one to three minutes per server (Envoy's start under valgrind
adds a minute or two).

    python -m bench.instructions grpc-get
    python -m bench.instructions grpc-get --compare ../candidate/src
    python -m bench.instructions rest-get --raw      # beside bare uvicorn
    python -m bench.instructions grpc-get --pyvoy    # also on the one port, and its floor
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench import stubs
from bench.apps.catalog import peers_dir
from bench.cases import (
    CASES,
    PYVOY_CONSTANT,
    RAW,
    TWOFOLD,
    TWOFOLD_PYVOY,
    Case,
    Server,
    candidate,
)
from bench.checks import check
from bench.runner import ServerProcess, Settings


def _total(path: Path) -> int:
    """The instruction total of a cachegrind output file."""
    match = re.search(r"^summary: (\d+)", path.read_text(), re.M)
    if match is None:
        raise RuntimeError(f"no summary in {path}")
    return int(match.group(1))


def _h2load(case: Case, port: int, n: int, out: Path) -> None:
    body = out / "body.bin"
    body.write_bytes(case.request.body)
    cmd = ["h2load", "-n", str(n), "-c1", "-m1"]
    if case.tool != "h2load":
        cmd.append("--h1")
    if case.request.body:
        cmd += ["-d", str(body)]
    if case.request.method not in ("GET", "POST"):
        raise ValueError(f"h2load sends GET or POST, not {case.request.method}")
    cmd += [f"-H{name.lower()}: {value}" for name, value in case.request.headers]
    cmd.append(f"http://127.0.0.1:{port}{case.request.path}")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    ok = re.search(r"(\d+) succeeded", done)
    codes = re.search(r"status codes: (\d+) 2xx", done)
    if not (ok and codes and int(ok.group(1)) == n == int(codes.group(1))):
        raise RuntimeError(f"not every request succeeded:\n{done}")


def count(case: Case, server: Server, n: int, settings: Settings) -> int:
    """Instructions the server's processes spent, start to end, serving ``n`` requests."""
    result = settings.out / f"cachegrind.{case.name}.{server.name}.{n}"
    wrap = (
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=yes",
        f"--cachegrind-out-file={result}.%p",
    )  # fmt: skip
    proc = ServerProcess(server, settings, wrap)
    try:
        proc.wait_ready(timeout=600)
        check(server.check or case.check, proc.url)  # also waits for the app behind the port
        _h2load(case, proc.port, n, settings.out)
    finally:
        proc.stop(grace=300)  # valgrind writes its file as the process ends
    # pyvoy's supervisor waits for its Envoy, so every file is written by now.
    files = list(result.parent.glob(f"{result.name}.*"))
    if not files:
        raise RuntimeError(f"no cachegrind file for {server.name}")
    return sum(_total(path) for path in files)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    p.add_argument("cases", nargs="*", metavar="case", help=f"any of {', '.join(CASES)} (all)")
    p.add_argument("--small", type=int, default=500, help="requests in the first run")
    p.add_argument("--large", type=int, default=2500, help="requests in the second run")
    p.add_argument(
        "--servers", help="only these servers, comma-separated (ratios are to the first)"
    )
    p.add_argument("--compare", metavar="SRC", help="also count Twofold from SRC, as twofold-b")
    p.add_argument("--raw", action="store_true", help="also count uvicorn-raw (HTTP cases)")
    p.add_argument(
        "--pyvoy",
        action="store_true",
        help="also count twofold-pyvoy and pyvoy-constant (gRPC cases)",
    )
    args = p.parse_args(argv)
    for tool in ("valgrind", "h2load"):
        if shutil.which(tool) is None:
            print(f"{tool} not found (apt-get install valgrind nghttp2-client)", file=sys.stderr)
            return 2
    out = Path(tempfile.mkdtemp(prefix="twofold-instructions-"))
    cases = [CASES[name] for name in args.cases or CASES]
    for case in cases:
        servers = list(case.servers)
        if args.pyvoy and case.tool == "h2load":
            servers[1:1] = [TWOFOLD_PYVOY, PYVOY_CONSTANT]
        if args.compare:
            src = str(Path(args.compare).resolve())
            ours = [s for s in servers if s.name.startswith(TWOFOLD.name)]
            for server in reversed(ours):
                servers.insert(servers.index(server) + 1, candidate(server, src))
        if args.raw and case.tool is None:
            servers.append(RAW)
        if args.servers:
            keep = set(args.servers.split(","))
            servers = [s for s in servers if s.name in keep]
        case = replace(case, servers=tuple(servers))
        stub_dir = None
        if any(s.needs_stubs for s in servers):
            stub_dir = stubs.generate(peers_dir(), out / "stubs")
        settings = Settings(pin=False, peers=peers_dir(), stubs=stub_dir, out=out)
        per_request: dict[str, float] = {}
        print(f"== {case.name}: {case.request.method} {case.request.path}", flush=True)
        for server in servers:
            small = count(case, server, args.small, settings)
            large = count(case, server, args.large, settings)
            per_request[server.name] = (large - small) / (args.large - args.small)
            line = f"   {server.name:<16} {per_request[server.name]:>10,.0f} instructions/request"
            first = servers[0].name
            if server.name != first and per_request.get(first):
                line += f"   {per_request[server.name] / per_request[first]:.3f}x {first}'s"
            print(line, flush=True)
    print(f"cachegrind files and logs: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
