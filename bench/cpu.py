"""CPU accounting from /proc: our servers' CPU, and everyone else's.

The machine may be shared, so every run records the CPU that processes
which are not ours used meanwhile (the peer baselines' noise rule): before a
run we wait, for a bounded time, until others are quiet, and a run during
which they used too much is kept in the logs but left out of the medians.

Others are counted two ways and the larger wins: process by process from
/proc/PID/stat (which misses processes that come and go between readings,
such as a test run's workers), and as the cores' busy time from /proc/stat
less our own (which sees everything, steal time from neighbouring VMs
included). Interrupt time is left out of the latter: on loopback it is
mostly our own traffic.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

HZ = os.sysconf("SC_CLK_TCK")


def ticks(server_groups: Iterable[int]) -> tuple[dict[int, int], int]:
    """(utime+stime per server process group, CPU of every process not ours).

    "Ours" is this process group (the runner and its load generator) and the
    servers'. A server's group takes in the descendants its processes put in
    groups of their own (pyvoy's supervisor starts each Envoy so). Others
    count their reaped children too, so a short-lived test process still
    shows up.
    """
    groups = set(server_groups)
    mine = groups | {os.getpgrp()}
    per_group = dict.fromkeys(groups, 0)
    found: dict[int, tuple[int, int, int, int]] = {}  # pid: (parent, group, own, with children)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own = int(fields[11]) + int(fields[12])
        found[int(entry)] = (
            int(fields[1]),
            int(fields[2]),
            own,
            own + int(fields[13]) + int(fields[14]),
        )
    others = 0
    for pid, (_, own_group, own, with_children) in found.items():
        group = _server_group(pid, found, groups)
        if group is not None:
            per_group[group] += own
        elif own_group not in mine:
            others += with_children
    return per_group, others


def _server_group(
    pid: int, found: dict[int, tuple[int, int, int, int]], groups: set[int]
) -> int | None:
    """The server group ``pid`` is in, itself or through an ancestor."""
    seen = 0
    while pid in found and seen < 64:
        parent, group, _, _ = found[pid]
        if group in groups:
            return group
        pid, seen = parent, seen + 1
    return None


def busy_ticks() -> int:
    """Busy time of all cores from /proc/stat: user, nice, system and steal."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[7]


def own_ticks() -> int:
    """CPU of this process and its reaped children (the load generator), in ticks."""
    me = os.times()
    return round((me.user + me.system + me.children_user + me.children_system) * HZ)


class Meter:
    """CPU used by each server and by others between :meth:`start` and :meth:`stop`."""

    def __init__(self, server_groups: Iterable[int]) -> None:
        self.groups = list(server_groups)

    def start(self) -> None:
        self._t0 = time.monotonic()
        (self._srv0, self._oth0), self._busy0, self._own0 = (
            ticks(self.groups), busy_ticks(), own_ticks()
        )  # fmt: skip

    def stop(self) -> tuple[dict[int, float], float]:
        """(seconds of CPU per server group, percent of one core used by others)."""
        wall = time.monotonic() - self._t0
        (srv1, oth1), busy1, own1 = ticks(self.groups), busy_ticks(), own_ticks()
        servers = {g: srv1[g] - self._srv0[g] for g in self.groups}
        # A reaped child's whole life lands in its parent's cutime at once, so
        # the per-process sum can jump by more than the window held (a run once
        # read 2446% of a core on two cores): never more than the cores did.
        by_process = min(oth1 - self._oth0, busy1 - self._busy0)
        by_core = (busy1 - self._busy0) - sum(servers.values()) - (own1 - self._own0)
        others = 100 * max(0, by_process, by_core) / HZ / wall
        return {g: t / HZ for g, t in servers.items()}, others


def others_busy(server_groups: Iterable[int], seconds: float = 1.0) -> float:
    """Percent of one core that other processes used over ``seconds``."""
    meter = Meter(server_groups)
    meter.start()
    time.sleep(seconds)
    return meter.stop()[1]


def wait_quiet(server_groups: Iterable[int], limit_pct: float, max_wait: float) -> float:
    """Wait until others use under ``limit_pct`` of a core, at most ``max_wait`` s; their last
    reading."""
    groups = list(server_groups)
    deadline = time.monotonic() + max_wait
    while True:
        busy = others_busy(groups)
        if busy < limit_pct or time.monotonic() >= deadline:
            return busy


def core_ticks() -> dict[str, tuple[int, int]]:
    """{"cpu0": (busy, total), ...} from /proc/stat; busy is all but idle and iowait."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                v = [int(x) for x in values[:8]]
                out[name] = (sum(v) - v[3] - v[4], sum(v))
    return out


def core_busy_pct(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], cpu: str
) -> int | None:
    """How busy core ``cpu`` ("0") was between two :func:`core_ticks` readings."""
    key = f"cpu{cpu}"
    if key not in before or key not in after:
        return None
    (b0, t0), (b1, t1) = before[key], after[key]
    return round(100 * (b1 - b0) / max(1, t1 - t0))
