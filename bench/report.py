"""The tables: per server req/s, p50, p99 and CPU; per peer the ratio and its target."""

from __future__ import annotations

from collections.abc import Iterable

from bench.cases import RAW
from bench.load import H2_CLIENTS, H2_STREAMS
from bench.runner import SPREAD, CaseResult, ServerResult


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


TWOFOLD = "twofold"


def ratio(result: CaseResult, peer: str, ours_name: str = TWOFOLD) -> float | None:
    ours, theirs = result.servers[ours_name].rps, result.servers[peer].rps
    if ours is None or not theirs:
        return None
    return ours / theirs


def cpu_ratio(result: CaseResult, peer: str, ours_name: str = TWOFOLD) -> float | None:
    """How many times less server CPU twofold spends per request than ``peer``."""
    ours = result.servers[ours_name].median("cpu_us_per_req")
    theirs = result.servers[peer].median("cpu_us_per_req")
    if not ours or theirs is None:
        return None
    return theirs / ours


def verdict(result: CaseResult, peer: str, by_cpu: bool = False, ours_name: str = TWOFOLD) -> str:
    """PASS or MISS against the target; ``*`` when a side had no clean run."""
    target = result.case.targets.get(peer)
    value = cpu_ratio(result, peer, ours_name) if by_cpu else ratio(result, peer, ours_name)
    if value is None:
        return "n/a"
    if target is None:
        return "no target"
    noisy = not result.servers[ours_name].clean or not result.servers[peer].clean
    return ("PASS" if value >= target else "MISS") + ("*" if noisy else "")


def _note(s: ServerResult) -> str:
    notes = []
    if s.skipped:
        notes.append(f"not measured: {s.skipped[:120]}")
    if s.runs and not s.clean:
        notes.append("NOISY: no clean run, median of all runs")
    dropped = len(s.runs) - len(s.clean)
    if s.clean and dropped:
        notes.append(f"{dropped} run(s) not counted")
    rps = [r.rps for r in s.clean]
    if len(rps) == 2 and max(rps) > SPREAD * min(rps):
        notes.append(f"runs differ by more than {SPREAD - 1:.0%}")
    if s.failed_after:
        notes.append(f"check failed after load: {s.failed_after[:120]}")
    return "; ".join(notes)


def case_table(result: CaseResult) -> str:
    case, st = result.case, result.settings
    req = case.request
    load = f"{st.connections} connections"
    if result.tool == "h2load":
        load = f"{H2_CLIENTS} connections x {H2_STREAMS} streams"
    lines = [
        f"{case.name}: {req.method} {req.path}  ({result.tool}, {load}, "
        f"{st.duration} s runs, median of clean runs)",
        f"  {'server':<11}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>11}{'srv CPU':>9}"
        f"{'gen CPU':>9}{'others':>8}  runs req/s (clean)",
    ]
    for s in result.servers.values():
        clean = " / ".join(f"{r.rps:,.0f}" for r in s.clean) or "-"
        lines.append(
            f"  {s.server:<11}{_num(s.rps, ',.0f'):>9}{_num(s.median('p50_ms'), '.2f'):>9}"
            f"{_num(s.median('p99_ms'), '.2f'):>9}{_num(s.median('cpu_us_per_req'), '.0f'):>11}"
            f"{_num(s.median('server_cpu_pct'), '.0f'):>8}%"
            f"{_num(s.median('loadgen_cpu_pct'), '.0f'):>8}%"
            f"{_num(s.median('others_cpu_pct'), '.0f'):>7}%"
            f"  {clean}  {_note(s)}".rstrip()
        )
    ours = [n for n in result.servers if n.startswith(TWOFOLD)]
    for name in ours:
        for peer in case.peers:
            lines.append(_ratio_line(result, name, peer.name))
    if len(ours) == 2:
        value, by_cpu = ratio(result, ours[0], ours[1]), cpu_ratio(result, ours[0], ours[1])
        lines.append(
            f"  {ours[1]}/{ours[0]}: {_num(value, '.3f')}x req/s, "
            f"{_num(by_cpu, '.3f')}x less CPU per request"
        )
    if any(not s.clean for s in result.servers.values() if not s.skipped):
        lines.append(
            "  * no clean run on one side: other processes took CPU, so req/s is unreliable;"
            " CPU per request is the steadier figure"
        )
    return "\n".join(lines)


def _ratio_line(result: CaseResult, ours_name: str, peer: str) -> str:
    value = ratio(result, peer, ours_name)
    target = result.case.targets.get(peer)
    want = f"target >= {target:g}x" if target is not None else "no target"
    verdict_ = verdict(result, peer, False, ours_name)
    cpu_verdict = verdict(result, peer, True, ours_name)
    if peer == RAW.name:
        want, verdict_, cpu_verdict = "the server alone", "ceiling", ""
    by_cpu = _num(cpu_ratio(result, peer, ours_name), ".2f")
    label = f"{ours_name}/{peer}"
    return (
        f"  {label:<21} {_num(value, '.2f')}x req/s  ({want})  {verdict_:<9}"
        f"  {by_cpu}x less CPU per request  {cpu_verdict}"
    ).rstrip()


def _verdict_cell(result: CaseResult, s: ServerResult) -> str:
    if s.server.startswith(TWOFOLD):
        return _note(s)
    if s.server == RAW.name:
        return "ceiling (the server alone)"
    return verdict(result, s.server, ours_name=result.case.servers[0].name)


def summary(results: Iterable[CaseResult]) -> str:
    """One markdown table for the whole run: what docs/benchmarks.md records."""
    lines = [
        "| case | server | req/s | p50 ms | p99 ms | CPU µs/req | server CPU % "
        "| twofold/peer req/s | target | | twofold/peer CPU/req | |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        ours = result.case.servers[0].name  # twofold, or twofold-pyvoy on the one port
        for s in result.servers.values():
            is_peer = not s.server.startswith(TWOFOLD)
            value = ratio(result, s.server, ours) if is_peer else None
            by_cpu = cpu_ratio(result, s.server, ours) if is_peer else None
            judged = is_peer and s.server != RAW.name
            target = result.case.targets.get(s.server)
            lines.append(
                f"| {result.case.name} | {s.server} | {_num(s.rps, ',.0f')} "
                f"| {_num(s.median('p50_ms'), '.2f')} | {_num(s.median('p99_ms'), '.2f')} "
                f"| {_num(s.median('cpu_us_per_req'), '.0f')} "
                f"| {_num(s.median('server_cpu_pct'), '.0f')} "
                f"| {_num(value, '.2f') + 'x' if value is not None else ''} "
                f"| {f'>= {target:g}x' if target is not None else ''} "
                f"| {_verdict_cell(result, s)} "
                f"| {_num(by_cpu, '.2f') + 'x' if by_cpu is not None else ''} "
                f"| {verdict(result, s.server, True, ours) if judged else ''} |"
            )
    return "\n".join(lines)
