"""``python -m bench.accesslog``: what ``twofold serve``'s default access log costs on REST GET.

``twofold serve`` (uvicorn, one worker, no gRPC) serving the peer workload
twice: as the peers serve it (:mod:`bench.apps.twofold_app`, no interceptor:
the server writes an HTTP line per request) and with ``AccessLog`` composed
(:mod:`bench.apps.twofold_logged`: the call's line per request), each with
the defaults and with ``--no-access-log``, and with ``--compare SRC`` the same
from another source tree (the tree before a change), all in one run:

- req/s: wrk, 64 connections, server pinned to CPU 0 and wrk to CPU 1,
  every server measured once per round, rounds alternating, medians;
- instructions per request: cachegrind, h2load one request at a time
  (as :mod:`bench.instructions`), the exact figure on a shared machine.

Standard output of each server goes to a file, as a log collector's pipe
would take it. Figures are printed, never asserted.

    python -m bench.accesslog
    python -m bench.accesslog --compare /tmp/before/src --rounds 3
    python -m bench.accesslog --app plain --no-rps   # the default's cost, instructions only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench import cpu, load
from bench.apps.catalog import peers_dir
from bench.cases import CASES, Server
from bench.checks import check
from bench.instructions import count
from bench.runner import ServerProcess, Settings

APPS = {"plain": "bench.apps.twofold_app:app", "AccessLog": "bench.apps.twofold_logged:app"}


def servers(compare: str | None, only: str | None = None) -> list[Server]:
    trees = [("", None)] + ([("before ", str(Path(compare).resolve()))] if compare else [])
    out = []
    for tree, src in trees:
        for label, app in APPS.items():
            if only and label != only:
                continue
            for flags in ((), ("--no-access-log",)):
                name = f"{tree}{label}{' ' + flags[0] if flags else ' default'}"
                argv = ("{python}", "-m", "twofold", "serve", app, "--port", "{port}", "--no-grpc")
                out.append(Server(name, app, "repo", pythonpath=src, argv=argv + flags))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.accesslog", description=__doc__)
    p.add_argument("--compare", metavar="SRC", help="also serve from SRC (e.g. the tree before)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--no-instructions", action="store_true", help="req/s only")
    p.add_argument("--no-rps", action="store_true", help="instructions only")
    p.add_argument("--app", choices=list(APPS), help="only this app (both: all)")
    args = p.parse_args(argv)
    case = CASES["rest-get"]
    out = Path(tempfile.mkdtemp(prefix="twofold-accesslog-"))
    settings = Settings(peers=peers_dir(), out=out, duration=args.duration)
    chosen = servers(args.compare, args.app)
    rps: dict[str, list[float]] = {s.name: [] for s in chosen}
    cpu_us: dict[str, list[float]] = {s.name: [] for s in chosen}
    procs = [] if args.no_rps else [ServerProcess(s, settings) for s in chosen]
    try:
        for proc in procs:
            proc.wait_ready()
            check(case.check, proc.url)
        for r in range(args.rounds if procs else 0):
            order = procs[r % len(procs) :] + procs[: r % len(procs)]
            for proc in order:
                load.run("wrk", proc.port, case.request, 2, 64, settings.load_cpu)  # warm-up
                meter = cpu.Meter([proc.group])
                meter.start()
                done = load.run(
                    "wrk", proc.port, case.request, args.duration, 64, settings.load_cpu
                )
                used, others = meter.stop()
                name = proc.server.name
                if done.errors:  # an overloaded machine: not counted, said
                    print(f"   round {r + 1} {name:<32} not counted: {done.errors}", flush=True)
                    continue
                rps[name].append(done.rps)
                # user + system time: the kernel's share (a write() per response) counts
                cpu_us[name].append(used[proc.group] * 1e6 / done.requests)
                print(
                    f"   round {r + 1} {name:<32} {done.rps:>9,.0f} req/s "
                    f"{cpu_us[name][-1]:6.1f} µs CPU/req (others {others:.0f}% of a core)",
                    flush=True,
                )
    finally:
        for proc in procs:
            proc.stop()
    instructions: dict[str, float] = {}
    if not args.no_instructions:
        unpinned = Settings(peers=peers_dir(), out=out, pin=False)
        for server in chosen:
            small, large = count(case, server, 500, unpinned), count(case, server, 2500, unpinned)
            instructions[server.name] = (large - small) / 2000
            print(f"   {server.name:<32} {instructions[server.name]:>9,.0f} instr/req", flush=True)
    print(
        "\n| server | access log | req/s (median) | vs --no-access-log "
        "| CPU µs/request | instructions/request |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for server in chosen:
        quiet = server.name.replace(" default", " --no-access-log")
        median = statistics.median(rps[server.name] or [0])
        ratio = median / (statistics.median(rps[quiet] or [0]) or 1)
        measured = f"{median:,.0f} | {ratio:.2f}x" if rps[server.name] else "- | -"
        instr = f"{instructions[server.name]:,.0f}" if server.name in instructions else "-"
        per = f"{statistics.median(cpu_us[server.name]):.1f}" if cpu_us[server.name] else "-"
        head, _, flag = server.name.rpartition(" ")
        print(f"| {head} | {flag} | {measured} | {per} | {instr} |")
    print(f"\nlogs: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
